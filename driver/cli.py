"""The ``mirrorcast`` command line.

Each command family lives in its own module under ``driver.commands`` and adds itself to the
Typer app through ``register(app)``; this module only assembles them, so commands can be
written and tested independently.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["COMMAND_MODULES", "app", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    # Add one line per command module; each must define ``register(app: typer.Typer) -> None``.
    "driver.commands.backtest",
    "driver.commands.run",
    "driver.commands.plan",
    "driver.commands.status",
    "driver.commands.history",
    "driver.commands.rollback",
    "driver.commands.forecast",
    "driver.commands.schema",
    "driver.commands.evaluate_forecast",
)

app = typer.Typer(
    name="mirrorcast",
    help="Predictive scaling and resource mirroring for Pulumi stacks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
