"""The forecasting stack loads without dask.dataframe unless a distributed frame is asked for,
and without statsmodels until a model calls it.

utilsforecast imports dask.dataframe whenever dask is installed, only to name a type: about
1.1 s of every one-shot cycle's start (``python -X importtime -c 'import statsforecast'``);
statsforecast's model modules import statsmodels (1-1.8 s) that applying a kept fit never calls.
Checked in a fresh interpreter: the test process has long imported everything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NAB = REPO / "tests" / "data" / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"

PROBE = f"""
import json, sys
from datetime import timedelta
import pandas as pd
from forecasting import ForecastEngine
from infra.config import ForecastSettings

frame = pd.read_csv({str(NAB)!r}, parse_dates=["timestamp"])
history = pd.Series(frame["value"].to_numpy(float), index=pd.DatetimeIndex(frame["timestamp"]))
engine = ForecastEngine(ForecastSettings(horizon=timedelta(hours=1), models=["auto_ets"]))
forecast = engine.forecast(history, pool="web", metric="cpu")
after_forecast = "dask.dataframe" in sys.modules
import dask.dataframe  # still importable afterwards, for whoever wants a distributed frame
print(json.dumps({{"model": forecast.model, "after_forecast": after_forecast,
                  "later": "dask.dataframe" in sys.modules}}))
"""


def _probe(code: str, *args: str, timeout: float = 300) -> Any:
    """Run ``code`` in a fresh interpreter (imports are per process); its last line's JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dask_dataframe_installed() -> bool:
    try:
        import dask.dataframe  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    not _dask_dataframe_installed(), reason="dask is not installed: nothing to keep out"
)
def test_a_forecast_does_not_import_dask_dataframe_and_it_stays_importable() -> None:
    seen = _probe(PROBE)

    assert seen["after_forecast"] is False
    assert seen["later"] is True


# Fits every statsforecast model of ours that calls statsmodels (MSTL's STL, Theta's seasonality
# test and decomposition, ETS's and ARIMA's helpers) on a real series, in a fresh interpreter.
FIT_PROBE = f"""
import json, sys
if sys.argv[1] == "eager":  # statsmodels loaded before statsforecast: nothing is deferred
    import statsmodels.api, statsmodels.tsa.seasonal, statsmodels.tsa.stattools, scipy.signal
    import scipy.stats, scipy.optimize, scipy.special, scipy.linalg
import pandas as pd
from forecasting.models import ModelOptions
from forecasting.models._imports import import_statsforecast
from forecasting.models.statistical import fit

import_statsforecast()
if sys.argv[1] == "eager":  # and statsforecast's own normal quantiles, through scipy.stats
    import statsforecast.distributions as distributions
    distributions.frozen_error_distribution = distributions.frozen_error_distribution.__wrapped__

frame = pd.read_csv({str(NAB)!r}, parse_dates=["timestamp"]).iloc[:360]
df = pd.DataFrame({{"unique_id": "cpu", "ds": frame["timestamp"], "y": frame["value"]}})
df["ds"] = pd.date_range(df["ds"].iloc[0], periods=len(df), freq="300s")
out = {{}}
watched = ("statsmodels.api", "scipy.signal", "scipy.stats", "scipy.optimize")
before = [m for m in watched if m in sys.modules]
for model in ("auto_ets", "mstl", "theta", "auto_arima"):
    result, _ = fit(df, model=model, h=12, freq="300s", season=12, levels=[80],
                    options=ModelOptions())
    out[model] = result.drop(columns=["unique_id", "ds"]).to_numpy().tolist()
print(json.dumps({{"before": before, "after": [m for m in watched if m in sys.modules], "out": out}}))
"""


def _fit_in_fresh_interpreter(mode: str) -> dict[str, object]:
    result: dict[str, object] = _probe(FIT_PROBE, mode, timeout=600)
    return result


def test_statsmodels_is_imported_when_a_model_calls_it_and_the_fits_are_unchanged() -> None:
    deferred = _fit_in_fresh_interpreter("deferred")
    eager = _fit_in_fresh_interpreter("eager")

    assert deferred["before"] == []  # importing statsforecast loaded none of them
    # The models that call them did (ARIMA's fit: scipy.optimize; the intervals: scipy.stats).
    assert deferred["after"] == ["statsmodels.api", "scipy.signal", "scipy.stats", "scipy.optimize"]
    assert deferred["out"] == eager["out"]  # the very same numbers, model by model


# statsforecast imports some of its own modules inside functions (``from statsforecast.simulation
# import sample_errors`` in each model's interval code). Imported after the deferral window, such
# a module's ``from scipy import stats`` would load the real scipy.stats (0.45-0.6 s) at a warm
# cycle's first interval even where the interval never calls it (Theta's normal errors).
_FUNCTION_LEVEL_IMPORT = re.compile(r"^[ \t]+from (statsforecast(?:\.\w+)+|\.\w+) import", re.M)

LATE_PROBE = """
import json, sys
from forecasting.models._imports import import_statsforecast
import_statsforecast()
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("statsforecast", "scipy")))))
"""


def test_statsforecasts_own_late_imports_are_loaded_inside_the_deferral_window() -> None:
    package = Path(importlib.util.find_spec("statsforecast").origin).parent  # type: ignore[arg-type,union-attr]
    late = set()
    for source in package.glob("*.py"):
        for target in _FUNCTION_LEVEL_IMPORT.findall(source.read_text(encoding="utf-8")):
            late.add(f"statsforecast{target}" if target.startswith(".") else target)
    loaded = set(_probe(LATE_PROBE))

    assert "statsforecast.simulation" in late  # the pattern still finds what it is for
    assert sorted(late - loaded) == []
    assert "scipy.stats" not in loaded and "scipy.optimize" not in loaded


FUGUE_PROBE = """
import json, sys
import numpy as np, pandas as pd
from forecasting.models._imports import import_statsforecast
import_statsforecast()
before = sorted(m for m in sys.modules if m.startswith(("fugue", "statsforecast.distributed.")))
from statsforecast import StatsForecast
from statsforecast.models import SeasonalNaive
frame = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2026-11-01", periods=48, freq="h"),
                      "y": np.arange(48.0) % 24})
out = StatsForecast(models=[SeasonalNaive(season_length=24)], freq="h").forecast(df=frame, h=3)
at_forecast = "fugue" in sys.modules
import statsforecast.distributed.fugue  # what forecasting.distributed imports for a Dask frame
from fugue.execution.native_execution_engine import NativeExecutionEngine
from statsforecast.core import make_backend
print(json.dumps({"before": before, "at_forecast": at_forecast,
                  "values": out["SeasonalNaive"].tolist(),
                  "backend": type(make_backend(NativeExecutionEngine())).__name__}))
"""


def test_fugue_is_imported_at_statsforecasts_first_forecast_and_its_backend_when_asked() -> None:
    result = _probe(FUGUE_PROBE)

    assert result["before"] == []  # importing statsforecast loaded none of fugue
    # StatsForecast.forecast asks fugue whether an engine is in context: the stand-in imports it.
    assert result["at_forecast"] is True
    assert result["values"] == [0.0, 1.0, 2.0]
    # The distributed route's import registers statsforecast's fugue backend as before.
    assert result["backend"] == "FugueBackend"


class TestNormalQuantilesWithoutScipyStats:
    """statsforecast's normal intervals (ETS, ARIMA, CES) take their z from
    ``frozen_error_distribution(1.0, "normal").ppf``; ours is scipy's arithmetic on
    ``scipy.special.ndtri``, so a warm cycle does not import scipy.stats for it."""

    QS = [0.0, 5e-324, 1e-300, 1e-10, 0.001, 0.05, 0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95]
    QS += [0.975, 0.99, 0.995, 1 - 1e-16, 1.0, -0.1, 1.1, float("nan"), float("inf")]
    SCALES = [1.0, 0.5, 2.3, 1e-300, 1e300, 0.0, -1.0, float("nan"), float("inf")]

    @staticmethod
    def _same(ours: object, theirs: object) -> None:
        import numpy as np

        assert type(ours) is type(theirs)
        a, b = np.asarray(ours), np.asarray(theirs)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes() or (
            np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))
        )

    def test_ppf_equals_scipy_stats_norm_bit_for_bit(self) -> None:
        import numpy as np
        from scipy import stats

        from forecasting.models._imports import _FrozenNormal

        for scale in self.SCALES:
            ours, theirs = _FrozenNormal(scale), stats.norm(scale=scale)
            for q in self.QS:
                self._same(ours.ppf(q), theirs.ppf(q))
            self._same(ours.ppf(self.QS), theirs.ppf(self.QS))
            grid = np.array(self.QS[:20]).reshape(4, 5)
            self._same(ours.ppf(grid), theirs.ppf(grid))
        scales = np.array(self.SCALES)
        self._same(_FrozenNormal(scales).ppf(0.9), stats.norm(scale=scales).ppf(0.9))
        # What statsforecast's _quantiles asks: levels 1..99 (and 99.9) as 0.5 + level / 200.
        levels = 0.5 + np.asarray([*range(1, 100), 99.9]) / 200
        self._same(_FrozenNormal(1.0).ppf(levels), stats.norm(scale=1.0).ppf(levels))

    def test_anything_but_ppf_is_scipys_frozen_normal(self) -> None:
        from scipy import stats

        from forecasting.models._imports import _FrozenNormal

        assert _FrozenNormal(2.0).cdf(1.5) == stats.norm(scale=2.0).cdf(1.5)
        assert _FrozenNormal(2.0).std() == 2.0

    def test_statsforecasts_normal_quantiles_come_from_ours_and_the_rest_from_its_own(
        self,
    ) -> None:
        import numpy as np
        from scipy import stats

        from forecasting.models._imports import _FrozenNormal, import_statsforecast

        import_statsforecast()
        from statsforecast.distributions import frozen_error_distribution
        from statsforecast.utils import _quantiles

        assert isinstance(frozen_error_distribution(1.0, "normal"), _FrozenNormal)
        assert np.array_equal(_quantiles([80, 90]), stats.norm.ppf([0.9, 0.95]))
        t = frozen_error_distribution(1.0, "t", {"df": 4.0})
        assert t.ppf(0.9) == stats.t(df=4.0, scale=1.0).ppf(0.9)
