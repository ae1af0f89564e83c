"""Rolling-origin evaluation of the models on a CSV trace (what ``mirrorcast evaluate-forecast`` runs).

The trace is cleaned and gridded exactly as the engine does for a live metric, every model is
cross-validated over the same origins, and the engine's own choice rule names the model it
would use for this series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.engine import ForecastEngine
from forecasting.errors import UnusableSeriesError
from forecasting.evaluation import mase_scale, score_cross_validation
from forecasting.models import BASELINE, ModelOptions, cross_validate_models, freq_of
from forecasting.selection import choose_model
from infra.config import ForecastSettings

__all__ = ["TraceEvaluation", "evaluate_trace", "read_trace_csv"]

logger = logging.getLogger(__name__)

_TIME_HINTS = ("timestamp", "time", "ds", "date")


def read_trace_csv(
    path: Path, *, timestamp_column: str | None = None, value_column: str | None = None
) -> pd.Series:
    """Read one series from a CSV file; columns auto-detected when not given.

    The timestamp column is the first whose name contains ``timestamp``/``time``/``date`` (else
    the first column); the value column is the first other column that is mostly numbers. Empty
    cells are gaps (NaN), not zeros. A column name ending in ``_minus0400`` (or ``_plusHHMM``)
    gives the offset of local timestamps from UTC.

    :param path: the CSV file.
    :param timestamp_column: default ``None`` (auto-detect).
    :param value_column: default ``None`` (auto-detect).
    :raises UnusableSeriesError: naming the file and the column when they cannot be used.
    """
    label = str(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UnusableSeriesError(label, f"cannot be read as CSV: {exc}") from exc
    columns = list(frame.columns)
    if len(columns) < 2:
        raise UnusableSeriesError(label, f"needs a timestamp and a value column, has {columns}")
    if timestamp_column is None:
        timestamp_column = next(
            (c for c in columns if any(h in c.lower() for h in _TIME_HINTS)), columns[0]
        )
    if timestamp_column not in columns:
        raise UnusableSeriesError(
            label, f"has no column {timestamp_column!r} (columns: {', '.join(columns)})"
        )
    if value_column is None:
        for c in columns:
            if c == timestamp_column:
                continue
            numbers = pd.to_numeric(frame[c], errors="coerce")
            if numbers.notna().sum() >= 0.5 * frame[c].notna().sum() and numbers.notna().any():
                value_column = c
                break
        if value_column is None:
            raise UnusableSeriesError(
                label,
                f"has no numeric value column besides {timestamp_column!r}; pass --value-column",
            )
    if value_column not in columns:
        raise UnusableSeriesError(
            label, f"has no column {value_column!r} (columns: {', '.join(columns)})"
        )
    stamps = pd.to_datetime(frame[timestamp_column], errors="coerce", format="mixed")
    bad = stamps.isna() & frame[timestamp_column].notna()
    if bad.any() or stamps.isna().all():
        row = int(bad.to_numpy().argmax()) if bad.any() else 0
        raise UnusableSeriesError(
            label,
            f"column {timestamp_column!r} is not timestamps (row {row + 2} holds "
            f"{frame[timestamp_column].iloc[row]!r})",
        )
    index = pd.DatetimeIndex(stamps)
    offset = _offset_from_name(timestamp_column)
    if index.tz is None and offset is not None:
        index = (index - offset).tz_localize("UTC")
    values = pd.to_numeric(frame[value_column], errors="coerce")
    text = frame[value_column].notna() & values.isna()
    if text.any():
        row = int(text.to_numpy().argmax())
        raise UnusableSeriesError(
            label,
            f"column {value_column!r} must hold numbers, row {row + 2} holds {frame[value_column].iloc[row]!r}",
        )
    return pd.Series(values.to_numpy(dtype=float), index=index, name=value_column)


def _offset_from_name(column: str) -> pd.Timedelta | None:
    lower = column.lower()
    for sign, word in ((-1, "_minus"), (1, "_plus")):
        if word in lower:
            digits = lower.split(word, 1)[1][:4]
            if digits.isdigit():
                return sign * pd.Timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return None


@dataclass
class TraceEvaluation:
    """The result of :func:`evaluate_trace`.

    :param models: model -> ``{"mase", "smape", "coverage_80", "coverage_95", "seconds"}``.
    :param chosen: the model the engine would use.
    :param trusted: whether the engine would trust it.
    :param reason: why not, if not.
    :param step: the grid step evaluated at.
    :param season: the season length in steps.
    :param failures: model -> error for models that could not be fitted on this trace.
    :param models_excluding: the same scores without the excluded windows (empty if none given).
    :param scored_points: actual values scored over all origins (gaps are not scored).
    """

    models: dict[str, dict[str, float]]
    chosen: str
    trusted: bool
    reason: str | None
    step: timedelta
    season: int
    failures: dict[str, str] = field(default_factory=dict)
    models_excluding: dict[str, dict[str, float]] = field(default_factory=dict)
    scored_points: int = 0

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON document."""
        return {
            "models": self.models,
            "chosen": self.chosen,
            "trusted": self.trusted,
            "reason": self.reason,
            "step_seconds": self.step.total_seconds(),
            "season": self.season,
            "failures": self.failures,
            "scored_points": self.scored_points,
        }


def evaluate_trace(
    series: pd.Series,
    *,
    name: str,
    horizon: timedelta,
    models: Sequence[str] = ("seasonal_naive", "mstl", "auto_ets", "ses", "theta"),
    n_windows: int = 3,
    history: timedelta = timedelta(days=14),
    options: ModelOptions | None = None,
    exclude: Sequence[tuple[datetime, datetime]] = (),
    on_model: Callable[[str], None] | None = None,
) -> TraceEvaluation:
    """Cross-validate ``models`` on one trace and name the engine's choice.

    Points that were gaps in the trace are never scored (the models saw filled values there,
    but nobody observed them).

    :param series: the raw trace.
    :param name: its name in errors (the file).
    :param horizon: forecast horizon of each origin.
    :param models: default five statistical models; seasonal-naive and MSTL are always added.
    :param n_windows: default ``3`` rolling origins, one horizon apart, at the end of the trace.
    :param history: default 14 days; training window before each origin.
    :param options: default ``None``; model budgets.
    :param exclude: default none; ``(start, end)`` UTC windows whose points are not scored in
        :attr:`TraceEvaluation.models_excluding` (e.g. labelled anomaly windows).
    :param on_model: default ``None``; called with each model name as it starts (progress).
    """
    names = list(dict.fromkeys([BASELINE, "mstl", *models]))
    settings = ForecastSettings(horizon=horizon, history=history, models=names)
    engine = ForecastEngine(settings, options=options, cv_windows=n_windows)
    item = engine._prepare(
        series, key=("trace", name), name=name, spec=_gauge(), now=None, horizon=horizon
    )
    # The engine forecasts a series without a daily cycle with level models only; the evaluation
    # still scores the seasonal models on it (at the daily season) to show that they gain nothing.
    season = item.season
    if item.caveat is not None:
        season = round(timedelta(days=1) / item.step)
    if season < 2 or len(item.filled) < 2 * season + (n_windows + 1) * item.h:
        raise UnusableSeriesError(
            name,
            f"spans {item.values.index[-1] - item.values.index[0]} at a {item.step} step; "
            f"evaluating MSTL at a {horizon} horizon needs two days plus {n_windows + 1} horizons "
            "of history (pass a shorter --horizon, or use a longer trace)",
        )
    stamps = item.filled.index.tz_localize(None)
    df = pd.DataFrame({"unique_id": name, "ds": stamps, "y": item.filled.to_numpy()})
    observed = set(stamps[item.values.notna().to_numpy()])
    holdout = n_windows * item.h
    scales = {name: mase_scale(df["y"].to_numpy()[:-holdout], season=season)}
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    frames: list[pd.DataFrame] = []
    for model in names:
        if on_model is not None:
            on_model(model)
        try:
            frames.append(
                cross_validate_models(
                    df,
                    models=[model],
                    h=item.h,
                    n_windows=n_windows,
                    freq=freq_of(item.step),
                    season=season,
                    levels=engine.levels,
                    options=options,
                    input_size=int(history / item.step),
                    timings=timings,
                )
            )
        except Exception as exc:  # reported per model; the baseline's failure is fatal below
            failures[model] = f"{type(exc).__name__}: {exc}"
            logger.warning("%s: model %s failed: %s", name, model, exc)
    if not frames:
        raise UnusableSeriesError(name, f"no model could be fitted ({failures})")
    cv = frames[0]
    for frame in frames[1:]:
        cv = cv.merge(frame.drop(columns=["y"]), on=["unique_id", "ds", "cutoff"], how="inner")
    cv = cv[cv["ds"].isin(observed)]
    fitted = [m for m in names if m not in failures]
    scores = score_cross_validation(cv, models=fitted, scales=scales).get(name, {})
    for model, model_scores in scores.items():
        model_scores["seconds"] = round(timings.get(model, float("nan")), 4)
    excluding: dict[str, dict[str, float]] = {}
    if exclude:
        keep = pd.Series(True, index=cv.index)
        for start, end in exclude:
            lo, hi = pd.Timestamp(start).tz_localize(None), pd.Timestamp(end).tz_localize(None)
            keep &= ~((cv["ds"] >= lo) & (cv["ds"] <= hi))
        if keep.any():
            excluding = score_cross_validation(cv[keep], models=fitted, scales=scales).get(name, {})
    chosen, trusted, reason = choose_model(scores, tolerance=engine.tolerance)
    if item.reason is not None:
        chosen, trusted, reason = BASELINE, False, item.reason
    elif item.caveat is not None:
        trusted, reason = False, item.caveat
    return TraceEvaluation(
        models=scores,
        chosen=chosen,
        trusted=trusted,
        reason=reason,
        step=item.step,
        season=season,
        failures=failures,
        models_excluding=excluding,
        scored_points=len(cv),
    )


def _gauge() -> Any:
    from infra.config import MetricSpec

    return MetricSpec()
