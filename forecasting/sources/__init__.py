"""Metric sources behind one interface: files, Prometheus, CloudWatch, Azure Monitor, Cloud Monitoring.

Pick one from stack config with :func:`open_source`; every source's ``fetch`` returns the raw
series (tz-aware UTC index, float values, named after the metric) and raises the typed errors
of :class:`SourceError`::

    from forecasting.sources import open_source

    source = open_source(config.metrics, root=project_root)
    raw = source.fetch(pool="web", metric="cpu", spec=pool.metrics["cpu"], start=t0, end=t1)
"""

from __future__ import annotations

import logging
from pathlib import Path

from forecasting.sources._azure_monitor import AzureMonitorMetricSource
from forecasting.sources._base import (
    MetricSource,
    SourceDataError,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
)
from forecasting.sources._cloudwatch import CloudWatchMetricSource
from forecasting.sources._file import MAX_METRICS_FILE_BYTES, FileMetricSource
from forecasting.sources._gcp_monitoring import GcpMonitoringMetricSource
from forecasting.sources._http import AnswerTooLarge, DeadlineExceeded, bounded_request
from forecasting.sources._prometheus import MAX_POINTS_PER_QUERY, PrometheusMetricSource
from infra import config

__all__ = [
    "MAX_METRICS_FILE_BYTES",
    "MAX_POINTS_PER_QUERY",
    "AnswerTooLarge",
    "AzureMonitorMetricSource",
    "CloudWatchMetricSource",
    "DeadlineExceeded",
    "FileMetricSource",
    "GcpMonitoringMetricSource",
    "MetricSource",
    "PrometheusMetricSource",
    "SourceDataError",
    "SourceError",
    "SourceTimeout",
    "SourceUnavailable",
    "bounded_request",
    "open_source",
]

logger = logging.getLogger(__name__)


def open_source(spec: config.MetricSourceSpec, *, root: Path) -> MetricSource:
    """The source a stack's ``metrics`` section describes.

    :param spec: the ``metrics`` section (one of the ``infra.config`` source models, by ``type``).
    :param root: directory that relative file paths are resolved against (the project root).
    :raises SourceError: the source cannot be created (for example missing cloud SDK extras).
    """
    if isinstance(spec, config.FileSource):
        return FileMetricSource(spec, root=root)
    if isinstance(spec, config.PrometheusSource):
        return PrometheusMetricSource(spec)
    if isinstance(spec, config.CloudWatchSource):
        return CloudWatchMetricSource(spec)
    if isinstance(spec, config.AzureMonitorSource):
        return AzureMonitorMetricSource(spec)
    if isinstance(spec, config.GcpMonitoringSource):
        return GcpMonitoringMetricSource(spec)
    raise SourceError(
        f"unknown metrics source type {getattr(spec, 'type', type(spec).__name__)!r}; use file, "
        "prometheus, cloudwatch, azure_monitor or gcp_monitoring",
        source="metrics",
    )
