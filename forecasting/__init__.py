"""The prediction engine: cleaning, models, selection, probabilistic forecasts.

Import from here::

    from forecasting import ForecastEngine, Forecast, clean_series

The names are loaded on first use (PEP 562): the journal and the read-only commands need only
:class:`Forecast`, and importing ``forecasting._result`` must not import pandas, the models and
statsforecast through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forecasting._result import DEFAULT_QUANTILES, Forecast, ForecastUnavailable, Repair
    from forecasting.calibration import CalibratedEngine, QuantileCalibrator
    from forecasting.cleaning import CleanedSeries, clean_series, fill_for_fit, infer_step
    from forecasting.engine import ForecastEngine
    from forecasting.errors import ForecastingError, ModelUnavailableError, UnusableSeriesError
    from forecasting.models import MODEL_NAMES, ModelOptions
    from forecasting.selection import Selection, SelectionStore

_EXPORTS: dict[str, str] = {
    "DEFAULT_QUANTILES": "forecasting._result",
    "Forecast": "forecasting._result",
    "ForecastUnavailable": "forecasting._result",
    "Repair": "forecasting._result",
    "CalibratedEngine": "forecasting.calibration",
    "QuantileCalibrator": "forecasting.calibration",
    "CleanedSeries": "forecasting.cleaning",
    "clean_series": "forecasting.cleaning",
    "fill_for_fit": "forecasting.cleaning",
    "infer_step": "forecasting.cleaning",
    "ForecastEngine": "forecasting.engine",
    "ForecastingError": "forecasting.errors",
    "ModelUnavailableError": "forecasting.errors",
    "UnusableSeriesError": "forecasting.errors",
    "MODEL_NAMES": "forecasting.models",
    "ModelOptions": "forecasting.models",
    "Selection": "forecasting.selection",
    "SelectionStore": "forecasting.selection",
}

__all__ = [
    "DEFAULT_QUANTILES",
    "MODEL_NAMES",
    "CalibratedEngine",
    "CleanedSeries",
    "Forecast",
    "ForecastEngine",
    "ForecastUnavailable",
    "ForecastingError",
    "ModelOptions",
    "ModelUnavailableError",
    "QuantileCalibrator",
    "Repair",
    "Selection",
    "SelectionStore",
    "UnusableSeriesError",
    "clean_series",
    "fill_for_fit",
    "infer_step",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forecasting' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
