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
from typing import Any

import pandas as pd

from forecasting.engine import ForecastEngine
from forecasting.errors import UnusableSeriesError
from forecasting.evaluation import mase_scale, score_cross_validation
from forecasting.models import BASELINE, ModelOptions, cross_validate_models, freq_of
from forecasting.models.statistical import PARAMETER_FREE, REUSABLE
from forecasting.selection import choose_model, seasonal_strength
from forecasting.trace_csv import count_per_interval, read_trace_csv
from infra.config import ForecastSettings

__all__ = ["TraceEvaluation", "count_per_interval", "evaluate_trace", "read_trace_csv"]

logger = logging.getLogger(__name__)


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
    windows: int = 0

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
            "windows": self.windows,
        }


def evaluate_trace(
    series: pd.Series,
    *,
    name: str,
    horizon: timedelta,
    models: Sequence[str] = ("seasonal_naive", "mstl", "auto_ets", "ses", "theta"),
    n_windows: int | None = 3,
    history: timedelta = timedelta(days=14),
    options: ModelOptions | None = None,
    exclude: Sequence[tuple[datetime, datetime]] = (),
    on_model: Callable[[str], None] | None = None,
    season: timedelta | None = None,
    bounds: tuple[float, float] | None = None,
) -> TraceEvaluation:
    """Cross-validate ``models`` on one trace and name the engine's choice.

    Points that were gaps in the trace are never scored (the models saw filled values there,
    but nobody observed them).

    :param series: the raw trace.
    :param name: its name in errors (the file).
    :param horizon: forecast horizon of each origin.
    :param models: default five statistical models; seasonal-naive and MSTL are always added.
    :param n_windows: default ``3`` rolling origins, one horizon apart, at the end of the trace;
        ``None``: enough for about 300 scored points (``forecasting.as_driven.default_windows``),
        or as many as the trace holds when fewer fit.
    :param history: default 14 days; training window before each origin.
    :param options: default ``None``; model budgets.
    :param exclude: default none; ``(start, end)`` UTC windows whose points are not scored in
        :attr:`TraceEvaluation.models_excluding` (e.g. labelled anomaly windows).
    :param on_model: default ``None``; called with each model name as it starts (progress).
    :param season: default ``None`` (one day); the seasonal period the seasonal models are
        evaluated at. A trace spanning less than two days (an hour-long request log) can only
        be evaluated at a shorter period.
    :param bounds: default ``None``; ``(low, high)``, the metric's range (a percentage: 0-100):
        every candidate's forecast and quantiles are clipped to it before they are scored, as
        the driver bounds its own (``forecasting.calibration.bounded_for_unit``); a CPU p97.5
        of 104% is not a forecast capacity could be sized for. The choice is the engine's,
        from the unclipped forecasts, as the engine makes it.
    """
    names = list(dict.fromkeys([BASELINE, "mstl", *models]))
    settings = ForecastSettings(horizon=horizon, history=history, models=names)
    engine = ForecastEngine(settings, options=options, cv_windows=n_windows or 3)
    item = engine._prepare(
        series, key=("trace", name), name=name, spec=_gauge(), now=None, horizon=horizon
    )
    # The engine forecasts a series without a daily cycle with level models only; the evaluation
    # still scores the seasonal models on it (at the daily season) to show that they gain nothing.
    period = season or timedelta(days=1)
    length = round(period / item.step)
    if season is None:
        length = item.season if item.caveat is None else length
    elif length < 2:
        raise UnusableSeriesError(
            name, f"a season of {period} is shorter than two steps of {item.step}"
        )
    if n_windows is None:
        from forecasting.as_driven import default_windows

        fit = (len(item.filled) - 2 * length) // max(1, item.h) - 1
        n_windows = max(1, min(default_windows(horizon=horizon, step=item.step), fit))
    if length < 2 or len(item.filled) < 2 * length + (n_windows + 1) * item.h:
        what = "two days" if season is None else f"two seasons of {period}"
        raise UnusableSeriesError(
            name,
            f"spans {item.values.index[-1] - item.values.index[0]} at a {item.step} step; "
            f"evaluating MSTL at a {horizon} horizon needs {what} plus {n_windows + 1} horizons "
            "of history (pass a shorter --horizon or --season, or use a longer trace)",
        )
    reason, caveat = item.reason, item.caveat
    if season is not None:
        # The engine judged the series against a daily cycle; judge it against this one.
        reason = None
        strength = seasonal_strength(item.filled.to_numpy(), season=length)
        caveat = (
            None
            if strength >= engine.min_seasonal_strength
            else (
                f"no seasonality to learn (cycle of {period}: strength {strength:.2f} < "
                f"{engine.min_seasonal_strength})"
            )
        )
    season_steps = length
    stamps = item.filled.index.tz_localize(None)
    df = pd.DataFrame({"unique_id": name, "ds": stamps, "y": item.filled.to_numpy()})
    observed = set(stamps[item.values.notna().to_numpy()])
    holdout = n_windows * item.h
    scales = {name: mase_scale(df["y"].to_numpy()[:-holdout], season=season_steps)}
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
                    season=season_steps,
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
    if bounds is not None:
        forecasts = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")]
        cv = cv.assign(**{c: cv[c].clip(*bounds) for c in forecasts})
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
    chosen, trusted, why = choose_model(
        _as_the_engine_scores(
            df,
            refitted=dict(zip([m for m in names if m not in failures], frames, strict=True)),
            observed=observed,
            h=item.h,
            n_windows=n_windows,
            step=item.step,
            season=season_steps,
            levels=engine.levels,
            options=options,
            input_size=int(history / item.step),
            scales=scales,
            name=name,
        ),
        tolerance=engine.tolerance,
    )
    if reason is not None:
        chosen, trusted = BASELINE, False
    elif caveat is not None:
        trusted, reason = False, caveat
    else:
        reason = why
    return TraceEvaluation(
        models=scores,
        chosen=chosen,
        trusted=trusted,
        reason=reason,
        step=item.step,
        season=season_steps,
        failures=failures,
        models_excluding=excluding,
        scored_points=len(cv),
        windows=n_windows,
    )


def _as_the_engine_scores(
    df: pd.DataFrame,
    *,
    refitted: dict[str, pd.DataFrame],
    observed: set[Any],
    h: int,
    n_windows: int,
    step: timedelta,
    season: int,
    levels: Sequence[int],
    options: ModelOptions | None,
    input_size: int,
    scales: dict[str, float],
    name: str,
) -> dict[str, dict[str, float]]:
    """The scores the engine chooses from: its kept-fit models scored as it runs them.

    The evaluation refits every model at every origin (the textbook rolling-origin scores it
    reports); the engine's selection fits the models it keeps once, at the first origin, and
    updates them at the later ones (``update_kept_fits``). For ``chosen`` to be the engine's
    choice, those models are scored again its way; the others' scores are the same either way.
    """
    frames: list[pd.DataFrame] = []
    for model, frame in refitted.items():
        if model in REUSABLE - PARAMETER_FREE:
            try:
                frame = cross_validate_models(
                    df,
                    models=[model],
                    h=h,
                    n_windows=n_windows,
                    freq=freq_of(step),
                    season=season,
                    levels=levels,
                    options=options,
                    input_size=input_size,
                    update_kept_fits=True,
                )
            except Exception as exc:  # as in the engine: a candidate that cannot fit is out
                logger.warning("%s: model %s failed as the engine runs it: %s", name, model, exc)
                continue
        frames.append(frame)
    cv = frames[0]
    for frame in frames[1:]:
        cv = cv.merge(frame.drop(columns=["y"]), on=["unique_id", "ds", "cutoff"], how="inner")
    cv = cv[cv["ds"].isin(observed)]
    return score_cross_validation(cv, models=list(refitted), scales=scales).get(name, {})


def _gauge() -> Any:
    from infra.config import MetricSpec

    return MetricSpec()
