"""Forecasting models, one module per family, behind two calls: forecast and cross-validate.

Every family takes and returns the same long frames (``unique_id, ds, y`` in;
``<model>``, ``<model>-lo-L``, ``<model>-hi-L`` out), so selection and the engine never care
which library a model comes from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pandas as pd

from forecasting.errors import ModelUnavailableError
from forecasting.models import ml, neural, statistical
from forecasting.models._options import ModelOptions, freq_of
from forecasting.models.records import ModelRecord, index_records

__all__ = [
    "BASELINE",
    "EXOGENOUS_MODELS",
    "MODELS",
    "MODEL_COST",
    "MODEL_NAMES",
    "NEEDS_SEASON",
    "ModelOptions",
    "ModelRecord",
    "check_models",
    "cross_validate_models",
    "forecast_models",
    "freq_of",
]

logger = logging.getLogger(__name__)

BASELINE = "seasonal_naive"
"""The model every candidate must beat to be trusted."""

_FAMILIES: tuple[ModuleType, ...] = (statistical, ml, neural)

MODELS: dict[str, ModelRecord] = index_records(r for family in _FAMILIES for r in family.RECORDS)
"""Every model's record (forecasting.models.records), by the name a stack's ``forecast.models`` uses."""

EXOGENOUS_MODELS: frozenset[str] = frozenset(n for n, r in MODELS.items() if r.exogenous)
"""Models that take exogenous regressors (event indicators) besides the target."""

NEEDS_SEASON: frozenset[str] = frozenset(n for n, r in MODELS.items() if r.needs_season)
"""Models that decompose a seasonal cycle and cannot run on a season of one step."""

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
"""Every model name a stack's ``forecast.models`` may list."""

MODEL_COST: dict[str, int] = {n: r.cost for n, r in MODELS.items()}
"""Relative cost rank per model; selection prefers the cheaper of two models that score alike."""


def check_models(names: Sequence[str]) -> None:
    """Raise :class:`ModelUnavailableError` naming the first unknown model in ``names``."""
    for name in names:
        if name not in MODEL_NAMES:
            raise ModelUnavailableError(
                name, f"unknown model; choose from {', '.join(MODEL_NAMES)}"
            )


def _by_family(names: Sequence[str]) -> list[tuple[ModuleType, list[str]]]:
    check_models(names)
    groups: list[tuple[ModuleType, list[str]]] = []
    for family in _FAMILIES:
        chosen = [n for n in names if n in family.NAMES]
        if chosen:
            groups.append((family, chosen))
    return groups


def _merge(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    out = frames[0]
    for frame in frames[1:]:
        extra = [c for c in frame.columns if c not in out.columns or c in keys]
        out = out.merge(frame[extra], on=keys, how="inner")
    return out


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index() if "unique_id" not in frame.columns else frame
    frame["unique_id"] = frame["unique_id"].astype(str)
    return frame


def forecast_models(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions | None = None,
    future: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast ``h`` steps of every series in ``df`` with each of ``models``.

    :param df: long frame ``unique_id, ds, y``, gap-free and regular at ``freq``.
    :param models: names from :data:`MODEL_NAMES`.
    :param h: steps ahead.
    :param freq: pandas frequency of the grid (see :func:`freq_of`).
    :param season: season length in steps, ``1`` for none.
    :param levels: interval levels to produce.
    :param options: budgets; default :class:`ModelOptions()`.
    :param future: default ``None``; when ``df`` has exogenous columns, their values over the
        horizon (``unique_id, ds`` and the same columns). Only :data:`EXOGENOUS_MODELS` take them.
    """
    opts = options or ModelOptions()
    exogenous = [c for c in df.columns if c not in ("unique_id", "ds", "y")]
    if exogenous and not set(models) <= EXOGENOUS_MODELS:
        raise ValueError(
            f"exogenous columns {exogenous} given to models that cannot take them: "
            f"{', '.join(sorted(set(models) - EXOGENOUS_MODELS))}"
        )
    extra = {} if future is None else {"future": future}
    frames = [
        _normalise(
            family.forecast(
                df,
                models=chosen,
                h=h,
                freq=freq,
                season=season,
                levels=levels,
                options=opts,
                **extra,
            )
        )
        for family, chosen in _by_family(models)
    ]
    return _merge(frames, ["unique_id", "ds"])


def cross_validate_models(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    n_windows: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions | None = None,
    input_size: int | None = None,
    timings: dict[str, float] | None = None,
    update_kept_fits: bool = False,
) -> pd.DataFrame:
    """Rolling-origin cross-validation of ``models`` on every series of ``df``.

    Parameters as :func:`forecast_models`, plus ``n_windows`` origins ``h`` steps apart and an
    optional cap ``input_size`` on the training window.

    :param timings: default ``None``; when a dict, receives each model's fit+forecast seconds
        (models of one family run in one call, so each is timed in its own call).
    :param update_kept_fits: default ``False`` (every model refitted at every origin). ``True``
        cross-validates the models the engine keeps fitted between refits
        (``statistical.REUSABLE``) as the engine runs them: fitted at the first origin and
        updated with the new history at each later one
        (:func:`forecasting.models.statistical.cross_validate_updating`); the others are still
        refitted at every origin, as the engine refits them every call.
    :returns: ``unique_id, ds, cutoff, y`` and the models' columns.
    """
    import time

    # Every family's cross-validation takes the same arguments besides the models.
    common: dict[str, Any] = {
        "h": h,
        "n_windows": n_windows,
        "freq": freq,
        "season": season,
        "levels": levels,
        "options": options or ModelOptions(),
        "input_size": input_size,
    }
    frames: list[pd.DataFrame] = []
    for family, chosen in _by_family(models):
        # Timed one model at a time when asked, so the CLI can report each model's own cost.
        batches = [[m] for m in chosen] if timings is not None else [chosen]
        for batch in batches:
            started = time.perf_counter()
            if update_kept_fits and family is statistical:
                # Models without fitted parameters forecast the same refitted or updated, and
                # a refit runs batched over all series: they stay on the refitting path.
                updated = statistical.REUSABLE - statistical.PARAMETER_FREE
                kept = [m for m in batch if m in updated]
                refit = [m for m in batch if m not in updated]
                parts = (
                    [statistical.cross_validate_updating(df, models=kept, **common)] if kept else []
                )
                if refit:
                    parts.append(_normalise(statistical.cross_validate(df, models=refit, **common)))
                if timings is not None:
                    timings[batch[0]] = time.perf_counter() - started
                frames.append(_merge(parts, ["unique_id", "ds", "cutoff"]))
                continue
            frame = family.cross_validate(df, models=batch, **common)
            if timings is not None:
                timings[batch[0]] = time.perf_counter() - started
            frames.append(_normalise(frame))
    return _merge(frames, ["unique_id", "ds", "cutoff"])
