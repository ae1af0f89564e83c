"""The neural family: an LSTM through neuralforecast, on the CPU build of torch.

The LSTM is trained with a multi-quantile loss, so its intervals are its own learned quantiles.
Training budgets are small by default (:class:`ModelOptions`): on a 2-core driver the LSTM is a
candidate for series where it earns its cost, not the default.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from forecasting.errors import ModelUnavailableError
from forecasting.models._options import ModelOptions
from forecasting.models.records import ModelRecord

__all__ = ["NAMES", "RECORDS", "cross_validate", "forecast"]

logger = logging.getLogger(__name__)

RECORDS: tuple[ModelRecord, ...] = (ModelRecord("lstm", "neural", 6),)
"""This family's models (forecasting.models.records); one neuralforecast forecaster runs them."""

NAMES: tuple[str, ...] = tuple(r.name for r in RECORDS)
"""Model names this family provides."""


def _quiet() -> None:
    # Lightning announces every trainer on the root logger; a driver cycle must not.
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _forecaster(
    *, h: int, freq: str, levels: Sequence[int], options: ModelOptions, shortest: int
) -> Any:
    try:
        from neuralforecast import NeuralForecast
        from neuralforecast.losses.pytorch import MQLoss
        from neuralforecast.models import LSTM
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ModelUnavailableError(
            "lstm", f"needs the 'ml' extra (pip install 'mirrorcast[ml]'): {exc}"
        ) from exc
    _quiet()
    input_size = max(h, min(4 * h, shortest // 4))
    model = LSTM(
        h=h,
        input_size=input_size,
        encoder_hidden_size=options.lstm_hidden_size,
        decoder_hidden_size=options.lstm_hidden_size,
        loss=MQLoss(level=list(levels)),
        max_steps=options.lstm_max_steps,
        scaler_type="robust",
        random_seed=options.seed,
        alias="lstm",
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    return NeuralForecast(models=[model], freq=freq)


def _named(out: pd.DataFrame) -> pd.DataFrame:
    out = out.reset_index() if "unique_id" not in out.columns else out
    return out.rename(columns={"lstm-median": "lstm"})


def forecast(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
) -> pd.DataFrame:
    """Train the LSTM on every series of ``df`` and forecast ``h`` steps.

    Parameters as :func:`forecasting.models.statistical.forecast`.
    """
    shortest = int(df.groupby("unique_id").size().min())
    nf = _forecaster(h=h, freq=freq, levels=levels, options=options, shortest=shortest)
    nf.fit(df=df)
    return _named(nf.predict())


def cross_validate(
    df: pd.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    n_windows: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions,
    input_size: int | None = None,
) -> pd.DataFrame:
    """Rolling-origin cross-validation of the LSTM (trained once, on data before the first origin).

    Parameters as :func:`forecasting.models.statistical.cross_validate`.
    """
    shortest = int(df.groupby("unique_id").size().min()) - n_windows * h
    nf = _forecaster(h=h, freq=freq, levels=levels, options=options, shortest=shortest)
    return _named(nf.cross_validation(df=df, n_windows=n_windows, step_size=h))
