"""open_source picks the source a stack's metrics section describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.sources import (
    AzureMonitorMetricSource,
    CloudWatchMetricSource,
    FileMetricSource,
    MetricSource,
    PrometheusMetricSource,
    SourceError,
    open_source,
)
from infra import config


def test_each_source_type_opens_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cases: list[tuple[config.MetricSourceSpec, type]] = [
        (config.FileSource(path="m.csv"), FileMetricSource),
        (config.PrometheusSource(url="http://127.0.0.1:9090"), PrometheusMetricSource),
        (config.CloudWatchSource(region="us-east-1"), CloudWatchMetricSource),
        (config.AzureMonitorSource(resource_id="/subscriptions/x"), AzureMonitorMetricSource),
    ]
    for spec, kind in cases:
        source = open_source(spec, root=tmp_path)
        assert isinstance(source, kind)
        assert isinstance(source, MetricSource)
        assert source.name


def test_relative_file_paths_resolve_against_the_root(tmp_path: Path) -> None:
    source = open_source(config.FileSource(path="data/m.csv"), root=tmp_path)
    assert isinstance(source, FileMetricSource)
    assert source.path == tmp_path / "data" / "m.csv"


def test_cloud_monitoring_without_credentials_says_how_to_set_them_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(SourceError, match="set up Application Default Credentials"):
        open_source(config.GcpMonitoringSource(project="shop-prod"), root=tmp_path)
