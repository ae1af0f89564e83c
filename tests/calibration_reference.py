"""The calibrator as it was before issue 16, the reference the memory work is checked against
(``tests/forecasting/test_calibration_storage.py``) and measured beside
(``benchmarks/engine_memory.py``): each error computed as it was scored, one Python float at a
time, and kept in its lead's Python lists; quantiles by ``np.quantile``; the raw history through
``pd.to_numeric`` and a converted index. Patched in for ``calibration._ErrorTable``,
``calibration._linear_quantiles`` and ``calibration._clean``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass
class ListLeadErrors:
    """A lead's errors before issue 16: three Python lists."""

    starts: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    def add(self, start: int, error: float, level: float) -> None:
        self.starts.append(start)
        self.errors.append(error)
        self.levels.append(level)

    def forget_before(self, cutoff: int) -> None:
        drop = bisect.bisect_left(self.starts, cutoff)
        if drop:
            del self.starts[:drop], self.errors[:drop], self.levels[:drop]

    def near(
        self, level: float, *, bins: int, at_least: int
    ) -> tuple[npt.NDArray[np.float64], bool]:
        errors = np.asarray(self.errors, dtype=float)
        if bins <= 1:
            return errors, False
        levels = np.asarray(self.levels, dtype=float)
        edges = np.quantile(levels, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        band = np.searchsorted(edges, levels, side="right")
        own = errors[band == int(np.searchsorted(edges, level, side="right"))]
        if len(own) < at_least:
            return errors, True
        return own, False

    def __len__(self) -> int:
        return len(self.errors)


class ListErrorTable:
    """``calibration._ErrorTable`` before issue 16: each error computed as it was scored, one
    Python float at a time, and kept whole in its lead's lists."""

    def __init__(self) -> None:
        self.by_lead: dict[int, ListLeadErrors] = {}

    def add(
        self,
        *,
        lead: int,
        start: int,
        end: int,
        realised: float,
        mean: float,
        typical: float,
        rows: dict[tuple[int, int], int],
    ) -> None:
        scale = max(abs(mean), 0.1 * typical)
        lead_errors = self.by_lead.setdefault(lead, ListLeadErrors())
        lead_errors.add(start, (realised - mean) / scale, scale / typical)

    def forget_before(self, cutoff: int) -> None:
        for lead_errors in self.by_lead.values():
            lead_errors.forget_before(cutoff)

    def samples(self, lead: int) -> int:
        return len(self.by_lead.get(lead, ()))

    def leads(self) -> dict[int, ListLeadErrors]:
        return self.by_lead

    def __len__(self) -> int:
        return sum(len(lead) for lead in self.by_lead.values())


def numpy_quantiles(values: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> Any:
    """The calibrator's quantiles before issue 16: numpy's own."""
    return np.quantile(values, q)


def list_clean(
    history: pd.Series, *, now: datetime | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The calibrator's reading of a raw history before issue 16."""
    index = pd.DatetimeIndex(history.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    values = pd.to_numeric(pd.Series(history.to_numpy()), errors="coerce").to_numpy(dtype=float)
    stamps = index.asi8
    keep = np.isfinite(values)
    if now is not None:
        keep &= stamps <= pd.Timestamp(now).value
    stamps, values = stamps[keep], values[keep]
    if len(stamps) > 1 and not bool(np.all(np.diff(stamps) >= 0)):
        order = np.argsort(stamps, kind="stable")
        stamps, values = stamps[order], values[order]
    return stamps, values
