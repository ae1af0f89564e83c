"""One actor per stack, no lost rollback: the figures of docs/reliability.md, in one command.

    .venv/bin/python benchmarks/single_actor.py [--drivers 3] [--cycles 12] [--trials 6]

**Concurrent drivers.** N driver processes (each in its own PID namespace through
``unshare --pid --fork --mount-proc`` when run as root, so every one of them is pid 1 on the
same hostname; plain processes otherwise, and the output says so) share one SQLite journal and
one stack (the driver tests' Pulumi stand-in on PATH as ``pulumi``, its state in one file).
Their clocks are skewed (-20 min, 0, +16 min, +45 min, ...), and every cycle is longer than the
lease: the stand-in's ``stack output`` and ``up`` each take ``--slow`` seconds while the lease
lasts ``--ttl`` seconds, so only the heartbeat keeps it. At each of M cycle instants (real time,
the same for all) every driver runs a cycle. Counted: cycle instants in which more than one
driver acted (ran its cycle instead of skipping it), and effects on the stack (``config
set-all``, ``up``, ``refresh``) of two drivers overlapping in time. The same run with the old
holder id (``host:pid``, which the PID namespaces make equal) is the control: it shows the
count is not zero by construction.

**Journal loss.** A mirror is activated, then near-zero demand follows; in trial k the journal
file (with its WAL) is deleted k cycles after the activation. The driver must stop, and the
restarted driver (new, empty journal at the same place) must still roll the mirror back and
restore the original capacity. Counted: rollbacks lost. The control runs the same trials with
the stack's record and the journal check turned off (the behaviour before both existed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reliability"))
sys.path.insert(0, str(REPO / "tests" / "driver"))

import pandas as pd  # noqa: E402
from cycle_support import make_driver, open_journal  # noqa: E402
from soak_harness import STACK, Faults, KillableCli, make_project  # noqa: E402

from infra.config import load_stack  # noqa: E402
from policies import PlannerMemory  # noqa: E402

logger = logging.getLogger(__name__)

TRACE = REPO / "tests" / "data" / "backtest" / "elb_request_count_8c0756_4days.csv"
T0 = datetime(2014, 4, 11, 0, 59, tzinfo=UTC)
STEP = timedelta(minutes=5)
SKEWS_MIN = (0, 16, -20, 45, -7, 90)

_FAKE_PULUMI = f"""#!{sys.executable}
import json, os, sys, time
sys.path.insert(0, {str(REPO / "tests" / "driver")!r})
words = [a for a in sys.argv[1:] if a != "--non-interactive"]
effect = words[:1] in (["up"], ["refresh"]) or words[:2] == ["config", "set-all"]
if words[:2] == ["stack", "output"] or words[:1] == ["up"]:
    time.sleep(float(os.environ.get("BENCH_SLOW", "0")))
began = time.time()
from standin_model import main
code = main()
if effect:
    with open(os.environ["BENCH_EFFECTS"], "a") as log:
        log.write(json.dumps({{"holder": os.environ.get("BENCH_HOLDER"), "what": words[0],
                               "t0": began, "t1": time.time()}}) + "\\n")
sys.exit(code)
"""

_CONTENDER = r"""
import json, os, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/tests/reliability")
from cycle_support import RecentPeakEngine
from driver.journal import Journal
from driver.service import Driver
import socket
root, url, out, start, period, cycles, skew, ttl, legacy = sys.argv[2:11]
T0 = datetime(2014, 4, 11, 0, 59, tzinfo=timezone.utc)
offset = timedelta(minutes=float(skew))
holder = f"{socket.gethostname()}:{os.getpid()}" if legacy == "1" else None
driver = Driver(stack="soak", root=Path(root), mode="apply", journal=Journal(url),
                engine=RecentPeakEngine(), holder=holder, lease_ttl=timedelta(seconds=float(ttl)),
                clock=lambda: datetime.now(timezone.utc) + offset)
os.environ["BENCH_HOLDER"] = driver.holder + f"/{os.getpid()}@{skew}"
records = []
for k in range(int(cycles)):
    wake = float(start) + k * float(period)
    time.sleep(max(0.0, wake - time.time()))
    began = time.time()
    try:
        report = driver.run_cycle(now=T0 + timedelta(minutes=5 * k))
        acted, error = report.skipped is None, None
    except Exception as exc:  # lost lease, journal busy: not acting
        acted, error = False, f"{type(exc).__name__}: {exc}"
    records.append({"k": k, "acted": acted, "t0": began, "t1": time.time(), "error": error,
                    "pid": os.getpid(), "skew": skew})
driver.close()
Path(out).write_text(json.dumps(records))
"""


def _namespaces_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def concurrent(
    *, drivers: int, cycles: int, slow: float, ttl: float, legacy: bool, namespaces: bool
) -> dict[str, Any]:
    """Run the concurrent-driver experiment once; returns its counts."""
    with tempfile.TemporaryDirectory(prefix="mirrorcast-actors-") as scratch_name:
        scratch = Path(scratch_name)
        root = make_project(scratch / "project", TRACE, quantile=0.7, update_timeout=120)
        bin_dir = scratch / "bin"
        bin_dir.mkdir()
        (bin_dir / "pulumi").write_text(_FAKE_PULUMI)
        (bin_dir / "pulumi").chmod(0o755)
        (scratch / "tmp").mkdir()
        effects = scratch / "effects.jsonl"
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "STANDIN_STATE": str(scratch / "standin.json"),
            "MIRRORCAST_STATE_DIR": str(scratch / "state"),
            "PULUMI_CONFIG_PASSPHRASE": "bench-passphrase",
            "TMPDIR": str(scratch / "tmp"),
            "BENCH_SLOW": str(slow),
            "BENCH_EFFECTS": str(effects),
        }
        url = f"sqlite:///{scratch / 'journal.db'}"
        from driver.journal import Journal

        Journal(url).close()  # created once, so the contenders race on the lease, not the schema
        period = 2 * slow + 2.5
        start = time.time() + 8.0  # every process imported and ready by then
        processes = []
        for i in range(drivers):
            out = scratch / f"driver-{i}.json"
            command = [sys.executable, "-c", _CONTENDER, str(REPO), str(root), url, str(out)]
            command += [f"{start}", f"{period}", str(cycles), str(SKEWS_MIN[i % len(SKEWS_MIN)])]
            command += [str(ttl), "1" if legacy else "0"]
            if namespaces:
                command = ["unshare", "--pid", "--fork", "--mount-proc", *command]
            log = (scratch / f"driver-{i}.log").open("w")
            processes.append(
                (out, subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log))
            )
        records: list[dict[str, Any]] = []
        for out, process in processes:
            process.wait(timeout=120 + cycles * period)
            records.extend(json.loads(out.read_text()) if out.exists() else [])
        acted_by_slot: dict[int, int] = defaultdict(int)
        for record in records:
            acted_by_slot[record["k"]] += record["acted"]
        windows = (
            [json.loads(line) for line in effects.read_text().splitlines()]
            if effects.exists()
            else []
        )
        overlaps = sum(
            1
            for i, a in enumerate(windows)
            for b in windows[i + 1 :]
            if a["holder"] != b["holder"] and a["t0"] < b["t1"] and b["t0"] < a["t1"]
        )
        pids = sorted({r["pid"] for r in records})
        return {
            "slots": cycles,
            "multi": sum(1 for n in acted_by_slot.values() if n > 1),
            "acted": sum(acted_by_slot.values()),
            "effects": len(windows),
            "overlaps": overlaps,
            "pids": pids,
            "period": period,
        }


def _zero_demand_after(root: Path, at: datetime) -> None:
    metrics = pd.read_csv(root / "metrics.csv")
    late = pd.to_datetime(metrics["timestamp"], utc=True) > pd.Timestamp(at)
    metrics.loc[late, "value"] = 1.0
    metrics.to_csv(root / "metrics.csv", index=False)


def _no_health_timeout(root: Path) -> None:
    # Nothing observes the stand-in's mirror, so the health timeout would roll every activation
    # back after 15 minutes whatever the journal remembers; only the no-demand rollback counts.
    path = root / "stacks" / f"Pulumi.{STACK}.yaml"
    text = path.read_text()
    anchor = "        percent: 50\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + "        health_timeout: 12h\n", 1))


def journal_loss(*, trials: int, control: bool) -> dict[str, int]:
    """Run the journal-loss trials; returns stops, rebuilds and lost rollbacks."""
    import driver.service as service

    lost = stopped = rebuilt = in_effect = 0
    for trial in range(1, trials + 1):
        with (
            tempfile.TemporaryDirectory(prefix="mirrorcast-loss-") as scratch_name,
            ExitStack() as stack,
        ):
            scratch = Path(scratch_name)
            os.environ["MIRRORCAST_STATE_DIR"] = str(scratch / "state")
            os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "bench-passphrase")
            if control:
                # The behaviour before the stack record and the journal check existed.
                stack.enter_context(
                    mock.patch.object(service, "record_changes", lambda *a, **k: [])
                )
                stack.enter_context(mock.patch("driver.journal.Journal.verify", lambda self: None))
                stack.enter_context(
                    mock.patch.object(
                        service, "rebuild_memory", lambda *a, **k: (PlannerMemory(), [])
                    )
                )
            root = make_project(scratch / "project", TRACE, quantile=0.7, update_timeout=120)
            _zero_demand_after(root, T0)
            _no_health_timeout(root)
            initial = load_stack(STACK, root).pools["web"]
            url = f"sqlite:///{root / 'journal.db'}"
            clock = {"at": T0}
            cli = KillableCli(Faults())
            driver = make_driver(
                root, cli=cli, journal=open_journal(url), clock=lambda c=clock: c["at"]
            )
            at = T0
            cycle = 0
            while cycle <= trial:  # the activation, then `trial` more cycles
                clock["at"] = at = T0 + cycle * STEP
                driver.run_cycle(now=at)
                cycle += 1
            pool = load_stack(STACK, root).pools["web"]
            in_effect += (
                pool.mirror.state.value == "active"
                or pool.primary.capacity != initial.primary.capacity
            )
            for path in root.glob("journal.db*"):
                path.unlink()
            clock["at"] = at = T0 + cycle * STEP
            try:
                driver.run_cycle(now=at)
                cycle += 1
            except Exception:
                stopped += 1
            restarted = make_driver(
                root,
                cli=cli,
                journal=open_journal(url),
                clock=lambda c=clock: c["at"],
                holder="restart",
            )
            for step in range(cycle, cycle + 36):  # three hours of near-zero demand
                clock["at"] = at = T0 + step * STEP
                report = restarted.run_cycle(now=at)
                rebuilt += any("memory rebuilt" in note for note in report.notes)
            final = load_stack(STACK, root).pools["web"]
            ok = (
                final.mirror.state.value == "paused"
                and final.balancer.weights.mirror == 0
                and final.primary.capacity == initial.primary.capacity
            )
            lost += not ok
    return {
        "trials": trials,
        "in_effect": in_effect,
        "stopped": stopped,
        "rebuilt": rebuilt,
        "lost": lost,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both experiments and print their figures; 1 if the lease or the record failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=int, default=3, help="concurrent drivers (default 3)")
    parser.add_argument("--cycles", type=int, default=12, help="cycle instants (default 12)")
    parser.add_argument("--slow", type=float, default=1.5, help="seconds per slow CLI step")
    parser.add_argument("--ttl", type=float, default=1.0, help="lease TTL in seconds (default 1)")
    parser.add_argument("--trials", type=int, default=6, help="journal-loss trials (default 6)")
    parser.add_argument(
        "--only", choices=("actors", "loss"), help="run one of the two experiments (default both)"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the drivers' own warnings (skips, lost leases) are expected
    namespaces = _namespaces_available()
    where = (
        "each in its own PID namespace (unshare), all pid 1"
        if namespaces
        else "plain processes (no PID namespaces here: not root or no unshare)"
    )
    print(f"host {socket.gethostname()}, {os.cpu_count()} cores; drivers: {where}")
    failed = False
    for legacy in (False, True) if args.only != "loss" else ():
        figures = concurrent(
            drivers=args.drivers,
            cycles=args.cycles,
            slow=args.slow,
            ttl=args.ttl,
            legacy=legacy,
            namespaces=namespaces,
        )
        label = "control: old holder id host:pid" if legacy else "mirrorcast lease"
        print(
            f"{label}: {args.drivers} drivers (clock skews {', '.join(f'{s:+d}m' for s in SKEWS_MIN[: args.drivers])}), "
            f"{figures['slots']} cycle instants every {figures['period']:.1f} s, each cycle >= "
            f"{args.slow:.1f} s with a {args.ttl:.1f} s lease: cycles with more than one actor "
            f"{figures['multi']}; driver cycles that acted {figures['acted']}; effects on the "
            f"stack {figures['effects']}, overlapping between drivers {figures['overlaps']}; "
            f"pids seen {figures['pids']}"
        )
        if not legacy and (figures["multi"] or figures["overlaps"]):
            failed = True
    for control in (False, True) if args.only != "actors" else ():
        loss = journal_loss(trials=args.trials, control=control)
        label = "control: no stack record, no journal check" if control else "mirrorcast"
        print(
            f"{label}: journal deleted 1..{loss['trials']} cycles after an activation, then near-zero "
            f"demand: activation still in effect at the loss {loss['in_effect']}/{loss['trials']}, "
            f"driver stopped {loss['stopped']}/{loss['trials']}, memory rebuilt from the "
            f"stack {loss['rebuilt']}, rollbacks lost {loss['lost']}/{loss['trials']}"
        )
        if not control and loss["lost"]:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
