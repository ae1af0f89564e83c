"""``mirrorcast status``: mirrors, weights, capacities, in-flight ramps and rollbacks of a stack."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from driver.commands._common import out_console, print_json, project_root, user_errors

__all__ = ["register", "stack_status"]

logger = logging.getLogger(__name__)


def stack_status(stack: str, *, observe: bool = True) -> dict[str, Any]:
    """The stack's declared state, the journal's view (memory, pending requests, lease), and
    what the clouds report now beside it (``observed``; "not observed" and why when a cloud
    cannot be read, for instance without credentials).

    :param observe: read the clouds now (default); ``False`` leaves ``observed`` out.
    """
    from driver.journal import Journal
    from driver.render import config_state_json, plan_record_json
    from infra.config import load_stack

    config = load_stack(stack, project_root())
    journal = Journal(config.driver.journal_url)
    try:
        memory = journal.load_memory(stack=stack)
        plans = journal.plans(stack=stack, limit=1)
        lease = journal.lease(stack=stack)
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
            "observed": _observed(config) if observe else None,
        }
    finally:
        journal.close()


def _observed(config: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    from driver.observers import StackObserver

    return StackObserver().observe(config, now=datetime.now(UTC)).summary(config)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        stack: Annotated[str, typer.Option("--stack", help="Stack name.")],
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        observe: Annotated[
            bool,
            typer.Option(
                "--observe/--no-observe",
                help="Also read the clouds now and show observed beside intended.",
            ),
        ] = True,
    ) -> None:
        """Show each pool's mirror, weights and capacity, pending ramps and rollbacks, and what
        the clouds report beside it."""
        from driver.render import render_status

        with user_errors():
            data = stack_status(stack, observe=observe)
        if json_output:
            print_json(data)
        else:
            render_status(out_console, stack, data)
