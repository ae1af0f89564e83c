"""Coverage of the forecast as the driver makes it, on the shared traces.

Usage (from the project root)::

    .venv/bin/python benchmarks/forecast_as_driven.py ../shared/data/traces [--only NAME] [--max-days 14]

Runs ``forecasting.as_driven.evaluate_as_driven`` (the driver's engine: selection, trust,
calibration; one call per 5-minute cycle) with the driver's default ``forecast`` settings on each
NAB and NASA trace, truncated to ``--max-days`` (default 14) to stay bounded on a shared machine,
and prints one markdown row per trace: scored points, MASE, weighted quantile loss, the 80%
interval's (p10-p90) coverage and the p90's, against issue 15's targets (75-85% and 85-95% on
every trace with at least 300 scored points). The quantiles are scored against each step's
busiest observation (``calibration.target: peak``), as the planner uses them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

from forecasting.as_driven import evaluate_as_driven
from forecasting.errors import UnusableSeriesError
from forecasting.trace import read_trace_csv
from infra.config import ForecastSettings, MetricSpec

GROUPS = ("nab/realAWSCloudwatch", "nab/realKnownCause", "nab/realTweets", "nasa_http")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path)
    parser.add_argument("--only", default="", help="comma-separated parts of trace names")
    parser.add_argument("--max-days", type=float, default=14.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")
    wanted = [part for part in args.only.split(",") if part]
    print("| trace | points | MASE | wQL | p10-p90 coverage | p90 coverage | targets | s |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for group in GROUPS:
        for path in sorted((args.traces / group).glob("*.csv")):
            if wanted and not any(part in path.stem for part in wanted):
                continue
            series = read_trace_csv(path)
            if args.max_days:
                series = series[series.index <= series.index[0] + timedelta(days=args.max_days)]
            # CPU utilisation series are percentages; everything else is a count or a rate.
            unit = "percent" if "cpu" in path.stem.lower() else "count"
            started = time.perf_counter()
            try:
                result = evaluate_as_driven(
                    series, name=path.stem, settings=ForecastSettings(), spec=MetricSpec(unit=unit)
                )
            except UnusableSeriesError as exc:
                print(f"| {path.stem} | - | - | - | - | - | skipped: {exc.reason} | - |")
                continue
            interval, p90 = result.coverage_80 or 0.0, result.coverage[90]
            if result.scored_points >= 300:
                ok = [
                    ("✓ " if 0.75 <= interval <= 0.85 else "✗ ") + "80% interval",
                    ("✓ " if 0.85 <= p90 <= 0.95 else "✗ ") + "p90",
                ]
                verdict = ", ".join(ok)
            else:
                verdict = "fewer than 300 points"
            print(
                f"| {path.stem} | {result.scored_points} | {result.mase:.2f} | {result.wql:.3f} | "
                f"{interval:.2f} | {p90:.2f} | {verdict} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
