"""``mirrorcast status``: mirrors, weights, capacities, in-flight ramps and rollbacks of a stack."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from driver.commands._common import out_console, print_json, project_root, user_errors

__all__ = ["register", "stack_status"]

logger = logging.getLogger(__name__)


def stack_status(stack: str) -> dict[str, Any]:
    """The stack's declared state plus the journal's view (memory, pending requests, lease)."""
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
        }
    finally:
        journal.close()


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        stack: Annotated[str, typer.Option("--stack", help="Stack name.")],
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show each pool's mirror, weights and capacity, and pending ramps and rollbacks."""
        from driver.render import render_status

        with user_errors():
            data = stack_status(stack)
        if json_output:
            print_json(data)
        else:
            render_status(out_console, stack, data)
