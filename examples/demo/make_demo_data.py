"""Derive the demo stack's metrics (examples/demo/metrics.csv) from two real public traces.

    .venv/bin/python examples/demo/make_demo_data.py ../shared/data/traces

- ``cpu``: 14 days (Mon 2 - Sun 15 June 2014) of an AWS auto scaling group's CPU from NAB
  ``realKnownCause/cpu_utilization_asg_misconfiguration.csv``, well before its labelled
  misconfiguration episode (10-15 July 2014). Values unchanged (percent).
- ``rps``: 14 days (Mon 3 - Sun 16 July 1995, UTC) of NASA-HTTP requests per minute, summed to
  5 minutes and divided by 300 seconds: mean requests per second in each 5 minutes.

Both are shifted by a whole number of weeks so that they share one window, Mon 9 Nov 2026 00:00
UTC to Mon 23 Nov 2026 00:00 UTC, keeping weekday and time of day. Nothing else is changed: gaps
stay gaps and the NAB series keeps its own minute offsets.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

TARGET_START = pd.Timestamp("2026-11-09T00:00:00Z")
"""First instant of the demo window (a Monday, like both source windows)."""
DAYS = 14
CPU_FILE = Path("nab/realKnownCause/cpu_utilization_asg_misconfiguration.csv")
CPU_START = pd.Timestamp("2014-06-02T00:00:00Z")
RPS_FILE = Path("nasa_http/nasa_http_july1995_requests_per_minute.csv")
RPS_START = pd.Timestamp("1995-07-03T00:00:00Z")
NASA_UTC_OFFSET = pd.Timedelta(hours=4)
"""The NASA trace is in local time, UTC-4 (EDT): add 4 hours for UTC."""


def _shift(start: pd.Timestamp) -> pd.Timedelta:
    shift = TARGET_START - start
    # Whole weeks keep the weekly cycle on the same weekdays.
    if shift % pd.Timedelta(weeks=1) != pd.Timedelta(0):
        raise ValueError(f"{start} is not a whole number of weeks before {TARGET_START}")
    return shift


def cpu_series(traces: Path) -> pd.Series:
    """The demo's ``cpu`` series (percent), re-timestamped into the demo window."""
    frame = pd.read_csv(traces / CPU_FILE)
    times = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True))
    values = pd.Series(frame["value"].to_numpy(dtype=float), index=times)
    window = values[(times >= CPU_START) & (times < CPU_START + pd.Timedelta(days=DAYS))]
    window.index = window.index + _shift(CPU_START)
    return window


def rps_series(traces: Path) -> pd.Series:
    """The demo's ``rps`` series (mean requests per second per 5 minutes), re-timestamped."""
    frame = pd.read_csv(traces / RPS_FILE)
    local = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"]))
    times = local.tz_localize("UTC") + NASA_UTC_OFFSET
    per_minute = pd.Series(frame["requests"].to_numpy(dtype=float), index=times)
    window = per_minute[(times >= RPS_START) & (times < RPS_START + pd.Timedelta(days=DAYS))]
    # min_count=1: a 5-minute bucket without any logged minute stays a gap, never zero demand.
    per_second = window.resample("5min").sum(min_count=1) / 300.0
    per_second.index = per_second.index + _shift(RPS_START)
    return per_second


def build(traces: Path) -> pd.DataFrame:
    """The long-format demo table: timestamp, pool, metric, value."""
    parts = []
    for metric, series in (("cpu", cpu_series(traces)), ("rps", rps_series(traces))):
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": series.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "pool": "web",
                    "metric": metric,
                    "value": series.round(4).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "metric"], kind="stable")


def main(argv: list[str] | None = None) -> int:
    """Write metrics.csv next to this script from the traces folder given as argument."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "traces", type=Path, help="the shared traces folder (../shared/data/traces)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("metrics.csv"),
        help="output CSV (default: examples/demo/metrics.csv)",
    )
    args = parser.parse_args(argv)
    for needed in (CPU_FILE, RPS_FILE):
        if not (args.traces / needed).is_file():
            parser.error(f"{args.traces / needed} not found; pass the traces folder")
    table = build(args.traces)
    table.to_csv(args.out, index=False)
    print(f"wrote {len(table)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
