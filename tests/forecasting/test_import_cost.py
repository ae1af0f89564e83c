"""The forecasting stack loads without dask.dataframe unless a distributed frame is asked for.

utilsforecast imports dask.dataframe whenever dask is installed, only to name a type: about
1.1 s of every one-shot cycle's start (``python -X importtime -c 'import statsforecast'``).
Checked in a fresh interpreter: the test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask.dataframe", reason="dask is not installed: nothing to keep out")

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


def test_a_forecast_does_not_import_dask_dataframe_and_it_stays_importable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["after_forecast"] is False
    assert seen["later"] is True
