"""``mirrorcast status``: mirrors, weights, capacities, in-flight ramps and rollbacks of a stack."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from driver.commands._common import out_console, print_json, project_root, user_errors

__all__ = ["register", "stack_status"]

logger = logging.getLogger(__name__)


NOT_READ = "the clouds were not read now (mirrorcast status --observe reads them)"
"""Why a default ``status`` shows no live observation."""


def stack_status(stack: str, *, observe: bool = False) -> dict[str, Any]:
    """The stack's declared state and the journal's view (memory, pending requests, lease),
    with what the clouds reported beside it (``observed``).

    ``status`` is a read command people and scripts run often, so by default it reads the
    journal only: building the clouds' SDK clients alone costs a few tenths of a second to
    seconds on a loaded machine, and a cloud without credentials or a hung API adds its
    timeouts. ``observed`` is then the last cycle's observation, as journaled (its time in
    ``observation.as_of``), and ``observation.note`` says the clouds were not read now.

    :param observe: default ``False``; ``True`` reads the clouds now ("not observed" and why
        when a cloud cannot be read, for instance without credentials).
    """
    from driver.journal import OBSERVE_KIND, Journal
    from driver.render import config_state_json, plan_record_json
    from infra.config import load_stack

    config = load_stack(stack, project_root())
    journal = Journal(config.driver.journal_url)
    try:
        memory = journal.load_memory(stack=stack)
        plans = journal.plans(stack=stack, limit=1)
        lease = journal.lease(stack=stack)
        if observe:
            observed: dict[str, Any] | None = _observed(config)
            observation = {"read_now": True, "as_of": None, "note": None}
        else:
            observed, observation = _last_observed(
                journal.latest_update(stack=stack, kind=OBSERVE_KIND)
            )
        return {
            "stack": stack,
            "pools": config_state_json(config, memory),
            "pending_rollback_requests": [
                {
                    "id": r.id,
                    "pool": r.pool,
                    "requested_by": r.requested_by,
                    "requested_at": r.requested_at.isoformat(),
                    "reason": r.reason,
                }
                for r in journal.pending_rollbacks(stack=stack)
            ],
            "last_plan": plan_record_json(plans[0]) if plans else None,
            "lease": {
                "holder": lease["holder"],
                "expires_at": lease["expires_at"].isoformat(),
            }
            if lease
            else None,
            "observed": observed,
            "observation": observation,
        }
    finally:
        journal.close()


def _observed(config: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    from driver.observers import StackObserver

    return StackObserver().observe(config, now=datetime.now(UTC)).summary(config)


def _last_observed(row: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The last cycle's journaled observation and the note that says it is not live."""
    import json

    if row is not None:
        try:
            observed = json.loads(row["summary"])
        except (TypeError, ValueError):
            observed = None  # never written so: shown as not recorded
        if isinstance(observed, dict):
            at = row["at"].isoformat()
            note = f"{NOT_READ}; observed below as of the last cycle, {at}"
            return observed, {"read_now": False, "as_of": at, "note": note}
    note = f"{NOT_READ}; no cycle has observed this stack yet"
    return None, {"read_now": False, "as_of": None, "note": note}


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        stack: Annotated[str, typer.Option("--stack", help="Stack name.")],
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        observe: Annotated[
            bool,
            typer.Option(
                "--observe/--no-observe",
                help=(
                    "Read the clouds now and show observed beside intended (default: the last "
                    "cycle's observation from the journal, saying so)."
                ),
            ),
        ] = False,
    ) -> None:
        """Show each pool's mirror, weights and capacity, pending ramps and rollbacks, and what
        the clouds reported beside it."""
        from driver.render import render_status

        with user_errors():
            data = stack_status(stack, observe=observe)
        if json_output:
            print_json(data)
        else:
            render_status(out_console, stack, data)
