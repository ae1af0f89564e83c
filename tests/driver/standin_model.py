"""The stack model behind the Pulumi CLI stand-in (see ``pulumi_standin.py``).

Kept free of ``pulumi`` imports so that, run as a script (a fake ``pulumi`` on PATH for the
subprocess crash tests), each invocation starts quickly.

Original overview, which applies to both:

A recording stand-in for the Pulumi CLI, at the Automation API's own seam.

:class:`StandInPulumi` is a ``pulumi.automation.PulumiCommand`` subclass: the real
``pulumi.automation`` code builds the real command lines and hands them to ``run``, which
records them and plays a tiny model of one stack instead of executing a binary. The model:

- ``config set``/``config set-all --path`` edit ``stacks/Pulumi.<stack>.yaml`` like the CLI does
  ("When setting the config for a path, 'true' and 'false' are treated as boolean values, and
  integers are treated as numbers. All other values are treated as strings", so ``12.5``
  stays the string ``"12.5"``); ``config set-all --json`` sets whole top-level keys from the
  ``pulumi config --json`` shape (typed), and ``config --json`` prints that shape;
- ``up --policy-pack DIR`` runs the pack's stack-level policy (``check_stack_config`` on the
  stack file, the check the pack's ``mirrorcast-stack-config`` policy wraps) and, on a
  mandatory violation, fails the update printing ``Policy Violations:`` as the CLI does; the
  resource-level policies are tested on captured program inputs (tests/infra) instead;
- ``up`` computes the ``pools`` output from the stack file (mirror state, weights, capacities),
  writing engine events (prelude, resource pre/outputs, summary) to the ``--event-log`` file;
- ``refresh``, ``stack output --json``, ``stack history --json``, ``stack select``/``init``;
- pending operations a killed CLI leaves (``StackModel.pending``): ``stack export`` shows them
  under ``deployment.pending_operations``; ``refresh`` refuses while a pending create remains
  unless given ``--clear-pending-creates`` (non-interactive refresh cannot ask), which drops them.

Failures are queued per operation with :meth:`StandInPulumi.fail`:
``locked`` (another update holds the lock: the diy backend's message, which the Automation API
turns into ``ConcurrentUpdateError``), ``halfway`` (the update dies after changing the mirror's
state but before the weights), ``hang`` (the command runs for ``hang_seconds``), and
``wrong_outputs`` (the update succeeds but the outputs disagree with the config).

The same model runs as a script (``python tests/driver/standin_model.py``) so subprocess tests
can put a fake ``pulumi`` on PATH; its state then lives in ``$STANDIN_STATE``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOCKED_STDERR = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) "
    "to end or delete the lock file with `pulumi cancel`.\n  file://state/.pulumi/locks/x.json"
)


def _scalar(text: str) -> Any:
    """What ``pulumi config set --path`` stores for a value typed on the command line.

    https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/: "true" and "false" become
    booleans, integers numbers, everything else (``12.5`` included) a string.
    """
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


class StackModel:
    """The state of one stack: its outputs and update history (config lives in the stack file)."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.state_file = state_file
        self.outputs: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.stacks: set[str] = set()
        self.failures: dict[str, list[str]] = {}
        self.updates = 0
        self.pending: list[dict[str, Any]] = []
        self.load()

    def load(self) -> None:
        if self.state_file is not None and self.state_file.exists():
            data = json.loads(self.state_file.read_text())
            self.outputs = data["outputs"]
            self.history = data["history"]
            self.stacks = set(data["stacks"])
            self.failures = data["failures"]
            self.updates = data["updates"]
            self.pending = data.get("pending", [])

    def save(self) -> None:
        if self.state_file is not None:
            self.state_file.write_text(
                json.dumps(
                    {
                        "outputs": self.outputs,
                        "history": self.history,
                        "stacks": sorted(self.stacks),
                        "failures": self.failures,
                        "updates": self.updates,
                        "pending": self.pending,
                    }
                )
            )


def pools_output(stack_file: Path) -> dict[str, Any]:
    """The ``pools`` output the program would export for the stack file's config."""
    # Imported here: most invocations (version, select, output) must start fast as a script.
    from infra.config import config_from_text

    config = config_from_text(stack_file.read_text(), source=str(stack_file))
    out: dict[str, Any] = {}
    for name, pool in config.pools.items():
        out[name] = {
            "primary_capacity": pool.primary.capacity.model_dump(),
            "mirror_capacity": pool.mirror_size,
            "mirror_running": pool.mirror_running,
            "mirror_state": pool.mirror.state.value,
            "weights": {
                "primary": pool.balancer.weights.primary,
                "mirror": pool.balancer.weights.mirror,
            },
            "placement": pool.mirror_placement,
        }
    return out


def play(
    model: StackModel, args: list[str], cwd: str, *, hang_seconds: float = 5.0
) -> tuple[int, str, str]:
    """Run one CLI invocation against ``model``; returns (exit code, stdout, stderr)."""
    words = [a for a in args if a != "--non-interactive"]
    stack = words[words.index("--stack") + 1] if "--stack" in words else "dev"
    stack_file = Path(cwd) / "stacks" / f"Pulumi.{stack}.yaml"

    def failure(op: str) -> str | None:
        queue = model.failures.get(op) or []
        if not queue:
            return None
        kind = queue.pop(0)
        model.save()
        return kind

    if words[:1] == ["version"]:
        return 0, "v3.200.0", ""
    if words[:2] == ["stack", "select"]:
        if stack not in model.stacks:
            return 255, "", f"error: no stack named '{stack}' found"
        return 0, "", ""
    if words[:2] == ["stack", "init"]:
        model.stacks.add(words[2])
        model.save()
        return 0, "", ""
    if words[:2] == ["config", "set-all"] and "--json" in words:
        _set_config_json(stack_file, json.loads(words[words.index("--json") + 1]))
        return 0, "", ""
    if words[:2] == ["config", "set-all"] or words[:2] == ["config", "set"]:
        _set_config(stack_file, words)
        return 0, "", ""
    if words[:1] == ["config"] and "--json" in words:
        return 0, json.dumps(_config_json(stack_file)), ""
    if words[:2] == ["stack", "output"]:
        return 0, json.dumps(model.outputs), ""
    if words[:2] == ["stack", "export"]:
        return (
            0,
            json.dumps({"version": 3, "deployment": {"pending_operations": model.pending}}),
            "",
        )
    if words[:2] == ["stack", "history"]:
        return 0, json.dumps(model.history[-1:]), ""
    if words[:1] in (["up"], ["refresh"]):
        op = words[0]
        kind = failure(op)
        log = words[words.index("--event-log") + 1] if "--event-log" in words else None
        events = _Events(log)
        if kind == "locked":
            events.close()
            return 255, "", LOCKED_STDERR
        if kind == "hang":
            time.sleep(hang_seconds)
        creates = [p for p in model.pending if p.get("type") == "creating"]
        if op == "refresh" and creates and "--clear-pending-creates" not in words:
            events.close()
            listed = "\n".join(
                f"  * {p['resource']['urn']}, interrupted while creating" for p in creates
            )
            return (
                255,
                "",
                (
                    f"error: the current deployment has {len(creates)} resource(s) with pending "
                    f"operations:\n{listed}\n\nThese resources are in an unknown state because the "
                    "Pulumi CLI was interrupted while waiting for changes to these resources to "
                    "complete."
                ),
            )
        events.emit({"preludeEvent": {"config": {}}})
        if op == "refresh":
            model.pending = []
            model.history.append(_summary("refresh", "succeeded", {"same": 3}))
            events.emit({"summaryEvent": {"resourceChanges": {"same": 3}}})
            events.close()
            model.save()
            return 0, "refresh done", ""
        packs = [words[i + 1] for i, w in enumerate(words) if w == "--policy-pack"]
        violations = _policy_violations(stack_file, stack) if packs else ""
        if violations:
            model.history.append(_summary("update", "failed", {}))
            events.close()
            model.save()
            return 255, violations, "error: update failed: preview failed"
        intended = pools_output(stack_file)
        urns = [f"urn:pulumi:{stack}::mirrorcast::mirrorcast:pool:Pool::{p}" for p in intended]
        for urn in urns:
            events.emit({"resourcePreEvent": {"metadata": _meta(urn)}})
        if kind == "halfway":
            for name, data in intended.items():
                current = model.outputs.setdefault("pools", {}).setdefault(name, dict(data))
                current["mirror_state"] = data["mirror_state"]
            model.history.append(_summary("update", "failed", {"update": 1}))
            events.close()
            model.save()
            return 255, "", "error: update failed: aws:route53/record:Record weights: throttled"
        for urn in urns:
            events.emit({"resOutputsEvent": {"metadata": _meta(urn)}})
        if kind == "wrong_outputs":
            for data in intended.values():
                data["weights"] = {"primary": 100, "mirror": 0}
        model.outputs["pools"] = intended
        model.updates += 1
        model.history.append(_summary("update", "succeeded", {"update": len(urns)}))
        events.emit({"summaryEvent": {"resourceChanges": {"update": len(urns)}}})
        events.close()
        model.save()
        return 0, "update done", ""
    return 255, "", f"stand-in does not model: pulumi {' '.join(words)}"


def _set_config(stack_file: Path, words: list[str]) -> None:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    document = yaml.load(stack_file.read_text())
    config = document["config"]
    pairs: list[tuple[str, str]] = []
    if words[1] == "set-all":
        for i, word in enumerate(words):
            if word in ("--plaintext", "--secret"):
                key, _, value = words[i + 1].partition("=")
                pairs.append((key, value))
    else:
        key = words[2]
        pairs.append((key, words[words.index("--") + 1]))
    for key, value in pairs:
        namespace, _, path = key.partition(":")
        head, *rest = path.split(".")
        node = config.setdefault(f"{namespace}:{head}", {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = _scalar(value)
    out = io.StringIO()
    yaml.dump(document, out)
    stack_file.write_text(out.getvalue())


def _policy_violations(stack_file: Path, stack: str) -> str:
    """The CLI's ``Policy Violations:`` block for the pack's stack policy, or ``""``."""
    from policies.crossguard.checks import check_stack_config, load_settings

    _settings, config = load_settings(stack_file)
    messages = check_stack_config(config)
    if not messages:
        return ""
    lines = ["Policy Violations:"]
    for message in messages:
        lines += [
            "    [mandatory]  mirrorcast-guardrails v0.0.1  mirrorcast-stack-config "
            f"(pulumi:pulumi:Stack: mirrorcast-{stack})",
            "    Mirror percent 0-100, weights in range and not all zero, capacity within max, "
            "regions allowed, cost tags set.",
            f"    {message}",
            "",
        ]
    return "\n".join(lines)


def _config_json(stack_file: Path) -> dict[str, Any]:
    """``pulumi config --json``: each key's value as text, structured ones also as objectValue."""
    from ruamel.yaml import YAML

    config = YAML(typ="safe").load(stack_file.read_text()).get("config") or {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict | list):
            out[key] = {"value": json.dumps(value), "objectValue": value, "secret": False}
        else:
            out[key] = {
                "value": value if isinstance(value, str) else json.dumps(value),
                "secret": False,
            }
    return out


def _set_config_json(stack_file: Path, values: Mapping[str, Any]) -> None:
    """``config set-all --json``: whole top-level keys, objectValue kept with its types."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    document = yaml.load(stack_file.read_text())
    for key, entry in values.items():
        if entry.get("secret"):
            raise ValueError("the stand-in does not model secrets")
        if "objectValue" in entry:
            _merge(document["config"], key, entry["objectValue"])
        else:
            document["config"][key] = entry["value"]
    out = io.StringIO()
    yaml.dump(document, out)
    stack_file.write_text(out.getvalue())


def _merge(node: Any, key: str, value: Any) -> None:
    """Set ``node[key]`` to ``value``, editing mappings in place so their comments stay."""
    if isinstance(value, dict) and isinstance(node.get(key), dict):
        for sub in list(node[key]):
            if sub not in value:
                del node[key][sub]
        for sub, item in value.items():
            _merge(node[key], sub, item)
    else:
        node[key] = value


def _meta(urn: str) -> dict[str, Any]:
    return {"op": "update", "urn": urn, "type": "mirrorcast:pool:Pool", "provider": ""}


def _summary(kind: str, result: str, changes: Mapping[str, int]) -> dict[str, Any]:
    return {
        "kind": kind,
        "startTime": "2026-11-28T00:00:00.000000Z",
        "endTime": "2026-11-28T00:00:01.000000Z",
        "message": "",
        "environment": {},
        "config": {},
        "result": result,
        "resourceChanges": dict(changes),
        "version": 1,
    }


class _Events:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.sequence = 0

    def emit(self, body: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.sequence += 1
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"sequence": self.sequence, "timestamp": 0, **body}) + "\n")

    def close(self) -> None:
        """The CLI ends every event log with a cancel event; the Automation API stops reading there."""
        self.emit({"cancelEvent": {}})


def main() -> int:
    """``pulumi`` as a script over a model stored in ``$STANDIN_STATE`` (for subprocess tests)."""
    state = Path(os.environ["STANDIN_STATE"])
    model = StackModel(state)
    args = sys.argv[1:]
    with open(state.with_suffix(".calls"), "a", encoding="utf-8") as log:
        log.write(json.dumps(args) + "\n")
    hang_marker = os.environ.get("STANDIN_HANG_MARKER")
    if hang_marker and [a for a in args if a != "--non-interactive"][:1] == ["up"]:
        # Crash tests: an update that has begun (the mirror is half started) when the driver
        # is killed; the marker tells the test it may kill now.
        model.failures.setdefault("up", []).insert(0, "halfway")
        play(model, args, os.getcwd())
        model.save()
        Path(hang_marker).write_text("up")
        while True:
            time.sleep(3600)
    code, stdout, stderr = play(model, args, os.getcwd())
    model.save()
    if stdout:
        print(stdout)
    if stderr:
        print(stderr, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
