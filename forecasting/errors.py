"""Errors the prediction engine raises for input a person has to fix.

Every message names the series (``pool.metric``) or the file and says what is wrong, so the
CLI and the driver can print it as is, without a traceback.
"""

from __future__ import annotations

from infra.config import UserError

__all__ = ["ForecastingError", "ModelUnavailableError", "UnusableSeriesError"]


class ForecastingError(UserError):
    """Base class of the errors of :mod:`forecasting` that a user can act on."""


class UnusableSeriesError(ForecastingError):
    """A metric series cannot be forecast: too short, all missing, or not numbers over time.

    :param series: the series name, ``pool.metric`` (or a file and column for traces).
    :param reason: one sentence saying what is wrong and, where possible, where.
    """

    def __init__(self, series: str, reason: str) -> None:
        self.series = series
        self.reason = reason
        super().__init__(f"series {series}: {reason}")


class ModelUnavailableError(ForecastingError):
    """A configured model name is unknown, or its optional dependency is not installed.

    :param model: the model name as configured.
    :param reason: what to do about it.
    """

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"model {model!r}: {reason}")
