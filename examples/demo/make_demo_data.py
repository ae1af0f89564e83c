"""Derive the demo stack's metrics (examples/demo/metrics.csv) from a real public trace.

    .venv/bin/python examples/demo/make_demo_data.py ../shared/data/traces

- ``rps``: 14 days (Mon 3 July 1995 14:00 UTC to Mon 17 July 1995 14:00 UTC) of NASA-HTTP
  requests per minute, summed to 5 minutes and divided by 300 seconds: mean requests per second
  in each 5 minutes. Values otherwise unchanged.
- ``cpu``: the utilisation those requests would cause on the demo pool's fleet, derived from
  ``rps``: ``100 * rps / (FLEET * PER_INSTANCE_CAPACITY)``, capped at 100 (a saturated fleet
  queues requests; its CPU cannot go higher). ``FLEET`` is the stack's ``capacity.desired`` (4)
  and ``PER_INSTANCE_CAPACITY`` its ``metrics.rps.per_instance_capacity`` (0.75 rps at 100%);
  both are demo choices, sized so that the weekday peaks of this 1995 traffic come near the
  demo rule's 80% threshold.

The window is shifted by a whole number of weeks to Mon 9 Nov 2026 14:00 UTC - Mon 23 Nov 2026
14:00 UTC, keeping weekday and time of day. It ends on a Monday just before the morning rise of
US traffic, so the demo's decision time (the end of the file) has a predictable peak ahead.
Gaps would stay gaps (this window has none); nothing is smoothed or filled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

TARGET_END = pd.Timestamp("2026-11-23T14:00:00Z")
"""End (exclusive) of the demo window: Monday 09:00 US Eastern, before the morning rise."""
DAYS = 14
TARGET_START = TARGET_END - pd.Timedelta(days=DAYS)
"""First instant of the demo window (Monday 9 Nov 2026 14:00 UTC)."""
RPS_FILE = Path("nasa_http/nasa_http_july1995_requests_per_minute.csv")
RPS_START = pd.Timestamp("1995-07-03T14:00:00Z")
"""First instant of the NASA excerpt (a Monday, like the demo window), in UTC."""
NASA_UTC_OFFSET = pd.Timedelta(hours=4)
"""The NASA trace is in local time, UTC-4 (EDT): add 4 hours for UTC."""
FLEET = 4
"""Instances serving the traffic: the demo stack's ``pools.web.primary.capacity.desired``."""
PER_INSTANCE_CAPACITY = 0.75
"""Requests per second one instance serves at 100% CPU: the demo stack's
``pools.web.metrics.rps.per_instance_capacity``."""


def _shift(start: pd.Timestamp) -> pd.Timedelta:
    shift = TARGET_START - start
    # Whole weeks keep the weekly cycle on the same weekdays.
    if shift % pd.Timedelta(weeks=1) != pd.Timedelta(0):
        raise ValueError(f"{start} is not a whole number of weeks before {TARGET_START}")
    return shift


def rps_series(traces: Path) -> pd.Series:
    """The demo's ``rps`` series (mean requests per second per 5 minutes), re-timestamped.

    :param traces: the shared traces folder holding ``nasa_http/``.
    """
    frame = pd.read_csv(traces / RPS_FILE)
    local = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"]))
    times = local.tz_localize("UTC") + NASA_UTC_OFFSET
    per_minute = pd.Series(frame["requests"].to_numpy(dtype=float), index=times)
    window = per_minute[(times >= RPS_START) & (times < RPS_START + pd.Timedelta(days=DAYS))]
    # min_count=1: a 5-minute bucket without any logged minute stays a gap, never zero demand.
    per_second = window.resample("5min").sum(min_count=1) / 300.0
    per_second.index = per_second.index + _shift(RPS_START)
    return per_second


def cpu_from_rps(
    rps: pd.Series, *, fleet: int = FLEET, per_instance_capacity: float = PER_INSTANCE_CAPACITY
) -> pd.Series:
    """CPU percent of a fixed fleet serving ``rps``, capped at 100 (gaps stay gaps).

    :param rps: requests per second.
    :param fleet: instances sharing the load; default :data:`FLEET`.
    :param per_instance_capacity: rps one instance serves at 100%; default
        :data:`PER_INSTANCE_CAPACITY`.
    """
    return (100.0 * rps / (fleet * per_instance_capacity)).clip(upper=100.0)


def build(traces: Path) -> pd.DataFrame:
    """The long-format demo table: timestamp, pool, metric, value.

    :param traces: the shared traces folder.
    """
    rps = rps_series(traces)
    parts = []
    for metric, series in (("cpu", cpu_from_rps(rps)), ("rps", rps)):
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    if not (args.traces / RPS_FILE).is_file():
        parser.error(f"{args.traces / RPS_FILE} not found; pass the traces folder")
    table = build(args.traces)
    table.to_csv(args.out, index=False)
    print(f"wrote {len(table)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
