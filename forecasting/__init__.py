"""The prediction engine: cleaning, models, selection, probabilistic forecasts.

Import from here::

    from forecasting import ForecastEngine, Forecast, clean_series
"""

from forecasting._result import DEFAULT_QUANTILES, Forecast, ForecastUnavailable, Repair
from forecasting.calibration import CalibratedEngine, QuantileCalibrator
from forecasting.cleaning import CleanedSeries, clean_series, fill_for_fit, infer_step
from forecasting.engine import ForecastEngine
from forecasting.errors import ForecastingError, ModelUnavailableError, UnusableSeriesError
from forecasting.models import MODEL_NAMES, ModelOptions
from forecasting.selection import Selection, SelectionStore

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
