"""Start-up cost of the ``mirrorcast`` command, this checkout side by side with an older commit.

    .venv/bin/python benchmarks/startup.py [--baseline 607cfa3] [--repeat 5] [--run-once]
        [--models auto_ets]

Extracts ``--baseline`` (``git archive``) into a temp dir and runs each command ``--repeat``
times in fresh interpreters, alternating old and new so machine load hits both alike, and prints
the median wall time of each. ``mirrorcast --help`` and ``mirrorcast status --stack demo``
(default, and ``--no-observe`` on both sides: like for like when the baseline's default reads the
clouds) always; ``--run-once`` adds ``mirrorcast run --stack demo --once`` (seconds each: off by
default), run in a copy of the demo project with its own state directory, twice per side: the
first run fills the caches (model choices, kept fits, numba kernels), the second is the warm
one that is timed. ``--models auto_ets`` (with ``--run-once``) adds the same warm run on a copy
of the demo stack whose ``forecast.models`` is that list (the demo's own candidates choose
Theta for both series; ETS's and ARIMA's intervals take another path).

Two reference rows, timed in the same alternation, say how fast the machine was during the run:
``python -c pass`` (the interpreter's own start) and ``python -c "import pandas"``. On a shared
machine the absolute figures move with its load; the ratios to these rows move much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = "from driver.cli import main; main()"


def extract(ref: str, into: Path) -> Path:
    """The tree of ``ref`` under ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def project_copy(code: Path, into: Path, *, models: str | None = None) -> Path:
    """A demo project (Pulumi.yaml, the demo stack, its metrics) to run commands in; ``models``
    (comma-separated) becomes the stack's ``forecast.models``."""
    (into / "stacks").mkdir(parents=True)
    shutil.copy(code / "Pulumi.yaml", into / "Pulumi.yaml")
    stack = into / "stacks" / "Pulumi.demo.yaml"
    shutil.copy(code / "stacks" / "Pulumi.demo.yaml", stack)
    if models:
        text = stack.read_text()
        listed = ", ".join(m.strip() for m in models.split(","))
        edited = text.replace(
            "    history: 14d\n", f"    history: 14d\n    models: [{listed}]\n", 1
        )
        if edited == text:
            raise SystemExit(f"{stack}: no 'history: 14d' line under mirrorcast:forecast to extend")
        stack.write_text(edited)
    shutil.copytree(code / "examples" / "demo", into / "examples" / "demo")
    return into


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_python(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``python ARGS`` in a fresh interpreter (a reference row)."""
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - start, _children_cpu() - cpu


def timed(code: Path, args: list[str], *, cwd: Path, state: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the command's process and its children)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "MIRRORCAST_STATE_DIR": str(state),
        "PYTHONDONTWRITEBYTECODE": "",
    }
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    elapsed, used = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{code}: mirrorcast {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return elapsed, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="607cfa3", help="commit to compare with")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--run-once", action="store_true", help="also time run --once (warm)")
    parser.add_argument(
        "--models", help="with --run-once: also time it on the demo with these forecast.models"
    )
    args = parser.parse_args()
    if args.models and not args.run_once:
        parser.error("--models times a run --once: give --run-once too")

    with tempfile.TemporaryDirectory(prefix="mc-startup-") as tmp:
        root = Path(tmp)
        sides = {"baseline": extract(args.baseline, root / "old"), "this checkout": REPO}
        projects = {
            name: project_copy(code, root / f"p-{i}")
            for i, (name, code) in enumerate(sides.items())
        }
        states = {name: root / f"state-{i}" for i, name in enumerate(sides)}
        # (label suffix, the projects and states a command runs in) for each variant of the demo.
        variants = {"": (projects, states)}
        if args.models:
            variants[f" [{args.models}]"] = (
                {
                    name: project_copy(code, root / f"pm-{i}", models=args.models)
                    for i, (name, code) in enumerate(sides.items())
                },
                {name: root / f"state-m-{i}" for i, name in enumerate(sides)},
            )
        commands: list[tuple[list[str], str]] = [
            (["--help"], ""),
            (["status", "--stack", "demo"], ""),
            (["status", "--stack", "demo", "--no-observe"], ""),
        ]
        if args.run_once:
            commands += [(["run", "--stack", "demo", "--once"], suffix) for suffix in variants]
        references = {
            "python -c pass": ["-c", "pass"],
            "python -c 'import pandas'": ["-c", "import pandas"],
        }
        print(f"baseline {args.baseline}, median of {args.repeat} runs (s); CPU: user + system")
        print(
            f"{'command':48} {'baseline':>9} {'this':>9} {'ratio':>6}"
            f" {'CPU base':>9} {'CPU this':>9} {'ratio':>6}"
        )
        for label, python_args in references.items():
            runs = [timed_python(python_args) for _ in range(args.repeat)]
            wall, cpu = (statistics.median(r[i] for r in runs) for i in (0, 1))
            print(f"{label:48} {wall:9.3f} {'':>9} {'':>6} {cpu:9.3f}")
        for command, suffix in commands:
            where, state_of = variants[suffix]
            repeat = args.repeat
            if command[0] == "run":
                repeat = min(args.repeat, 3)
                for name, code in sides.items():  # fill the caches
                    timed(code, command, cwd=where[name], state=state_of[name])
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            for _ in range(repeat):
                for name, code in sides.items():
                    times[name].append(timed(code, command, cwd=where[name], state=state_of[name]))
            old, new = (statistics.median(t[0] for t in times[name]) for name in sides)
            old_cpu, new_cpu = (statistics.median(t[1] for t in times[name]) for name in sides)
            label = "mirrorcast " + " ".join(command) + suffix
            print(
                f"{label:48} {old:9.3f} {new:9.3f} {old / new:5.1f}x"
                f" {old_cpu:9.3f} {new_cpu:9.3f} {old_cpu / new_cpu:5.1f}x"
            )


if __name__ == "__main__":
    main()
