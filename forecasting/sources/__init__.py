"""Metric sources behind one interface: files, Prometheus, CloudWatch, Azure Monitor, Cloud Monitoring.

Pick one from stack config with :func:`open_source`; every source's ``fetch`` returns the raw
series (tz-aware UTC index, float values, named after the metric) and raises the typed errors
of :class:`SourceError`::

    from forecasting.sources import open_source

    source = open_source(config.metrics, root=project_root)
    raw = source.fetch(pool="web", metric="cpu", spec=pool.metrics["cpu"], start=t0, end=t1)
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from forecasting.sources._base import (
    BatchingSource,
    MetricSource,
    Read,
    ReadBatch,
    SourceDataError,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
    plan_reads,
)
from infra import config

if TYPE_CHECKING:
    from forecasting.sources._azure_monitor import AzureMonitorMetricSource
    from forecasting.sources._cloudwatch import CloudWatchMetricSource
    from forecasting.sources._file import MAX_METRICS_FILE_BYTES, FileMetricSource
    from forecasting.sources._gcp_monitoring import GcpMonitoringMetricSource
    from forecasting.sources._http import AnswerTooLarge, DeadlineExceeded, bounded_request
    from forecasting.sources._prometheus import MAX_POINTS_PER_QUERY, PrometheusMetricSource

# Each source's module is imported when the source is opened or its name first read (PEP 562):
# a stack with a file source must not pay for boto3 (CloudWatch, about 0.2-0.3 s of a one-shot
# cycle's start) or requests (Prometheus); tests/driver/test_cli_startup.py checks it.
_EXPORTS: dict[str, str] = {
    "AzureMonitorMetricSource": "forecasting.sources._azure_monitor",
    "CloudWatchMetricSource": "forecasting.sources._cloudwatch",
    "FileMetricSource": "forecasting.sources._file",
    "MAX_METRICS_FILE_BYTES": "forecasting.sources._file",
    "GcpMonitoringMetricSource": "forecasting.sources._gcp_monitoring",
    "AnswerTooLarge": "forecasting.sources._http",
    "DeadlineExceeded": "forecasting.sources._http",
    "bounded_request": "forecasting.sources._http",
    "MAX_POINTS_PER_QUERY": "forecasting.sources._prometheus",
    "PrometheusMetricSource": "forecasting.sources._prometheus",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forecasting.sources' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "MAX_METRICS_FILE_BYTES",
    "MAX_POINTS_PER_QUERY",
    "AnswerTooLarge",
    "AzureMonitorMetricSource",
    "BatchingSource",
    "CloudWatchMetricSource",
    "DeadlineExceeded",
    "FileMetricSource",
    "GcpMonitoringMetricSource",
    "MetricSource",
    "PrometheusMetricSource",
    "Read",
    "ReadBatch",
    "SourceDataError",
    "SourceError",
    "SourceTimeout",
    "SourceUnavailable",
    "bounded_request",
    "open_source",
    "plan_reads",
    "register_source",
]

logger = logging.getLogger(__name__)


SourceFactory = Callable[[Any, Path], MetricSource]
"""Builds a source from its ``metrics`` config section and the project root."""

_FACTORIES: dict[type[BaseModel], SourceFactory] = {}


def register_source(spec_type: type[BaseModel], factory: SourceFactory) -> None:
    """Make :func:`open_source` build ``factory(spec, root)`` for a ``spec_type`` section.

    Adding a metric source is its config class (a member of ``infra.config.MetricSourceSpec``),
    its module here, and this one registration (docs/architecture.md, "Recipes").

    :raises ValueError: ``spec_type`` already has a factory (two sources for one config type).
    """
    if spec_type in _FACTORIES:
        raise ValueError(f"metric source config {spec_type.__name__} is already registered")
    _FACTORIES[spec_type] = factory


# The lambdas read the class through __getattr__, so its module is imported at open_source.
register_source(
    config.FileSource, lambda spec, root: __getattr__("FileMetricSource")(spec, root=root)
)
register_source(
    config.PrometheusSource, lambda spec, root: __getattr__("PrometheusMetricSource")(spec)
)
register_source(
    config.CloudWatchSource, lambda spec, root: __getattr__("CloudWatchMetricSource")(spec)
)
register_source(
    config.AzureMonitorSource, lambda spec, root: __getattr__("AzureMonitorMetricSource")(spec)
)
register_source(
    config.GcpMonitoringSource, lambda spec, root: __getattr__("GcpMonitoringMetricSource")(spec)
)


def open_source(spec: config.MetricSourceSpec, *, root: Path) -> MetricSource:
    """The source a stack's ``metrics`` section describes.

    :param spec: the ``metrics`` section (one of the ``infra.config`` source models, by ``type``).
    :param root: directory that relative file paths are resolved against (the project root).
    :raises SourceError: the source cannot be created (for example missing cloud SDK extras), or
        no source is registered for the section's type.
    """
    factory = _FACTORIES.get(type(spec))
    if factory is None:
        kinds = ", ".join(str(t.model_fields["type"].default) for t in _FACTORIES)
        raise SourceError(
            f"unknown metrics source type {getattr(spec, 'type', type(spec).__name__)!r}; use {kinds}",
            source="metrics",
        )
    return factory(spec, root)
