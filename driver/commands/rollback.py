"""``mirrorcast rollback``: a person asks for a pool to go back to its original config.

The request is journaled and honoured by the next cycle of the running driver (whatever its
host), or at once with ``--now``, which runs that cycle here. A request that finds nothing to
roll back is answered ("nothing active") and cleared by that cycle; ``--cancel`` withdraws the
pool's pending requests before any cycle takes them.
"""

from __future__ import annotations

import getpass
import logging
from datetime import UTC, datetime
from typing import Annotated

import typer

from driver.commands._common import out_console, print_json, project_root, user_errors

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command("rollback")
    def rollback(
        stack: Annotated[str, typer.Option("--stack", help="Stack name.")],
        pool: Annotated[str, typer.Option("--pool", help="The pool to roll back.")],
        reason: Annotated[
            str, typer.Option("--reason", help="Why, for the journal.")
        ] = "requested by an operator",
        now: Annotated[
            bool,
            typer.Option(
                "--now", help="Run a cycle here and now instead of waiting for the service."
            ),
        ] = False,
        cancel: Annotated[
            bool,
            typer.Option("--cancel", help="Withdraw the pool's pending rollback requests."),
        ] = False,
        mode: Annotated[
            str | None,
            typer.Option("--mode", help="With --now: plan, apply or gitops; default the stack's."),
        ] = None,
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Ask for a rollback of POOL: recorded, and honoured next cycle (or now with --now)."""
        from driver.executor import DriverError
        from driver.journal import Journal
        from driver.logs import setup_logging
        from driver.render import cycle_json, render_cycle
        from driver.service import Driver
        from infra.config import load_stack

        setup_logging(level="WARNING")
        if cancel and now:
            raise typer.BadParameter(
                "--cancel withdraws pending requests; it cannot be combined with --now",
                param_hint="--cancel",
            )
        with user_errors():
            root = project_root()
            config = load_stack(stack, root)
            if pool not in config.pools:
                raise DriverError(
                    f"stack {stack} has no pool {pool!r}; its pools are {', '.join(config.pools)}"
                )
            journal = Journal(config.driver.journal_url)
            if cancel:
                try:
                    cancelled = journal.cancel_rollbacks(
                        stack=stack, pool=pool, at=datetime.now(UTC)
                    )
                finally:
                    journal.close()
                if json_output:
                    print_json({"stack": stack, "pool": pool, "cancelled": cancelled})
                elif cancelled:
                    ids = ", ".join(f"#{i}" for i in cancelled)
                    out_console.print(f"cancelled the rollback request(s) {ids} of {pool}")
                else:
                    out_console.print(f"no pending rollback request for {pool}; nothing to cancel")
                return
            request_id = journal.request_rollback(
                stack=stack, pool=pool, at=datetime.now(UTC), requested_by=_who(), reason=reason
            )
            if not now:
                journal.close()
                if json_output:
                    print_json(
                        {"request_id": request_id, "stack": stack, "pool": pool, "honoured": False}
                    )
                else:
                    out_console.print(
                        f"rollback of {pool} requested (#{request_id}); the driver honours it on its next cycle"
                    )
                return
            driver = Driver(stack=stack, root=root, mode=mode, journal=journal)
            with driver:  # the lease is released however the cycle ends
                driver.executor.check_ready()
                report = driver.run_cycle()
        if json_output:
            print_json({"request_id": request_id, "cycle": cycle_json(report)})
        else:
            render_cycle(out_console, report)
        if report.outcome is not None and not report.outcome.ok:
            raise typer.Exit(1)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
