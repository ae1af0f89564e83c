"""What keeps a re-selection and a cycle cheap, and why it does not change the answers.

Model selection scores kept fits as the engine runs them (fitted at the first origin, updated at
the later ones); MSTL decomposes with R ``stl``'s loess jumps; the seasonality verdict is
re-judged on the selection's schedule; cleaning and gridding run on arrays.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine
from forecasting.engine import _average_onto
from forecasting.evaluation import mase
from forecasting.models import ModelOptions, cross_validate_models, forecast_models
from forecasting.models.statistical import stl_jumps
from forecasting.selection import select_models
from infra.config import ForecastSettings

H, WINDOWS, SEASON = 12, 3, 288
LEVELS = [80, 95]


@pytest.fixture(scope="module")
def frame(seasonal_cpu: pd.Series) -> pd.DataFrame:
    y = seasonal_cpu.iloc[:900]
    return pd.DataFrame({"unique_id": "asg.cpu", "ds": y.index, "y": y.to_numpy()})


def _cv(frame: pd.DataFrame, model: str, *, update: bool) -> pd.DataFrame:
    return cross_validate_models(
        frame,
        models=[model],
        h=H,
        n_windows=WINDOWS,
        freq="300s",
        season=SEASON,
        levels=LEVELS,
        update_kept_fits=update,
    )


@pytest.mark.parametrize("model", ["auto_ets", "theta", "mstl"])
def test_kept_fit_cross_validation_scores_the_same_origins_and_actuals(
    frame: pd.DataFrame, model: str
) -> None:
    refit = _cv(frame, model, update=False)
    kept = _cv(frame, model, update=True)

    keys = ["unique_id", "ds", "cutoff", "y"]
    pd.testing.assert_frame_equal(
        kept[keys].reset_index(drop=True), refit[keys].reset_index(drop=True)
    )
    assert set(refit.columns) <= set(kept.columns)
    # The first origin's fit is the same fit either way.
    first = kept["cutoff"] == kept["cutoff"].min()
    np.testing.assert_allclose(kept.loc[first, model], refit.loc[first, model], rtol=1e-6)
    # Later origins update the kept fit instead of refitting: close to a refit, not identical.
    error = mase(kept["y"], kept[model], scale=1.0)
    assert error == pytest.approx(mase(refit["y"], refit[model], scale=1.0), rel=0.25)


def test_kept_fit_cross_validation_never_sees_data_after_an_origin(frame: pd.DataFrame) -> None:
    changed = frame.copy()
    # Everything after the second origin becomes wildly different.
    cut = len(frame) - (WINDOWS - 1) * H
    changed.loc[changed.index[cut:], "y"] *= 10

    a = _cv(frame, "auto_ets", update=True)
    b = _cv(changed, "auto_ets", update=True)

    second = sorted(a["cutoff"].unique())[1]
    up_to = a["cutoff"] <= second
    np.testing.assert_allclose(a.loc[up_to, "auto_ets"], b.loc[up_to, "auto_ets"])
    assert not np.allclose(a.loc[~up_to, "auto_ets"], b.loc[~up_to, "auto_ets"])


def test_models_without_a_kept_fit_are_still_refitted_at_every_origin(
    frame: pd.DataFrame,
) -> None:
    kept = _cv(frame, "ses", update=True)
    refit = _cv(frame, "ses", update=False)

    pd.testing.assert_frame_equal(kept.reset_index(drop=True), refit.reset_index(drop=True))


def test_selection_by_kept_fits_still_weighs_every_candidate_against_seasonal_naive(
    frame: pd.DataFrame,
) -> None:
    found = select_models(
        frame,
        candidates=["seasonal_naive", "auto_ets", "mstl", "theta"],
        h=H,
        freq="300s",
        season=SEASON,
        levels=LEVELS,
        n_windows=WINDOWS,
        now=pd.Timestamp(frame["ds"].iloc[-1], tz="UTC").to_pydatetime(),
        step=timedelta(minutes=5),
        update_kept_fits=True,
    )["asg.cpu"]

    assert set(found.scores) == {"seasonal_naive", "auto_ets", "mstl", "theta"}
    assert found.failures == {}
    assert all(np.isfinite(scores["mase"]) for scores in found.scores.values())
    # A trusted choice beats seasonal-naive; an untrusted one falls back to it, saying why.
    if found.trusted:
        assert found.scores[found.model]["mase"] < found.scores["seasonal_naive"]["mase"]
    else:
        assert found.model == "seasonal_naive" and found.reason


def test_mstl_smooths_at_r_stl_jumps_for_a_daily_season_of_five_minute_data() -> None:
    # R stl: t.jump = ceiling(t.window / 10), l.jump = ceiling(l.window / 10); windows 501, 289.
    assert stl_jumps(288, options=ModelOptions()) == {"trend_jump": 51, "low_pass_jump": 29}
    assert stl_jumps(288, options=ModelOptions(loess_jumps=False)) == {}
    assert stl_jumps(1, options=ModelOptions()) == {}


def test_mstl_with_loess_jumps_forecasts_as_mstl_smoothing_every_point(
    frame: pd.DataFrame,
) -> None:
    def forecast(jumps: bool) -> np.ndarray:
        out = forecast_models(
            frame,
            models=["mstl"],
            h=H,
            freq="300s",
            season=SEASON,
            levels=LEVELS,
            options=ModelOptions(loess_jumps=jumps),
        )
        return out["mstl"].to_numpy()

    fast, exact = forecast(True), forecast(False)
    spread = float(frame["y"].std())
    assert np.max(np.abs(fast - exact)) < 0.05 * spread


@pytest.mark.parametrize("ratio", [1, 2, 5, 7])
def test_averaging_onto_a_coarser_grid_is_what_pandas_resampling_gives(ratio: int) -> None:
    rng = np.random.default_rng(ratio)
    index = pd.date_range("2026-11-01 00:03", periods=103, freq="1min", tz="UTC")
    values = rng.normal(50, 10, len(index))
    values[rng.random(len(index)) < 0.2] = np.nan
    values[40 : 40 + 2 * ratio] = np.nan  # whole empty bins stay gaps
    series = pd.Series(values, index=index)

    means, stamps = _average_onto(
        values, index.as_unit("ns").asi8, ratio=ratio, step_ns=60_000_000_000
    )

    expected = series.resample(pd.Timedelta(minutes=ratio), origin="start").mean()
    np.testing.assert_allclose(means, expected.to_numpy(), rtol=1e-12, equal_nan=True)
    assert (stamps == expected.index.as_unit("ns").asi8).all()


def test_the_seasonality_verdict_is_rejudged_on_the_selection_schedule(
    seasonal_cpu: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[int] = []
    real = __import__("forecasting.engine", fromlist=["seasonal_strength"]).seasonal_strength

    def counting(values: np.ndarray, *, season: int) -> float:
        measured.append(len(values))
        return float(real(values, season=season))

    monkeypatch.setattr("forecasting.engine.seasonal_strength", counting)
    engine = ForecastEngine(ForecastSettings(models=["seasonal_naive", "ses"], reselect_every="1d"))
    index = seasonal_cpu.index.tz_localize("UTC")
    for at in (index[800], index[812], index[1000]):  # within a day of the first call
        engine.forecast(seasonal_cpu, pool="asg", metric="cpu", now=at.to_pydatetime())
    assert len(measured) == 1
    later = (index[800] + pd.Timedelta(days=1)).to_pydatetime().astimezone(UTC)
    engine.forecast(seasonal_cpu, pool="asg", metric="cpu", now=later)
    assert len(measured) == 2


def test_evaluate_forecast_names_the_model_the_engine_chooses(seasonal_cpu: pd.Series) -> None:
    from forecasting.trace import evaluate_trace

    series = seasonal_cpu.iloc[:700]  # two and a half days: enough for selection
    evaluation = evaluate_trace(
        series,
        name="asg.cpu",
        horizon=timedelta(hours=1),
        models=("seasonal_naive", "auto_ets"),
        history=timedelta(days=14),
    )
    engine = ForecastEngine(
        ForecastSettings(models=["seasonal_naive", "mstl", "auto_ets"], history="14d")
    )
    forecast = engine.forecast(series, pool="trace", metric="asg.cpu")

    assert evaluation.chosen == forecast.model
    assert evaluation.trusted == forecast.trusted
