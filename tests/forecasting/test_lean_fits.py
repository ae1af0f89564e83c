"""Kept fits hold their parameters, not a copy of the history they were fitted on (issue 16).

A statsforecast fit carries in-sample arrays as long as its history (fitted values, residuals,
ETS's states, ARIMA's copy of the data, MSTL's whole decomposition, the seasonal profile's
history): two weeks at 5 minutes is 32 KB each, and the engine keeps one fit per series
between cycles. ``forward`` never reads them, so :func:`forecasting.models.statistical.lean`
drops them. Checked here on a real excerpt (NAB's auto-scaling group CPU, tests/data/nab):
every reusable model forecasts the same numbers, bit for bit, from the lean fit as from the
full one, and what a kept fit holds is measured on the objects themselves.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest
from object_graph import reachable, walked_bytes

import forecasting.engine as engine_module
import forecasting.models.statistical as statistical
from forecasting import ModelOptions
from forecasting.as_driven import driver_engine
from forecasting.models.statistical import REUSABLE, FittedSeries, forward_columns, lean
from infra.config import ForecastSettings

LEVELS = [80, 90, 95, 99]
SEASON = 288  # a day of 5-minute steps


def longest_array(root: Any) -> int:
    """The length of the longest numpy array (or pandas object) ``root`` reaches."""
    sized = (np.ndarray, pd.Series, pd.DataFrame)
    return max((len(obj) for obj in reachable([root]) if isinstance(obj, sized)), default=0)


def _frame(values: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "s", "ds": index.tz_localize(None), "y": values})


def _full_and_lean(
    monkeypatch: pytest.MonkeyPatch, model: str, history: pd.Series
) -> tuple[FittedSeries, FittedSeries]:
    # The fit as statsforecast leaves it (lean switched off), and the same fit made lean.
    with monkeypatch.context() as patch:
        patch.setattr(statistical, "lean", lambda fitted: fitted)
        _, fits = statistical.fit(
            _frame(history.to_numpy(), pd.DatetimeIndex(history.index)),
            model=model,
            h=12,
            freq="300s",
            season=SEASON,
            levels=LEVELS,
            options=ModelOptions(seed=0),
        )
    full = fits["s"]
    return full, lean(copy.deepcopy(full))


# Each is fitted on 3 of the excerpt's 5 days (MSTL and Theta fits on a daily season).
SLOW = {"auto_arima", "mstl", "prophet_like", "theta", "optimized_theta", "dynamic_optimized_theta"}


class TestALeanFitForecastsAsTheFullOne:
    @pytest.mark.parametrize("model", sorted(REUSABLE))
    def test_every_reusable_model_forwards_the_same_numbers_bit_for_bit(
        self, monkeypatch: pytest.MonkeyPatch, seasonal_cpu: pd.Series, model: str
    ) -> None:
        fitted_on = 3 * SEASON
        full, kept = _full_and_lean(monkeypatch, model, seasonal_cpu.iloc[:fitted_on])
        # Later cycles: the window slides on by one step, then by hours, as the driver's does.
        for ahead in (1, 2, 12, 100, 400):
            window = seasonal_cpu.iloc[ahead : fitted_on + ahead]
            end = pd.Timestamp(window.index[-1])
            expected = forward_columns(full, window.to_numpy(), end=end, h=12, levels=LEVELS)
            got = forward_columns(kept, window.to_numpy(), end=end, h=12, levels=LEVELS)
            assert expected is not None and got is not None
            assert expected.keys() == got.keys()
            for column, values in expected.items():
                np.testing.assert_array_equal(got[column], values, err_msg=f"{model} {column}")

    @pytest.mark.parametrize("model", sorted(REUSABLE))
    def test_a_lean_fit_holds_no_array_as_long_as_its_history(
        self, monkeypatch: pytest.MonkeyPatch, seasonal_cpu: pd.Series, model: str
    ) -> None:
        history = seasonal_cpu.iloc[: 3 * SEASON]
        full, kept = _full_and_lean(monkeypatch, model, history)
        # The full fit holds in-sample arrays (the history's length); the lean one at most a
        # season's cycle (MSTL's kept seasonal shape, a naive model's last day).
        assert longest_array(full) >= len(history)
        assert longest_array(kept) <= SEASON
        assert walked_bytes([kept]) < history.to_numpy().nbytes


class TestTheEngineKeepsLeanFits:
    def test_a_warm_series_kept_fit_is_smaller_than_its_history(
        self, seasonal_cpu: pd.Series, tmp_path: Any
    ) -> None:
        """The driver's engine over a few cycles: the kept fit, walked object by object, holds
        less than half the history it forecasts from (old code: the fit's in-sample values and
        residuals, twice the history; now the parameters and, for a seasonal naive model, the
        last day it repeats)."""
        # The kept fit of a model (the default same-hour profile would forecast this
        # untrusted series without one: tests/forecasting/test_untrusted_profile.py).
        settings = ForecastSettings(
            models=["seasonal_naive", "naive", "auto_ets"],
            workers=1,
            untrusted_profile={"enabled": False},
        )
        engine = driver_engine(settings, cache_dir=tmp_path / "cache", seed=0)
        key = ("web", "cpu")
        window = len(seasonal_cpu) - 4
        for end in range(window, window + 4):
            engine.forecast_many({key: seasonal_cpu.iloc[end - window : end]})
        kept = engine.engine._kept
        assert key in kept, "the series keeps a fit between cycles"
        history_bytes = seasonal_cpu.iloc[:window].to_numpy().nbytes
        assert walked_bytes([kept[key]]) < history_bytes / 2

    def test_a_fit_restored_from_disk_is_kept_lean(
        self, monkeypatch: pytest.MonkeyPatch, seasonal_cpu: pd.Series, tmp_path: Any
    ) -> None:
        """A fit pickled before fits were kept lean still carries its in-sample arrays: the
        engine makes it lean as it reads it, and forecasts with it as before."""
        # The kept fit of a model (the default same-hour profile would forecast this
        # untrusted series without one: tests/forecasting/test_untrusted_profile.py).
        settings = ForecastSettings(
            models=["seasonal_naive", "naive", "auto_ets"],
            workers=1,
            untrusted_profile={"enabled": False},
        )
        key = ("web", "cpu")
        window = 4 * SEASON
        with monkeypatch.context() as patch:
            patch.setattr(statistical, "lean", lambda fitted: fitted)
            # The engines of before also wrote parameter-free fits (this one does not: a refit
            # costs less than reading one back), and such files are still read.
            patch.setattr(engine_module, "PARAMETER_FREE", frozenset())
            first = driver_engine(settings, cache_dir=tmp_path / "cache", seed=0)
            made = first.forecast_many({key: seasonal_cpu.iloc[:window]})[key]
        assert longest_array(first.engine._kept[key]) >= window
        again = driver_engine(settings, cache_dir=tmp_path / "cache", seed=0)
        restored = again.forecast_many({key: seasonal_cpu.iloc[:window]})[key]
        assert again.engine.restored == 1
        assert longest_array(again.engine._kept[key]) <= SEASON
        np.testing.assert_array_equal(restored.mean, made.mean)
