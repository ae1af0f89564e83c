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

import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
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
from driver.state import state_dir
from infra.config import MirrorcastConfig, MirrorcastError
from policies import Plan

__all__ = [
    "MISSING_CLI_MESSAGE",
    "AutomationExecutor",
    "UpdateTimeoutError",
    "default_backend_url",
    "value_at",
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
    backend = state_dir() / "backend"
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
    ) -> None:
        self.stack_name = stack
        self.project_root = project_root
        self.backend_url = backend_url
        self.pulumi_command = pulumi_command
        self.update_timeout = update_timeout
        self.lock_attempts = lock_attempts
        self.lock_wait = lock_wait
        self.progress = progress
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
            options = auto.LocalWorkspaceOptions(
                env_vars={"PULUMI_BACKEND_URL": backend, "PULUMI_SKIP_UPDATE_CHECK": "true"},
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
            values = {
                f"mirrorcast:{change.path}": auto.ConfigValue(value=config_value_text(change.new))
                for change in plan.changes
            }
            try:
                stack.set_all_config(values, path=True)
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
        """
        stack = self.stack()
        try:
            self._with_lock_retry(
                lambda: self._bounded(
                    lambda: stack.refresh(message=f"mirrorcast recover {record.id}")
                )
            )
        except (auto_errors.CommandError, UpdateTimeoutError) as exc:
            return self._failure("refresh", exc)
        current = config.model_dump(mode="json")
        missing: dict[str, auto.ConfigValue] = {}
        for change in record.changes:
            try:
                have = value_at(current, change["path"])
            except KeyError:
                have = None
            if have != change["new"]:
                missing[f"mirrorcast:{change['path']}"] = auto.ConfigValue(
                    value=config_value_text(change["new"])
                )
        if missing:
            logger.info("re-setting %d key(s) of interrupted plan %s", len(missing), record.id)
            try:
                stack.set_all_config(missing, path=True)
            except auto_errors.CommandError as exc:
                return ApplyOutcome(status="failed", summary=f"setting config failed: {exc}")
        try:
            outputs = self.pools_output()
        except auto_errors.CommandError as exc:
            return self._failure("reading outputs", exc)
        if not missing and not output_mismatches(config, outputs):
            return ApplyOutcome(
                status="applied",
                summary=f"interrupted plan {record.id} had completed; nothing repeated",
                outputs=outputs,
            )
        return self._update(None, message=f"mirrorcast resume {record.id}")

    # ------------------------------------------------------------------ internals

    def _update(self, intended: MirrorcastConfig | None, *, message: str) -> ApplyOutcome:
        stack = self.stack()
        progress = self.progress or UpdateProgress(title=f"pulumi up {self.stack_name}")
        try:
            result = self._with_lock_retry(
                lambda: self._bounded(lambda: stack.up(on_event=progress, message=message))
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
                f"{self.lock_attempts} attempts. If no other update is running the lock is "
                "stale: check with 'pulumi stack history', then clear it with 'pulumi cancel' "
                "(mirrorcast never cancels a lock itself)."
            )
        elif isinstance(exc, UpdateTimeoutError):
            return ApplyOutcome(status="unfinished", summary=str(exc))
        else:
            summary = f"{what} failed: {_last_line(exc)}"
        logger.error("%s", summary)
        return ApplyOutcome(status="failed", summary=summary)


def _last_line(exc: Exception) -> str:
    """The most telling line of a CLI error (its stderr's last non-empty line), redacted."""
    text = str(getattr(exc, "stderr", "") or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact_text(lines[-1] if lines else type(exc).__name__)


def _changes_text(changes: Mapping[str, Any]) -> str:
    parts = [f"{count} {op}" for op, count in sorted(changes.items()) if op != "same"]
    return ", ".join(parts) or "no resource changes"
