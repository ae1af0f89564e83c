"""``mirrorcast evaluate-forecast``: the forecast as the driver makes it, and each candidate model.

Two evaluations of the same trace over the same number of rolling origins (``--windows``,
default: enough for about 300 scored points):

- **the driver's forecast**: the engine the driver runs (selection among the candidates, trust
  verdict, events, online quantile calibration; ``forecasting.as_driven``), called once per
  driver interval, scored at origins one horizon apart: MASE, weighted quantile loss and the
  empirical coverage of every quantile;
- **each candidate**: refitted at every origin (rolling-origin cross-validation), with the same
  measures from its own intervals, and the model the engine's choice rule names.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from driver.commands._common import EXIT_USER_ERROR, err_console, user_errors
from forecasting.as_driven import BAND_POINTS, BANDS, DrivenEvaluation, evaluate_as_driven
from forecasting.errors import UnusableSeriesError
from forecasting.trace import evaluate_trace, read_trace_csv
from infra.config import ForecastSettings, MetricSpec, UserError, parse_duration

__all__ = ["register"]

logger = logging.getLogger(__name__)

UNITS = ("percent", "rps", "ms", "count", "bytes_per_second", "ratio")

_UNIT_BOUNDS = {"percent": (0.0, 100.0), "ratio": (0.0, 1.0)}
"""The candidates' forecasts are clipped to their unit's range, as the driver's are."""


def evaluate_forecast(
    trace: Path = typer.Argument(..., help="CSV file with a timestamp and a value column."),
    timestamp_column: str | None = typer.Option(
        None, "--timestamp-column", help="Timestamp column (default: auto-detect)."
    ),
    value_column: str | None = typer.Option(
        None, "--value-column", help="Value column (default: the first numeric column)."
    ),
    horizon: str | None = typer.Option(
        None, "--horizon", help="Forecast horizon, e.g. 30m, 1h, 1d (default: the stack's, 1h)."
    ),
    windows: int | None = typer.Option(
        None,
        "--windows",
        min=1,
        help="Rolling origins, one horizon apart (default: about 300 scored points).",
    ),
    history: str | None = typer.Option(
        None, "--history", help="History each forecast uses (default: the stack's, 14d)."
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Comma-separated candidate models (default: the stack's forecast.models).",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Stack file: its forecast section, the pool metric's unit and its events are "
        "evaluated as the driver runs them.",
    ),
    pool: str | None = typer.Option(None, "--pool", help="Pool of --config (default: the only)."),
    metric: str | None = typer.Option(
        None, "--metric", help="Metric of that pool the trace stands for (default: the only)."
    ),
    unit: str | None = typer.Option(
        None,
        "--unit",
        help=f"The trace's unit ({', '.join(UNITS)}; default: the metric's, or count); "
        "percent bounds every forecast to 0-100.",
    ),
    interval: str | None = typer.Option(
        None, "--interval", help="The driver's cycle interval (default: the stack's, 5m)."
    ),
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
    """Evaluate the driver's forecast and each candidate model on TRACE over rolling origins."""
    console = Console(stderr=True)
    durations: dict[str, timedelta | None] = {}
    for option, text in (
        ("--horizon", horizon),
        ("--history", history),
        ("--interval", interval),
        ("--count-per", count_per),
        ("--season", season),
    ):
        try:
            durations[option] = None if text is None else parse_duration(text)
        except ValueError as exc:
            err_console.print(f"[bold red]error:[/] {option}: {exc}", soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
    if unit is not None and unit not in UNITS:
        err_console.print(
            f"[bold red]error:[/] --unit {unit!r} is not one of {', '.join(UNITS)}", soft_wrap=True
        )
        raise typer.Exit(EXIT_USER_ERROR)
    # Bad traces (a missing column, a value that is not a number) are user errors like every
    # other command's: one line, exit status 2.
    with user_errors():
        settings, spec, events_spec, root, cycle = _stack_settings(config, pool=pool, metric=metric)
        updates: dict[str, Any] = {}
        if durations["--horizon"] is not None:
            updates["horizon"] = durations["--horizon"]
        if durations["--history"] is not None:
            updates["history"] = durations["--history"]
        if models is not None:
            names = [name.strip() for name in models.split(",") if name.strip()]
            if not names:
                raise UserError("--models: no model names given")
            updates["models"] = names
        settings = ForecastSettings.model_validate({**settings.model_dump(), **updates})
        if unit is not None:
            spec = spec.model_copy(update={"unit": unit})
        cycle = durations["--interval"] or cycle
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
            driven: DrivenEvaluation | None = None
            driven_problem: str | None = None
            events = _events(events_spec, root, series) if events_spec is not None else None
            try:
                driven = evaluate_as_driven(
                    series,
                    name=str(trace),
                    settings=settings,
                    spec=spec,
                    windows=windows,
                    interval=cycle,
                    events=events,
                    on_cycle=lambda done, total: progress.update(
                        task, description=f"{trace.name}: the driver's engine, cycle {done}/{total}"
                    ),
                )
            except UnusableSeriesError as exc:
                # The candidates may still be scorable (a short request log at a short season).
                driven_problem = str(exc)
            result = evaluate_trace(
                series,
                name=str(trace),
                horizon=settings.horizon,
                models=settings.models,
                n_windows=windows,
                history=settings.history,
                season=durations["--season"],
                bounds=_UNIT_BOUNDS.get(spec.unit),
                on_model=lambda m: progress.update(task, description=f"{trace.name}: {m}"),
            )
    _print_driven(console, trace.name, driven, driven_problem)
    table = Table(
        title=f"{trace.name}: each candidate, horizon {settings.horizon}, {result.windows} "
        f"origins ({result.scored_points} points), step {result.step}"
    )
    for column in ("model", "MASE", "wQL", "sMAPE %", "cov80", "cov95", "p90 cov", "seconds"):
        table.add_column(column)
    for name, s in result.models.items():
        mark = " *" if name == result.chosen else ""
        table.add_row(
            name + mark,
            f"{s['mase']:.3f}",
            f"{s.get('wql', float('nan')):.3f}",
            f"{s['smape']:.2f}",
            f"{s.get('coverage_80', float('nan')):.2f}",
            f"{s.get('coverage_95', float('nan')):.2f}",
            f"{s.get('coverage_p90', float('nan')):.2f}",
            f"{s['seconds']:.2f}",
        )
    console.print(table)
    verdict = "trusted" if result.trusted else f"untrusted: {result.reason}"
    console.print(f"chosen: {result.chosen} ({verdict})")
    report = result.to_json()
    report["driver"] = driven.to_json() if driven is not None else {"unavailable": driven_problem}
    document = json.dumps(report, indent=2)
    if json_out is not None:
        json_out.write_text(document + "\n")
    else:
        typer.echo(document)


def _stack_settings(
    config: Path | None, *, pool: str | None, metric: str | None
) -> tuple[ForecastSettings, MetricSpec, Any, Path, timedelta]:
    """The forecast section, metric spec, events section, root and interval to evaluate with."""
    if config is None:
        if pool is not None or metric is not None:
            raise UserError("--pool and --metric choose from a --config stack file; pass one")
        return ForecastSettings(), MetricSpec(unit="count"), None, Path.cwd(), timedelta(minutes=5)
    from driver.backtest.stack import load_backtest_stack

    stack = load_backtest_stack(config, pool=pool, metric=metric)
    spec = stack.config.pools[stack.pool].metrics[stack.metric]
    events = stack.config.events
    has_events = bool(events.file or events.calendars)
    return (
        stack.config.forecast,
        spec,
        events if has_events else None,
        config.resolve().parent,
        stack.config.driver.interval,
    )


def _events(spec: Any, root: Path, series: Any) -> Any:
    """The stack's event schedule over the whole trace, as the driver loads it each cycle."""
    from forecasting.events import EventSchedule

    index = series.index
    start = index[0].to_pydatetime()
    end = index[-1].to_pydatetime() + timedelta(days=8)
    if start.tzinfo is None:
        from datetime import UTC

        start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    return EventSchedule.load(spec, root=root, start=start, end=end)


def _print_driven(
    console: Console, name: str, driven: DrivenEvaluation | None, problem: str | None
) -> None:
    if driven is None:
        console.print(f"the driver's forecast: not evaluated ({problem})")
        return
    table = Table(
        title=(
            f"{name}: the forecast as the driver makes it ({driven.origins} origins, "
            f"{driven.scored_points} points, {driven.cycles} cycles; quantiles against the step "
            f"{driven.quantile_target})"
        )
    )
    columns = ["MASE", "wQL", "cov80 (p10-p90)"] + [f"p{q} cov" for q in driven.coverage]
    for column in columns:
        table.add_column(column)
    table.add_row(
        f"{driven.mase:.3f}",
        f"{driven.wql:.3f}",
        "-" if driven.coverage_80 is None else f"{driven.coverage_80:.2f}",
        *(f"{value:.2f}" for value in driven.coverage.values()),
    )
    console.print(table)
    if driven.tied_points > 0:
        # Sparse counts sit on their quantiles (a p10 of 0 with most steps 0): as written, each
        # such point counts as covered by every quantile it equals.
        spread = ", ".join(f"p{q} {value:.2f}" for q, value in driven.tie_aware_coverage.items())
        console.print(
            f"{driven.tied_points:.0%} of points equal one of their quantiles; with ties spread "
            f"(randomised PIT): cov80 {driven.tie_aware_coverage_80 or 0:.2f}, {spread}"
        )
    bands = driven.bands()
    if bands is None:
        console.print(
            f"issue 15's coverage bands: not judged ({driven.scored_points} scored points, "
            f"fewer than {BAND_POINTS}; pass more --windows)"
        )
    else:
        figures = {"80% interval": driven.coverage_80 or 0.0, "p90": driven.coverage[90]}
        console.print(
            "issue 15's coverage bands: "
            + ", ".join(
                f"{name} {figures[name]:.2f} {'in' if ok else 'OUT of'} "
                f"{BANDS[name][0]:.0%}-{BANDS[name][1]:.0%} {'✓' if ok else '✗'}"
                for name, ok in bands.items()
            )
        )
    models = ", ".join(f"{model} {count}" for model, count in driven.models.items())
    console.print(
        f"models chosen: {models}; trusted at {driven.trusted_origins} of {driven.origins} "
        f"origins, calibrated at {driven.calibrated_origins}"
    )


def register(app: typer.Typer) -> None:
    """Add ``evaluate-forecast`` to the ``mirrorcast`` app."""
    app.command("evaluate-forecast")(evaluate_forecast)
