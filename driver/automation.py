"""``apply`` mode: set the changed config keys and run ``pulumi up`` through the Automation API.

The program is the repository's own (``Pulumi.yaml`` at the project root, stack files in
``stacks/``), run by ``pulumi.automation`` in a :class:`LocalWorkspace`. Only the keys a plan
changes are set (``config set-all --path``), so a person's edits to other keys are never
overwritten. After ``up`` the stack outputs are read back and compared with the intended config;
a difference is reported as ``mismatch`` and the update is retried next cycle.

Another update holding the stack lock (``ConcurrentUpdateError``) is waited out with exponential
backoff; if it never clears the lock is reported as possibly stale and left alone, because
cancelling someone else's update can corrupt the stack.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from driver.executor import (
    ApplyOutcome,
    DriverError,
    config_value_text,
    output_mismatches,
    value_at,
)
from driver.journal import PlanRecord
from driver.progress import UpdateProgress
from driver.redact import redact_text
from driver.state import state_path
from infra.config import MirrorcastConfig, MirrorcastError
from policies import Plan

__all__ = [
    "MISSING_CLI_MESSAGE",
    "AutomationExecutor",
    "UpdateTimeoutError",
    "default_backend_url",
    "policy_violations",
    "value_at",
    "write_config",
]

logger = logging.getLogger(__name__)

MISSING_CLI_MESSAGE = (
    "apply mode needs the Pulumi CLI, which is not on PATH: install it with "
    "'curl -fsSL https://get.pulumi.com | sh' (or see https://www.pulumi.com/docs/install/), "
    "or use --mode plan or --mode gitops, which work without it."
)

_T = TypeVar("_T")


class UpdateTimeoutError(MirrorcastError, RuntimeError):
    """A Pulumi operation ran longer than ``driver.update_timeout``."""


def default_backend_url() -> str:
    """``file://`` backend under the state directory (created private)."""
    backend = state_path("backend")
    backend.mkdir(mode=0o700, exist_ok=True)
    return f"file://{backend}"


class AutomationExecutor:
    """Applies plans to one stack with the Automation API.

    :param stack: the stack name (``stacks/Pulumi.<stack>.yaml``).
    :param project_root: the directory holding ``Pulumi.yaml``.
    :param backend_url: Pulumi backend; default ``file://`` under the state directory.
    :param pulumi_command: the CLI to drive; default the ``pulumi`` on PATH (tests pass a
        recording stand-in here).
    :param update_timeout: longest a refresh or update may run; default 30 minutes.
    :param lock_attempts: tries while another update holds the stack lock; default 5.
    :param lock_wait: first backoff wait in seconds, doubled per try (capped at 60 s); default 2.
    :param progress: receives engine events; default a :class:`UpdateProgress` (Rich bar on a
        terminal, log lines otherwise).
    :param policy_packs: CrossGuard pack directories every ``up`` runs (``policy.packs``); a
        mandatory violation fails the update and its message becomes the outcome's summary.
    """

    mode = "apply"

    def __init__(
        self,
        *,
        stack: str,
        project_root: Path,
        backend_url: str | None = None,
        pulumi_command: auto.PulumiCommand | None = None,
        update_timeout: timedelta = timedelta(minutes=30),
        lock_attempts: int = 5,
        lock_wait: float = 2.0,
        progress: Callable[[auto.EngineEvent], None] | None = None,
        policy_packs: list[str] | None = None,
    ) -> None:
        self.stack_name = stack
        self.policy_packs = list(policy_packs or [])
        self.project_root = project_root
        self.backend_url = backend_url
        self.pulumi_command = pulumi_command
        self.update_timeout = update_timeout
        self.lock_attempts = lock_attempts
        self.lock_wait = lock_wait
        self.progress = progress
        # The driver's fencing check (lease and journal still this driver's), called before
        # each effect on the stack; the driver sets it, a bare executor checks nothing.
        self.fence: Callable[[], None] = lambda: None
        self._stack: auto.Stack | None = None

    # ------------------------------------------------------------------ setup

    def check_ready(self) -> None:
        """Fail at start, in one sentence, when the CLI or the passphrase is missing."""
        if self.pulumi_command is None and shutil.which("pulumi") is None:
            raise DriverError(MISSING_CLI_MESSAGE)
        if not (
            os.environ.get("PULUMI_CONFIG_PASSPHRASE")
            or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        ):
            raise DriverError(
                "apply mode encrypts stack secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE "
                "(or PULUMI_CONFIG_PASSPHRASE_FILE) in the driver's environment."
            )

    def stack(self) -> auto.Stack:
        """The selected (created on first use) stack."""
        if self._stack is None:
            backend = self.backend_url or default_backend_url()
            if backend.startswith("file://"):
                Path(backend.removeprefix("file://")).mkdir(parents=True, mode=0o700, exist_ok=True)
            # The passphrase is inherited from the process environment by the CLI; it is
            # deliberately not copied into env_vars, which the workspace keeps and may print.
            env = {"PULUMI_BACKEND_URL": backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}
            if self.policy_packs:
                # The pack judges the stack's own limits (allowed regions, capacity.max, cost
                # tags) from its stack file.
                env["MIRRORCAST_STACK_FILE"] = str(
                    self.project_root / "stacks" / f"Pulumi.{self.stack_name}.yaml"
                )
            options = auto.LocalWorkspaceOptions(
                env_vars=env,
                secrets_provider="passphrase",
                pulumi_command=self.pulumi_command,
            )
            self._stack = auto.create_or_select_stack(
                stack_name=self.stack_name, work_dir=str(self.project_root), opts=options
            )
        return self._stack

    # ------------------------------------------------------------------ observe

    def pools_output(self) -> dict[str, Any] | None:
        """The stack's ``pools`` output, or ``None`` before the first update."""
        outputs = self.stack().outputs()
        pools = outputs.get("pools")
        return dict(pools.value) if pools is not None and pools.value is not None else None

    # ------------------------------------------------------------------ act

    def apply(self, plan: Plan, *, plan_id: str, retry_update: bool = False) -> ApplyOutcome:
        """Set the plan's changed keys, run ``up``, read outputs back and compare."""
        if not plan.changes and not retry_update:
            return ApplyOutcome(status="applied", summary="no changes")
        stack = self.stack()
        if plan.changes:
            values = {change.path: change.new for change in plan.changes}
            self.fence()
            try:
                write_config(stack, values)
            except auto_errors.CommandError as exc:
                return ApplyOutcome(
                    status="failed", summary=f"setting config failed: {_last_line(exc)}"
                )
            logger.info("set %d config key(s) for plan %s", len(values), plan_id)
        return self._update(plan.stack_config, message=f"mirrorcast plan {plan_id}")

    def recover(self, record: PlanRecord, config: MirrorcastConfig) -> ApplyOutcome:
        """Finish an update a previous driver started and never recorded the end of.

        Refreshes first (the state may lag the cloud after a kill), then compares the stack
        with the interrupted plan's intent. Keys the plan meant to set but the stack file does
        not show yet are set again (idempotent); ``up`` runs only if the outputs still differ,
        so an activation that already happened is never repeated.

        A killed CLI leaves pending operations in the state. Pending creates block every later
        refresh and update, so they are cleared (``refresh --clear-pending-creates``) and
        named in the outcome: the cloud may hold the half-created resource, which a person
        should delete or ``pulumi import``. Other pending operations (updates, deletes) are
        read back by the refresh itself and only reported.
        """
        stack = self.stack()
        pending = self._pending_operations(stack)
        creates = [op for op in pending if op.get("type") == "creating"]
        try:
            self._with_lock_retry(
                lambda: self._fenced(
                    lambda: stack.refresh(
                        message=f"mirrorcast recover {record.id}",
                        clear_pending_creates=True if creates else None,
                    )
                )
            )
        except (auto_errors.CommandError, UpdateTimeoutError) as exc:
            return self._failure("refresh", exc)
        if pending:
            logger.warning("%s", pending_operations_text(pending))
        current = config.model_dump(mode="json")
        missing: dict[str, Any] = {}
        for change in record.changes:
            try:
                have = value_at(current, change["path"])
            except KeyError:
                have = None
            if have != change["new"]:
                missing[change["path"]] = change["new"]
        if missing:
            logger.info("re-setting %d key(s) of interrupted plan %s", len(missing), record.id)
            self.fence()
            try:
                write_config(stack, missing)
            except auto_errors.CommandError as exc:
                return ApplyOutcome(status="failed", summary=f"setting config failed: {exc}")
        try:
            outputs = self.pools_output()
        except auto_errors.CommandError as exc:
            return self._failure("reading outputs", exc)
        if not missing and not output_mismatches(config, outputs):
            outcome = ApplyOutcome(
                status="applied",
                summary=f"interrupted plan {record.id} had completed; nothing repeated",
                outputs=outputs,
            )
        else:
            outcome = self._update(None, message=f"mirrorcast resume {record.id}")
        if pending:
            outcome.details["pending_operations"] = pending_operations_text(pending)
            return dataclasses.replace(
                outcome, summary=f"{outcome.summary}; {pending_operations_text(pending)}"
            )
        return outcome

    def _pending_operations(self, stack: auto.Stack) -> list[dict[str, Any]]:
        """The state's pending operations (``stack export``), ``[]`` when it cannot be read."""
        try:
            deployment = self._bounded(stack.export_stack).deployment or {}
        except (auto_errors.CommandError, UpdateTimeoutError) as exc:
            logger.warning(
                "cannot read the stack state for pending operations: %s", _last_line(exc)
            )
            return []
        return [op for op in deployment.get("pending_operations") or [] if isinstance(op, dict)]

    # ------------------------------------------------------------------ internals

    def _lock_holders(self) -> str:
        """The diy backend's lock files for this stack, with their age ("" elsewhere)."""
        backend = self.backend_url or default_backend_url()
        if not backend.startswith("file://"):
            return ""
        locks = Path(backend.removeprefix("file://")) / ".pulumi" / "locks"
        # diy backends keep <locks>/<org>/<project>/<stack>/<lock id>.json (or <stack>/ alone).
        files = sorted(p for p in locks.rglob("*.json") if p.parent.name == self.stack_name)
        if not files:
            return ""
        now = datetime.now(UTC)
        return "The lock: " + "; ".join(_describe_lock(p, now) for p in files) + ". "

    def _update(self, intended: MirrorcastConfig | None, *, message: str) -> ApplyOutcome:
        stack = self.stack()
        progress = self.progress or UpdateProgress(title=f"pulumi up {self.stack_name}")
        try:
            result = self._with_lock_retry(
                lambda: self._fenced(
                    lambda: stack.up(
                        on_event=progress,
                        message=message,
                        policy_packs=self.policy_packs or None,
                    )
                )
            )
        except UpdateTimeoutError as exc:
            return ApplyOutcome(status="unfinished", summary=str(exc))
        except auto_errors.CommandError as exc:
            return self._failure("pulumi up", exc)
        finally:
            close = getattr(progress, "close", None)
            if callable(close):
                close()
        pools = result.outputs.get("pools")
        outputs = dict(pools.value) if pools is not None and pools.value is not None else None
        changes = {str(k): v for k, v in (result.summary.resource_changes or {}).items()}
        if intended is None:
            from infra.config import load_stack

            intended = load_stack(self.stack_name, self.project_root)
        mismatches = output_mismatches(intended, outputs)
        if mismatches:
            return ApplyOutcome(
                status="mismatch",
                summary="update finished but outputs differ: " + "; ".join(mismatches),
                details={"resource_changes": changes},
                outputs=outputs,
            )
        return ApplyOutcome(
            status="applied",
            summary=f"updated ({_changes_text(changes)}); outputs match the plan",
            details={"resource_changes": changes},
            outputs=outputs,
        )

    def _with_lock_retry(self, operation: Callable[[], _T]) -> _T:
        retrying = Retrying(
            retry=retry_if_exception_type(auto_errors.ConcurrentUpdateError),
            wait=wait_exponential(multiplier=self.lock_wait, max=60),
            stop=stop_after_attempt(self.lock_attempts),
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "stack %s is locked by another update; waiting (attempt %d of %d)",
                self.stack_name,
                state.attempt_number,
                self.lock_attempts,
            ),
        )
        return retrying(operation)

    def _fenced(self, operation: Callable[[], _T]) -> _T:
        """An effect on the stack: the fencing check first (each attempt), then bounded in time."""
        self.fence()
        return self._bounded(operation)

    def _bounded(self, operation: Callable[[], _T]) -> _T:
        """Run ``operation`` but give up waiting after ``update_timeout``.

        The CLI process cannot be reached through the Automation API to be stopped, so it is
        left to finish on its own; the plan stays ``applying`` and the next cycle refreshes.
        """
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = operation()
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=target, name="pulumi-operation", daemon=True)
        worker.start()
        worker.join(self.update_timeout.total_seconds())
        if worker.is_alive():
            raise UpdateTimeoutError(
                f"the Pulumi operation on stack {self.stack_name} did not finish within "
                f"{self.update_timeout}; it is left running and the next cycle refreshes and "
                "reconciles"
            )
        if "error" in box:
            raise box["error"]
        result: _T = box["result"]
        return result

    def _failure(self, what: str, exc: Exception) -> ApplyOutcome:
        if isinstance(exc, auto_errors.ConcurrentUpdateError):
            summary = (
                f"{what}: stack {self.stack_name} is still locked by another update after "
                f"{self.lock_attempts} attempts. {self._lock_holders()}If no other update is "
                "running the lock is stale: check with "
                f"'pulumi stack history --stack {self.stack_name}', then clear it with "
                f"'pulumi cancel --stack {self.stack_name} --yes' (mirrorcast never cancels a "
                "lock itself)."
            )
        elif isinstance(exc, UpdateTimeoutError):
            return ApplyOutcome(status="unfinished", summary=str(exc))
        elif violations := policy_violations(exc):
            summary = f"{what} stopped by policy: " + "; ".join(violations)
            logger.error("%s", summary)
            return ApplyOutcome(
                status="failed", summary=summary, details={"policy_violations": violations}
            )
        else:
            summary = f"{what} failed: {_last_line(exc)}"
        logger.error("%s", summary)
        return ApplyOutcome(status="failed", summary=summary)


def pending_operations_text(pending: list[dict[str, Any]]) -> str:
    """One sentence per kind of pending operation a killed CLI left, naming the resources."""
    creates = [op for op in pending if op.get("type") == "creating"]
    others = [op for op in pending if op.get("type") != "creating"]
    parts = []
    if creates:
        urns = ", ".join(str((op.get("resource") or {}).get("urn", "?")) for op in creates)
        parts.append(
            f"cleared {len(creates)} pending create(s) a killed update left ({urns}): the "
            "cloud may hold them half-created; find each by its type and name and delete it "
            "or adopt it with 'pulumi import'"
        )
    for op in others:
        urn = (op.get("resource") or {}).get("urn", "?")
        parts.append(f"pending {op.get('type', 'operation')} of {urn} was read back by refresh")
    return "; ".join(parts)


def _describe_lock(path: Path, now: datetime) -> str:
    """``<file> (taken 2h 13m ago by pid 4242 on host)`` from a diy backend's lock file."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        content = {}
    taken: datetime | None = None
    if isinstance(content.get("timestamp"), str):
        try:
            taken = datetime.fromisoformat(content["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            taken = None
    if taken is None:
        taken = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    age = now - taken
    hours, rest = divmod(int(age.total_seconds()), 3600)
    holder = ""
    if content.get("pid") or content.get("hostname"):
        holder = f" by pid {content.get('pid', '?')} on {content.get('hostname', '?')}"
    return f"{path} (taken {hours}h {rest // 60}m ago{holder})"


def _cli_stores(text: str) -> Any:
    """What ``pulumi config set --path`` stores for ``text``: "true"/"false" become booleans and
    integers numbers; everything else stays a string
    (https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/)."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


def _round_trips(value: Any) -> bool:
    """Whether ``--path`` would store ``value`` with its type (12.5 would become "12.5")."""
    stored = _cli_stores(config_value_text(value))
    plain = value.value if isinstance(value, Enum) else value
    return type(stored) is type(plain) and stored == plain


def write_config(stack: auto.Stack, values: Mapping[str, Any]) -> None:
    """Set ``mirrorcast:<path>`` keys with their types preserved.

    Values the CLI's ``--path`` parsing keeps (integers, booleans, plain strings) go through
    ``config set-all --path``, touching only those keys. The others (a fractional
    ``mirror.percent``, a string that looks like a number) would land in the stack file as the
    wrong type, so their top-level key is read, edited and written back typed with
    ``set_all_config_json`` (``--json`` takes no paths).

    :param stack: the stack to write.
    :param values: dotted paths under ``mirrorcast:`` (``pools.web.mirror.percent``) to values.
    """
    plain = {
        f"mirrorcast:{path}": auto.ConfigValue(value=config_value_text(value))
        for path, value in values.items()
        if _round_trips(value)
    }
    if plain:
        stack.set_all_config(plain, path=True)
    typed = {path: value for path, value in values.items() if not _round_trips(value)}
    if not typed:
        return
    if not hasattr(stack, "set_all_config_json"):
        raise DriverError(
            f"writing {', '.join(sorted(typed))} with its type needs Stack.set_all_config_json "
            "(pulumi 3.190 or later): upgrade the pulumi package"
        )
    current = stack.get_all_config()
    tops: dict[str, Any] = {}
    for path, value in typed.items():
        top, *rest = path.split(".")
        key = f"mirrorcast:{top}"
        if key not in tops:
            entry = current.get(key)
            if entry is not None and entry.secret:
                raise DriverError(f"{key} is a secret; mirrorcast does not rewrite secret keys")
            tops[key] = json.loads(entry.value) if entry is not None else {}
        node = tops[key]
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        plain_value = value.value if isinstance(value, Enum) else value
        if rest:
            node[rest[-1]] = plain_value
        else:
            tops[key] = plain_value
    stack.set_all_config_json(
        json.dumps(
            {
                key: {"value": json.dumps(obj), "objectValue": obj, "secret": False}
                for key, obj in tops.items()
            }
        )
    )


def policy_violations(exc: Exception) -> list[str]:
    """The mandatory CrossGuard violations a failed CLI run printed, one line each (redacted).

    The CLI prints them under ``Policy Violations:`` as a header line
    ``[mandatory]  <pack> v<version>  <policy>  (<type>: <name>)`` followed by the policy's
    description and the violation message; the message is the last indented line.
    """
    # A CommandError's text is its CommandResult: exit code, stdout and stderr.
    text = str(exc)
    found: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if "[mandatory]" not in line:
            continue
        header = line.split("[mandatory]", 1)[1].split()
        policy = header[2] if len(header) > 2 else "policy"
        where = line[line.find("(") + 1 : line.rfind(")")] if "(" in line else ""
        body = []
        for follow in lines[index + 1 :]:
            if not follow.strip() or "[mandatory]" in follow or "[advisory]" in follow:
                break
            body.append(follow.strip())
        message = body[-1] if body else ""
        found.append(redact_text(f"{policy}: {message}" + (f" ({where})" if where else "")))
    return found


def _last_line(exc: Exception) -> str:
    """The most telling line of a CLI error (its stderr's last non-empty line), redacted."""
    text = str(getattr(exc, "stderr", "") or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact_text(lines[-1] if lines else type(exc).__name__)


def _changes_text(changes: Mapping[str, Any]) -> str:
    parts = [f"{count} {op}" for op, count in sorted(changes.items()) if op != "same"]
    return ", ".join(parts) or "no resource changes"
