"""A real ``mirrorcast run`` process is SIGKILLed mid-cycle and restarted: nothing lost, nothing repeated.

The driver runs as its own process (the console script, apply mode) with the driver tests'
Pulumi stand-in on PATH as ``pulumi``. It is killed either at the driver's own crash-test pause
point before applying, or by the stand-in itself between ``config set-all`` and ``up`` (the
``up`` invocation kills its parent, the driver, before doing anything). The restarted process
must reconcile: the journal, the stack file and the stack's outputs agree, with one activation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from soak_harness import STACK, make_project

from driver.executor import output_mismatches
from driver.journal import Journal
from infra.config import load_stack

REPO = Path(__file__).resolve().parents[2]
MIRRORCAST = Path(sys.executable).parent / "mirrorcast"
TRACE = REPO / "tests" / "data" / "backtest" / "elb_request_count_8c0756_4days.csv"
AT = "2014-04-11T00:59:00Z"
LATER = "2014-04-11T01:04:00Z"

_FAKE_PULUMI = f"""#!{sys.executable}
import os, signal, sys
sys.path.insert(0, {str(REPO / "tests" / "driver")!r})
words = [a for a in sys.argv[1:] if a != "--non-interactive"]
marker = os.environ.get("KILL_MARKER", "")
if os.environ.get("KILL_PARENT_ON") and words[:1] == [os.environ["KILL_PARENT_ON"]] and not os.path.exists(marker):
    open(marker, "w").write("killed")
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(1)
from standin_model import main
sys.exit(main())
"""


def _environment(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pulumi"
    fake.write_text(_FAKE_PULUMI)
    fake.chmod(0o755)
    env = dict(os.environ)
    # A killed driver cannot clean up the Automation API's event-log directory; keep it inside
    # the test's own temporary directory rather than /tmp.
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        STANDIN_STATE=str(tmp_path / "standin.json"),
        MIRRORCAST_STATE_DIR=str(tmp_path / "state"),
        KILL_MARKER=str(tmp_path / "killed"),
        TMPDIR=str(scratch),
    )
    env.pop("MIRRORCAST_PAUSE_AT", None)
    return env


def _run(project: Path, env: dict[str, str], at: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(MIRRORCAST), "run", "--stack", STACK, "--mode", "apply", "--once", "--at", at],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the driver exited early:\n{process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the driver never reached the kill point")
        time.sleep(0.1)


# The driver's own crash tests (tests/driver/test_crash_recovery.py) kill at its pause points;
# this one kills where no pause point reaches: between `config set-all` and `up`.
@pytest.mark.parametrize("point", ["between-set-config-and-up"])
def test_a_sigkilled_driver_resumes_without_repeating_the_activation(
    tmp_path: Path, point: str
) -> None:
    if not MIRRORCAST.exists():
        pytest.skip(f"the mirrorcast console script is not installed next to {sys.executable}")
    project = make_project(tmp_path / "project", TRACE, quantile=0.05, update_timeout=120)
    env = _environment(tmp_path)
    marker = tmp_path / "killed"
    killed_env = dict(env)
    if point == "before-apply":
        killed_env.update(MIRRORCAST_PAUSE_AT="before-apply", MIRRORCAST_PAUSE_MARKER=str(marker))
    else:
        killed_env.update(KILL_PARENT_ON="up")

    first = _run(project, killed_env, AT)
    _wait_for(marker, first)
    if point == "before-apply":
        first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    journal = Journal(f"sqlite:///{tmp_path / 'state' / 'journal.db'}")
    (interrupted,) = [p for p in journal.plans(stack=STACK, limit=10) if p.changes]
    assert interrupted.status == "applying"
    memory = journal.load_memory(stack=STACK).pools["web"]
    assert memory.activated_at is not None, "the activation's memory was journaled before acting"

    second = _run(project, env, LATER)
    output = second.communicate(timeout=120)[0]
    assert second.returncode == 0, output

    plans = journal.plans(stack=STACK, limit=20)
    assert all(p.status != "applying" for p in plans)
    activations = [
        p
        for p in plans
        if any(c["path"].endswith("mirror.state") and c["new"] == "active" for c in p.changes)
    ]
    assert len(activations) == 1
    updates = [u for u in journal.updates(stack=STACK, limit=20) if u["kind"] == "reconcile"]
    assert updates and updates[0]["ok"]
    config = load_stack(STACK, project)
    assert config.pools["web"].mirror.state.value == "active"
    state = json.loads((tmp_path / "standin.json").read_text())
    assert output_mismatches(config, state["outputs"].get("pools")) == []
    ups = [
        json.loads(line)
        for line in (tmp_path / "standin.calls").read_text().splitlines()
        if "up" in json.loads(line)
    ]
    # One `up` finished the interrupted activation (the kill left none half done), and no other
    # ran: the ramp's first weight step waits for the mirror to be *observed* healthy, and no
    # cloud is reachable here (the cycle reports the pools "not observed").
    assert len(ups) == 1, ups
    journal.close()
