"""The mirrorcast driver: the scheduled service that forecasts, decides and applies, and its CLI.

Import the shared pieces from here::

    from driver import decide, CycleResult, Driver, Journal

Executors that pull in heavy dependencies (``driver.automation`` loads ``pulumi.automation``,
``driver.gitops`` loads ``requests``) are imported from their modules by whoever needs them.
"""

from driver.cycle import CycleResult, decide
from driver.executor import ApplyOutcome, DriverError, PlanExecutor
from driver.journal import Journal, JournalError
from driver.service import CycleReport, Driver

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
