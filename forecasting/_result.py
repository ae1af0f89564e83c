"""What the prediction engine hands to the rules: a forecast curve with its distribution.

This is the contract between ``forecasting`` and ``policies``: the planner only ever reads a
:class:`Forecast`, never a model, so a backtest and the driver evaluate rules on exactly the
same object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_QUANTILES", "Forecast", "ForecastUnavailable", "Repair"]

DEFAULT_QUANTILES: tuple[int, ...] = (50, 80, 90, 95, 99)
"""Percentiles every forecast carries at least."""


@dataclass(frozen=True)
class Repair:
    """Something done to raw metric data before forecasting, reported rather than hidden.

    :param kind: short tag, e.g. ``duplicates``, ``reordered``, ``gap``, ``nan``, ``counter_reset``,
        ``resampled``, ``timezone``, ``negative``, ``spike``.
    :param count: how many points it touched.
    :param detail: one sentence for a person.
    """

    kind: str
    count: int
    detail: str


@dataclass(frozen=True)
class Forecast:
    """A forecast for one metric of one pool.

    :param pool: the pool name from stack config.
    :param metric: the metric name from the pool's ``metrics``.
    :param issued_at: the time of the last observation used (UTC).
    :param step: spacing of the forecast points.
    :param times: the forecast timestamps (UTC), ``issued_at + step * (1..n)``.
    :param mean: point forecast (the model's mean or median), one value per timestamp.
    :param quantiles: percentile -> values, at least :data:`DEFAULT_QUANTILES`; monotone in the
        percentile at every timestamp.
    :param model: the model that produced it (``seasonal_naive``, ``mstl``, ...).
    :param trusted: ``False`` when history was too short, the source was degraded, or no model beat
        the seasonal-naive baseline; rules then apply their ``on_untrusted`` behaviour.
    :param reason: why it is untrusted (or a note on a fallback), for the plan's explanation.
    :param accuracy: recent accuracy of ``model`` on this series, e.g. ``{"mase": 0.8, "coverage_80": 0.79}``.
    :param repairs: what was done to the input data.
    :param adjustments: what changed the model's output, e.g. an event uplift over its window.
    """

    pool: str
    metric: str
    issued_at: datetime
    step: timedelta
    times: list[datetime]
    mean: npt.NDArray[np.float64]
    quantiles: dict[int, npt.NDArray[np.float64]]
    model: str
    trusted: bool = True
    reason: str | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    repairs: tuple[Repair, ...] = ()
    adjustments: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """This forecast as plain JSON (the journal, ``--json`` output); :meth:`from_json` reads it back.

        Every field is kept, so a forecast read back is the one saved: a last-good fallback
        still explains its event uplift (``adjustments``) and its data repairs.
        """
        return {
            "pool": self.pool,
            "metric": self.metric,
            "issued_at": self.issued_at.isoformat(),
            "step_s": self.step.total_seconds(),
            "times": [t.isoformat() for t in self.times],
            "mean": [float(v) for v in self.mean],
            "quantiles": {str(q): [float(v) for v in vals] for q, vals in self.quantiles.items()},
            "model": self.model,
            "trusted": self.trusted,
            "reason": self.reason,
            "accuracy": {str(k): float(v) for k, v in self.accuracy.items()},
            "repairs": [
                {"kind": r.kind, "count": r.count, "detail": r.detail} for r in self.repairs
            ],
            "adjustments": list(self.adjustments),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Forecast:
        """The inverse of :meth:`to_json`; payloads journaled before ``adjustments`` was kept read as none."""
        return cls(
            pool=data["pool"],
            metric=data["metric"],
            issued_at=datetime.fromisoformat(data["issued_at"]),
            step=timedelta(seconds=float(data["step_s"])),
            times=[datetime.fromisoformat(t) for t in data["times"]],
            mean=np.asarray(data["mean"], dtype=np.float64),
            quantiles={
                int(q): np.asarray(v, dtype=np.float64) for q, v in data["quantiles"].items()
            },
            model=data["model"],
            trusted=bool(data["trusted"]),
            reason=data.get("reason"),
            accuracy={str(k): float(v) for k, v in (data.get("accuracy") or {}).items()},
            repairs=tuple(Repair(**r) for r in data.get("repairs") or ()),
            adjustments=tuple(str(a) for a in data.get("adjustments") or ()),
        )

    def quantile(self, q: int) -> npt.NDArray[np.float64]:
        """The curve for percentile ``q``; ``ValueError`` if the forecast does not carry it."""
        if q not in self.quantiles:
            have = ", ".join(f"p{k}" for k in sorted(self.quantiles))
            raise ValueError(f"forecast for {self.pool}.{self.metric} has no p{q} (it has {have})")
        return self.quantiles[q]

    def peak(self, q: int, within: timedelta) -> tuple[float, datetime | None]:
        """Highest value of percentile ``q`` in ``(issued_at, issued_at + within]`` and when it occurs."""
        values = self.quantile(q)
        limit = self.issued_at + within
        best = -np.inf
        when: datetime | None = None
        for t, v in zip(self.times, values, strict=True):
            if t > limit:
                break
            if v > best:
                best, when = float(v), t
        return (float(best) if when is not None else float("nan")), when

    def first_crossing(self, q: int, threshold: float, within: timedelta) -> datetime | None:
        """First time percentile ``q`` exceeds ``threshold`` within the window, or ``None``."""
        limit = self.issued_at + within
        for t, v in zip(self.times, self.quantile(q), strict=True):
            if t > limit:
                return None
            if v > threshold:
                return t
        return None


@dataclass(frozen=True)
class ForecastUnavailable:
    """No forecast at all for one metric of one pool (unusable data, failed model): a state, not silence.

    :param pool: the pool name from stack config.
    :param metric: the metric name from the pool's ``metrics``.
    :param reason: one sentence for the plan's explanation, naming the series and the cause.
    """

    pool: str
    metric: str
    reason: str
