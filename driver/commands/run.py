"""``mirrorcast run``: the driver service (or a single cycle with ``--once``)."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from driver.commands._common import (
    EXIT_USER_ERROR,
    err_console,
    out_console,
    parse_at,
    print_json,
    project_root,
    user_errors,
)

if TYPE_CHECKING:
    from driver.service import Driver

__all__ = ["Mode", "register"]

logger = logging.getLogger(__name__)


class Mode(StrEnum):
    plan = "plan"
    apply = "apply"
    gitops = "gitops"


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        stack: Annotated[
            str, typer.Option("--stack", help="Stack name (stacks/Pulumi.<stack>.yaml).")
        ],
        mode: Annotated[
            Mode | None,
            typer.Option(
                "--mode",
                help="plan (change nothing), apply (pulumi up) or gitops (pull request); default the stack's driver.mode.",
            ),
        ] = None,
        every: Annotated[
            str | None,
            typer.Option(
                "--every", help="Cycle interval such as 5m; default the stack's driver.interval."
            ),
        ] = None,
        once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
        at: Annotated[
            str | None,
            typer.Option("--at", help="With --once: decide as of this UTC time (ISO 8601)."),
        ] = None,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print each cycle as JSON.")
        ] = False,
        log_level: Annotated[str, typer.Option("--log-level", help="Log level.")] = "INFO",
        metrics_listen: Annotated[
            str | None,
            typer.Option(
                "--metrics-listen",
                help="host:port for /metrics, e.g. 0.0.0.0:9464 in a container; default the stack's driver.metrics_listen.",
            ),
        ] = None,
        adopt: Annotated[
            bool,
            typer.Option(
                "--adopt",
                help="Take the stack over from the journal its config names, which is lost for "
                "good (the active mirrors are rebuilt from the stack).",
            ),
        ] = False,
    ) -> None:
        """Forecast, decide and apply on a schedule aligned to the interval."""
        from driver.logs import setup_logging
        from driver.render import cycle_json, render_cycle
        from driver.service import CycleReport, Driver
        from infra.config import parse_duration

        setup_logging(level="WARNING" if once and not json_output else log_level)
        when = parse_at(at)
        if when is not None and not once:
            raise typer.BadParameter(
                "--at replays one decision; use it with --once", param_hint="--at"
            )
        try:
            interval = parse_duration(every) if every is not None else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--every") from None
        if interval is not None and interval.total_seconds() <= 0:
            # A zero interval is not "the default": say so instead of silently using 5m.
            raise typer.BadParameter(
                f"the cycle interval must be positive, got {every!r}; e.g. --every 5m",
                param_hint="--every",
            )
        with user_errors():
            root = project_root()
            driver = Driver(stack=stack, root=root, mode=mode.value if mode else None, adopt=adopt)
            # The driver's own parse (its memo hands back the same object while the file is
            # unchanged): parsing the stack again here cost a one-shot cycle ~0.1-0.3 s.
            config = driver.stack_config.load()
            # Fail at start, not in the middle of the first cycle (missing CLI, no remote).
            driver.executor.check_ready()
            if not once:
                _serve_metrics(driver, metrics_listen or config.driver.metrics_listen)

            def show(report: CycleReport) -> None:
                if json_output:
                    print_json(cycle_json(report))
                else:
                    render_cycle(out_console, report)

            if once and when is not None:
                with driver:  # the lease is released however the cycle ends
                    report = driver.run_cycle(now=when)
                show(report)
                code = 0 if report.outcome is None or report.outcome.ok else 1
            else:
                code = driver.run_forever(
                    every=interval if interval is not None else config.driver.interval,
                    once=once,
                    on_report=show,
                )
        if code == 1 and once:
            err_console.print("[red]the cycle did not complete; see the log above[/]")
        if code:
            raise typer.Exit(code if code != EXIT_USER_ERROR else 1)


def _serve_metrics(service: Driver, listen: str) -> None:
    """Start ``/metrics``; a bad address or a busy port is the operator's to fix."""
    from driver.executor import DriverError

    try:
        service.metrics.serve(listen)
    except ValueError as exc:
        raise DriverError(str(exc)) from None
    except OSError as exc:
        raise DriverError(
            f"cannot serve /metrics on {listen} ({exc.strerror}); set driver.metrics_listen to a free host:port"
        ) from None
