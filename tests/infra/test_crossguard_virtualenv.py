"""The policy pack in a virtualenv built from its own requirements.txt, as Pulumi builds it.

PulumiPolicy.yaml tells Pulumi to create ``venv`` next to the pack and install
``requirements.txt`` into it; this test does the same with ``python -m venv`` and pip (from the
package index), then loads the pack's policies in that environment alone (no PYTHONPATH into
the project's environment) and runs its stack policy on the demo stack. A requirement missing
from requirements.txt fails here, not on the first real preview. Skipped, with pip's reason,
where the package index cannot be reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "policies" / "crossguard"

pytestmark = pytest.mark.slow

# What the pack's __main__.py does before constructing the PolicyPack (which would serve gRPC
# to the engine and block): the checkout's `policies` packages are registered by path.
LOAD = """
import json, sys, types
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root))
for name, path in (("policies", root / "policies"), ("policies.crossguard", root / "policies" / "crossguard")):
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module
from pulumi_policy import StackValidationArgs
from policies.crossguard._policies import build_policies
reported = []
for policy in build_policies(sys.argv[2]):
    if policy.name == "mirrorcast-stack-config":
        policy.validate(StackValidationArgs([]), lambda message, urn=None: reported.append(message))
print(json.dumps({"policies": len(build_policies(sys.argv[2])), "reported": reported}))
"""


@pytest.fixture(scope="module")
def pack_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("pack") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(PACK / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if installed.returncode != 0:
        lines = [line for line in installed.stderr.splitlines() if line.strip()]
        pytest.skip(f"pip could not install the pack's requirements: {lines[-1] if lines else '?'}")
    return python


def _run(python: Path, stack_file: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", LOAD, str(REPO), str(stack_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(stack_file.parent),
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_pack_loads_in_its_own_virtualenv_and_passes_the_demo_stack(
    pack_python: Path,
) -> None:
    assert _run(pack_python, REPO / "stacks" / "Pulumi.demo.yaml") == {
        "policies": 5,
        "reported": [],
    }


def test_the_pack_in_its_virtualenv_reports_a_bad_stack(pack_python: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.demo.yaml"
    bad.write_text(
        (REPO / "stacks" / "Pulumi.demo.yaml").read_text().replace("percent: 50", "percent: 150")
    )
    assert _run(pack_python, bad)["reported"] == [
        "pools.web.mirror.percent must be between 0 and 100, got 150"
    ]
