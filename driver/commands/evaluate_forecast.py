"""``mirrorcast evaluate-forecast``: rolling-origin accuracy of the models on any CSV trace."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from driver.commands._common import EXIT_USER_ERROR, err_console, user_errors
from forecasting.trace import evaluate_trace, read_trace_csv
from infra.config import parse_duration

__all__ = ["register"]

logger = logging.getLogger(__name__)


def evaluate_forecast(
    trace: Path = typer.Argument(..., help="CSV file with a timestamp and a value column."),
    timestamp_column: str | None = typer.Option(
        None, "--timestamp-column", help="Timestamp column (default: auto-detect)."
    ),
    value_column: str | None = typer.Option(
        None, "--value-column", help="Value column (default: the first numeric column)."
    ),
    horizon: str = typer.Option("1h", "--horizon", help="Forecast horizon, e.g. 30m, 1h, 1d."),
    windows: int = typer.Option(3, "--windows", min=1, help="Rolling origins to evaluate."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report here."),
    count_per: str | None = typer.Option(
        None,
        "--count-per",
        help="TRACE is a per-request log (one row per request): evaluate requests counted "
        "per this interval, e.g. 1m.",
    ),
    season: str | None = typer.Option(
        None,
        "--season",
        help="Seasonal period of the seasonal models (default: 1d); shorter for traces "
        "spanning under two days.",
    ),
) -> None:
    """Evaluate the forecasting models on TRACE by rolling-origin cross-validation."""
    console = Console(stderr=True)
    durations: dict[str, timedelta | None] = {}
    for option, text in (("--horizon", horizon), ("--count-per", count_per), ("--season", season)):
        try:
            durations[option] = None if text is None else parse_duration(text)
        except ValueError as exc:
            err_console.print(f"[bold red]error:[/] {option}: {exc}", soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
    span = durations["--horizon"]
    assert span is not None
    # Bad traces (a missing column, a value that is not a number) are user errors like every
    # other command's: one line, exit status 2.
    with user_errors():
        series = read_trace_csv(
            trace,
            timestamp_column=timestamp_column,
            value_column=value_column,
            count_per=durations["--count-per"],
        )
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task(f"evaluating {trace.name}", total=None)
            result = evaluate_trace(
                series,
                name=str(trace),
                horizon=span,
                n_windows=windows,
                season=durations["--season"],
                on_model=lambda m: progress.update(task, description=f"{trace.name}: {m}"),
            )
    table = Table(title=f"{trace.name}: horizon {horizon}, {windows} origins, step {result.step}")
    for column in ("model", "MASE", "sMAPE %", "cov80", "cov95", "seconds"):
        table.add_column(column)
    for name, s in result.models.items():
        mark = " *" if name == result.chosen else ""
        table.add_row(
            name + mark,
            f"{s['mase']:.3f}",
            f"{s['smape']:.2f}",
            f"{s.get('coverage_80', float('nan')):.2f}",
            f"{s.get('coverage_95', float('nan')):.2f}",
            f"{s['seconds']:.2f}",
        )
    console.print(table)
    verdict = "trusted" if result.trusted else f"untrusted: {result.reason}"
    console.print(f"chosen: {result.chosen} ({verdict})")
    document = json.dumps(result.to_json(), indent=2)
    if json_out is not None:
        json_out.write_text(document + "\n")
    else:
        typer.echo(document)


def register(app: typer.Typer) -> None:
    """Add ``evaluate-forecast`` to the ``mirrorcast`` app."""
    app.command("evaluate-forecast")(evaluate_forecast)
