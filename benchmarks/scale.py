"""Scale: one driver process handling a 200-pool stack, and a fleet of 50 stacks, per cycle interval.

    .venv/bin/python benchmarks/scale.py /work/shared/data/traces [--pools 200] [--stacks 50]
        [--selections-per-cycle N] [--refit-every 15m] [--refits-per-cycle N] [--warm N]
        [--only stack|fleet]

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
the cold start's first decision for every pool. It also counts the fits made and the refits
deferred: ``--refit-every`` makes the cold cycle's fits fall due within the warm cycles, and
``--refits-per-cycle`` (``forecast.refits_per_cycle``, a run's own even with ``--keep``) spreads
them (docs/driver.md, "Refits that fall due together").

``--calibrated`` runs the driver's own engine (``forecasting.as_driven.driver_engine``, online
quantile calibration) instead of a bare ``ForecastEngine``; ``--calibration`` sets the stacks'
``forecast.calibration`` (a short window fills within ``--warm`` cycles: calibrated plans to
compare byte for byte with ``--plans``); ``--prefill-days D`` then fills every series'
calibration, before the cold cycle, with D days of 5-minute cycles of the same-step-a-day-ago
forecast scored against the metrics file, as a driver that had run D days would hold it (the
calibrator's own ``record`` and ``observe``; the models' forecasts would cost hours here):
the memory of a calibrated driver at fleet scale.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import functools
import gc
import logging
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from soak_harness import Faults, KillableCli  # noqa: E402

from driver.automation import AutomationExecutor  # noqa: E402
from driver.executor import Executor, PlanExecutor  # noqa: E402
from driver.heap import HEAP  # noqa: E402
from driver.journal import Journal  # noqa: E402
from driver.observe import DriverMetrics  # noqa: E402
from driver.service import Driver  # noqa: E402
from driver.stack_template import fleet_stack_text  # noqa: E402
from forecasting import ForecastEngine  # noqa: E402
from forecasting.as_driven import driver_engine  # noqa: E402
from infra.config import load_stack  # noqa: E402

logger = logging.getLogger(__name__)

INTERVAL_S = 300.0
PRODUCTION_MODELS = ["seasonal_naive", "naive", "ses", "seasonal_window_average"]
"""The fleet-affordable candidates of ``benchmarks/forecast_bench.py`` (see docs/forecasting.md)."""
END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AHEAD = 12
"""Points after the cold cycle's ``now``, so every warm cycle sees fresh data."""
POINTS = 14 * 288 + AHEAD

_RULES = """\
        - name: predicted-cpu
          when: predicted(cpu, p90) > 80% within 30m
          weight: 10
          actions: [{type: activate_mirror}, {type: shift_weights, mirror: 30}]
        - name: cpu-now
          when: current(cpu) > 90% for 5m
          weight: 5
          actions: [{type: activate_mirror}, {type: shift_weights, mirror: 50, ramp: {mode: immediate}}]
"""
_RPS_METRIC = ", rps: {kind: application, unit: rps, per_instance_capacity: 250}"
"""The second metric of ``--metrics-per-pool 2``: the demo stack's rps, sized per instance."""
_RPS_RULE = """\
        - name: predicted-rps
          when: predicted(rps, p90) > 1800 within 30m
          weight: 8
          actions: [{type: activate_mirror}, {type: shift_weights, mirror: 30}]
"""


def _prefill(engine: Any, root: Path, *, days: float, until: datetime) -> int:
    """Fill the calibration of every series in ``root``'s metrics file with ``days`` of
    5-minute cycles before ``until``: each cycle's forecast (the same steps a day earlier, a
    seasonal-naive forecast) recorded and the closed steps scored (hourly), by the calibrator's own
    ``observe`` and ``record``, as the driver's engine does each cycle. Returns the cycles."""
    from forecasting import Forecast

    frame = pd.read_csv(root / "metrics.csv")
    stamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True)).asi8
    step = timedelta(minutes=5)
    season, horizon, kept = 288, 12, 2016 + 13
    end = int(np.searchsorted(stamps, pd.Timestamp(until).value, side="left"))
    cycles = int(days * season)
    if end - cycles + 1 - kept < 0:
        raise SystemExit(f"--prefill-days {days}: the metrics file is too short for it")
    calibrator = engine.calibrator
    columns = [c for c in frame.columns if c != "timestamp"]
    values = {c: frame[c].to_numpy(dtype=float) for c in columns}
    for at in range(end - cycles + 1, end + 1):
        now = pd.Timestamp(stamps[at - 1], tz="UTC").to_pydatetime()
        index = pd.DatetimeIndex(stamps[at - kept : at].view("datetime64[ns]")).tz_localize("UTC")
        times = [now + step * (lead + 1) for lead in range(horizon)]
        # Scored once an hour, not every cycle: the same steps are scored at the same leads
        # (a step is scored once it has closed, by whichever observation comes next), so the
        # calibration holds the same errors, at a twelfth of observe()'s cost (about 1 ms a
        # series here: 3 days of 2,000 series would take most of an hour every cycle).
        score = (end - at) % horizon == 0
        for column in columns:
            pool, metric = column.split(".")
            data = values[column]
            if score:
                history = pd.Series(data[at - kept : at], index=index)
                calibrator.observe((pool, metric), history, now=now)
            mean = data[at - season : at - season + horizon].copy()
            calibrator.record(
                Forecast(
                    pool=pool,
                    metric=metric,
                    issued_at=now,
                    step=step,
                    times=times,
                    mean=mean,
                    quantiles={50: mean},
                    model="seasonal_naive",
                )
            )
    return cycles


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


AHEAD_KEPT = 72
"""Points after the first cold cycle's ``now`` in a ``--keep`` build: six hours of cycles, so
later runs go on from where the last one stopped (their kept fits then still hold)."""


def _scaled(
    base: np.ndarray, *, shift: int, low: float, high: float, points: int = POINTS
) -> np.ndarray:
    # Shifted per pool (and wrapped to length), so no two pools see the same series.
    shifted = np.resize(np.roll(base, shift), points)
    lo, hi = np.nanmin(shifted), np.nanmax(shifted)
    return np.round(low + (high - low) * (shifted - lo) / max(hi - lo, 1e-9), 3)


def _metrics(
    names: list[str], series: list[np.ndarray], *, per_pool: int, ahead: int = AHEAD
) -> pd.DataFrame:
    points = 14 * 288 + ahead
    stamps = pd.date_range(
        end=END + timedelta(minutes=5 * ahead), periods=points, freq="5min", tz="UTC"
    )
    columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(names):
        columns[f"{name}.cpu"] = _scaled(
            series[index % len(series)], shift=index * 37, low=10, high=90, points=points
        )
        if per_pool == 2:
            # Another trace than the pool's cpu (offset by a third of the list), so the two
            # series of a pool are not one curve rescaled.
            other = series[(index + len(series) // 3 + 1) % len(series)]
            columns[f"{name}.rps"] = _scaled(
                other, shift=index * 53, low=100, high=2000, points=points
            )
    frame = pd.DataFrame(columns)
    frame.insert(0, "timestamp", [t.isoformat() for t in stamps])
    return frame


def _project(
    root: Path,
    stacks: dict[str, list[str]],
    series: list[np.ndarray],
    *,
    per_pool: int = 1,
    per_stack_files: bool = False,
    ahead: int = AHEAD,
) -> None:
    """The project's data: ``Pulumi.yaml`` and the metrics file(s); the stack files are
    :func:`_write_stacks`' (written again on every run of a kept project)."""
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    every = [name for names in stacks.values() for name in names]
    frame = _metrics(every, series, per_pool=per_pool, ahead=ahead)
    if not per_stack_files:
        frame.to_csv(root / "metrics.csv", index=False)
        return
    (root / "metrics").mkdir()
    for stack, names in stacks.items():
        # Each stack's own pools' columns, built from the fleet's one frame (the same values as
        # the shared file), so a stack reads only its own series.
        mine = set(names)
        keep = ["timestamp"] + [c for c in frame.columns if c.split(".")[0] in mine]
        frame[keep].to_csv(root / _metrics_path(stack, per_stack_files), index=False)


def _metrics_path(stack: str, per_stack_files: bool) -> str:
    return f"metrics/{stack}.csv" if per_stack_files else "metrics.csv"


def _write_stacks(
    root: Path,
    stacks: dict[str, list[str]],
    models: list[str],
    *,
    budgets: dict[str, str] | None,
    per_pool: int,
    per_stack_files: bool,
    calibration: str,
) -> None:
    """Every stack's file; a file whose text is already this is left alone."""
    rps_metric, rps_rule = (_RPS_METRIC, _RPS_RULE) if per_pool == 2 else ("", "")
    extra = "".join(f", {key}: {value}" for key, value in (budgets or {}).items())
    for stack, names in stacks.items():
        text = fleet_stack_text(
            pools=names,
            tags="{cost-center: scale}",
            metrics=f"{{type: file, path: {_metrics_path(stack, per_stack_files)}}}",
            forecast=f"{{horizon: 1h, history: 14d, models: [{', '.join(models)}]{extra}"
            + (f", calibration: {{{calibration}}}" if calibration else "")
            + "}",
            driver="{mode: apply, interval: 5m}",
            pool_metrics=f"{{cpu: {{unit: percent}}{rps_metric}}}",
            rules=_RULES + rps_rule,
        )
        path = root / "stacks" / f"Pulumi.{stack}.yaml"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


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
    cpu: float = 0.0
    """CPU seconds of the driver process(es) in the pass (not their engines' worker processes,
    which only selections and refits use): on a shared machine wall time is also everyone
    else's load."""

    plans: dict[str, str] = field(default_factory=dict)
    """Each stack's plan of the pass as JSON (``Plan.model_dump_json``), for ``--plans``."""
    fits: int = 0
    """Fits the engines made in the pass (first fits and refits, parameter-free ones too)."""
    refits_deferred: int = 0
    """Series whose due refit waited for a later cycle (``forecast.refits_per_cycle``)."""

    def line(self, series: int) -> str:
        return (
            f"{self.seconds:.1f} s = {self.seconds / INTERVAL_S:.0%} of the interval "
            f"({self.cpu:.1f} s driver CPU); "
            f"{self.collected}/{series} series collected, {self.deferred} on the flagged "
            f"fallback; {self.fits} fits made, {self.refits_deferred} refits deferred; "
            f"{self.changes} config changes planned"
        )


def _timed_pass(drivers: list[Driver], engine: ForecastEngine, at: datetime) -> _Pass:
    cpu = time.process_time()
    started = time.perf_counter()
    changes = collected = deferred = refits_deferred = 0
    fits_before = engine.fits
    plans: dict[str, str] = {}
    for driver in drivers:
        report = driver.run_cycle(now=at)
        refits_deferred += engine.deferred_refits
        changes += len(report.result.plan.changes) if report.result is not None else 0
        if report.result is not None:
            plans[driver.stack] = report.result.plan.model_dump_json()
        series = sum(len(pool.metrics) for pool in report.config.pools.values())
        # driver.collect: one degraded line per series the source did not give in time or at all.
        collected += series - sum(": metric source " in line for line in report.degraded)
        deferred += engine.deferred_selections
    # As the service's loop does after each cycle (driver.heap): a pass is this process's
    # cycle of its stacks. Timed with the pass, so a refreeze's full collection counts.
    HEAP.after_cycle()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return _Pass(
        seconds,
        changes,
        collected,
        deferred,
        cpu,
        plans,
        fits=engine.fits - fits_before,
        refits_deferred=refits_deferred,
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class _Share:
    """What one driver process runs: some of the fleet's stacks, with their own engine."""

    root: Path
    stacks: list[str]
    mode: str
    journal_url: str
    calibrated: bool = False


def _open(share: _Share) -> tuple[Journal, ForecastEngine, list[Driver]]:
    journal = Journal(share.journal_url)
    settings = load_stack(share.stacks[0], share.root).forecast
    engine: Any
    if share.calibrated:
        engine = driver_engine(settings, cache_dir=share.root / "models", seed=0)
    else:
        engine = ForecastEngine(settings, cache_dir=share.root / "models", seed=0)
    drivers = [
        _driver(share.root, stack, journal, engine, mode=share.mode) for stack in share.stacks
    ]
    return journal, engine, drivers


def _driver_process(conn: Connection, share: _Share) -> None:
    """A driver process of ``--processes``: cycles its stacks whenever the parent says when.

    Its own session, as a systemd unit or a pod of its own would be: Linux autogroup
    (``kernel.sched_autogroup_enabled``) shares the CPU between sessions, so processes of
    the benchmark's one session would share one session's CPU on a loaded machine
    (``benchmarks/fleet_bench.py`` measured that for Dask workers)."""
    os.setsid()
    logging.basicConfig(level=logging.ERROR)
    journal, engine, drivers = _open(share)
    conn.send(_rss_mb())
    while (at := conn.recv()) is not None:
        conn.send((_timed_pass(drivers, engine, at), _rss_mb()))
    held = _resident_mb()
    engine.close()  # its worker processes, before the scratch directory goes
    journal.close()
    conn.send((_rss_mb(), sum(d.stack_config.parses for d in drivers), held))


class _Processes:
    """The fleet's stacks split over ``count`` driver processes, cycled together: a pass's
    wall time is from telling every process to the last one's answer."""

    def __init__(
        self,
        *,
        root: Path,
        stacks: list[str],
        mode: str,
        journal_url: str,
        count: int,
        calibrated: bool = False,
    ):
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs = []
        for index in range(count):
            mine = stacks[index::count]
            if not mine:
                continue
            parent, child = context.Pipe()
            share = _Share(
                root=root, stacks=mine, mode=mode, journal_url=journal_url, calibrated=calibrated
            )
            # Not a daemon: its engine starts worker processes of its own for selections.
            proc = context.Process(target=_driver_process, args=(child, share))
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
        self.rss = [conn.recv() for conn in self._conns]
        self.start_seconds = time.perf_counter() - started
        """From starting the processes to every one ready for its first cycle: a fresh
        interpreter's imports, every stack file parsed and validated, the engine built (part of
        a cold start to the first decision, though no cycle has run yet)."""
        self.stack_parses = 0
        """Stack file parses of every process's drivers, known once they are closed."""
        self.held: list[float] = []
        """Each process's resident memory after its cycles (``_resident_mb``), once closed."""

    def run(self, at: datetime) -> _Pass:
        started = time.perf_counter()
        for conn in self._conns:
            conn.send(at)
        answers = [conn.recv() for conn in self._conns]
        seconds = time.perf_counter() - started
        self.rss = [max(old, rss) for old, (_, rss) in zip(self.rss, answers, strict=True)]
        done = [one for one, _ in answers]
        return _Pass(
            seconds,
            changes=sum(d.changes for d in done),
            collected=sum(d.collected for d in done),
            deferred=sum(d.deferred for d in done),
            cpu=sum(d.cpu for d in done),
            plans={stack: plan for d in done for stack, plan in d.plans.items()},
            fits=sum(d.fits for d in done),
            refits_deferred=sum(d.refits_deferred for d in done),
        )

    def close(self) -> None:
        for conn in self._conns:
            conn.send(None)
        last = [conn.recv() for conn in self._conns]
        self.rss = [max(old, rss) for old, (rss, _, _) in zip(self.rss, last, strict=True)]
        self.stack_parses = sum(parses for _, parses, _ in last)
        self.held = [held for _, _, held in last]
        for proc in self._procs:
            proc.join(timeout=60)


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
        "--metrics-per-pool",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: cpu only (the default); 2: cpu and rps (with a predicted-rps rule), the "
        "target's two series a pool",
    )
    parser.add_argument(
        "--warm",
        type=int,
        default=2,
        help=f"warm cycles to time (2; the data reaches that far, at most {AHEAD_KEPT} "
        "with --keep)",
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
        "--refit-every",
        default=None,
        help="forecast.refit_every of every stack (default: the stack default, 6h), e.g. 15m "
        "so that the fits of the cold cycle fall due together within --warm cycles",
    )
    parser.add_argument(
        "--refits-per-cycle",
        type=int,
        default=None,
        help="forecast.refits_per_cycle of every stack for this run (default: none, all at "
        "once); with --keep, the kept project's stack files are written again with it, so a "
        "copy of one built folder runs with and without the budget",
    )
    parser.add_argument(
        "--only", choices=("stack", "fleet"), default=None, help="run one scenario only"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="fleet only: run the stacks' drivers in this many driver processes, each with "
        "its own engine and session, stacks dealt round-robin (one driver process per stack "
        "is how a fleet is deployed: a systemd unit or a pod per stack); 0 (default): every "
        "driver in this process",
    )
    parser.add_argument(
        "--metrics-file",
        choices=("shared", "per-stack"),
        default="shared",
        help="fleet: one metrics file for every stack (shared, the default) or one per stack "
        "holding its own pools' series",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build the projects in this folder and reuse them (and the model choices and "
        "kept fits persisted under it) on the next run with the same arguments: the cold "
        "cycle's selections are then paid once; each run has its own journal",
    )
    parser.add_argument(
        "--plans",
        type=Path,
        default=None,
        help="write every stack's plan of every cycle here as JSON lines, sorted by cycle and "
        "stack (to compare runs byte for byte, e.g. --processes 0 against 2)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a cProfile of the warm cycles only (not the cold one) to this file "
        "(every driver in this process: not with --processes)",
    )
    parser.add_argument(
        "--calibrated",
        action="store_true",
        help="the driver's own engine, with online quantile calibration (driver_engine), "
        "instead of a bare ForecastEngine",
    )
    parser.add_argument(
        "--calibration",
        default="",
        help="the stacks' forecast.calibration as YAML flow mappings' inside, e.g. "
        "'window: 2h, min_samples: 10' (a window --warm cycles fill; default: the stack "
        "default, 3 days)",
    )
    parser.add_argument(
        "--prefill-days",
        type=float,
        default=0.0,
        help="with --calibrated, in this process: fill every series' calibration with this "
        "many days of 5-minute cycles before the cold cycle (see above; 3: the default window "
        "full, the steady state of a driver that has run three days)",
    )
    parser.add_argument(
        "--mode",
        choices=("plan", "apply"),
        default="plan",
        help="plan (default): mirrorcast's own cycle, collection to plan; apply: also the "
        "Automation API path against the tests' Pulumi CLI stand-in (its YAML cost included)",
    )
    args = parser.parse_args(argv)
    if args.processes and args.only != "fleet":
        parser.error("--processes runs the fleet scenario's drivers: add --only fleet")
    if args.profile is not None and args.processes:
        parser.error("--profile profiles this process: leave out --processes")
    if args.prefill_days and (not args.calibrated or args.processes or args.keep):
        parser.error(
            "--prefill-days fills this process's calibrated engine: add --calibrated, "
            "leave out --processes and --keep"
        )
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
            budgets = {
                key: str(value)
                for key, value in (
                    ("selections_per_cycle", args.selections_per_cycle),
                    ("refit_every", args.refit_every),
                )
                if value is not None
            }
            root = _built(args, Path(scratch), number, stacks, series, budgets=budgets)
            journal_url = f"sqlite:///{Path(scratch) / f'journal{number}.db'}"
            series_count = sum(map(len, stacks.values())) * args.metrics_per_pool
            run: Callable[[datetime], _Pass]
            if args.processes:
                fleet = _Processes(
                    root=root,
                    stacks=list(stacks),
                    mode=args.mode,
                    journal_url=journal_url,
                    count=args.processes,
                    calibrated=args.calibrated,
                )
                run = fleet.run
                title = f"{title} in {args.processes} driver processes"
            else:
                journal, engine, drivers = _open(
                    _Share(
                        root=root,
                        stacks=list(stacks),
                        mode=args.mode,
                        journal_url=journal_url,
                        calibrated=args.calibrated,
                    )
                )
                run = functools.partial(_timed_pass, drivers, engine)
                if args.prefill_days:
                    started = time.perf_counter()
                    cycles = _prefill(engine, root, days=args.prefill_days, until=END)
                    print(
                        f"{title}: calibration prefilled with {cycles} cycles of every series "
                        f"in {time.perf_counter() - started:.0f} s"
                    )

            # A --keep project goes on from where its last run stopped: the fits it persisted
            # then end on points this run's first cycle still has, so they are updated, not
            # refitted (a run from the start again would refit every series).
            first_step = _steps_done(root) if args.keep is not None else 0
            ahead = _ahead(args)
            if first_step + args.warm > ahead:
                raise SystemExit(
                    f"--keep {args.keep}: {first_step} of its {ahead} five-minute steps are "
                    f"used; {args.warm} more warm cycles do not fit: use another folder"
                )
            if first_step:
                print(f"{title}: going on from {first_step} steps after the first cold cycle")
            cold = run(END + timedelta(minutes=5 * first_step))
            passes = [cold]
            print(f"{title}: cold cycle (first decision for every pool) {cold.line(series_count)}")
            if args.processes:
                print(
                    f"{title}: start-up of the driver processes {fleet.start_seconds:.1f} s "
                    "(imports, stack files, engine); from start to the first decision for every "
                    f"pool {fleet.start_seconds + cold.seconds:.1f} s"
                )
            warm: list[float] = []
            profiler = cProfile.Profile() if args.profile is not None else None
            for step in range(1, args.warm + 1):
                at = END + timedelta(minutes=5 * (first_step + step))
                if profiler is not None:
                    profiler.enable()
                done = run(at)
                if profiler is not None:
                    profiler.disable()
                passes.append(done)
                warm.append(done.seconds)
                print(f"{title}: warm cycle {step} {done.line(series_count)}")
            if args.keep is not None:
                (root / "steps-done.txt").write_text(str(first_step + args.warm + 1))
            if args.plans is not None:
                with args.plans.open("w") as out:
                    for cycle_number, done in enumerate(passes):
                        for stack in sorted(done.plans):
                            out.write(f'{{"cycle": {cycle_number}, "stack": "{stack}", "plan": ')
                            out.write(done.plans[stack] + "}\n")
                print(f"{title}: plans of {len(passes)} cycles written to {args.plans}")
            if profiler is not None:
                profiler.dump_stats(args.profile)
                print(f"{title}: profile of the warm cycles written to {args.profile}")
            if warm:
                print(
                    f"{title}: warm cycles {min(warm):.1f}-{max(warm):.1f} s, "
                    f"{max(warm) / series_count * 1000:.1f} ms per series at the slowest"
                )
            if args.processes:
                fleet.close()
                rss_mb = sum(fleet.rss)
                where = (
                    f"{len(fleet.rss)} driver processes' peaks summed, baseline imports included"
                )
                parses = f"stack parses {fleet.stack_parses} for {len(stacks)} stack(s)"
            else:
                rss_mb = _rss_mb()
                where = "whole process, baseline imports included"
                parses = (
                    f"stack parses {sum(d.stack_config.parses for d in drivers)} "
                    f"for {len(drivers)} stack(s)"
                )
            print(
                f"{title}: peak RSS {rss_mb:,.0f} MB = {rss_mb / series_count:.2f} MB per series "
                f"({where}); {parses}"
            )
            if args.calibrated and not args.processes:
                calibrator = engine.calibrator
                kept = sum(
                    calibrator.samples(key, lead)
                    for key in list(calibrator._series)
                    for lead in range(1, 13)
                )
                print(f"{title}: calibration errors kept {kept / series_count:,.0f} per series")
            held_mb = sum(fleet.held) if args.processes else _resident_mb()
            print(
                f"{title}: RSS after the cycles {held_mb:,.0f} MB = "
                f"{held_mb / series_count:.2f} MB per series (what the process holds between "
                "cycles, imports included, after malloc_trim"
                + (", driver processes summed)" if args.processes else ")")
            )
            if not args.processes:
                engine.close()  # its worker processes, before the scratch directory goes
                journal.close()
    return 0


def _ahead(args: argparse.Namespace) -> int:
    """Points after the first cold cycle's ``now``: enough for ``--warm`` cycles."""
    return AHEAD_KEPT if args.keep is not None else max(AHEAD, args.warm)


def _steps_done(root: Path) -> int:
    marker = root / "steps-done.txt"
    return int(marker.read_text()) if marker.exists() else 0


def _built(
    args: argparse.Namespace,
    scratch: Path,
    number: int,
    stacks: dict[str, list[str]],
    series: list[np.ndarray],
    *,
    budgets: dict[str, str],
) -> Path:
    """The scenario's project: built in the scratch folder, or reused from ``--keep``.

    ``--refits-per-cycle`` is this run's, not the build's: a kept project's stack files are
    written again with it (or without it), so one built fleet, copied, is run with and without
    a refit budget from the same fits.
    """
    run_budgets = dict(budgets)
    if args.refits_per_cycle is not None:
        run_budgets["refits_per_cycle"] = str(args.refits_per_cycle)
    shape = (
        f"stacks={list(stacks)} pools={sum(map(len, stacks.values()))} "
        f"per_pool={args.metrics_per_pool} models={args.models} budgets={budgets} "
        f"metrics_file={args.metrics_file} ahead={AHEAD_KEPT}"
        + (f" calibration={args.calibration}" if args.calibration else "")
    )
    built = False
    if args.keep is None:
        root = scratch / f"project{number}"
    else:
        root = args.keep / f"project{number}"
        marker = root / "scale-args.txt"
        if marker.exists():
            if marker.read_text() != shape:
                raise SystemExit(
                    f"--keep {args.keep}: {root} was built with other arguments "
                    f"({marker.read_text()}); use another folder or remove it"
                )
            print(f"reusing {root} (model choices and kept fits persisted there)")
            built = True
        elif root.exists():
            shutil.rmtree(root)  # a build cut short: no marker yet
    per_stack_files = args.metrics_file == "per-stack"
    if not built:
        _project(
            root,
            stacks,
            series,
            per_pool=args.metrics_per_pool,
            per_stack_files=per_stack_files,
            ahead=_ahead(args),
        )
    _write_stacks(
        root,
        stacks,
        args.models,
        budgets=run_budgets,
        per_pool=args.metrics_per_pool,
        per_stack_files=per_stack_files,
        calibration=args.calibration,
    )
    if args.keep is not None and not built:
        (root / "scale-args.txt").write_text(shape)
    return root


if __name__ == "__main__":
    sys.exit(main())
