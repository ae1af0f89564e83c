"""Feedback after an activation: compare realised demand with the forecast that triggered it.

Pure. :func:`assess` reads the trigger remembered at activation (``PoolMemory.trigger``: the
metric, threshold and the forecast curve) and the latest observation, and says whether demand
runs *above* the forecast (escalate), *well below* it (ramp down, lower the floor), is *on
track*, or cannot be judged. :func:`demand_present` says whether demand is there at all, which
is what keeps an activation alive; without it for ``rollback_grace`` the planner rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["Feedback", "assess", "demand_present", "latest"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feedback:
    """How realised demand compares with the triggering forecast.

    :param kind: ``above`` (escalate), ``below`` (ramp down), ``on_track`` or ``unknown``.
    :param realised: the latest observation of the trigger metric (None if there is none).
    :param expected: the forecast's median at this time (None without a forecast curve).
    :param upper: the trigger quantile at this time.
    :param detail: the comparison in words.
    """

    kind: Literal["above", "below", "on_track", "unknown"]
    realised: float | None
    expected: float | None
    upper: float | None
    detail: str


def latest(series: pd.Series | None, now: datetime) -> float | None:
    """The last observation at or before ``now`` (None when there is none)."""
    point = _latest_point(series, now)
    return point[1] if point is not None else None


def _latest_point(series: pd.Series | None, now: datetime) -> tuple[datetime, float] | None:
    """The last observation at or before ``now`` with its time."""
    if series is None or len(series) == 0:
        return None
    index = series.index
    if isinstance(index, pd.DatetimeIndex) and index.is_monotonic_increasing:
        # In time order (every source's series): one binary search and a walk back over
        # trailing gaps, not a mask and a copy of the whole history (twice a pool, every cycle).
        values = series.to_numpy(dtype=float, na_value=np.nan)
        at = int(index.searchsorted(pd.Timestamp(now), side="right")) - 1
        if at >= 0 and np.isnan(values[at]):
            kept = np.flatnonzero(~np.isnan(values[:at]))
            at = int(kept[-1]) if len(kept) else -1
        if at < 0:
            return None
        return pd.Timestamp(index[at]).to_pydatetime(), float(values[at])
    past = series[series.index <= now].dropna()
    if not len(past):
        return None
    return pd.Timestamp(past.index[-1]).to_pydatetime(), float(past.iloc[-1])


def _expected(trigger: Mapping[str, Any], now: datetime) -> tuple[float, float] | None:
    curve = trigger.get("curve") or []
    if not curve:
        return None
    times = np.array([pd.Timestamp(t).timestamp() for t, _, _ in curve])
    if now.timestamp() > times[-1]:
        return None  # past the forecast the activation was based on: nothing to compare with
    medians = np.array([float(m) for _, m, _ in curve])
    uppers = np.array([float(u) for _, _, u in curve])
    at = now.timestamp()
    return float(np.interp(at, times, medians)), float(np.interp(at, times, uppers))


def assess(
    trigger: Mapping[str, Any] | None,
    current: Mapping[str, pd.Series],
    now: datetime,
    *,
    tolerance: float,
) -> Feedback:
    """Compare realised demand with the triggering forecast.

    :param trigger: ``PoolMemory.trigger`` (None: activated without a forecast).
    :param current: the pool's recent observations, metric -> series.
    :param now: decision time.
    :param tolerance: percent below the forecast median that counts as "well below".
    """
    if not trigger or trigger.get("kind") != "forecast":
        return Feedback("unknown", None, None, None, "activated without a forecast; no comparison")
    metric = str(trigger["metric"])
    point = _latest_point(current.get(metric), now)
    if point is None:
        return Feedback("unknown", None, None, None, f"no observations of {metric} to compare")
    # Judge the observation against the forecast for ITS time, not for now: the newest point
    # is usually a step old, and at a surge's first cycle it still shows the calm before it.
    observed_at, realised = point
    expected = _expected(trigger, observed_at)
    if expected is None:
        return Feedback(
            "unknown",
            realised,
            None,
            None,
            f"{metric} {realised:.4g}: past the triggering forecast",
        )
    median, upper = expected
    threshold = float(trigger["threshold"])
    crossing = trigger.get("crossing_at")
    quantile = trigger.get("quantile")
    words = (
        f"{metric} realised {realised:.4g} vs forecast median {median:.4g}, p{quantile} {upper:.4g}"
    )
    if realised > upper and realised >= threshold:
        return Feedback(
            "above", realised, median, upper, f"{words}: demand runs above the forecast"
        )
    demand_due = crossing is None or observed_at >= pd.Timestamp(crossing).to_pydatetime()
    if demand_due and realised < median * (1 - tolerance / 100):
        return Feedback(
            "below",
            realised,
            median,
            upper,
            f"{words}: more than {tolerance:g}% below the median forecast",
        )
    return Feedback("on_track", realised, median, upper, f"{words}: on track")


def demand_present(
    trigger: Mapping[str, Any] | None,
    current: Mapping[str, pd.Series],
    now: datetime,
    *,
    margin: float,
) -> bool | None:
    """Whether the demand the activation was for is here (None: nothing to judge by).

    :param trigger: ``PoolMemory.trigger``.
    :param current: the pool's recent observations.
    :param now: decision time.
    :param margin: hysteresis margin below the threshold that still counts as demand.
    """
    if not trigger or trigger.get("metric") is None or trigger.get("threshold") is None:
        return None
    realised = latest(current.get(str(trigger["metric"])), now)
    if realised is None:
        return None
    return realised >= float(trigger["threshold"]) - margin
