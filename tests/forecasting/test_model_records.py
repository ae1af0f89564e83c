"""One record per forecasting model: the name sets and the cost table are read off the records."""

from __future__ import annotations

import pytest

from forecasting.models import (
    EXOGENOUS_MODELS,
    MODEL_COST,
    MODEL_NAMES,
    MODELS,
    NEEDS_SEASON,
    ModelOptions,
    ModelRecord,
    statistical,
)
from forecasting.models.records import index_records


class TestTheRecords:
    def test_every_model_name_has_a_cost_so_selection_never_guesses_one(self) -> None:
        assert set(MODEL_COST) == set(MODEL_NAMES) == set(MODELS)

    def test_the_traits_are_what_the_engine_relies_on(self) -> None:
        assert {"auto_arima", "lightgbm"} == EXOGENOUS_MODELS
        assert {"mstl", "prophet_like"} == NEEDS_SEASON
        assert {"seasonal_naive", "naive", "seasonal_profile"} == statistical.PARAMETER_FREE
        # The conformal-interval models refit on past windows: nothing to reuse.
        assert {"ses", "seasonal_window_average"}.isdisjoint(statistical.REUSABLE)

    @pytest.mark.parametrize("name", statistical.NAMES)
    def test_each_statsforecast_record_builds_a_statsforecast_model_under_its_name(
        self, name: str
    ) -> None:
        # statsforecast's model classes carry the alias the output columns are named after.
        model = statistical._build(name, season=24, h=12, weekly=True, options=ModelOptions())
        # The profile is mirrorcast's own class on statsforecast's model protocol
        # (forecasting/models/profile.py); every other record builds a library class.
        module = (
            "forecasting.models.profile" if name == "seasonal_profile" else "statsforecast.models"
        )
        assert type(model).__module__ == module
        assert model.alias == name


class TestAddingAModel:
    def test_a_toy_record_is_built_by_the_statsforecast_family(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        toy = ModelRecord(
            "toy_drift",
            "statistical",
            1,
            lambda sf, c: sf.RandomWalkWithDrift(alias="toy_drift"),
            reusable=True,
        )
        monkeypatch.setitem(statistical._BY_NAME, toy.name, toy)
        model = statistical._build(
            "toy_drift", season=24, h=12, weekly=False, options=ModelOptions()
        )
        assert type(model).__name__ == "RandomWalkWithDrift" and model.alias == "toy_drift"

    def test_a_name_two_families_claim_is_refused(self) -> None:
        with pytest.raises(
            ValueError, match="'naive' is registered by both the statistical and the ml family"
        ):
            index_records([MODELS["naive"], ModelRecord("naive", "ml", 5)])
