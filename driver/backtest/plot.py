"""A picture of a backtest: demand, each strategy's serving capacity, and where it fell short.

The top panel draws demand and, per strategy, the most demand its serving instances handle within
the SLO over the whole scored period; the middle panel zooms on the worst day (the 24 hours
with the most under-provisioned minutes, summed over the strategies) at full resolution, where a
week of minute data is readable; the bottom panel marks each strategy's under-provisioned minutes
on its own row, so a person sees at a glance which strategy ran short, when, and at what cost
(in the legend).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit needed

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from driver.backtest.simulator import BacktestResult
from driver.backtest.sweep import SweepResult

__all__ = ["backtest_figure", "plot_backtest", "plot_frontiers", "worst_day"]

logger = logging.getLogger(__name__)

_COLOURS = {
    "reactive": "#d62728",
    "scheduled-predictive": "#ff7f0e",
    "static-peak": "#7f7f7f",
    "mirrorcast": "#1f77b4",
    "oracle": "#2ca02c",
}


def plot_backtest(result: BacktestResult, path: str | Path, *, max_points: int = 4000) -> Path:
    """Draw the backtest's scored part into a PNG (:func:`backtest_figure`).

    :param result: the backtest to draw.
    :param path: the PNG file to write (parent directories must exist).
    :param max_points: most points per line; longer series are averaged per bucket, with the
        bucket's demand peak drawn as a grey band so short spikes stay visible (default 4000).
    :returns: the path written.
    """
    path = Path(path)
    figure = backtest_figure(result, max_points=max_points)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    logger.info("backtest plot written to %s", path)
    return path


def worst_day(result: BacktestResult, *, minutes: int = 1440) -> tuple[int, int]:
    """``(first, last)`` scored-minute offsets of the ``minutes`` with the most shortfall.

    Shortfall is summed over every strategy but the oracle (which never runs short by
    construction); a period shorter than a day is returned whole.
    """
    start = result.score_start
    length = len(result.demand) - start
    if length <= minutes:
        return 0, length
    total = np.zeros(length)
    for name, run in result.runs.items():
        if name != "oracle":
            total += result.model.underprovisioned(result.demand, run.record)[start:]
    if not total.any():
        peak = int(np.nanargmax(np.nan_to_num(result.demand[start:], nan=-np.inf)))
        first = min(max(0, peak - minutes // 2), length - minutes)
        return first, first + minutes
    window = np.convolve(total, np.ones(minutes), mode="valid")
    first = int(np.argmax(window))
    return first, first + minutes


def backtest_figure(result: BacktestResult, *, max_points: int = 4000) -> plt.Figure:
    """The figure :func:`plot_backtest` writes: whole period, worst-day zoom, shortfall lane."""
    start = result.score_start
    index = pd.DatetimeIndex(result.trace.demand.index[start:])
    demand = result.demand[start:]
    bucket = max(1, int(np.ceil(len(demand) / max_points)))

    def reduce(values: np.ndarray, how: str) -> np.ndarray:
        usable = len(values) // bucket * bucket
        if bucket == 1 or usable == 0:
            return values
        shaped = values[:usable].reshape(-1, bucket)
        # All-gap buckets give NaN (drawn as breaks), which numpy warns about: expected here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmax(shaped, axis=1) if how == "max" else np.nanmean(shaped, axis=1)

    times = index[: len(demand) // bucket * bucket : bucket] if bucket > 1 else index
    names = list(result.runs)
    figure, (top, zoom, bottom) = plt.subplots(
        3,
        1,
        figsize=(14, 11),
        gridspec_kw={"height_ratios": [2.2, 2.2, max(1.0, 0.35 * len(names))]},
    )
    bottom.sharex(top)
    if bucket > 1:
        top.fill_between(
            times,
            0,
            reduce(demand, "max"),
            color="#cccccc",
            linewidth=0,
            label=f"demand, peak per {bucket} min",
        )
    top.plot(times, reduce(demand, "mean"), color="black", linewidth=0.8, label="demand")
    for name in names:
        run = result.runs[name]
        servable = result.model.servable(run.record)[start:]
        servable = np.where(np.isnan(demand), np.nan, servable)  # gaps are not scored
        score = run.score
        label = (
            f"{name}: {score.underprovisioned_minutes} short min, "
            f"{score.instance_hours:,.0f} inst-h"
        )
        top.plot(
            times,
            reduce(servable, "mean"),
            color=_COLOURS.get(name),
            linewidth=1.0,
            alpha=0.8,
            drawstyle="steps-post",
            label=label,
        )
    peak = np.nanmax(demand) if np.isfinite(demand).any() else 1.0
    top.set_ylim(0, peak * 1.6)
    top.set_ylabel(f"demand ({result.trace.value_column})")
    top.set_title(
        f"{result.trace.name}: demand and capacity serving within the SLO "
        f"({result.scored_minutes:,} scored minutes, instance = {result.model.instance_capacity:.3g})"
    )
    top.legend(loc="upper left", fontsize=8, ncol=2)
    top.grid(alpha=0.3)

    first, last = worst_day(result)
    top.axvspan(index[first], index[last - 1], color="#ffd54f", alpha=0.25, label=None)
    day = slice(first, last)
    zoom.plot(index[day], demand[day], color="black", linewidth=0.9, label="demand")
    for name in names:
        run = result.runs[name]
        servable = result.model.servable(run.record)[start:]
        short = result.model.underprovisioned(result.demand, run.record)[start:]
        zoom.plot(
            index[day],
            servable[day],
            color=_COLOURS.get(name),
            linewidth=1.0,
            alpha=0.85,
            drawstyle="steps-post",
            label=f"{name}: {int(short[day].sum())} short min this day",
        )
    zoom.set_ylim(0, (np.nanmax(demand[day]) if np.isfinite(demand[day]).any() else 1.0) * 1.6)
    zoom.set_ylabel(f"demand ({result.trace.value_column})")
    zoom.set_title(
        f"worst day: {index[first]:%Y-%m-%d %H:%M} to {index[last - 1]:%Y-%m-%d %H:%M} "
        "(most under-provisioned minutes; shaded above), every minute",
        fontsize=10,
    )
    zoom.legend(loc="upper left", fontsize=8, ncol=2)
    zoom.grid(alpha=0.3)
    zoom_locator = mdates.AutoDateLocator()
    zoom.xaxis.set_major_locator(zoom_locator)
    zoom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(zoom_locator))

    gaps = np.isnan(demand)
    for row, name in enumerate(names):
        run = result.runs[name]
        short = result.model.underprovisioned(result.demand, run.record)[start:]
        marks = index[short]
        bottom.scatter(
            marks,
            np.full(len(marks), row),
            marker="|",
            s=120,
            color=_COLOURS.get(name, "C0"),
        )
    if gaps.any():
        bottom.scatter(
            index[gaps],
            np.full(int(gaps.sum()), -1),
            marker="|",
            s=60,
            color="#bbbbbb",
        )
    bottom.set_yticks(
        [-1, *range(len(names))] if gaps.any() else list(range(len(names))),
        ["gap (not scored)", *names] if gaps.any() else names,
    )
    bottom.set_ylim(-1.5 if gaps.any() else -0.5, len(names) - 0.5)
    bottom.set_title("under-provisioned minutes", fontsize=10)
    bottom.grid(axis="x", alpha=0.3)
    locator = mdates.AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    figure.tight_layout()
    return figure


def plot_frontiers(sweep: SweepResult, path: str | Path) -> Path:
    """Draw each strategy's cost/shortfall frontier (``backtest --sweep``) into a PNG.

    Every setting is a dot (instance-hours, under-provisioned minutes); the efficient ones are
    joined into the strategy's frontier, its configured operating point is ringed, and the
    reference strategies (static-peak, oracle) are single crosses. Lower and further left is
    better: the curve nearest the origin buys the fewest short minutes for the money.

    :returns: the path written.
    """
    path = Path(path)
    figure, axes = plt.subplots(figsize=(9, 6))
    for name, frontier in sweep.frontiers.items():
        colour = _COLOURS.get(name)
        xs = [p.instance_hours for p in frontier.points]
        ys = [p.underprovisioned_minutes for p in frontier.points]
        axes.scatter(xs, ys, s=14, color=colour, alpha=0.5)
        efficient = frontier.efficient()
        ratio = sweep.same_money_ratio(name)
        label = name
        if ratio is not None and name != "reactive":
            shown = f"{ratio.ratio:.2f}" if np.isfinite(ratio.ratio) else "inf"
            label += (
                f" (same-money ratio {shown}{'' if ratio.bound == 'exact' else ', ' + ratio.bound})"
            )
        axes.plot(
            [p.instance_hours for p in efficient],
            [p.underprovisioned_minutes for p in efficient],
            color=colour,
            linewidth=1.5,
            marker="o",
            markersize=4,
            label=label,
        )
        default = frontier.default
        if default is not None:
            axes.scatter(
                [default.instance_hours],
                [default.underprovisioned_minutes],
                s=140,
                facecolors="none",
                edgecolors=colour,
                linewidths=2,
            )
    for name, point in sweep.references.items():
        axes.scatter(
            [point.instance_hours],
            [point.underprovisioned_minutes],
            marker="x",
            s=80,
            color=_COLOURS.get(name, "black"),
            label=f"{name}: {point.underprovisioned_minutes} short min",
        )
    axes.set_xlabel("running instance-hours")
    axes.set_ylabel("under-provisioned minutes")
    axes.set_title(
        f"{sweep.trace.name}: cost/shortfall frontiers ({sweep.scored_minutes:,} scored minutes; "
        "ringed: configured setting)",
        fontsize=10,
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    logger.info("frontier plot written to %s", path)
    return path
