"""One record per forecasting model: what the engine and selection need to know about it.

A model's record says which family runs it, its cost rank (selection prefers the cheaper of two
models that score alike), how the statsforecast family builds it, and its traits: whether a fit
can be kept and applied to newer data (``reusable``), whether it fits no parameters at all
(``parameter_free``), whether it takes exogenous regressors such as event indicators
(``exogenous``), and whether it decomposes a seasonal cycle and so cannot run on a season of
one step (``needs_season``). Before these records the same facts lived in five parallel name
sets and a cost table that silently defaulted; the sets are now derived from the records.
In the spirit of statsforecast's model classes, each of which carries its own traits.

Adding a model: one :class:`ModelRecord` in its family's ``RECORDS`` (statsforecast: with
``build``); adding a family: its module with ``RECORDS``, ``forecast`` and ``cross_validate``,
and one line in ``forecasting.models._FAMILIES`` (docs/architecture.md, "Recipes").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["BuildContext", "ModelRecord", "index_records"]


@dataclass(frozen=True)
class BuildContext:
    """What a statsforecast model is built from.

    :param season: the season length in steps (at least 1).
    :param small_season: the season ETS/ARIMA estimate (1 beyond a day of hourly points).
    :param weekly: the series are long enough for a weekly cycle beside the daily one.
    :param conformal: statsforecast ``ConformalIntervals`` for models without native intervals.
    :param stl_kwargs: MSTL's loess jumps (:func:`forecasting.models.statistical.stl_jumps`).
    """

    season: int
    small_season: int
    weekly: bool
    conformal: Any
    stl_kwargs: dict[str, int]


@dataclass(frozen=True)
class ModelRecord:
    """One forecasting model, as a stack's ``forecast.models`` names it.

    :param name: the name in ``forecast.models``.
    :param family: ``statistical``, ``ml`` or ``neural`` (the module that runs it).
    :param cost: relative cost rank (0 cheapest).
    :param build: statsforecast family only: the model object from the statsforecast classes
        module and a :class:`BuildContext`; ``None`` for the families that build one forecaster
        for all their models.
    :param reusable: a fit can be applied to newer data (statsforecast ``forward``).
    :param parameter_free: fits no parameters (a kept fit and a refit forecast alike).
    :param exogenous: takes exogenous regressors (``X``), e.g. event indicators.
    :param needs_season: decomposes a seasonal cycle; skipped when the season is one step.
    """

    name: str
    family: str
    cost: int
    build: Callable[[Any, BuildContext], Any] | None = None
    reusable: bool = False
    parameter_free: bool = False
    exogenous: bool = False
    needs_season: bool = False


def index_records(records: Iterable[ModelRecord]) -> dict[str, ModelRecord]:
    """``{name: record}``, refusing a name given twice (two families cannot share a model name)."""
    indexed: dict[str, ModelRecord] = {}
    for record in records:
        if record.name in indexed:
            raise ValueError(
                f"model {record.name!r} is registered by both the {indexed[record.name].family} "
                f"and the {record.family} family"
            )
        indexed[record.name] = record
    return indexed
