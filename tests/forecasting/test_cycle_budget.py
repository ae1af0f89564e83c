"""No storms: cold selections and refits are spread over cycles by a per-cycle budget.

Every series falls due together on a cold start, at the day's re-selection and at
``refit_every``; at 10,000 pools that was hours of CPU before the first decision and a 23-26
minute refit storm every 6 hours. With ``forecast.selections_per_cycle`` and
``forecast.refits_per_cycle`` each cycle does at most that much; every series still gets a
forecast in every cycle, and one that waits says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from nab_data import nab

from forecasting import Forecast, ForecastEngine
from infra.config import ForecastSettings

STEP = timedelta(minutes=5)


@pytest.fixture(scope="module")
def fleet(data_dir: Path) -> dict[tuple[str, str], pd.Series]:
    """Four pools' request rates: the real NASA-HTTP excerpt, scaled apart per pool."""
    frame = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"]))
    base = pd.Series(frame["requests"].to_numpy(dtype=float), index=index)
    return {(f"pool{i}", "rps"): base * (1 + i / 4) for i in range(4)}


def _engine(**budget: int) -> ForecastEngine:
    settings = ForecastSettings.model_validate(
        {"models": ["seasonal_naive", "auto_ets"], "refit_every": "6h", **budget}
    )
    return ForecastEngine(settings)


def _at(series: pd.Series, position: int) -> datetime:
    return series.index[position].to_pydatetime().replace(tzinfo=UTC)


def _cycle(
    engine: ForecastEngine, fleet: dict[tuple[str, str], pd.Series], now: datetime
) -> dict[tuple[str, str], Forecast]:
    out = engine.forecast_many(fleet, now=now)
    assert all(isinstance(f, Forecast) for f in out.values()), out  # nobody goes without
    return {k: f for k, f in out.items() if isinstance(f, Forecast)}


class TestColdSelectionsAreSpread:
    def test_each_cycle_selects_at_most_the_budget_and_the_rest_say_they_wait(
        self, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        engine = _engine(selections_per_cycle=2)
        start = _at(next(iter(fleet.values())), 1000)

        first = _cycle(engine, fleet, start)
        waiting = [f for f in first.values() if not f.trusted and "deferred" in (f.reason or "")]
        assert engine.deferred_selections == 2 and len(waiting) == 2
        assert all(f.model == "seasonal_naive" for f in waiting)
        assert "forecast.selections_per_cycle 2" in (waiting[0].reason or "")

        second = _cycle(engine, fleet, start + STEP)
        assert engine.deferred_selections == 0
        assert all("deferred" not in (f.reason or "") for f in second.values())
        assert {f.model for f in second.values()} == {"auto_ets"}

    def test_without_a_budget_every_series_is_selected_in_the_first_cycle(
        self, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        engine = _engine()
        first = _cycle(engine, fleet, _at(next(iter(fleet.values())), 1000))

        assert engine.deferred_selections == 0
        assert {f.model for f in first.values()} == {"auto_ets"}


class TestRefitsAreSpread:
    def test_series_without_a_fit_wait_on_the_untrusted_baseline(
        self, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        engine = _engine(refits_per_cycle=3)
        first = _cycle(engine, fleet, _at(next(iter(fleet.values())), 1000))

        fitted = [f for f in first.values() if f.model == "auto_ets"]
        waiting = [f for f in first.values() if f.model == "seasonal_naive"]
        assert len(fitted) == 3 and len(waiting) == 1 and engine.deferred_refits == 1
        assert not waiting[0].trusted
        assert "fit of auto_ets deferred" in (waiting[0].reason or "")

    def test_due_refits_beyond_the_budget_keep_their_older_fit_and_say_so(
        self, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        engine = _engine(refits_per_cycle=4)
        series = next(iter(fleet.values()))
        _cycle(engine, fleet, _at(series, 1000))
        engine.settings = engine.settings.model_copy(update={"refits_per_cycle": 1})
        fits = engine.fits

        later = _cycle(engine, fleet, _at(series, 1080))  # past the 6h refit_every

        assert engine.fits == fits + 1 and engine.deferred_refits == 3
        assert all(f.model == "auto_ets" and f.trusted for f in later.values())
        noted = [f for f in later.values() if any("refit deferred" in a for a in f.adjustments)]
        assert len(noted) == 3


class TestTheFallbackIsCheapWhileSeriesWait:
    """A cold start of 10,000 pools decides every pool on the fallback, cycle after cycle, until
    the budget reaches it: each of those cycles must cost about a warm update, not a fit."""

    def test_a_waiting_series_is_fitted_once_not_every_cycle(
        self, fleet: dict[tuple[str, str], pd.Series], tmp_path: Path
    ) -> None:
        settings = ForecastSettings.model_validate(
            {"models": ["seasonal_naive", "auto_ets"], "selections_per_cycle": 1}
        )
        engine = ForecastEngine(settings, cache_dir=tmp_path)
        start = _at(next(iter(fleet.values())), 1000)
        _cycle(engine, fleet, start)
        fits, updates = engine.fits, engine.updates

        second = _cycle(engine, fleet, start + STEP)

        waiting = [f for f in second.values() if "deferred" in (f.reason or "")]
        assert len(waiting) == 2 and all(f.model == "seasonal_naive" for f in waiting)
        # One selection's fit of auto_ets; the two waiting series update their kept baseline.
        assert engine.fits - fits == 1
        assert engine.updates - updates >= 2
        # Only the two selected series' fits are kept on disk: a parameter-free fit is made
        # again for less than reading it back.
        assert len(list((tmp_path / "fits").glob("*.pkl"))) == 2

    def test_the_waiting_series_forecasts_equal_a_fresh_fit_every_cycle(
        self, fleet: dict[tuple[str, str], pd.Series]
    ) -> None:
        settings = ForecastSettings.model_validate(
            {"models": ["seasonal_naive", "auto_ets"], "selections_per_cycle": 1}
        )
        engine, refitting = ForecastEngine(settings), ForecastEngine(settings)
        start = _at(next(iter(fleet.values())), 1000)
        for step in range(4):
            now = start + step * STEP
            refitting._kept.clear()  # nothing kept: every series fitted afresh, as before
            kept, fresh = _cycle(engine, fleet, now), _cycle(refitting, fleet, now)
            waiting = [k for k, f in kept.items() if f.model == "seasonal_naive"]
            assert len(waiting) == 3 - step
            for key in waiting:
                assert kept[key].times == fresh[key].times
                assert list(kept[key].mean) == list(fresh[key].mean)
                for level in (50, 90, 99):
                    assert list(kept[key].quantile(level)) == list(fresh[key].quantile(level))


class TestTheProfileTakesNoRefitSlot:
    """A series forecast by the same-hour profile (its models untrusted, the profile's floor
    the winner on its own history) fits nothing: it must neither use a refit of the budget nor
    be sent to the fallback to wait for one. Before, such a series never had a fit, so it sorted
    first among the due every cycle: the budget went to fits that were never made, due refits
    waited for ever, and the waiting profiled series lost its profile for the untrusted
    baseline (at 4,000 series with 10 refits a stack: 1,921 refits deferred a cycle, none made).
    """

    @staticmethod
    def _fleet() -> dict[tuple[str, str], pd.Series]:
        # Real 4-day NAB excerpts (tests/data/backtest, tests/data/nab): on the ELB's request
        # count auto_ets is chosen but untrusted and the profile wins; on fe7f93's CPU auto_ets
        # is chosen, untrusted, and the profile loses, so the model is fitted. The profiled
        # series is named to sort first, where the old ordering gave it the only slot.
        data = Path(__file__).resolve().parents[1] / "data"
        return {
            ("a-elb", "rps"): nab(data / "backtest" / "elb_request_count_8c0756_4days.csv"),
            ("b-ec2", "cpu"): nab(data / "nab" / "ec2_cpu_utilization_fe7f93_4days.csv"),
        }

    @staticmethod
    def _engine(**budget: int) -> ForecastEngine:
        return ForecastEngine(
            ForecastSettings.model_validate(
                {
                    "horizon": "1h",
                    "step": "5m",
                    "history": "4d",
                    "models": ["seasonal_naive", "auto_ets"],
                    **budget,
                }
            )
        )

    def test_the_budget_goes_to_the_series_that_needs_a_fit(self) -> None:
        fleet = self._fleet()
        engine = self._engine(refits_per_cycle=1)

        out = engine.forecast_many(fleet)

        profiled, fitted = out[("a-elb", "rps")], out[("b-ec2", "cpu")]
        assert isinstance(profiled, Forecast) and isinstance(fitted, Forecast)
        assert profiled.model == "seasonal_profile" and profiled.trusted
        assert fitted.model == "auto_ets"  # fitted now, not deferred to the baseline
        assert "deferred" not in (fitted.reason or "")
        assert engine.fits == 1 and engine.deferred_refits == 0

    def test_a_profiled_series_forecasts_the_same_with_or_without_a_budget(self) -> None:
        fleet = self._fleet()
        budgeted = self._engine(refits_per_cycle=1).forecast_many(fleet)
        unbounded = self._engine().forecast_many(fleet)

        for key in fleet:
            a, b = budgeted[key], unbounded[key]
            assert isinstance(a, Forecast) and isinstance(b, Forecast)
            assert (a.model, a.trusted, a.reason) == (b.model, b.trusted, b.reason)
            assert list(a.mean) == list(b.mean)
