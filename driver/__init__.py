"""The mirrorcast driver: the scheduled service that forecasts, decides and applies, and its CLI.

Import the shared pieces from here::

    from driver import decide, CycleResult, Driver, Journal

The names are loaded on first use (PEP 562): ``mirrorcast --help`` and ``mirrorcast status``
import ``driver.cli`` and the journal, and must not pay for pandas and the forecasting stack
that ``driver.cycle`` pulls in (about a second of a one-shot run's start).

Executors that pull in heavy dependencies (``driver.automation`` loads ``pulumi.automation``,
``driver.gitops`` loads ``requests``) are imported from their modules by whoever needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driver.cycle import CycleResult, decide
    from driver.executor import ApplyOutcome, DriverError, PlanExecutor
    from driver.journal import Journal, JournalError
    from driver.service import CycleReport, Driver

_EXPORTS: dict[str, str] = {
    "ApplyOutcome": "driver.executor",
    "CycleReport": "driver.service",
    "CycleResult": "driver.cycle",
    "Driver": "driver.service",
    "DriverError": "driver.executor",
    "Journal": "driver.journal",
    "JournalError": "driver.journal",
    "PlanExecutor": "driver.executor",
    "decide": "driver.cycle",
}

__all__ = [
    "ApplyOutcome",
    "CycleReport",
    "CycleResult",
    "Driver",
    "DriverError",
    "Journal",
    "JournalError",
    "PlanExecutor",
    "decide",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'driver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
