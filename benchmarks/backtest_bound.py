"""What a *perfect* 5-minute forecast could do: the bound behind the backtest's misses.

Usage (from the project root)::

    .venv/bin/python benchmarks/backtest_bound.py ../shared/data/traces [--max-days 10]
        [--only nasa]

Every strategy that acts once per 5-minute cycle sizes each step from one number per step. This
script gives such a strategy the best number it could ever have, the step's true mean demand
(known in advance, in effect at once, no boot time), and sizes capacity at ``k`` times it for
``k`` from 1.0 to 2.0, scoring exactly as the backtest does (a minute is short when demand
exceeds capacity at 80% utilisation; instance capacity = p95 of the 7-day history / 10). Next to
it: the same with the step's true *peak* minute, and the backtest's ``reactive`` and ``oracle``
(with the default stack's warm-mirror ready time, as in the benchmark) on the same minutes. Where even the perfect-mean strategy cannot reach 20% of reactive's
short minutes within 1.1x its instance-hours, no 5-minute forecaster can, and the misses in
docs/backtest.md are the trace's minute-level noise, not the model.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np

from driver.backtest import BacktestSettings, TraceError, load_trace, run_backtest
from driver.backtest.stack import load_backtest_stack
from driver.backtest.strategies import OracleStrategy, ReactiveStrategy

GROUPS = ("nab/realAWSCloudwatch", "nab/realKnownCause", "nab/realTweets", "nasa_http")
HISTORY = timedelta(days=7)
SLO = 0.8
FACTORS = (1.0, 1.1, 1.2, 1.3, 1.5, 1.7, 2.0)


def bound(path: Path, max_days: float) -> list[str]:
    """Lines of the bound table for one trace (empty when the trace is too short)."""
    trace = load_trace(path)
    if max_days:
        trace = trace.head(int(max_days * 1440))
    history = int(HISTORY.total_seconds() // 60)
    if trace.minutes <= history + 60:
        return []
    settings = BacktestSettings(history=HISTORY, max_instances=1000)
    stack = load_backtest_stack()
    oracle_strategy = OracleStrategy(mirror_ready=stack.config.pools[stack.pool].mirror_ready_time)
    result = run_backtest(trace, [ReactiveStrategy(), oracle_strategy], settings=settings)
    per_instance = result.model.instance_capacity * SLO
    demand = np.asarray(result.demand, dtype=float)[history:]
    usable = len(demand) // 5 * 5
    future = demand[:usable]
    steps = future.reshape(-1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-gap steps: mean of empty slice
        mean = np.repeat(np.nanmean(steps, axis=1), 5)
        peak = np.repeat(np.nanmax(steps, axis=1), 5)
    scored = ~np.isnan(future)
    reactive = result.runs["reactive"].score
    oracle = result.runs["oracle"].score
    lines = [
        f"{path.stem}: {int(scored.sum()):,} scored minutes; reactive {reactive.underprovisioned_minutes:,} "
        f"short / {reactive.instance_hours:,.1f} inst-h; oracle {oracle.instance_hours:,.1f} inst-h",
    ]
    for label, level in (("mean", mean), ("peak", peak)):
        cells = []
        for k in FACTORS:
            capacity = np.ceil(np.nan_to_num(k * level) / per_instance)
            short = int(np.sum(scored & (future > capacity * per_instance + 1e-9)))
            hours = float(np.sum(capacity[scored])) / 60
            cells.append(
                f"x{k:g}: {short:,} / {hours:,.0f} ({hours / reactive.instance_hours:.2f}x)"
            )
        lines.append(f"  perfect step {label}: " + "; ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument(
        "--max-days", type=float, default=10.0, help="truncate each trace (default 10; 0: whole)"
    )
    parser.add_argument("--only", default="", help="only traces whose name contains this")
    args = parser.parse_args(argv)
    if not args.traces.is_dir():
        print(f"error: {args.traces} is not a directory (give the shared traces folder)")
        return 2
    print("short minutes / instance-hours (x reactive's) when each 5-minute step is sized at")
    print(f"k x its TRUE mean (or peak) at {SLO:.0%} utilisation, in effect at once:\n")
    for group in GROUPS:
        for path in sorted((args.traces / group).glob("*.csv")):
            if args.only not in path.stem:
                continue
            try:
                lines = bound(path, args.max_days)
            except TraceError as exc:
                print(f"{path.stem}: skipped ({exc})")
                continue
            print("\n".join(lines) if lines else f"{path.stem}: shorter than the history")
    return 0


if __name__ == "__main__":
    sys.exit(main())
