"""Per-series model choice by rolling-origin cross-validation, kept on disk between cycles.

Each series gets the candidate with the lowest MASE over the last ``n_windows`` origins of its own
history; among candidates within ``tolerance`` of the best, the cheapest wins (a model that is
2% better and 50x slower is not worth a driver cycle). A series whose best candidate does not
beat the seasonal-naive baseline, or that has no seasonality to learn, is marked untrusted and
falls back to the baseline: the rules then treat it as "no trustworthy forecast".

Choices are stored as JSON, one file per ``pool/metric`` under the cache directory, and reused
until they are older than ``reselect_every`` (measured in decision time, so backtests re-select
on the simulated clock).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting._private import private_dir, write_private
from forecasting.evaluation import mase_scale, score_cross_validation
from forecasting.models import (
    BASELINE,
    MODEL_COST,
    NEEDS_SEASON,
    ModelOptions,
    cross_validate_models,
)

__all__ = [
    "NEEDS_SEASON",
    "Selection",
    "SelectionStore",
    "anchor_holds",
    "anchor_of",
    "choose_model",
    "seasonal_strength",
    "select_models",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """The model chosen for one series, with the evidence.

    :param model: the chosen model name.
    :param trusted: ``False`` when the choice is the baseline fallback.
    :param reason: why it is untrusted, or ``None``.
    :param scores: model -> ``{"mase", "smape", "coverage_80", "coverage_95"}`` from the
        cross-validation (failed candidates carry ``{"error": ...}`` in ``failures`` instead).
    :param selected_at: decision time of the selection (UTC).
    :param step_seconds: the grid step the scores hold for.
    :param season: the season length (steps) used.
    :param candidates: the candidate list it was chosen from.
    :param failures: model -> error message for candidates that could not be fitted.
    :param anchor: the last observations the choice was made on, as ``(ISO time, value)``; a
        later call reuses the choice only if its series still holds those values there (see
        :func:`anchor_of`), so a choice is never carried over to different data under the same
        ``pool/metric`` (a replaced metrics file, a recording, another source).
    """

    model: str
    trusted: bool
    reason: str | None
    scores: dict[str, dict[str, float]]
    selected_at: datetime
    step_seconds: float
    season: int
    candidates: tuple[str, ...]
    failures: dict[str, str] = field(default_factory=dict)
    anchor: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps ISO 8601)."""
        data = asdict(self)
        data["selected_at"] = self.selected_at.isoformat()
        data["candidates"] = list(self.candidates)
        data["anchor"] = [list(point) for point in self.anchor]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        """Inverse of :meth:`to_json`."""
        return cls(
            model=str(data["model"]),
            trusted=bool(data["trusted"]),
            reason=data.get("reason"),
            scores={k: {m: float(v) for m, v in s.items()} for k, s in data["scores"].items()},
            selected_at=datetime.fromisoformat(data["selected_at"]),
            step_seconds=float(data["step_seconds"]),
            season=int(data["season"]),
            candidates=tuple(data["candidates"]),
            failures=dict(data.get("failures", {})),
            anchor=tuple((str(t), float(v)) for t, v in data.get("anchor", [])),
        )

    def fresh(
        self,
        *,
        now: datetime,
        every: timedelta,
        step: timedelta,
        season: int,
        candidates: Sequence[str],
        values: pd.Series | None = None,
    ) -> bool:
        """Whether this choice still holds at ``now`` for the same grid, season and candidates.

        :param values: default ``None``; the series now (UTC index). When given, the choice
            holds only if it still has the anchor's values at the anchor's times: the same
            series, not other data under the same name. A choice without an anchor (written
            before anchors existed) is made again.
        """
        if not (
            now - self.selected_at < every
            and now >= self.selected_at
            and math.isclose(self.step_seconds, step.total_seconds())
            and self.season == season
            and tuple(candidates) == self.candidates
        ):
            return False
        if values is None:
            return True
        return _points_hold(self._anchor_points, values)

    @cached_property
    def _anchor_points(self) -> tuple[pd.DatetimeIndex, npt.NDArray[np.float64]]:
        # Parsed once per choice: the engine checks a kept choice on every cycle.
        return _anchor_points(self.anchor)


def anchor_of(values: pd.Series, *, points: int = 12) -> tuple[tuple[str, float], ...]:
    """The last ``points`` observed (non-NaN) values of ``values`` with their times."""
    observed = values.dropna().iloc[-points:]
    return tuple((pd.Timestamp(t).isoformat(), float(v)) for t, v in observed.items())


def anchor_holds(anchor: Sequence[tuple[str, float]], values: pd.Series) -> bool:
    """Whether ``values`` (UTC index) still holds ``anchor``'s values at its times.

    An empty anchor holds for nothing: what it was made on is unknown.
    """
    return _points_hold(_anchor_points(anchor), values)


def _anchor_points(
    anchor: Sequence[tuple[str, float]],
) -> tuple[pd.DatetimeIndex, npt.NDArray[np.float64]]:
    times = pd.DatetimeIndex([pd.Timestamp(stamp) for stamp, _ in anchor])
    return times, np.array([value for _, value in anchor], dtype=float)


def _points_hold(
    points: tuple[pd.DatetimeIndex, npt.NDArray[np.float64]], values: pd.Series
) -> bool:
    times, expected = points
    if len(times) == 0 or len(values) == 0:
        return False
    index = values.index
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None and times.tz is not None:
        # The engine's case, every cycle for every series: a sorted UTC grid. Instants compared
        # as nanoseconds by binary search; ``reindex`` and ``is_unique`` hashed the whole index
        # (most of a warm series' selection check). Same answer (tests/forecasting/
        # test_warm_path_equivalence.py).
        stamps = (index if index.unit == "ns" else index.as_unit("ns")).asi8
        steps = np.diff(stamps)
        if bool(np.all(steps > 0)):
            wanted = (times if times.unit == "ns" else times.as_unit("ns")).asi8
            at = np.minimum(np.searchsorted(stamps, wanted), len(stamps) - 1)
            found = stamps[at] == wanted
            seen = np.where(found, values.to_numpy(dtype=float)[at], np.nan)
            return bool(np.all(np.isclose(seen, expected, rtol=1e-9, atol=1e-12)))
        if bool(np.all(steps >= 0)):
            return False  # sorted with a repeated time: not unique
    if not index.is_unique:
        return False
    seen = values.reindex(times).to_numpy(dtype=float)  # NaN where the series lacks a time
    return bool(np.all(np.isclose(seen, expected, rtol=1e-9, atol=1e-12)))


class SelectionStore:
    """Model choices keyed by ``pool/metric``: JSON files under ``directory``, or memory only.

    :param directory: where to keep ``<pool>__<metric>.json``; default ``None`` keeps choices
        in memory for the life of the store (tests, one-off CLI runs).
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: dict[str, Selection] = {}
        if directory is not None:
            private_dir(directory)

    @staticmethod
    def key(pool: str, metric: str) -> str:
        """File-safe key of a series."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{pool}__{metric}")

    def path(self, pool: str, metric: str) -> Path | None:
        """The JSON file of a series (``None`` for an in-memory store)."""
        return None if self.directory is None else self.directory / f"{self.key(pool, metric)}.json"

    def load(self, pool: str, metric: str) -> Selection | None:
        """The stored choice, or ``None`` (a corrupt file is logged and ignored: it is a cache)."""
        key = self.key(pool, metric)
        if key in self._memory:
            return self._memory[key]
        path = self.path(pool, metric)
        if path is None or not path.exists():
            return None
        try:
            selection = Selection.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable model choice %s (%s); re-selecting", path, exc)
            return None
        self._memory[key] = selection
        return selection

    def save(self, pool: str, metric: str, selection: Selection) -> None:
        """Keep ``selection`` (written atomically, owner-only: a crash never leaves half a file)."""
        self._memory[self.key(pool, metric)] = selection
        path = self.path(pool, metric)
        if path is None:
            return
        write_private(path, json.dumps(selection.to_json(), indent=2, sort_keys=True))


def seasonal_strength(values: np.ndarray, *, season: int) -> float:
    """How much of the series is a repeating cycle of ``season`` steps, 0 (none) to 1.

    Rank (Spearman) autocorrelation at lag ``season`` after removing a moving-average trend of
    one season: a trend or a level shift alone does not count as seasonality. Ranks, because a
    single burst dominates a Pearson correlation: one news spike in a week of tweet volumes took
    Twitter FB's daily cycle from 0.37 to 0.02 for the seven days the spike stayed in the
    history (and every forecast of those days was untrusted); on ranks the cycle measures
    between 0.17 and 0.58 on every day of the trace.

    :param values: gap-free series.
    :param season: season length in steps (``< 2`` gives 0).
    """
    if season < 2 or len(values) < 2 * season + 1:
        return 0.0
    series = pd.Series(values, dtype=float)
    trend = series.rolling(season, center=True, min_periods=max(1, season // 2)).mean()
    detrended = (series - trend).to_numpy()
    a, b = detrended[season:], detrended[:-season]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < season:
        return 0.0
    rho = _spearman(a[ok], b[ok])
    return float(max(0.0, rho)) if np.isfinite(rho) else 0.0  # NaN: a constant side


def _average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n, tied values sharing their mean rank (what Spearman's rho ranks by)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # The distinct values' mean ranks: after ``c`` earlier values, a run of ``k`` ties takes
    # ranks c+1 .. c+k, whose mean is c + (k + 1) / 2.
    before = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return (before + (counts + 1) / 2.0)[inverse]


def _spearman(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Spearman's rank correlation of two equal-length arrays (NaN when a side is constant).

    The same number as ``pandas.Series.corr(method="spearman")``, which imports scipy.stats
    for it: about a second of a one-shot cycle's start, in every cycle that measures a
    series' cycle strength.
    """
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denominator if denominator > 0 else math.nan


def choose_model(
    scores: Mapping[str, Mapping[str, float]], *, tolerance: float = 0.02
) -> tuple[str, bool, str | None]:
    """Pick a model from its cross-validation scores.

    :param scores: model -> scores with at least ``mase``; must include the baseline.
    :param tolerance: default ``0.02``; models within this fraction of the best MASE count as
        equally good, and the cheapest of them wins.
    :returns: ``(model, trusted, reason)``.
    """
    usable = {m: s["mase"] for m, s in scores.items() if np.isfinite(s.get("mase", np.nan))}
    if BASELINE not in usable:
        return BASELINE, False, "the seasonal-naive baseline could not be scored"
    best_model = min(usable, key=lambda m: (usable[m], MODEL_COST[m]))
    best, base = usable[best_model], usable[BASELINE]
    if best_model == BASELINE or best >= base:
        return (
            BASELINE,
            False,
            f"no candidate beat seasonal-naive in rolling-origin CV (MASE {base:.3f})",
        )
    near = [m for m, v in usable.items() if v <= best * (1 + tolerance) and v < base]
    chosen = min(near, key=lambda m: (MODEL_COST[m], usable[m]))
    return chosen, True, None


def select_models(
    df: pd.DataFrame,
    *,
    candidates: Sequence[str],
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    n_windows: int,
    now: datetime,
    step: timedelta,
    options: ModelOptions | None = None,
    input_size: int | None = None,
    tolerance: float = 0.02,
    timings: dict[str, float] | None = None,
    update_kept_fits: bool = False,
) -> dict[str, Selection]:
    """Choose a model for every series of ``df`` by rolling-origin cross-validation.

    :param df: long frame ``unique_id, ds, y`` (gap-free, regular).
    :param candidates: model names; the baseline is always added.
    :param h: steps per window (the forecast horizon).
    :param freq: pandas frequency of the grid.
    :param season: season length in steps.
    :param levels: interval levels (must include 80 and 95 for coverage).
    :param n_windows: origins, ``h`` steps apart, at the end of each history.
    :param now: decision time recorded as ``selected_at``.
    :param step: the grid step (recorded with the choice).
    :param options: model budgets; default :class:`ModelOptions()`.
    :param input_size: default ``None``; caps each fit's training window (steps).
    :param tolerance: see :func:`choose_model`.
    :param timings: default ``None``; receives each model's total seconds when given.
    :param update_kept_fits: default ``False``; ``True`` scores the models the engine keeps
        fitted as it runs them (fitted at the first origin, updated at the later ones: see
        :func:`forecasting.models.cross_validate_models`). The engine selects this way.
    """
    names = list(dict.fromkeys([BASELINE, *candidates]))
    holdout = n_windows * h
    scales = {
        str(uid): mase_scale(group["y"].to_numpy()[:-holdout], season=season)
        for uid, group in df.groupby("unique_id", sort=False)
    }
    frames: list[pd.DataFrame] = []
    failures: dict[str, str] = {}
    if season < 2:
        # A decomposition needs a cycle of at least two steps; statsforecast's MSTL would
        # otherwise try (and print about) a supersmoother fallback on every call.
        for name in [n for n in names if n in NEEDS_SEASON]:
            names.remove(name)
            failures[name] = f"needs a seasonal period of at least 2 steps, the series has {season}"
            logger.debug("candidate %s skipped: %s", name, failures[name])
    for name in names:
        try:
            frames.append(
                cross_validate_models(
                    df,
                    models=[name],
                    h=h,
                    n_windows=n_windows,
                    freq=freq,
                    season=season,
                    levels=levels,
                    options=options,
                    input_size=input_size,
                    timings=timings,
                    update_kept_fits=update_kept_fits,
                )
            )
        except Exception as exc:  # a candidate that cannot fit this data is out, not fatal
            if name == BASELINE:
                raise
            failures[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("candidate %s failed in cross-validation: %s", name, exc)
    cv = frames[0]
    for frame in frames[1:]:
        extra = [
            c for c in frame.columns if c not in cv.columns or c in ("unique_id", "ds", "cutoff")
        ]
        cv = cv.merge(frame[extra], on=["unique_id", "ds", "cutoff"], how="inner")
    scored = score_cross_validation(cv, models=names, scales=scales)
    out: dict[str, Selection] = {}
    for uid, scores in scored.items():
        model, trusted, reason = choose_model(scores, tolerance=tolerance)
        out[uid] = Selection(
            model=model,
            trusted=trusted,
            reason=reason,
            scores={m: dict(s) for m, s in scores.items()},
            selected_at=now,
            step_seconds=step.total_seconds(),
            season=season,
            candidates=tuple(candidates),
            failures=dict(failures),
        )
    return out
