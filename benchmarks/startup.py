"""Start-up cost of the ``mirrorcast`` command, this checkout side by side with an older commit.

    .venv/bin/python benchmarks/startup.py [--baseline 9a7340d] [--repeat 5] [--run-once]

Extracts ``--baseline`` (``git archive``) into a temp dir and runs each command ``--repeat``
times in fresh interpreters, alternating old and new so machine load hits both alike, and prints
the median wall time of each. ``mirrorcast --help`` and ``mirrorcast status --stack demo``
always; ``--run-once`` adds ``mirrorcast run --stack demo --once`` (seconds each: off by
default), run in a copy of the demo project with its own state directory, twice per side: the
first run fills the caches (model choices, kept fits, numba kernels), the second is the warm
one that is timed.
"""

from __future__ import annotations

import argparse
import os
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


def project_copy(code: Path, into: Path) -> Path:
    """A demo project (Pulumi.yaml, the demo stack, its metrics) to run commands in."""
    (into / "stacks").mkdir(parents=True)
    shutil.copy(code / "Pulumi.yaml", into / "Pulumi.yaml")
    shutil.copy(code / "stacks" / "Pulumi.demo.yaml", into / "stacks" / "Pulumi.demo.yaml")
    shutil.copytree(code / "examples" / "demo", into / "examples" / "demo")
    return into


def timed(code: Path, args: list[str], *, cwd: Path, state: Path) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "MIRRORCAST_STATE_DIR": str(state),
        "PYTHONDONTWRITEBYTECODE": "",
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{code}: mirrorcast {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="9a7340d", help="commit to compare with")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--run-once", action="store_true", help="also time run --once (warm)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mc-startup-") as tmp:
        root = Path(tmp)
        sides = {"baseline": extract(args.baseline, root / "old"), "this checkout": REPO}
        projects = {
            name: project_copy(code, root / f"p-{i}")
            for i, (name, code) in enumerate(sides.items())
        }
        states = {name: root / f"state-{i}" for i, name in enumerate(sides)}
        commands = [["--help"], ["status", "--stack", "demo"]]
        if args.run_once:
            commands.append(["run", "--stack", "demo", "--once"])
        print(f"baseline {args.baseline}, median of {args.repeat} runs (s)")
        print(f"{'command':38} {'baseline':>9} {'this':>9} {'ratio':>7}")
        for command in commands:
            repeat = args.repeat
            if command[0] == "run":
                repeat = min(args.repeat, 3)
                for name, code in sides.items():  # fill the caches
                    timed(code, command, cwd=projects[name], state=states[name])
            times: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(repeat):
                for name, code in sides.items():
                    times[name].append(timed(code, command, cwd=projects[name], state=states[name]))
            old, new = (statistics.median(times[name]) for name in sides)
            label = "mirrorcast " + " ".join(command)
            print(f"{label:38} {old:9.3f} {new:9.3f} {old / new:6.1f}x")


if __name__ == "__main__":
    main()
