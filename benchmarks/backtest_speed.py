"""Backtest speed benchmark: the NASA HTTP trace through the mirrorcast strategy, now vs before.

Usage (from the project root)::

    .venv/bin/python benchmarks/backtest_speed.py ../shared/data/traces [--days 0] [--no-baseline]
    .venv/bin/python benchmarks/backtest_speed.py ../shared/data/traces --days 8.5 --sweep 50:60,95:80

Runs ``mirrorcast backtest``'s code with the built-in stack on
``nasa_http/nasa_http_july1995_requests_per_minute.csv`` (the 30-day trace of issue 6's speed
target: under 2 minutes on a 2-core machine) and prints, in one run:

* ``current``: all five strategies as ``mirrorcast backtest TRACE.csv`` runs them (the engine's
  defaults): wall seconds of the whole backtest, and the mirrorcast strategy's seconds and
  milliseconds per cycle;
* ``baseline``: the mirrorcast strategy with the engine's model selection as it was before
  28 Nov 2026 (every candidate refitted at every cross-validation origin, MSTL's STL smoothing
  at every point), on the same trace in the same process, so machine load affects both alike.
  Everything else (cleaning, the planner) is the current code in both rows.

With ``--sweep`` it times instead a sweep of those floor settings (one forecasting pass,
replayed to every setting) against each setting run alone with its own engine, and says whether
the points are identical.

Both rows also print the scores (under-provisioned minutes, instance-hours), the models the
engine used and its fit/update counts, so a speed-up that changed the decisions shows. Speed
goals are met here, never in timed unit tests.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from driver.backtest import STRATEGY_NAMES, BacktestSettings, load_trace, run_backtest
from driver.backtest.stack import (
    BacktestStack,
    build_strategies,
    default_engine,
    load_backtest_stack,
)
from driver.backtest.sweep import floor_strategy, run_sweep
from driver.backtest.trace import Trace
from forecasting import ForecastEngine
from forecasting.models import ModelOptions
from infra.config import MirrorcastConfig

logger = logging.getLogger("backtest_speed")

TRACE = Path("nasa_http") / "nasa_http_july1995_requests_per_minute.csv"


def _baseline_engine(config: MirrorcastConfig) -> Any:
    """The default engine with the selection of before: refit at every origin, every-point STL."""
    engine = default_engine(config)
    # Whatever wraps the engine by default (online calibration) stays, so only selection differs.
    inner = getattr(engine, "engine", engine)
    if not isinstance(inner, ForecastEngine):
        raise TypeError(f"the default engine is a {type(inner).__name__}, not a ForecastEngine")
    inner.options = ModelOptions(loess_jumps=False)
    inner.cv_refit_every_origin = True
    return engine


def _run(
    label: str, *, trace: Trace, stack: BacktestStack, strategies: list[str], baseline: bool
) -> str:
    built = build_strategies(
        strategies, stack=stack, engine_factory=_baseline_engine if baseline else None
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_backtest(trace, built, settings=BacktestSettings())
    wall = time.perf_counter() - started
    # CPU time beside wall time: on the shared machine a run waits for a core much of its wall
    # time, while its CPU time is what it takes with a core to itself (one thread computes).
    cpu = time.process_time() - cpu_started
    run = result.runs["mirrorcast"]
    cycles = int(run.extra["cycles"])
    engine = next(p for p in built if p.name == "mirrorcast").engine  # type: ignore[attr-defined]
    score = run.score.as_dict()
    return (
        f"{label:<10}{wall:>9.1f}{cpu:>8.1f}{run.seconds:>12.1f}{1000 * run.seconds / cycles:>10.1f}"
        f"{cycles:>8}{score['underprovisioned_minutes']:>8}{score['instance_hours']:>11.1f}"
        f"{engine.fits:>6}{engine.updates:>8}  {run.extra['models']}"
    )


def _sweep_rows(*, trace: Trace, stack: BacktestStack, floors: str) -> list[str]:
    """A sweep of the floor settings ``floors`` against the same settings run the slow way.

    The sweep (``run_sweep``, reactive at its default target only) forecasts each cycle once
    and replays the forecasts to every floor setting; the slow way runs each setting as its own
    backtest with its own engine. Both must give the same points.
    """
    pairs = [tuple(int(v) for v in item.split(":")) for item in floors.split(",") if item]
    settings = BacktestSettings()
    started, cpu_started = time.perf_counter(), time.process_time()
    sweep = run_sweep(
        trace,
        stack=stack,
        settings=settings,
        strategies=("mirrorcast",),
        targets=(60,),
        quantiles=tuple(sorted({q for q, _ in pairs})),
        utilisations=tuple(sorted({u for _, u in pairs})),
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    points = sweep.frontiers["mirrorcast"].points
    rows = [f"{'sweep':<22}{wall:>9.1f}{cpu:>8.1f}{len(points):>10}"]
    started, cpu_started = time.perf_counter(), time.process_time()
    same = True
    for point in points:
        strategy = floor_strategy(stack, point.knobs)
        score = run_backtest(trace, [strategy], settings=settings).runs["mirrorcast"].score
        same &= (score.underprovisioned_minutes, score.instance_hours) == (
            point.underprovisioned_minutes,
            point.instance_hours,
        )
    slow_wall, slow_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rows.append(f"{'each setting alone':<22}{slow_wall:>9.1f}{slow_cpu:>8.1f}{len(points):>10}")
    rows.append(
        f"slow / sweep: {slow_wall / wall:.2f}x wall, {slow_cpu / cpu:.2f}x cpu; "
        f"points {'identical' if same else 'DIFFER'}"
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces directory")
    parser.add_argument(
        "--days",
        type=float,
        default=0,
        help="truncate the trace to its first N days (7 are history); default 0: whole trace",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the baseline row (halves the run time)"
    )
    parser.add_argument(
        "--sweep",
        default="",
        metavar="Q:U,...",
        help="instead: time a sweep of these floor settings (quantile:utilisation, crossed, plus "
        "the stack's own) against each setting run alone with its own engine, e.g. 50:60,95:80",
    )
    args = parser.parse_args(argv)
    if not (args.traces / TRACE).is_file():
        print(f"error: {args.traces / TRACE} not found; pass the shared traces directory")
        return 2
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    # Import the model libraries before timing, so neither row pays their import (~2.5 s).
    import statsforecast.models  # noqa: F401

    span = "whole trace" if not args.days else f"first {args.days:g} days"
    print(f"trace: {TRACE} ({span}), built-in backtest stack, 5-minute cycles")
    print(
        f"{'run':<10}{'wall s':>9}{'cpu s':>8}{'strategy s':>12}{'ms/cycle':>10}{'cycles':>8}{'short':>8}"
        f"{'inst-h':>11}{'fits':>6}{'updates':>8}  models (cycles)"
    )
    # Both rows run the same trace and stack, loaded once.
    trace = load_trace(args.traces / TRACE)
    if args.days:
        trace = trace.head(int(args.days * 1440))
    stack = load_backtest_stack()
    if args.sweep:
        print(f"{'run':<22}{'wall s':>9}{'cpu s':>8}{'settings':>10}")
        for row in _sweep_rows(trace=trace, stack=stack, floors=args.sweep):
            print(row, flush=True)
        return 0
    print(
        _run("current", trace=trace, stack=stack, strategies=list(STRATEGY_NAMES), baseline=False),
        flush=True,
    )
    if not args.no_baseline:
        print(
            _run("baseline", trace=trace, stack=stack, strategies=["mirrorcast"], baseline=True),
            flush=True,
        )
    print(
        "wall s / cpu s: the whole backtest's wall and CPU time (current: all five strategies; "
        "baseline: mirrorcast only); "
        "strategy s / ms/cycle: the mirrorcast strategy; short: its under-provisioned minutes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
