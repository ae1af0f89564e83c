"""Adding a metric source is its config class, its module and one registration."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest

from forecasting.sources import _FACTORIES as FACTORIES
from forecasting.sources import MetricSource, SourceError, open_source, register_source
from infra.config import FileSource, MetricSourceSpec, MetricSpec
from infra.config._model import _Model


class _ToySource(_Model):
    """A toy ``metrics`` section (a real one joins infra.config.MetricSourceSpec)."""

    type: Literal["toy"] = "toy"
    level: float = 1.0


class _ToyMetricSource:
    def __init__(self, spec: _ToySource) -> None:
        self.spec = spec
        self.name = f"toy:{spec.level:g}"

    def fetch(
        self, *, pool: str, metric: str, spec: MetricSpec, start: datetime, end: datetime
    ) -> pd.Series:
        index = pd.date_range(start, end, freq="1min", tz="UTC")
        return pd.Series(self.spec.level, index=index, name=metric)


@pytest.fixture
def toy_registered():
    register_source(_ToySource, lambda spec, root: _ToyMetricSource(spec))
    yield
    del FACTORIES[_ToySource]


def test_every_configurable_source_type_is_registered() -> None:
    import typing

    union, *_ = typing.get_args(MetricSourceSpec)
    assert set(typing.get_args(union)) == set(FACTORIES)


def test_a_registered_toy_source_is_opened_from_its_section(toy_registered: None) -> None:
    source = open_source(_ToySource(level=3.0), root=Path("."))  # type: ignore[arg-type]
    assert isinstance(source, MetricSource)  # the protocol the cycle calls
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    series = source.fetch(
        pool="web", metric="cpu", spec=MetricSpec(unit="percent"), start=t0, end=t0
    )
    assert series.iloc[0] == 3.0


def test_an_unregistered_section_is_refused_naming_the_types_there_are() -> None:
    with pytest.raises(
        SourceError, match=r"unknown metrics source type 'toy'; use file, prometheus"
    ):
        open_source(_ToySource(), root=Path("."))  # type: ignore[arg-type]


def test_registering_a_type_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="FileSource is already registered"):
        register_source(FileSource, lambda spec, root: None)  # type: ignore[arg-type,return-value]
