"""statsforecast's normal interval multipliers are computed once per set of levels.

statsforecast 2.x builds a frozen ``scipy.stats.norm`` for every forecast that returns
intervals (``statsforecast.utils._quantiles``), about 1.7 ms each: a large share of a warm
cycle's model updates at fleet size. :mod:`forecasting.models._intervals` keeps the answer per
set of levels; these tests hold it to the library's own numbers, bit for bit, with real
statsforecast models on a real series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.models import statistical
from forecasting.models._intervals import _BOUND_BY_NAME, cache_normal_quantiles
from forecasting.models._options import ModelOptions

NAB = (
    Path(__file__).resolve().parents[1] / "data" / "nab" / "ec2_cpu_utilization_825cc2_excerpt.csv"
)
MODELS = ["seasonal_naive", "naive", "seasonal_window_average", "ses", "auto_ets"]
LEVELS = [50, 80, 90, 98]


def _history() -> np.ndarray:
    # A real CloudWatch CPU excerpt (tests/data/nab/README.md), 3 days at 5 minutes.
    return pd.read_csv(NAB)["value"].to_numpy(dtype=float)[-3 * 288 :]


def _forecasts(y: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for model in MODELS:
        out.update(
            {
                f"{model}:{uid}": columns
                for uid, columns in statistical.forecast_each(
                    {"a": y, "b": y * 1.5 + 3},
                    model=model,
                    h=12,
                    season=288,
                    levels=LEVELS,
                    options=ModelOptions(),
                ).items()
            }
        )
    return out


class TestSameNumbersAsTheLibrary:
    def test_every_models_forecast_and_interval_is_bit_for_bit_the_librarys(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        y = _history()
        cached = _forecasts(y)
        cached_again = _forecasts(y)  # served from the kept multipliers this time
        with monkeypatch.context() as patch:
            import sys

            for name in _BOUND_BY_NAME:
                module = sys.modules.get(name)
                current = getattr(module, "_quantiles", None)
                if current is not None and hasattr(current, "__wrapped__"):
                    patch.setattr(module, "_quantiles", current.__wrapped__)
            library = _forecasts(y)

        assert cached.keys() == library.keys()
        for key, columns in library.items():
            assert sorted(columns) == sorted(cached[key])
            for column, values in columns.items():
                np.testing.assert_array_equal(cached[key][column], values, err_msg=key)
                np.testing.assert_array_equal(cached_again[key][column], values, err_msg=key)

    def test_the_multipliers_equal_the_librarys_for_any_levels_and_are_not_shared(self) -> None:
        import statsforecast.utils as utils

        cache_normal_quantiles()
        original = utils._quantiles.__wrapped__
        for levels in ([80, 90], [50, 95, 99], [90.5], np.array([10, 99.9])):
            first = utils._quantiles(np.asarray(levels))
            np.testing.assert_array_equal(first, original(np.asarray(levels)))
            first[:] = 0.0  # a caller that writes into its answer
            np.testing.assert_array_equal(
                utils._quantiles(np.asarray(levels)), original(np.asarray(levels))
            )

    def test_other_distributions_go_to_the_library_unchanged(self) -> None:
        import statsforecast.utils as utils

        cache_normal_quantiles()
        original = utils._quantiles.__wrapped__
        got = utils._quantiles(np.array([80, 90]), distribution="t", dist_params={"df": 4.0})
        np.testing.assert_array_equal(
            got, original(np.array([80, 90]), distribution="t", dist_params={"df": 4.0})
        )


class TestAWarmForecastBuildsNoDistribution:
    def test_repeated_forecasts_freeze_no_scipy_distribution_after_the_first(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import statsforecast.distributions as distributions

        y = _history()
        _forecasts(y)  # the first answer for these levels
        real = distributions.frozen_error_distribution
        frozen: list[str] = []

        def counting(sigma: float, distribution: str, params: object = None) -> object:
            frozen.append(distribution)
            return real(sigma, distribution, params)

        monkeypatch.setattr(distributions, "frozen_error_distribution", counting)
        for _ in range(3):
            _forecasts(y)

        # Before, every forecast with intervals froze one (here 2 series x 4 models x 3).
        assert frozen == []
