"""The long soak: thousands of real driver cycles over a shared trace, faults injected at random.

    .venv/bin/python benchmarks/soak.py /work/shared/data/traces --cycles 3000 --seed 1

Runs the harness of ``tests/reliability/soak_harness.py`` (the same one the suite's short soak
runs): apply mode through the real ``pulumi.automation`` code and the Pulumi stand-in of the
driver's tests, the real forecasting engine, planner and SQLite journal, with the metric source
down or returning garbage, ``pulumi up`` locked / failing half way / timing out, and simulated
process kills at every step of a cycle. Prints the figures (cycles, faults per kind, restarts,
reconciled updates, activations against decisions) and every invariant violation; exits 1 if
there is one. Seeded: the same seed and trace give the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from soak_harness import make_project, run_soak  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_TRACE = "nab/realAWSCloudwatch/elb_request_count_8c0756.csv"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the soak, print its figures; 0 when nothing was lost or repeated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--cycles", type=int, default=2000, help="cycles to run (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="fault schedule seed (default 1)")
    parser.add_argument(
        "--trace",
        default=DEFAULT_TRACE,
        help=f"a NAB-layout CSV (timestamp,value) inside TRACES (default {DEFAULT_TRACE})",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.3, help="share of cycles with a fault (default 0.3)"
    )
    args = parser.parse_args(argv)
    trace = args.traces / args.trace
    if not trace.is_file():
        parser.error(f"no trace {trace}; give the shared traces folder and --trace inside it")
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mirrorcast-soak-") as scratch:
        os.environ["MIRRORCAST_STATE_DIR"] = str(Path(scratch) / "state")
        os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "soak-passphrase")
        root = make_project(Path(scratch) / "project", trace)
        report, journal, _cli = run_soak(
            root, cycles=args.cycles, seed=args.seed, fault_rate=args.fault_rate
        )
        journal.close()
    print(f"trace {args.trace}")
    print("\n".join(report.lines()))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
