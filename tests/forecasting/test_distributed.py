"""The same forecasts on a (local, in-process) Dask cluster through statsforecast's fugue backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.distributed import forecast_distributed
from forecasting.models import forecast_models

dd = pytest.importorskip(
    "dask.dataframe", reason="the 'ml' extra (dask[distributed]) is not installed"
)
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")


def test_dask_forecasts_equal_the_local_batched_forecasts(seasonal_cpu: pd.Series) -> None:
    y = seasonal_cpu.iloc[:700]
    frames = [
        pd.DataFrame({"unique_id": f"pool{i}.cpu", "ds": y.index, "y": y.to_numpy() * (1 + i / 10)})
        for i in range(4)
    ]
    df = pd.concat(frames, ignore_index=True)
    models, levels = ["seasonal_naive", "auto_ets"], [80]
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        remote = forecast_distributed(
            dd.from_pandas(df, npartitions=2),
            models=models,
            h=6,
            freq="300s",
            season=288,
            levels=levels,
        ).compute()
    local = forecast_models(df, models=models, h=6, freq="300s", season=288, levels=levels)
    remote = (
        remote.astype({"unique_id": str}).sort_values(["unique_id", "ds"]).reset_index(drop=True)
    )
    local = local.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    assert list(remote["unique_id"]) == list(local["unique_id"])
    for column in ("seasonal_naive", "auto_ets", "auto_ets-hi-80"):
        assert np.allclose(remote[column].astype(float), local[column], rtol=1e-4)


def test_models_that_train_globally_are_refused_with_the_alternative() -> None:
    with pytest.raises(ValueError, match="statistical models only; lightgbm"):
        forecast_distributed(None, models=["lightgbm"], h=6, freq="300s", season=288, levels=[80])
