"""The fleet engine on a real Dask cluster: a ``distributed.LocalCluster`` with worker PROCESSES.

Selections and refits go to the cluster as tasks (chunks of series) and must give what the
one-process path gives, series by series; a scheduler that cannot be reached means local work
and a degraded line, never a cycle without forecasts. The statsforecast/fugue route for Dask
DataFrames is checked against the local batched forecast too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import Forecast, ForecastEngine
from forecasting.distributed import (
    MIN_SERIES_PER_TASK,
    START_SELECTIONS,
    TASKS_PER_WORKER,
    LocalPool,
    chunked,
    forecast_distributed,
)
from forecasting.models import forecast_models
from infra.config import ForecastSettings

dd = pytest.importorskip(
    "dask.dataframe", reason="the 'fleet' extra (dask[distributed]) is not installed"
)
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    """Two single-threaded worker processes, as `dask worker` runs them on a real cluster."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def fleet(seasonal_cpu: pd.Series) -> dict[tuple[str, str], pd.Series]:
    """Eight pools' CPU: a real ASG's 5-minute CPU (NAB), 3 days, scaled apart per pool."""
    y = seasonal_cpu.iloc[-3 * 288 :]
    return {(f"pool{i}", "cpu"): y * (1 + i / 10) for i in range(2 * MIN_SERIES_PER_TASK)}


def _engine(backend: str, *, workers: int | None = 1) -> ForecastEngine:
    settings = ForecastSettings.model_validate(
        {
            "models": ["seasonal_naive", "auto_ets"],
            "history": "3d",
            "backend": backend,
            "workers": workers,
            # The models' fits on the cluster: without the same-hour profile, which would
            # forecast this untrusted choice in the driver's process instead.
            "untrusted_profile": {"enabled": False},
        }
    )
    return ForecastEngine(settings)


def _now(fleet: dict[tuple[str, str], pd.Series]) -> datetime:
    return next(iter(fleet.values())).index[-1].to_pydatetime().replace(tzinfo=UTC)


class TestTheClusterGivesTheLocalResults:
    def test_selections_and_forecasts_on_worker_processes_equal_one_process(
        self, cluster: distributed.LocalCluster, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        now = _now(fleet)
        local = _engine("local").forecast_many(fleet, now=now)
        remote_engine = _engine(cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            remote = remote_engine.forecast_many(fleet, now=now)
            # The tasks ran on the workers, both of them.
            ran = client.run(lambda dask_worker: dask_worker.state.executed_count)
        remote_engine.close()

        assert remote_engine.notes == []  # connected: no degraded line
        assert all(count > 0 for count in ran.values()), ran
        for key, mine in local.items():
            theirs = remote[key]
            assert isinstance(mine, Forecast) and isinstance(theirs, Forecast)
            assert (theirs.model, theirs.trusted) == (mine.model, mine.trusted)
            assert theirs.accuracy == pytest.approx(mine.accuracy, rel=1e-9)
            assert np.allclose(theirs.mean, mine.mean, rtol=1e-9)
            assert np.allclose(theirs.quantile(90), mine.quantile(90), rtol=1e-9)

    def test_a_later_cycle_updates_the_fits_the_cluster_made(
        self, cluster: distributed.LocalCluster, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        engine = _engine(cluster.scheduler_address)
        now = _now(fleet)
        shorter = {k: v.iloc[:-1] for k, v in fleet.items()}
        engine.forecast_many(shorter, now=now - timedelta(minutes=5))
        fits = engine.fits
        engine.forecast_many(fleet, now=now)
        engine.close()

        assert engine.fits == fits and engine.updates >= len(fleet)


class TestEveryLocalCore:
    def test_local_worker_processes_give_the_one_process_results(
        self, seasonal_cpu: pd.Series
    ) -> None:
        # Enough series to start local workers (fewer select in the driver: test_local_workers).
        y = seasonal_cpu.iloc[-3 * 288 :]
        fleet = {(f"pool{i}", "cpu"): y * (1 + i / 20) for i in range(START_SELECTIONS)}
        now = _now(fleet)
        one = _engine("local", workers=1).forecast_many(fleet, now=now)
        engine = _engine("local", workers=2)
        two = engine.forecast_many(fleet, now=now)
        pool = engine._work_pool()
        used_processes = isinstance(pool, LocalPool) and pool._executor is not None
        engine.close()

        assert used_processes  # the chunks went to worker processes, not this one
        for key, mine in one.items():
            theirs = two[key]
            assert isinstance(mine, Forecast) and isinstance(theirs, Forecast)
            assert (theirs.model, theirs.accuracy) == (mine.model, mine.accuracy)
            assert np.allclose(theirs.mean, mine.mean, rtol=1e-9)


class TestAnUnreachableClusterDegradesToLocal:
    def test_forecasts_are_made_here_and_the_cycle_says_so(
        self, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        engine = _engine("tcp://127.0.0.1:9", workers=1)  # port 9 (discard): nothing listens
        out = engine.forecast_many(fleet, now=_now(fleet))

        assert all(isinstance(f, Forecast) for f in out.values())
        assert len(engine.notes) == 1
        assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in engine.notes[0]
        assert "on this machine instead" in engine.notes[0]


class TestChunks:
    def test_chunks_cover_every_series_once_in_order_and_small_batches_stay_whole(self) -> None:
        items = list(range(21))
        parts = chunked(items, parallelism=4)
        many = chunked(list(range(400)), parallelism=2)

        assert [x for part in parts for x in part] == items
        assert len(parts) == 5 and min(len(p) for p in parts) >= MIN_SERIES_PER_TASK
        assert len(many) == 2 * TASKS_PER_WORKER  # a few per worker, for balance
        assert chunked(items[:7], parallelism=4) == [items[:7]]
        assert chunked(items, parallelism=1) == [items]


def test_dask_dataframe_forecasts_equal_the_local_batched_forecasts(
    cluster: distributed.LocalCluster, seasonal_cpu: pd.Series
) -> None:
    y = seasonal_cpu.iloc[:700]
    frames = [
        pd.DataFrame({"unique_id": f"pool{i}.cpu", "ds": y.index, "y": y.to_numpy() * (1 + i / 10)})
        for i in range(4)
    ]
    df = pd.concat(frames, ignore_index=True)
    models, levels = ["seasonal_naive", "auto_ets"], [80]
    with distributed.Client(cluster):
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


UNGUARDED = """
from datetime import UTC
import pandas as pd
from forecasting import Forecast, ForecastEngine
from infra.config import ForecastSettings

frame = pd.read_csv({path!r}, parse_dates=["timestamp"])
y = pd.Series(frame["value"].to_numpy(float), index=pd.DatetimeIndex(frame["timestamp"]))
y = y.iloc[-3 * 288 :]
fleet = {{(f"pool{{i}}", "cpu"): y * (1 + i / 20) for i in range({count})}}
settings = ForecastSettings.model_validate(
    {{"models": ["seasonal_naive", "auto_ets"], "history": "3d", "workers": 2}}
)
engine = ForecastEngine(settings)
out = engine.forecast_many(fleet, now=y.index[-1].to_pydatetime().replace(tzinfo=UTC))
assert all(isinstance(f, Forecast) for f in out.values())
print("NOTES", engine.notes)
"""


def test_a_program_without_a_main_guard_still_gets_its_forecasts_and_is_told_why(
    data_dir: Path, tmp_path: Path
) -> None:
    """Spawned workers re-run an unguarded script file and die; the engine finishes here."""
    path = data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"
    script = tmp_path / "unguarded.py"
    # START_SELECTIONS series: enough to start worker processes.
    script.write_text(UNGUARDED.format(path=str(path), count=START_SELECTIONS))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    notes = [line for line in done.stdout.splitlines() if line.startswith("NOTES")]

    assert done.returncode == 0, done.stderr[-3000:]
    assert len(notes) == 1 and "a local worker process failed" in notes[0]
