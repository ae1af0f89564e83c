"""The atheris (libFuzzer) harnesses in ``fuzz/`` run briefly and find no crash.

Long runs: ``.venv/bin/python fuzz/fuzz_inputs.py TARGET -max_total_time=600``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_inputs.py"
TARGETS = ("stack", "metrics-csv")
"""Two targets keep this test short; every target is covered by hypothesis in the suite too."""


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install -e '.[fuzz]')",
)
def test_the_atheris_harnesses_run_a_few_hundred_inputs_without_a_crash(tmp_path: Path) -> None:
    # All targets at once: each is its own libFuzzer process.
    runs = {
        target: subprocess.Popen(
            [
                sys.executable,
                str(HARNESS),
                target,
                "-runs=300",
                "-seed=1",
                f"-artifact_prefix={tmp_path}/",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for target in TARGETS
    }
    for target, process in runs.items():
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, f"{target}:\n{output[-3000:]}"
        assert "Done 300 runs" in output, f"{target}:\n{output[-3000:]}"
    assert list(tmp_path.iterdir()) == [], "a crash left a reproducer"
