"""The same forecasts on a cluster: Dask through statsforecast's own distributed backend (fugue).

``StatsForecast.forecast`` accepts a Dask DataFrame and runs each partition's series on the
workers through fugue; the models, their names and the output columns are exactly those of the
engine's batched path. Ray Datasets and Spark DataFrames go through the very same call (fugue
picks the backend from the frame's type), so a fleet too large for one driver scales out
without a second code path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from forecasting.models import ModelOptions
from forecasting.models.statistical import NAMES as STATISTICAL_NAMES
from forecasting.models.statistical import _build

__all__ = ["forecast_distributed"]

logger = logging.getLogger(__name__)


def forecast_distributed(
    frame: Any,
    *,
    models: Sequence[str],
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions | None = None,
) -> Any:
    """Forecast every series of a distributed frame (Dask, Ray or Spark) on its cluster.

    :param frame: a distributed frame with columns ``unique_id`` (str), ``ds`` (timestamp),
        ``y`` (float), gap-free and regular at ``freq`` (cleaned as the engine cleans).
    :param models: statistical model names (see :data:`forecasting.models.MODEL_NAMES`).
    :param h: steps ahead.
    :param freq: pandas frequency of the grid, e.g. ``"300s"``.
    :param season: season length in steps.
    :param levels: interval levels to produce.
    :param options: default ``None``; conformal windows.
    :returns: a frame of the same kind with ``unique_id, ds`` and each model's columns.
    :raises ValueError: a model that is not statistical (LightGBM and the LSTM train globally;
        run them through mlforecast's and neuralforecast's own distributed classes instead).
    """
    from statsforecast import StatsForecast

    other = [m for m in models if m not in STATISTICAL_NAMES]
    if other:
        raise ValueError(
            f"distributed forecasting supports the statistical models only; {', '.join(other)} "
            "train one global model (use mlforecast.distributed / neuralforecast on the cluster)"
        )
    opts = options or ModelOptions()
    built = [_build(n, season=season, h=h, weekly=False, options=opts) for n in models]
    engine = StatsForecast(models=built, freq=freq, n_jobs=1)
    return engine.forecast(df=frame, h=h, level=list(levels))
