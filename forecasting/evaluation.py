"""Accuracy measures and the rolling-origin scoring that model selection and the CLI share.

MASE scales a model's mean absolute error by the in-sample error of the seasonal-naive
forecast on the training history, so ``< 1`` means better than "same time yesterday" would
have been in the past and scores are comparable across series of any unit. Interval coverage
is the share of actual values inside the 80% and 95% intervals (ideally 0.80 and 0.95).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "coverage",
    "mase",
    "mase_scale",
    "score_cross_validation",
    "smape",
    "weighted_quantile_loss",
]

logger = logging.getLogger(__name__)


def mase_scale(train: npt.ArrayLike, *, season: int) -> float:
    """In-sample mean absolute error of the seasonal-naive forecast (lag ``season``; lag 1 if too short).

    :param train: the training history, gap-free.
    :param season: season length in steps.
    """
    y = np.asarray(train, dtype=float)
    lag = season if 1 <= season < len(y) else 1
    diffs = np.abs(y[lag:] - y[:-lag])
    scale = float(np.nanmean(diffs)) if len(diffs) else 0.0
    if not np.isfinite(scale) or scale <= 0:
        # A flat history: any error is infinitely worse than none; keep it finite and huge so
        # the comparison with the baseline (which is exact on a flat series) still works.
        return float(np.finfo(float).eps)
    return scale


def mase(actual: npt.ArrayLike, predicted: npt.ArrayLike, *, scale: float) -> float:
    """Mean absolute error divided by ``scale`` (from :func:`mase_scale`)."""
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    return float(np.nanmean(np.abs(a - p)) / scale)


def smape(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Symmetric mean absolute percentage error in percent (0-200); points where both are 0 count as 0."""
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    denominator = np.abs(a) + np.abs(p)
    ratio = np.divide(2 * np.abs(a - p), denominator, out=np.zeros_like(a), where=denominator > 0)
    return float(100 * np.nanmean(ratio))


def coverage(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share of ``actual`` values inside ``[lower, upper]``."""
    a = np.asarray(actual, dtype=float)
    inside = (a >= np.asarray(lower, dtype=float)) & (a <= np.asarray(upper, dtype=float))
    return float(np.mean(inside))


def score_cross_validation(
    cv: pd.DataFrame, *, models: Sequence[str], scales: Mapping[str, float]
) -> dict[str, dict[str, dict[str, float]]]:
    """Scores of each model on each series from a cross-validation frame.

    :param cv: ``unique_id, ds, cutoff, y`` and per model ``<m>``, ``<m>-lo-80``, ``<m>-hi-80``,
        ``<m>-lo-95``, ``<m>-hi-95``.
    :param models: the model columns to score.
    :param scales: MASE scale per ``unique_id`` (from :func:`mase_scale` on the training history).
    :returns: ``{unique_id: {model: {"mase", "smape", "coverage_80", "coverage_95", "wql",
        "coverage_p2.5", "coverage_p10", "coverage_p50", "coverage_p90", "coverage_p97.5"}}}``:
        ``coverage_pQ`` is the share of actual values at or below the model's percentile ``Q``
        (the ends of its 80% and 95% intervals, and its point forecast as the median).
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for uid, group in cv.groupby("unique_id", sort=False):
        per_model: dict[str, dict[str, float]] = {}
        y = group["y"].to_numpy(dtype=float)
        for model in models:
            if model not in group.columns:
                continue
            scores = {
                "mase": mase(y, group[model], scale=scales[str(uid)]),
                "smape": smape(y, group[model]),
            }
            curves: dict[float, npt.ArrayLike] = {50.0: group[model]}
            for level in (80, 95):
                lo, hi = f"{model}-lo-{level}", f"{model}-hi-{level}"
                if lo in group.columns and hi in group.columns:
                    scores[f"coverage_{level}"] = coverage(y, group[lo], group[hi])
                    # A central interval's ends are the (100 - level) / 2 and (100 + level) / 2
                    # percentiles.
                    curves[(100 - level) / 2] = group[lo]
                    curves[(100 + level) / 2] = group[hi]
            scores["wql"] = weighted_quantile_loss(y, curves)
            for q, curve in sorted(curves.items()):
                scores[f"coverage_p{q:g}"] = float(np.mean(y <= np.asarray(curve, dtype=float)))
            per_model[model] = scores
        out[str(uid)] = per_model
    return out


def weighted_quantile_loss(actual: npt.ArrayLike, quantiles: Mapping[Any, npt.ArrayLike]) -> float:
    """The mean weighted quantile loss over the percentiles in ``quantiles``.

    For each percentile ``q`` (curve ``f``): ``2 * sum(pinball_q(y, f)) / sum(|y|)``, where the
    pinball loss is ``q/100 * (y - f)`` above the curve and ``(1 - q/100) * (f - y)`` below it;
    the mean over the percentiles (GluonTS's ``mean_wQuantileLoss``). 0 is perfect; scale-free.

    :param actual: the realised values.
    :param quantiles: percentile (0-100 exclusive) -> forecast curve, as long as ``actual``.
    """
    y = np.asarray(actual, dtype=float)
    total = float(np.sum(np.abs(y)))
    if not quantiles or not total > 0:
        return float("nan")
    losses = []
    for q, curve in quantiles.items():
        level = q / 100.0
        diff = y - np.asarray(curve, dtype=float)
        pinball = np.maximum(level * diff, (level - 1.0) * diff)
        losses.append(2.0 * float(np.sum(pinball)) / total)
    return float(np.mean(losses))
