"""The ``mirrorcast`` command line.

Each command family lives in its own module under ``driver.commands`` and adds itself to the
Typer app through ``register(app)``; this module only assembles them, so commands can be
written and tested independently.

Command modules are imported only when their command runs (or its own ``--help`` is asked
for): ``mirrorcast --help`` lists the commands from :data:`COMMANDS` without importing any of
them, and ``mirrorcast status`` imports the status module alone. A one-shot run (the CronJob and
systemd-timer modes) otherwise paid about a second of pandas, scipy and statsforecast imports
for commands it never ran. ``tests/driver/test_cli_startup.py`` checks both, and that each
summary below is the first paragraph of its command's own help.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    # Typer (0.29) vendors click; its command and context classes live here.
    from typer._click import Command, Context, HelpFormatter

__all__ = ["COMMANDS", "COMMAND_MODULES", "app", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    # command name -> (module defining ``register(app: typer.Typer) -> None``, one-line summary
    # shown by ``mirrorcast --help``: the first paragraph of the command's docstring).
    "backtest": (
        "driver.commands.backtest",
        "Backtest a demand trace: mirrorcast against reactive, scheduled-predictive, static-peak and oracle.",
    ),
    "run": (
        "driver.commands.run",
        "Forecast, decide and apply on a schedule aligned to the interval.",
    ),
    "plan": (
        "driver.commands.plan",
        "Show the forecasts, fired rules, the plan and its explanation; change nothing.",
    ),
    "status": (
        "driver.commands.status",
        "Show each pool's mirror, weights and capacity, pending ramps and rollbacks, and what the clouds reported beside it.",
    ),
    "history": (
        "driver.commands.history",
        "List past plans: when, what was decided and changed, why, and how it ended.",
    ),
    "rollback": (
        "driver.commands.rollback",
        "Ask for a rollback of POOL: recorded, and honoured next cycle (or now with --now).",
    ),
    "forecast": (
        "driver.commands.forecast",
        "Forecast a pool's metrics over the stack's horizon (the forecasts the driver acts on).",
    ),
    "init": (
        "driver.commands.init",
        "Write stacks/Pulumi.<stack>.yaml for your own pool (flags, or prompts) and say what next.",
    ),
    "schema": (
        "driver.commands.schema",
        "Print the JSON Schema of the stack config (the mirrorcast:* keys).",
    ),
    "evaluate-forecast": (
        "driver.commands.evaluate_forecast",
        "Evaluate the driver's forecast and each candidate model on TRACE over rolling origins.",
    ),
}

COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))
"""Every command module, in the order of :data:`COMMANDS`."""


def _load(module: str) -> dict[str, Command]:
    """The click commands ``module`` registers, built on an app of their own."""
    sub = typer.Typer()

    @sub.callback()
    def _group() -> None:  # a callback makes Typer build a group even for one command
        pass

    importlib.import_module(module).register(sub)
    group = typer.main.get_command(sub)
    assert isinstance(group, TyperGroup)
    return dict(group.commands)


class _LazyGroup(TyperGroup):
    """A group whose commands are imported on first use, listed from :data:`COMMANDS`."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded: dict[str, Command] = {}
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *(name for name in self._loaded if name not in COMMANDS)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self._loaded:
            return self._loaded[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        module, summary = COMMANDS[cmd_name]
        if self._listing:
            # Only the name and summary are shown: no import.
            return TyperCommand(name=cmd_name, help=summary, short_help=summary)
        commands = _load(module)
        if cmd_name not in commands:
            raise RuntimeError(
                f"{module}.register() did not add the command {cmd_name!r} listed in "
                "driver.cli.COMMANDS; fix the table or the module"
            )
        self._loaded.update(commands)
        return self._loaded[cmd_name]

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="mirrorcast",
    cls=_LazyGroup,
    help="Predictive scaling and resource mirroring for Pulumi stacks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Predictive scaling and resource mirroring for Pulumi stacks."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:
        _leave_an_unwritable_journal_unclosed(exc.code)
        raise
    _leave_an_unwritable_journal_unclosed(0)


def _leave_an_unwritable_journal_unclosed(code: object) -> None:
    """Exit at once, past the interpreter's teardown, when this process met an unwritable journal.

    Closing a SQLite connection in WAL mode writes its ``-shm`` index through a memory map; if
    the file was made immutable (``chattr +i``) while the process had it open, that write is
    SIGBUS, after the one-line error was printed. Nothing is written to such a journal anyway,
    so the process leaves without closing it and keeps its exit code.
    """
    journal = sys.modules.get("driver.journal")
    if journal is None or not journal.unwritable_journal_seen():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
