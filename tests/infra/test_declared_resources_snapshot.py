"""The example stacks declare exactly the resources recorded in ``snapshots/declared.json``.

A refactor of the program (the cloud backend registry, say) must leave its resource graph as it
was: the same type, name, parent, provider and engine inputs for every resource. The snapshot
holds a digest of each resource's inputs (SHA-256 of their canonical JSON), so a difference
names the resource whose inputs moved. Registration order is not compared: the engine registers
a resource when its inputs resolve, which varies from run to run.

A change that means to alter what a stack declares rewrites the snapshot, and the diff of that
file in the commit shows which resources moved::

    PYTHONPATH=.:tests/infra python tests/infra/test_declared_resources_snapshot.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_harness import DB_SECRET, EXAMPLE_STACKS, ProgramRun, run_program, stack_config

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "declared.json"


def _digest(inputs: Any) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def declared(run: ProgramRun) -> list[list[str]]:
    """One row per declared resource, sorted: type, name, parent, provider, inputs digest."""
    return sorted(
        [resource.type, resource.name, resource.parent, resource.provider, _digest(resource.inputs)]
        for resource in run.resources
    )


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_an_example_stack_declares_the_recorded_resources(
    stack: str, example_runs: dict[str, ProgramRun]
) -> None:
    recorded = json.loads(SNAPSHOT.read_text())[stack]
    now = declared(example_runs[stack])
    # A URN is made of the parents' types, the type and the name, so (type, name, parent) is
    # unique within a stack.
    recorded_rows = {tuple(row[:3]): row for row in recorded}
    now_rows = {tuple(row[:3]): row for row in now}
    assert len(now_rows) == len(now), "two resources share a type, name and parent"
    missing = sorted(set(recorded_rows) - set(now_rows))
    added = sorted(set(now_rows) - set(recorded_rows))
    moved = sorted(
        key for key in set(recorded_rows) & set(now_rows) if recorded_rows[key] != now_rows[key]
    )
    assert (missing, added, moved) == ([], [], []), (
        f"stack {stack}: no longer declared {missing}; newly declared {added}; "
        f"provider or inputs changed {moved}"
    )


def _write() -> None:
    runs = {
        stack: declared(run_program(stack_config(stack), stack=stack, secrets=DB_SECRET))
        for stack in EXAMPLE_STACKS
    }
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(runs, indent=1) + "\n")
    print(f"wrote {SNAPSHOT}: " + ", ".join(f"{s} {len(rows)}" for s, rows in runs.items()))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write (rewrites {SNAPSHOT})")
    _write()
