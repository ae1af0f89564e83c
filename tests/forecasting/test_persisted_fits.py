"""Kept fits survive the process: a one-shot cycle (CronJob, systemd timer) neither reselects nor
refits while the fit holds, and a fit is never carried over to other data or an unsafe file."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine
from infra.config import ForecastSettings


@pytest.fixture(scope="module")
def nasa_5min(data_dir: Path) -> pd.Series:
    """4 days of real web requests per 5 minutes with a daily cycle (NASA-HTTP)."""
    frame = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"]))
    return pd.Series(frame["requests"].to_numpy(dtype=float), index=index)


def _engine(cache: Path) -> ForecastEngine:
    # A new engine on the same cache directory is what a second one-shot process builds.
    settings = ForecastSettings.model_validate(
        {"models": ["seasonal_naive", "auto_ets"], "refit_every": "6h"}
    )
    return ForecastEngine(settings, cache_dir=cache)


def _at(series: pd.Series, position: int) -> datetime:
    return series.index[position].to_pydatetime().replace(tzinfo=UTC)


class TestAnotherProcessReusesTheFit:
    def test_the_same_data_is_forecast_again_without_selecting_or_fitting(
        self, tmp_path: Path, nasa_5min: pd.Series
    ) -> None:
        now = _at(nasa_5min, 1100)
        first = _engine(tmp_path).forecast(nasa_5min, pool="web", metric="rps", now=now)
        again = _engine(tmp_path)
        second = again.forecast(nasa_5min, pool="web", metric="rps", now=now)

        assert first.model == "auto_ets" and first.trusted
        assert (again.fits, again.restored, again.updates) == (0, 1, 1)
        assert second.model == first.model and second.times == first.times
        assert np.allclose(second.mean, first.mean)
        assert np.allclose(second.quantile(90), first.quantile(90))

    def test_a_later_cycle_updates_the_restored_fit_with_the_new_observations(
        self, tmp_path: Path, nasa_5min: pd.Series
    ) -> None:
        _engine(tmp_path).forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1100))
        later = _engine(tmp_path)
        forecast = later.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1106))

        assert (later.fits, later.restored) == (0, 1)
        assert forecast.issued_at == _at(nasa_5min, 1106)

    def test_a_fit_older_than_refit_every_is_refitted(
        self, tmp_path: Path, nasa_5min: pd.Series
    ) -> None:
        _engine(tmp_path).forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1000))
        later = _engine(tmp_path)
        # 80 steps of 5 minutes: past the 6h refit_every.
        later.forecast(nasa_5min, pool="web", metric="rps", now=_at(nasa_5min, 1080))

        assert later.fits == 1


class TestAFitIsNotCarriedOver:
    def test_other_data_under_the_same_name_is_fitted_afresh(
        self, tmp_path: Path, nasa_5min: pd.Series
    ) -> None:
        now = _at(nasa_5min, 1100)
        _engine(tmp_path).forecast(nasa_5min, pool="web", metric="rps", now=now)
        replaced = nasa_5min * 1.5  # a replaced metrics file, or another source
        later = _engine(tmp_path)
        later.forecast(replaced, pool="web", metric="rps", now=now)

        assert later.restored == 0 and later.fits == 1

    def test_a_fit_file_others_may_write_is_not_read(
        self, tmp_path: Path, nasa_5min: pd.Series, caplog: pytest.LogCaptureFixture
    ) -> None:
        now = _at(nasa_5min, 1100)
        first = _engine(tmp_path)
        first.forecast(nasa_5min, pool="web", metric="rps", now=now)
        path = first.fit_store.path("web", "rps")
        assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
        os.chmod(path, 0o666)  # unpickling runs code: a file anyone may write is refused
        later = _engine(tmp_path)
        later.forecast(nasa_5min, pool="web", metric="rps", now=now)

        assert later.restored == 0 and later.fits == 1
        assert "writable by it alone" in caplog.text

    def test_a_corrupt_fit_file_means_a_refit_not_a_failed_cycle(
        self, tmp_path: Path, nasa_5min: pd.Series
    ) -> None:
        now = _at(nasa_5min, 1100)
        first = _engine(tmp_path)
        first.forecast(nasa_5min, pool="web", metric="rps", now=now)
        path = first.fit_store.path("web", "rps")
        assert path is not None
        path.write_bytes(b"not a pickle")
        later = _engine(tmp_path)
        forecast = later.forecast(nasa_5min, pool="web", metric="rps", now=now)

        assert later.fits == 1 and forecast.trusted
