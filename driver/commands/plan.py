"""``mirrorcast plan``: forecast and plan one stack now, changing nothing and journaling nothing."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from driver.commands._common import out_console, parse_at, print_json, project_root, user_errors

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        stack: Annotated[
            str, typer.Option("--stack", help="Stack name (stacks/Pulumi.<stack>.yaml).")
        ],
        at: Annotated[
            str | None,
            typer.Option("--at", help="Decide as of this UTC time (ISO 8601); default now."),
        ] = None,
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show the forecasts, fired rules, the plan and its explanation; change nothing."""
        from driver.logs import setup_logging
        from driver.render import cycle_json, render_cycle
        from driver.service import Driver

        setup_logging(level="WARNING")
        when = parse_at(at)
        with user_errors():
            driver = Driver(stack=stack, root=project_root(), mode="plan")
            report = driver.preview(now=when)
        if json_output:
            print_json(cycle_json(report))
        else:
            render_cycle(out_console, report)
