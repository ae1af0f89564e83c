"""From prediction intervals to the quantiles the rules read.

Every model family reports central intervals ``lo-L``/``hi-L`` at levels ``L`` (native model
intervals, or conformal intervals from past errors when the model has none). A percentile
``q > 50`` is the upper end of the ``2q - 100`` interval, ``q < 50`` the lower end of the
``100 - 2q`` interval, ``p50`` the point forecast. Quantiles are then made monotone, because
intervals from separately fitted levels (conformal in particular) can cross by a hair and a rule
on ``p90`` must never see a lower value than one on ``p80``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["COVERAGE_LEVELS", "levels_for", "monotone", "quantiles_from_frame"]

logger = logging.getLogger(__name__)

COVERAGE_LEVELS: tuple[int, ...] = (80, 95)
"""Interval levels whose empirical coverage model selection and evaluation report."""


def _level(q: int) -> int:
    return abs(2 * q - 100)


def levels_for(quantiles: Iterable[int], *, extra: Iterable[int] = COVERAGE_LEVELS) -> list[int]:
    """Interval levels a model must produce so that every percentile can be read off.

    :param quantiles: percentiles 1-99 (50 needs no interval).
    :param extra: more levels to produce, default :data:`COVERAGE_LEVELS` (for coverage scores).
    """
    wanted = {_level(q) for q in quantiles if q != 50} | set(extra)
    return sorted(level for level in wanted if 0 < level < 100)


def monotone(
    quantiles: Mapping[int, npt.NDArray[np.float64]],
) -> dict[int, npt.NDArray[np.float64]]:
    """Make curves non-decreasing in the percentile at every timestamp (running maximum).

    :param quantiles: percentile -> curve, all curves of the same length.
    """
    order = sorted(quantiles)
    stacked = np.vstack([np.asarray(quantiles[q], dtype=float) for q in order])
    fixed = np.maximum.accumulate(stacked, axis=0)
    return {q: fixed[i] for i, q in enumerate(order)}


def quantiles_from_frame(
    frame: pd.DataFrame | Mapping[str, npt.ArrayLike],
    *,
    model: str,
    quantiles: Sequence[int],
    floor: float | None = 0.0,
) -> tuple[npt.NDArray[np.float64], dict[int, npt.NDArray[np.float64]]]:
    """The point forecast and monotone percentile curves of ``model`` from a forecast frame.

    :param frame: rows of one series in time order, with the columns ``model`` and
        ``model-lo-L``/``model-hi-L`` as statsforecast, mlforecast and neuralforecast name them
        (a frame, or a mapping of column name to values).
    :param model: the model's column name.
    :param quantiles: the percentiles wanted.
    :param floor: default ``0.0``: values below it are raised to it (demand is non-negative);
        ``None`` for no floor.
    :raises KeyError: when the frame lacks an interval a percentile needs (a programming error:
        the levels passed to the model come from :func:`levels_for`).
    """
    mean = np.asarray(frame[model], dtype=float)
    curves: dict[int, npt.NDArray[np.float64]] = {}
    for q in quantiles:
        if q == 50:
            curves[q] = mean.copy()
            continue
        side = "hi" if q > 50 else "lo"
        curves[q] = np.asarray(frame[f"{model}-{side}-{_level(q)}"], dtype=float)
    if floor is not None:
        mean = np.maximum(mean, floor)
        curves = {q: np.maximum(v, floor) for q, v in curves.items()}
    return mean, monotone(curves)
