"""Options shared by every model family (training budgets, conformal windows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

__all__ = ["ModelOptions", "freq_of"]


@dataclass(frozen=True)
class ModelOptions:
    """Budgets of the models that train (LightGBM, LSTM) and of conformal intervals.

    :param conformal_windows: default ``2``; past windows of ``h`` steps whose errors give the
        conformal intervals of models without native intervals.
    :param lightgbm_estimators: default ``100``; boosting rounds of the LightGBM model.
    :param lstm_max_steps: default ``200``; training steps of the LSTM.
    :param lstm_hidden_size: default ``64``; width of the LSTM encoder and decoder.
    :param seed: default ``0``; random seed of the models that train.
    :param loess_jumps: default ``True``; MSTL's STL evaluates its trend and low-pass smoothers
        at R ``stl``'s jumps (every ``ceiling(window / 10)``-th point, interpolated between),
        about 10x faster on a daily season of 5-minute data; ``False`` smooths at every point
        as statsmodels does by default (see ``forecasting.models.statistical.stl_jumps``).
    """

    conformal_windows: int = 2
    lightgbm_estimators: int = 100
    lstm_max_steps: int = 200
    lstm_hidden_size: int = 64
    seed: int = 0
    loess_jumps: bool = True


def freq_of(step: timedelta) -> str:
    """The pandas frequency string of a grid step (``timedelta(minutes=5)`` -> ``"300s"``)."""
    return f"{int(pd.Timedelta(step).total_seconds())}s"
