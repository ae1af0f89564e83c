"""Hang test: ``mirrorcast run --once`` against metric servers that trickle, never end or send 1.5 GB.

Each run is a real child process (``run --stack demo --once --json``, plan mode) whose stack reads
its metrics from a Prometheus URL on the loopback server of ``tests/reliability/hostile_http.py``:

- ``trickle``: body one byte every 0.5 s; ``endless``: 400 KiB/s for ever;
- ``huge`` / ``huge-declared``: 1.5 GB without / with Content-Length;
- ``header-trickle``: headers one byte every 0.5 s (the answer never starts).

Printed per behaviour: runs, runs that did not end within the deadline, slowest run, and the
highest peak RSS of the child (``ru_maxrss``) against the stated bound. Run from the repository
root::

    .venv/bin/python benchmarks/hang_bench.py --runs 2

``--write`` replaces the block between the ``hang-bench`` markers in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
# The hostile server is the hang test's own (tests/reliability), which serves through the
# suite's loopback helper (tests/local_http.py).
sys.path[:0] = [str(REPO / "tests" / "reliability"), str(REPO / "tests")]

from hostile_http import BEHAVIOURS, hostile_http_server  # noqa: E402

PEAK_RSS_BOUND_MB = 600
"""The bound the hang test states (tests/reliability/test_reliability_hangs.py)."""
COLLECT_TIMEOUT_S = 10
METRICS_TIMEOUT_S = 2
DEADLINE_S = 90
"""A run must end within this: collect deadline + start-up and a plan-mode cycle under load."""
MARKER = "<!-- hang-bench -->"


def _project(root: Path, url: str) -> Path:
    project = root / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(REPO / "examples" / "demo", project / "examples" / "demo")
    yaml = YAML()
    data = yaml.load((REPO / "stacks" / "Pulumi.demo.yaml").read_text())
    data["config"]["mirrorcast:metrics"] = {
        "type": "prometheus",
        "url": url,
        "timeout": f"{METRICS_TIMEOUT_S}s",
    }
    data["config"]["mirrorcast:driver"] = {"collect_timeout": f"{COLLECT_TIMEOUT_S}s"}
    data["config"]["mirrorcast:forecast"]["history"] = "1d"
    with (project / "stacks" / "Pulumi.demo.yaml").open("w") as out:
        yaml.dump(data, out)
    return project


def _measure(project: Path, state: Path) -> tuple[bool, float, float, int | None]:
    """(ended within the deadline, seconds, the child's own peak RSS in MB, exit code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MIRRORCAST_STATE_DIR": str(state)}
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", "hang-bench")
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", "from driver.cli import main; main()", "run", "--stack", "demo",
         "--once", "--json"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = started + DEADLINE_S
    ended = False
    code: int | None = None
    usage = None
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            ended, code = True, os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.1)
    if not ended:
        child.kill()
        _pid, _status, usage = os.wait4(child.pid, 0)
    child.returncode = code if code is not None else -9
    seconds = time.monotonic() - started
    peak = usage.ru_maxrss / 1024 if usage is not None else float("nan")
    return ended, seconds, peak, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per behaviour (default 2)")
    parser.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()

    lines = [
        f"runs per behaviour: {args.runs}; metrics.timeout {METRICS_TIMEOUT_S} s, "
        f"driver.collect_timeout {COLLECT_TIMEOUT_S} s, deadline per run {DEADLINE_S} s, "
        f"peak RSS bound {PEAK_RSS_BOUND_MB} MB",
        f"{'behaviour':<15} {'runs':>4} {'not ended':>9} {'slowest s':>9} {'peak RSS MB':>11} {'exit codes':>10}",
    ]
    total_runs = total_hung = 0
    worst_rss = 0.0
    with tempfile.TemporaryDirectory(prefix="hang-bench-") as scratch, hostile_http_server() as url:
        for behaviour in BEHAVIOURS:
            project = _project(Path(scratch) / behaviour, f"{url}/{behaviour}")
            results = [
                _measure(project, Path(scratch) / behaviour / f"state-{i}")
                for i in range(args.runs)
            ]
            hung = sum(1 for ended, *_ in results if not ended)
            slowest = max(seconds for _, seconds, _, _ in results)
            peak = max(rss for _, _, rss, _ in results)
            codes = ",".join(str(code) for *_, code in results)
            total_runs += len(results)
            total_hung += hung
            worst_rss = max(worst_rss, peak)
            lines.append(
                f"{behaviour:<15} {len(results):>4} {hung:>9} {slowest:>9.1f} {peak:>11.0f} {codes:>10}"
            )
    lines.append(
        f"cycles that did not end within the deadline: {total_hung} of {total_runs}; "
        f"highest peak RSS {worst_rss:.0f} MB (bound {PEAK_RSS_BOUND_MB} MB)"
    )
    block = "\n".join(lines)
    print(block)
    if args.write:
        doc = REPO / "docs" / "reliability.md"
        text = doc.read_text()
        head, sep, rest = text.partition(MARKER)
        _old, sep2, tail = rest.partition(MARKER)
        if not sep or not sep2:
            raise SystemExit(f"{doc} has no pair of {MARKER} markers to write between")
        doc.write_text(f"{head}{MARKER}\n```\n{block}\n```\n{MARKER}{tail}")
        print(f"wrote {doc}")
    if total_hung or worst_rss >= PEAK_RSS_BOUND_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
