"""``mirrorcast history``: past decisions with their explanations, newest first."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from driver.commands._common import out_console, print_json, project_root, user_errors

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command("history")
    def history(
        stack: Annotated[str, typer.Option("--stack", help="Stack name.")],
        limit: Annotated[
            int, typer.Option("--limit", min=1, max=1000, help="How many plans.")
        ] = 20,
        changes_only: Annotated[
            bool, typer.Option("--changes-only", help="Only plans that changed config.")
        ] = False,
        details: Annotated[
            bool,
            typer.Option("--details", help="Also the changed keys and the explanation of each."),
        ] = False,
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List past plans: when, what was decided and changed, why, and how it ended."""
        from driver.journal import Journal
        from driver.render import plan_record_json, render_history
        from infra.config import load_stack

        with user_errors():
            config = load_stack(stack, project_root())
            journal = Journal(config.driver.journal_url)
            records = journal.plans(stack=stack, limit=limit if not changes_only else limit * 20)
            if changes_only:
                records = [r for r in records if r.changes][:limit]
            observed = _observed(journal, records)
            journal.close()
        if json_output:
            print_json([plan_record_json(r, observed=observed.get(r.id)) for r in records])
        else:
            render_history(out_console, stack, records, details=details, observed=observed)


def _observed(journal: Any, records: list[Any]) -> dict[str, dict[str, Any]]:
    """Plan id -> what the clouds reported in that plan's cycle, beside what was intended."""
    import json

    from driver.journal import OBSERVE_KIND

    out: dict[str, dict[str, Any]] = {}
    for record in records:
        rows = journal.updates_of_plan(plan_id=record.id, kind=OBSERVE_KIND)
        if rows:
            try:
                out[record.id] = json.loads(rows[-1]["summary"])
            except (TypeError, ValueError):
                continue  # a summary that is not JSON (never written so): shown as not recorded
    return out
