"""Per-series model choice: chosen by cross-validation, persisted, reused, re-selected on schedule."""

from __future__ import annotations

import json
import math
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastEngine
from forecasting.selection import choose_model
from infra.config import ForecastSettings

MODELS = ["seasonal_naive", "ses", "auto_ets"]


def _engine(cache: Path, every: str = "1d") -> ForecastEngine:
    return ForecastEngine(ForecastSettings(models=MODELS, reselect_every=every), cache_dir=cache)


def test_choice_is_persisted_with_its_scores_per_pool_and_metric(
    tmp_path: Path, seasonal_cpu: pd.Series
) -> None:
    # The stored choice is the forecast's model (with forecast.untrusted_profile off: an
    # untrusted choice would otherwise be forecast by the same-hour profile instead,
    # tests/forecasting/test_untrusted_profile.py).
    settings = ForecastSettings(models=MODELS, untrusted_profile={"enabled": False})
    engine = ForecastEngine(settings, cache_dir=tmp_path)
    forecast = engine.forecast(seasonal_cpu, pool="asg", metric="cpu")
    stored = json.loads((tmp_path / "selection" / "asg__cpu.json").read_text())
    assert stored["model"] == forecast.model
    assert set(stored["scores"]) == set(MODELS)
    assert forecast.accuracy["mase"] == stored["scores"][forecast.model]["mase"]


def test_a_fresh_choice_is_reused_by_a_new_engine(tmp_path: Path, seasonal_cpu: pd.Series) -> None:
    index = seasonal_cpu.index.tz_localize("UTC")
    now = index[1200].to_pydatetime()
    _engine(tmp_path).forecast(seasonal_cpu, pool="asg", metric="cpu", now=now)
    path = tmp_path / "selection" / "asg__cpu.json"
    # Tamper with the stored choice: if the new engine reuses it, it must use this model.
    stored = json.loads(path.read_text())
    stored["model"], stored["trusted"] = "ses", True
    path.write_text(json.dumps(stored))
    later = _engine(tmp_path).forecast(
        seasonal_cpu, pool="asg", metric="cpu", now=now + timedelta(hours=2)
    )
    assert later.model == "ses"


def test_a_choice_older_than_reselect_every_is_made_again(
    tmp_path: Path, seasonal_cpu: pd.Series
) -> None:
    index = seasonal_cpu.index.tz_localize("UTC")
    first_now = index[1000].to_pydatetime()
    _engine(tmp_path, every="1h").forecast(seasonal_cpu, pool="asg", metric="cpu", now=first_now)
    path = tmp_path / "selection" / "asg__cpu.json"
    first = json.loads(path.read_text())["selected_at"]
    _engine(tmp_path, every="1h").forecast(
        seasonal_cpu, pool="asg", metric="cpu", now=first_now + timedelta(hours=3)
    )
    second = json.loads(path.read_text())["selected_at"]
    assert pd.Timestamp(second) - pd.Timestamp(first) == pd.Timedelta(hours=3)
    assert pd.Timestamp(second).tzinfo is not None and pd.Timestamp(second).tz_convert(UTC)


def test_no_candidate_beating_the_baseline_means_untrusted_baseline() -> None:
    model, trusted, reason = choose_model(
        {"seasonal_naive": {"mase": 0.8}, "ses": {"mase": 0.9}, "auto_ets": {"mase": 1.2}}
    )
    assert (model, trusted) == ("seasonal_naive", False)
    assert "no candidate beat seasonal-naive" in (reason or "")


def test_the_cheaper_of_two_equally_good_models_wins() -> None:
    model, trusted, _ = choose_model(
        {"seasonal_naive": {"mase": 1.0}, "mstl": {"mase": 0.500}, "ses": {"mase": 0.505}}
    )
    assert (model, trusted) == ("ses", True)


def test_a_clearly_better_expensive_model_wins() -> None:
    model, _, _ = choose_model(
        {"seasonal_naive": {"mase": 1.0}, "mstl": {"mase": 0.4}, "ses": {"mase": 0.6}}
    )
    assert model == "mstl"


def test_choices_of_series_ending_at_different_times_are_all_reused(
    tmp_path: Path, seasonal_cpu: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    histories = {("a", "cpu"): seasonal_cpu, ("b", "cpu"): seasonal_cpu.iloc[:-30]}
    first = engine.forecast_many(histories)

    def no_selection(*args: object, **kwargs: object) -> None:
        raise AssertionError("a fresh choice was re-selected")

    monkeypatch.setattr("forecasting.engine.select_models", no_selection)
    second = _engine(tmp_path).forecast_many(histories)
    for key in histories:
        assert getattr(second[key], "model", None) == getattr(first[key], "model", None)


def test_decomposition_candidates_are_skipped_without_a_seasonal_period(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import numpy as np

    from forecasting.selection import NEEDS_SEASON, select_models

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "unique_id": "web.cpu",
            "ds": pd.date_range("2024-01-01", periods=200, freq="7min"),
            "y": 50 + rng.normal(0, 5, 200),
        }
    )
    found = select_models(
        df,
        candidates=["mstl", "prophet_like", "auto_ets"],
        h=6,
        freq="7min",
        season=1,
        levels=[80],
        n_windows=2,
        now=pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime(),
        step=timedelta(minutes=7),
    )["web.cpu"]

    assert set(found.failures) == set(NEEDS_SEASON)
    assert found.failures["mstl"] == "needs a seasonal period of at least 2 steps, the series has 1"
    assert "auto_ets" in found.scores
    # Nothing printed behind the log's back (statsforecast's supersmoother notice).
    assert "supersmoother" not in capfd.readouterr().err


def test_a_stored_choice_is_not_reused_for_different_data_under_the_same_name(
    tmp_path: Path, seasonal_cpu: pd.Series
) -> None:
    now = seasonal_cpu.index.tz_localize("UTC")[1200].to_pydatetime()
    _engine(tmp_path).forecast(seasonal_cpu, pool="asg", metric="cpu", now=now)
    path = tmp_path / "selection" / "asg__cpu.json"
    stored = json.loads(path.read_text())
    assert len(stored["anchor"]) == 12
    # Tamper with the stored choice: whoever reuses it must forecast with this model.
    stored["model"], stored["trusted"] = "ses", True
    path.write_text(json.dumps(stored))

    # The same name at the same clock, other numbers (a replaced metrics file): chosen afresh.
    other = seasonal_cpu * 0.5 + 7
    assert _engine(tmp_path).forecast(other, pool="asg", metric="cpu", now=now).model != "ses"
    # The original series again, after that fresh choice was stored: its own anchor holds.
    path.write_text(json.dumps(stored))
    assert (
        _engine(tmp_path).forecast(seasonal_cpu, pool="asg", metric="cpu", now=now).model == "ses"
    )


def test_cycle_strength_ranks_as_scipys_spearman_does_ties_included(
    seasonal_cpu: pd.Series, flat_cpu: pd.Series
) -> None:
    """The rank correlation behind the seasonality verdict is Spearman's rho as scipy defines it."""
    from scipy.stats import spearmanr

    from forecasting.selection import _spearman

    for series in (seasonal_cpu, flat_cpu, seasonal_cpu.round(0)):  # rounding makes many ties
        values = series.to_numpy(dtype=float)
        a, b = values[288:], values[:-288]
        assert _spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(_spearman(np.ones(10), np.arange(10.0)))  # a constant side: no ranks
