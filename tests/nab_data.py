"""A NAB excerpt (``timestamp,value`` CSV under tests/data) as a UTC series: the suite's one reader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["nab"]


def nab(path: Path, *, rows: int | None = None) -> pd.Series:
    """The excerpt's values on a UTC index; its first ``rows`` rows when given."""
    frame = pd.read_csv(path, parse_dates=["timestamp"])
    if rows is not None:
        frame = frame.head(rows)
    index = pd.DatetimeIndex(frame["timestamp"]).tz_localize("UTC")
    return pd.Series(frame["value"].to_numpy(dtype=float), index=index)
