"""Where a primary outage's minutes go: the NASA one-hour outage under realistic cloud timings.

Usage (from the project root)::

    .venv/bin/python benchmarks/outage_timing.py ../shared/data/traces

Takes the outage ``benchmarks/backtest_bench.py`` measures (the primary's region out for an hour
from 14:00 local time of the second scored day of NASA HTTP, first 10 days of the trace) and
runs the built-in stack's mirrorcast (with its region-failover rule) under each timing: the warm
mirror's start (1-2 min), the DNS TTL (60 s, 300 s), the primary's cold start (5-10 min) and the
decision-to-effect time (`pulumi up`, 2-4 min), each with and without ``driver.health_watch``.
A single-region ``reactive`` pool loses every minute of the outage (run once for the baseline).
It prints one line per run: short minutes during the outage and the share of the single-region
pool's lost minutes served.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from backtest_bench import HISTORY, OUTAGE_AFTER

from driver.backtest import BacktestSettings, CloudTiming, load_trace, run_backtest
from driver.backtest.stack import build_strategies, load_backtest_stack
from infra.config import MirrorcastConfig

NASA = Path("nasa_http/nasa_http_july1995_requests_per_minute.csv")
TIMINGS = {
    "defaults (mirror 2m, TTL 60s, primary 5m, up 2m)": CloudTiming(),
    "warm mirror 1m": CloudTiming(mirror_ready=timedelta(minutes=1)),
    "DNS TTL 300s": CloudTiming(dns_ttl=timedelta(seconds=300)),
    "primary cold start 10m": CloudTiming(primary_ready=timedelta(minutes=10)),
    "pulumi up 4m": CloudTiming(actuation_delay=timedelta(minutes=4)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--max-days", type=float, default=10.0, help="days of the trace (10)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.simplefilter("ignore")
    trace = load_trace(args.traces / NASA).head(int(args.max_days * 1440))
    stack = load_backtest_stack(None)
    data = stack.config.model_dump(mode="json", by_alias=True)
    data["driver"]["health_watch"] = None
    unwatched = replace(stack, config=MirrorcastConfig.model_validate(data))
    start = trace.start + HISTORY + OUTAGE_AFTER
    base = BacktestSettings(
        history=HISTORY,
        max_instances=stack.config.pools[stack.pool].primary.capacity.max,
        outage=(start, timedelta(hours=1)),
    )
    reactive = run_backtest(trace, build_strategies(["reactive"], stack=stack), settings=base)
    lost = reactive.runs["reactive"].extra["outage_underprovisioned_minutes"]
    print(f"outage from {start:%Y-%m-%d %H:%M} UTC; single-region reactive: {lost} of 60 short")
    for label, timing in TIMINGS.items():
        settings = replace(base, timing=timing)
        for watch, which in (("health watch 1m", stack), ("no watch", unwatched)):
            run = run_backtest(
                trace, build_strategies(["mirrorcast"], stack=which), settings=settings
            )
            short = run.runs["mirrorcast"].extra["outage_underprovisioned_minutes"]
            served = 1 - short / lost if lost else float("nan")
            print(f"{label}, {watch}: {short} of 60 short ({served:.0%} served)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
