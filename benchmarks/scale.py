"""Scale: one driver process handling a 200-pool stack, and a fleet of 50 stacks, per cycle interval.

    .venv/bin/python benchmarks/scale.py /work/shared/data/traces [--pools 200] [--stacks 50]
        [--selections-per-cycle N] [--warm N] [--only stack|fleet]

Builds, in a temp dir, (a) one stack with ``--pools`` pools and (b) ``--stacks`` stacks of
``--pools-per-stack`` pools each, every pool with a CPU series of 14 days at 5 minutes cut from
the real NAB CloudWatch traces in TRACES (shifted and rescaled per pool so no two are equal),
``--models`` as ``forecast.models`` (default the benchmark's fleet-affordable list) and the
demo's two rules. Then runs real driver cycles (real forecasting engine, planner and SQLite
journal) in plan mode by default: mirrorcast's own cycle, collection to plan. ``--mode apply``
adds the Automation API path against the driver tests' in-process Pulumi CLI stand-in (whose
YAML round trip of the stack file is most of that cost, and not mirrorcast's; a real
``pulumi up`` is the cloud's). Prints the wall time of a cold cycle (model selection for every
series, once a day by default) and of warm cycles (cached model choices and kept fits) next to
the 5-minute interval, the process's peak RSS per series, and how often each stack file was
parsed. Each cycle's line says how many series the collection returned (a cut-off collection
is what once made the first warm cycle 7x the second: the series it missed were selected
then) and how many were forecast on the flagged fallback because ``--selections-per-cycle``
(``forecast.selections_per_cycle``) deferred their selection: with a budget, the cold cycle is
the cold start's first decision for every pool.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from soak_harness import Faults, KillableCli  # noqa: E402

from driver.automation import AutomationExecutor  # noqa: E402
from driver.executor import Executor, PlanExecutor  # noqa: E402
from driver.journal import Journal  # noqa: E402
from driver.observe import DriverMetrics  # noqa: E402
from driver.service import Driver  # noqa: E402
from forecasting import ForecastEngine  # noqa: E402
from infra.config import load_stack  # noqa: E402

logger = logging.getLogger(__name__)

INTERVAL_S = 300.0
PRODUCTION_MODELS = ["seasonal_naive", "naive", "ses", "seasonal_window_average"]
"""The fleet-affordable candidates of ``benchmarks/forecast_bench.py`` (see docs/forecasting.md)."""
END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AHEAD = 12
"""Points after the cold cycle's ``now``, so every warm cycle sees fresh data."""
POINTS = 14 * 288 + AHEAD

_HEAD = """\
config:
  aws:region: us-east-1
  mirrorcast:tags: {{cost-center: scale}}
  mirrorcast:metrics: {{type: file, path: metrics.csv}}
  mirrorcast:forecast: {{horizon: 1h, history: 14d, models: [{models}]{budgets}}}
  mirrorcast:driver: {{mode: apply, interval: 5m}}
  mirrorcast:pools:
"""
_POOL = """\
    {name}:
      primary:
        cloud: aws
        region: us-east-1
        machine_type: t3.medium
        app: {{version: 1.0.0, images: {{aws: ami-0a1b2c3d4e5f60718}}}}
        capacity: {{min: 2, max: 20, desired: 4}}
        network: {{vpc_id: vpc-0123456789abcdef0, subnet_ids: [subnet-0aa11bb22cc33dd44]}}
      mirror: {{percent: 50, state: paused}}
      balancer: {{kind: alb}}
      metrics: {{cpu: {{unit: percent}}}}
      rules:
        - name: predicted-cpu
          when: predicted(cpu, p90) > 80% within 30m
          weight: 10
          actions: [{{type: activate_mirror}}, {{type: shift_weights, mirror: 30}}]
        - name: cpu-now
          when: current(cpu) > 90% for 5m
          weight: 5
          actions: [{{type: activate_mirror}}, {{type: shift_weights, mirror: 50, ramp: {{mode: immediate}}}}]
"""


def _series(traces: Path) -> list[np.ndarray]:
    folder = traces / "nab" / "realAWSCloudwatch"
    out = []
    for path in sorted(folder.glob("*.csv")):
        values = pd.read_csv(path)["value"].to_numpy(dtype=float)
        if len(values) >= 14 * 288:
            out.append(values)
    if not out:
        raise SystemExit(f"no NAB CloudWatch series of 14 days under {folder}")
    return out


def _metrics(names: list[str], series: list[np.ndarray]) -> pd.DataFrame:
    stamps = pd.date_range(
        end=END + timedelta(minutes=5 * AHEAD), periods=POINTS, freq="5min", tz="UTC"
    )
    columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(names):
        base = series[index % len(series)]
        # Shifted per pool (and wrapped to length), so no two pools see the same series.
        shifted = np.resize(np.roll(base, index * 37), POINTS)
        low, high = np.nanmin(shifted), np.nanmax(shifted)
        columns[f"{name}.cpu"] = np.round(10 + 80 * (shifted - low) / max(high - low, 1e-9), 3)
    frame = pd.DataFrame(columns)
    frame.insert(0, "timestamp", [t.isoformat() for t in stamps])
    return frame


def _project(
    root: Path,
    stacks: dict[str, list[str]],
    series: list[np.ndarray],
    models: list[str],
    *,
    budgets: dict[str, int] | None = None,
) -> Path:
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    every = [name for names in stacks.values() for name in names]
    _metrics(every, series).to_csv(root / "metrics.csv", index=False)
    for stack, names in stacks.items():
        extra = "".join(f", {key}: {value}" for key, value in (budgets or {}).items())
        text = _HEAD.format(models=", ".join(models), budgets=extra) + "".join(
            _POOL.format(name=name) for name in names
        )
        (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(text)
    return root


def _driver(
    root: Path, stack: str, journal: Journal, engine: ForecastEngine, *, mode: str
) -> Driver:
    executor: Executor
    if mode == "apply":
        executor = AutomationExecutor(
            stack=stack,
            project_root=root,
            pulumi_command=KillableCli(Faults()),
            progress=lambda _event: None,
        )
    else:
        # mirrorcast's own cycle, collection to plan: no Pulumi stand-in, whose YAML round
        # trip of the stack file was 43.8 s of a 94.9 s profile (it is not mirrorcast's cost,
        # and a real `pulumi up` is the cloud's).
        executor = PlanExecutor()
    return Driver(
        stack=stack,
        root=root,
        mode=mode,
        journal=journal,
        executor=executor,
        engine=engine,
        metrics=DriverMetrics(),
        clock=lambda: END,
        holder=f"scale:{stack}",
    )


@dataclass
class _Pass:
    """One cycle of every driver: wall time and what it decided on."""

    seconds: float
    changes: int
    collected: int
    """Series the collection returned (all of them unless ``driver.collect_timeout`` cut it)."""
    deferred: int
    """Series forecast on the flagged seasonal-naive fallback: selection not yet their turn."""

    def line(self, series: int) -> str:
        return (
            f"{self.seconds:.1f} s = {self.seconds / INTERVAL_S:.0%} of the interval; "
            f"{self.collected}/{series} series collected, {self.deferred} on the flagged "
            f"fallback; {self.changes} config changes planned"
        )


def _timed_pass(drivers: list[Driver], engine: ForecastEngine, at: datetime) -> _Pass:
    started = time.perf_counter()
    changes = collected = deferred = 0
    for driver in drivers:
        report = driver.run_cycle(now=at)
        changes += len(report.result.plan.changes) if report.result is not None else 0
        series = sum(len(pool.metrics) for pool in report.config.pools.values())
        # driver.collect: one degraded line per series the source did not give in time or at all.
        collected += series - sum(": metric source " in line for line in report.degraded)
        deferred += engine.deferred_selections
    return _Pass(time.perf_counter() - started, changes, collected, deferred)


def _resident_mb() -> float:
    """The process's resident memory now (Linux ``/proc/self/statm``), after a collection and
    glibc's ``malloc_trim`` (without it the allocator keeps the freed heap of the cold cycle's
    peak, and the figure is the peak again)."""
    gc.collect()
    # Not glibc (no malloc_trim): the figure then includes the free heap the allocator kept.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios and print cold and warm cycle times against the interval."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--pools", type=int, default=200, help="pools in the big stack (200)")
    parser.add_argument("--stacks", type=int, default=50, help="stacks in the fleet (50)")
    parser.add_argument("--pools-per-stack", type=int, default=4, help="pools per fleet stack (4)")
    parser.add_argument(
        "--warm", type=int, default=2, help=f"warm cycles to time (2, at most {AHEAD})"
    )
    parser.add_argument(
        "--models",
        type=lambda text: text.split(","),
        default=PRODUCTION_MODELS,
        help="forecast.models of every stack, comma-separated (default: "
        f"{','.join(PRODUCTION_MODELS)}; the stack default adds mstl, theta and auto_ets)",
    )
    parser.add_argument(
        "--selections-per-cycle",
        type=int,
        default=None,
        help="forecast.selections_per_cycle of every stack (default: none, all at once): the "
        "cold cycle then decides every pool, most on the flagged fallback, and the choices "
        "arrive over the warm cycles",
    )
    parser.add_argument(
        "--only", choices=("stack", "fleet"), default=None, help="run one scenario only"
    )
    parser.add_argument(
        "--mode",
        choices=("plan", "apply"),
        default="plan",
        help="plan (default): mirrorcast's own cycle, collection to plan; apply: also the "
        "Automation API path against the tests' Pulumi CLI stand-in (its YAML cost included)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    series = _series(args.traces)
    print(f"machine: {os.cpu_count()} cores; cycle interval {INTERVAL_S:.0f} s")
    with tempfile.TemporaryDirectory(prefix="mirrorcast-scale-") as scratch:
        os.environ["MIRRORCAST_STATE_DIR"] = str(Path(scratch) / "state")
        os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "scale-passphrase")
        scenarios = {
            f"one stack of {args.pools} pools": {"big": [f"p{i:03d}" for i in range(args.pools)]},
            f"{args.stacks} stacks of {args.pools_per_stack} pools": {
                f"s{s:02d}": [f"s{s:02d}p{i}" for i in range(args.pools_per_stack)]
                for s in range(args.stacks)
            },
        }
        if args.only is not None:
            keep = 0 if args.only == "stack" else 1
            scenarios = dict([list(scenarios.items())[keep]])
        print(f"forecast.models: {', '.join(args.models)}")
        for number, (title, stacks) in enumerate(scenarios.items()):
            budgets = (
                {"selections_per_cycle": args.selections_per_cycle}
                if args.selections_per_cycle is not None
                else {}
            )
            root = _project(
                Path(scratch) / f"project{number}", stacks, series, args.models, budgets=budgets
            )
            journal = Journal(f"sqlite:///{root / 'journal.db'}")
            settings = load_stack(next(iter(stacks)), root).forecast
            engine = ForecastEngine(settings, cache_dir=root / "models", seed=0)
            drivers = [_driver(root, stack, journal, engine, mode=args.mode) for stack in stacks]
            series_count = sum(map(len, stacks.values()))
            cold = _timed_pass(drivers, engine, END)
            print(f"{title}: cold cycle (first decision for every pool) {cold.line(series_count)}")
            warm: list[float] = []
            for step in range(1, args.warm + 1):
                at = END + timedelta(minutes=5 * step)
                done = _timed_pass(drivers, engine, at)
                warm.append(done.seconds)
                print(f"{title}: warm cycle {step} {done.line(series_count)}")
            if warm:
                print(
                    f"{title}: warm cycles {min(warm):.1f}-{max(warm):.1f} s, "
                    f"{max(warm) / series_count * 1000:.1f} ms per series at the slowest"
                )
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{title}: peak RSS {rss_mb:,.0f} MB = {rss_mb / series_count:.2f} MB per series "
                f"(whole process, baseline imports included); stack parses "
                f"{sum(d.stack_config.parses for d in drivers)} for {len(drivers)} stack(s)"
            )
            held_mb = _resident_mb()
            print(
                f"{title}: RSS after the cycles {held_mb:,.0f} MB = "
                f"{held_mb / series_count:.2f} MB per series (what the process holds between "
                "cycles, imports included, after malloc_trim)"
            )
            engine.close()  # its worker processes, before the scratch directory goes
            journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
