"""The local backend starts worker processes only for a batch that pays for starting them.

A spawned worker is a fresh interpreter that imports the forecasting stack before its first
task: seconds on this 2-core machine, paid again by every one-shot cycle (the CronJob and
systemd-timer modes), since its workers die with it. For a handful of series that costs more
than the second core saves (8 series, 2 workers vs 1, in fresh processes: 11.6 s vs 10.3 s to
select, 9.7 s vs 4.1 s to refit; forecasting.distributed.START_SELECTIONS), so such a batch runs
in the driver; a big one still goes to every core, and once the workers run (a long-running
driver) every batch big enough to split uses them.
"""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import Forecast, ForecastEngine
from forecasting.distributed import START_REFITS, START_SELECTIONS
from infra.config import ForecastSettings


def _fleet(seasonal_cpu: pd.Series, count: int) -> dict[tuple[str, str], pd.Series]:
    """``count`` pools' CPU: a real ASG's 5-minute CPU (NAB), 3 days, scaled apart per pool."""
    y = seasonal_cpu.iloc[-3 * 288 :]
    return {(f"pool{i}", "cpu"): y * (1 + i / 20) for i in range(count)}


def _engine(*, workers: int, cache: Path | None = None) -> ForecastEngine:
    # These series' models are untrusted on 3 days (no daily cycle measured), so the default
    # same-hour profile would forecast them without a fit; the fits and refits counted here are
    # the models' own (forecast.untrusted_profile: tests/forecasting/test_untrusted_profile.py).
    settings = ForecastSettings.model_validate(
        {
            "models": ["seasonal_naive", "auto_ets"],
            "history": "3d",
            "workers": workers,
            "untrusted_profile": {"enabled": False},
        }
    )
    return ForecastEngine(settings, cache_dir=cache)


def _now(fleet: dict[tuple[str, str], pd.Series]) -> datetime:
    return next(iter(fleet.values())).index[-1].to_pydatetime().replace(tzinfo=UTC)


def _spawned_by(run: object) -> set[multiprocessing.process.BaseProcess]:
    """Child processes that appeared while ``run()`` ran (other tests' children excluded)."""
    before = set(multiprocessing.active_children())
    run()  # type: ignore[operator]
    return set(multiprocessing.active_children()) - before


class TestAFewSeriesStayInTheDriver:
    def test_a_handful_of_selections_spawns_no_worker_and_gives_the_one_process_results(
        self, seasonal_cpu: pd.Series
    ) -> None:
        fleet = _fleet(seasonal_cpu, 8)  # enough for two chunks: the old engine spawned
        now = _now(fleet)
        one = _engine(workers=1).forecast_many(fleet, now=now)
        engine = _engine(workers=2)
        out: dict[tuple[str, str], object] = {}

        spawned = _spawned_by(lambda: out.update(engine.forecast_many(fleet, now=now)))
        engine.close()

        assert spawned == set()
        assert engine.fits == len(fleet)  # it did select and fit every series, here
        for key, mine in one.items():
            theirs = out[key]
            assert isinstance(mine, Forecast) and isinstance(theirs, Forecast)
            assert (theirs.model, theirs.accuracy) == (mine.model, mine.accuracy)
            assert np.allclose(theirs.mean, mine.mean, rtol=1e-9)

    def test_refits_of_kept_choices_spawn_no_worker_below_their_own_threshold(
        self, seasonal_cpu: pd.Series, tmp_path: Path
    ) -> None:
        # A one-shot cycle whose model choices are kept but whose fits are not (e.g. refit_every
        # passed): START_SELECTIONS series, too many to select here, too few refits to spawn.
        fleet = _fleet(seasonal_cpu, START_SELECTIONS)
        assert START_SELECTIONS < START_REFITS
        now = _now(fleet)
        _engine(workers=1, cache=tmp_path).forecast_many(fleet, now=now)
        shutil.rmtree(tmp_path / "fits")
        engine = _engine(workers=2, cache=tmp_path)

        spawned = _spawned_by(lambda: engine.forecast_many(fleet, now=now))
        engine.close()

        assert spawned == set()
        assert engine.fits == len(fleet) and engine.restored == 0  # refitted, here


class TestABigBatchUsesEveryCore:
    def test_enough_selections_start_the_workers(self, seasonal_cpu: pd.Series) -> None:
        fleet = _fleet(seasonal_cpu, START_SELECTIONS)
        engine = _engine(workers=2)

        spawned = _spawned_by(lambda: engine.forecast_many(fleet, now=_now(fleet)))
        engine.close()

        assert len(spawned) == 2
