"""``mirrorcast evaluate-forecast`` on real trace excerpts: JSON shape, column detection, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from driver.cli import app
from forecasting import UnusableSeriesError
from forecasting.trace import read_trace_csv

runner = CliRunner()


def test_evaluate_forecast_writes_scores_per_model_and_the_choice(
    tmp_path: Path, data_dir: Path
) -> None:
    out = tmp_path / "report.json"
    trace = data_dir / "nab" / "cpu_utilization_asg_misconfiguration_excerpt.csv"
    result = runner.invoke(
        app, ["evaluate-forecast", str(trace), "--horizon", "1h", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"seasonal_naive", "mstl"} <= set(report["models"])
    for scores in report["models"].values():
        assert set(scores) == {"mase", "smape", "coverage_80", "coverage_95", "seconds"}
        assert scores["seconds"] > 0
        assert 0 <= scores["coverage_80"] <= scores["coverage_95"] <= 1
    assert report["chosen"] in report["models"]


def test_nasa_columns_and_local_time_are_detected(tmp_path: Path, data_dir: Path) -> None:
    text = (data_dir / "nasa_http_excerpt.csv").read_text().splitlines()
    # An empty value is a log gap, not zero demand.
    text[5] = text[5].split(",")[0] + ","
    path = tmp_path / "nasa.csv"
    path.write_text("\n".join(text) + "\n")
    series = read_trace_csv(path)
    assert series.name == "requests"
    assert series.index[0] == pd.Timestamp("1995-07-01 04:00", tz="UTC")
    assert series.isna().sum() == 1


def test_a_missing_column_is_an_error_naming_the_file_and_column(
    tmp_path: Path, data_dir: Path
) -> None:
    trace = data_dir / "nab" / "ec2_cpu_utilization_825cc2_excerpt.csv"
    result = runner.invoke(app, ["evaluate-forecast", str(trace), "--value-column", "cpu"])
    assert result.exit_code == 1
    assert (
        "has no column 'cpu'" in result.output
        and "ec2_cpu_utilization_825cc2_excerpt.csv" in result.output
    )


def test_text_in_the_value_column_is_an_error_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,lots\n")
    with pytest.raises(
        UnusableSeriesError, match=r"bad\.csv: column 'value' must hold numbers, row 3 holds 'lots'"
    ):
        read_trace_csv(path, value_column="value")


def test_a_trace_too_short_for_the_horizon_is_refused_with_advice(
    tmp_path: Path, data_dir: Path
) -> None:
    result = runner.invoke(app, ["evaluate-forecast", str(data_dir / "nasa_http_excerpt.csv")])
    assert result.exit_code == 1
    assert "pass a shorter --horizon" in result.output
