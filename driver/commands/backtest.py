"""``mirrorcast backtest``: replay a demand trace through mirrorcast and the baselines.

Reads any CSV trace (timestamp + value column), simulates a cloud and clock, runs the chosen
strategies, prints a table of under-provisioned minutes and instance-hours, and optionally writes
JSON and a plot. User errors (a bad trace, a bad stack file, an unknown strategy) end in one
sentence naming the input and position, with exit status 2.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from driver.backtest import (
    STRATEGY_NAMES,
    BacktestResult,
    BacktestSettings,
    CloudTiming,
    load_trace,
    run_backtest,
)
from driver.backtest.errors import BacktestError
from driver.backtest.stack import (
    BacktestStack,
    build_strategies,
    load_backtest_stack,
    parse_strategy_names,
)
from driver.backtest.sweep import SWEPT_STRATEGIES, SameMoney, SweepResult, run_sweep
from driver.backtest.trace import Trace
from driver.commands._common import user_errors
from infra.config import parse_duration

__all__ = ["backtest", "register"]

logger = logging.getLogger(__name__)


def _duration(text: str | None, option: str) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _strategies_asked(strategies: str | None, old_policies: str | None, *, console: Console) -> str:
    """The ``--strategies`` text, taking the deprecated ``--policies`` spelling with a warning."""
    if old_policies is None:
        return strategies if strategies is not None else ",".join(STRATEGY_NAMES)
    if strategies is not None:
        raise BacktestError("give --strategies only (--policies is its deprecated old name)")
    console.print("warning: --policies is deprecated; use --strategies (same values)")
    return old_policies


def backtest(
    trace: Annotated[
        Path, typer.Argument(help="CSV trace: a timestamp column and a demand column.")
    ],
    timestamp_column: Annotated[
        str | None, typer.Option(help="Time column (default: detected from the header).")
    ] = None,
    value_column: Annotated[
        str | None, typer.Option(help="Demand column (default: the first numeric column).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Stack file to backtest (default: the built-in stack)."),
    ] = None,
    pool: Annotated[
        str | None, typer.Option(help="Pool to simulate (default: the only one).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Pool metric the trace stands for (default: rps).")
    ] = None,
    strategies: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated strategies to compare (default: {','.join(STRATEGY_NAMES)})."
        ),
    ] = None,
    # The flag's name before the backtest's baselines were called strategies (the `policies`
    # package is the rules and planner). Kept hidden so old scripts run, with a deprecation line.
    old_policies: Annotated[str | None, typer.Option("--policies", hidden=True)] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    plot_out: Annotated[
        Path | None, typer.Option("--plot", help="Draw demand, capacity and shortfalls into a PNG.")
    ] = None,
    history: Annotated[str, typer.Option(help="Unscored history at the start.")] = "7d",
    interval: Annotated[
        str | None, typer.Option(help="Cycle interval (default: the stack's driver.interval).")
    ] = None,
    instance_capacity: Annotated[
        float | None,
        typer.Option(help="Demand one instance serves at 100% (default: p95 of history / 10)."),
    ] = None,
    slo_utilisation: Annotated[
        float, typer.Option(help="Utilisation up to which an instance meets the SLO.")
    ] = 0.8,
    paused_cost: Annotated[
        float, typer.Option(help="Cost of a stopped warm-pool instance, as a fraction.")
    ] = 0.1,
    primary_ready: Annotated[str, typer.Option(help="Primary scale-up to serving.")] = "5m",
    mirror_ready: Annotated[
        str | None, typer.Option(help="Mirror activation to serving (default: from the pool).")
    ] = None,
    dns_ttl: Annotated[str, typer.Option(help="Weight change to traffic following it.")] = "60s",
    actuation_delay: Annotated[
        str,
        typer.Option(
            help="A plan's decision to its stack change reaching the cloud (the cycle and "
            "`pulumi up`)."
        ),
    ] = "2m",
    outage: Annotated[
        str | None,
        typer.Option(
            help="START,DURATION: the primary's region serves nothing for DURATION from START "
            "(an ISO time, UTC if naive, or a duration after scoring starts, e.g. 2d13h,1h).",
        ),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Run each strategy over its knob (baselines: target utilisation 30-85%; "
            "mirrorcast: the floor's quantile and utilisation) and report the cost/shortfall "
            "frontiers and each strategy's same-money ratio against reactive.",
        ),
    ] = False,
) -> None:
    """Backtest a demand trace: mirrorcast against reactive, scheduled-predictive, static-peak and oracle."""
    console = Console(stderr=True)
    with user_errors():
        names = parse_strategy_names(_strategies_asked(strategies, old_policies, console=console))
        loaded = load_trace(trace, timestamp_column=timestamp_column, value_column=value_column)
        stack = load_backtest_stack(config, pool=pool, metric=metric)
        if not 0 < slo_utilisation <= 1:
            raise BacktestError(f"--slo-utilisation must be in (0, 1], got {slo_utilisation}")
        if instance_capacity is not None and not instance_capacity > 0:
            raise BacktestError(f"--instance-capacity must be positive, got {instance_capacity}")
        pool_spec = stack.config.pools[stack.pool]
        settings = BacktestSettings(
            interval=_duration(interval, "--interval") or stack.config.driver.interval,
            history=_duration(history, "--history") or timedelta(days=7),
            instance_capacity=instance_capacity,
            slo_utilisation=slo_utilisation,
            paused_cost_fraction=paused_cost,
            timing=CloudTiming(
                primary_ready=_duration(primary_ready, "--primary-ready") or timedelta(minutes=5),
                mirror_ready=_duration(mirror_ready, "--mirror-ready"),
                dns_ttl=_duration(dns_ttl, "--dns-ttl") or timedelta(seconds=60),
                actuation_delay=_duration(actuation_delay, "--actuation-delay") or timedelta(0),
            ),
            max_instances=pool_spec.primary.capacity.max,
            outage=_outage(outage, trace=loaded, history=_duration(history, "--history")),
        )
        if sweep:
            result_sweep = _run_sweep(
                loaded, names=names, stack=stack, settings=settings, console=console
            )
            _print_sweep(result_sweep, Console())
            if json_out is not None:
                json_out.write_text(
                    json.dumps(result_sweep.to_json(), indent=2) + "\n", encoding="utf-8"
                )
                console.print(f"results written to {json_out}")
            if plot_out is not None:
                from driver.backtest.plot import plot_frontiers

                plot_frontiers(result_sweep, plot_out)
                console.print(f"plot written to {plot_out}")
            return
        built = build_strategies(names, stack=stack)
        with _progress_bar(title=f"backtest {loaded.name}", unit="cycles", console=console) as bar:
            task = bar.add_task("cycles", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run_backtest(loaded, built, settings=settings, progress=progress)

    _print_table(result, Console())
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        console.print(f"results written to {json_out}")
    if plot_out is not None:
        from driver.backtest.plot import plot_backtest

        plot_backtest(result, plot_out)
        console.print(f"plot written to {plot_out}")


def _outage(
    text: str | None, *, trace: Trace, history: timedelta | None
) -> tuple[pd.Timestamp, timedelta] | None:
    """``--outage START,DURATION`` as (start time, duration)."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise BacktestError(
            f"--outage {text!r}: expected START,DURATION, e.g. 2d13h,1h or 1995-07-12T14:00,1h"
        )
    start_text, duration_text = parts
    try:
        duration = parse_duration(duration_text)
    except ValueError as exc:
        raise BacktestError(f"--outage duration {duration_text!r}: {exc}") from None
    try:
        offset = _compound_duration(start_text)
    except ValueError:
        try:
            stamp = pd.Timestamp(start_text)
        except ValueError:
            raise BacktestError(
                f"--outage start {start_text!r} is neither a time (1995-07-12T14:00) nor a "
                "duration after scoring starts (2d13h)"
            ) from None
        return stamp, duration
    return trace.start + (history or timedelta(days=7)) + offset, duration


def _compound_duration(text: str) -> timedelta:
    """``2d13h30m`` as a duration (each part as ``parse_duration`` reads it)."""
    parts = re.findall(r"\d+(?:\.\d+)?[a-z]+", text)
    if not parts or "".join(parts) != text:
        raise ValueError(f"expected a duration such as 2d13h, got {text!r}")
    return sum((parse_duration(part) for part in parts), timedelta(0))


def _run_sweep(
    trace: Trace,
    *,
    names: list[str],
    stack: BacktestStack,
    settings: BacktestSettings,
    console: Console,
) -> SweepResult:
    """The sweep behind ``--sweep``: the knob strategies swept, the others run once for reference."""
    swept = [name for name in names if name in SWEPT_STRATEGIES]
    others = [name for name in names if name not in SWEPT_STRATEGIES]
    with _progress_bar(
        title=f"sweep {trace.name}", unit="runs: {task.description}", console=console
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=label)

        return run_sweep(
            trace,
            stack=stack,
            settings=settings,
            strategies=swept,
            references=build_strategies(others, stack=stack),
            progress=progress,
        )


def _print_sweep(result: SweepResult, console: Console) -> None:
    table = Table(
        caption=(
            "same-money ratio: short minutes / reactive's at the same instance-hours "
            "(interpolated along reactive's 30-85% targets); * = configured setting, "
            "+ = on the strategy's frontier"
        ),
        title=(
            f"{result.trace.name}: {result.scored_minutes:,} scored minutes, "
            f"instance capacity {result.instance_capacity:.4g}"
        ),
    )
    for column in ("strategy", "setting", "short min", "inst-h", "same-money ratio"):
        table.add_column(column, justify="left" if column in ("strategy", "setting") else "right")
    for name, frontier in result.frontiers.items():
        efficient = {id(point) for point in frontier.efficient()}
        for point in sorted(frontier.points, key=lambda p: p.instance_hours):
            marks = ("*" if point.default else "") + ("+" if id(point) in efficient else "")
            table.add_row(
                name,
                f"{point.setting} {marks}".rstrip(),
                f"{point.underprovisioned_minutes:,}",
                f"{point.instance_hours:,.1f}",
                _ratio_text(point.same_money),
            )
    for name, point in result.references.items():
        table.add_row(
            name,
            "-",
            f"{point.underprovisioned_minutes:,}",
            f"{point.instance_hours:,.1f}",
            _ratio_text(point.same_money),
        )
    console.print(table)
    for name in result.frontiers:
        ratio = result.same_money_ratio(name)
        if name != "reactive" and ratio is not None:
            console.print(f"{name}: same-money ratio {_ratio_text(ratio)}")
    for name, judged in result.comparisons().items():
        if judged.overlap is None or judged.worst_excess is None or judged.at_hours is None:
            console.print(f"mirrorcast's frontier and {name}'s span no common instance-hours")
            continue
        where = "on or below" if judged.on_or_below else "above"
        console.print(
            f"mirrorcast's frontier lies {where} {name}'s over {judged.overlap[0]:,.1f}-"
            f"{judged.overlap[1]:,.1f} instance-hours (worst gap {judged.worst_excess:+,.0f} "
            f"short min at {judged.at_hours:,.1f})"
        )


def _ratio_text(ratio: SameMoney | None) -> str:
    if ratio is None:
        return "-"
    text = f"{ratio.ratio:.2f}" if ratio.ratio != float("inf") else "inf"
    return text if ratio.bound == "exact" else f"{ratio.bound} {text}"


def _print_table(result: BacktestResult, console: Console) -> None:
    table = Table(
        box=None,
        pad_edge=False,
        header_style="bold underline",
        caption=(
            "short min: under-provisioned minutes; inst-h: running instance-hours; paused h: "
            "paused mirror instance-hours; mirror on: mirror activations; s: seconds"
        ),
        title=(
            f"{result.trace.name}: {result.scored_minutes:,} scored minutes, "
            f"instance capacity {result.model.instance_capacity:.4g}"
        ),
    )
    # Headers short enough that the table fits 80 columns whole (issue 17: they were cut).
    for column in ("strategy", "short min", "inst-h", "paused h", "actions", "mirror on", "s"):
        table.add_column(
            column,
            justify="left" if column == "strategy" else "right",
            no_wrap=True,
            min_width=len("scheduled-predictive") if column == "strategy" else max(len(column), 5),
        )
    for name, run in result.runs.items():
        score = run.score
        if "outage_minutes" in run.extra:
            console.print(
                f"{name}: short {run.extra['outage_underprovisioned_minutes']} of the "
                f"{run.extra['outage_minutes']} outage minutes"
            )
        table.add_row(
            name,
            f"{score.underprovisioned_minutes:,}",
            f"{score.instance_hours:,.1f}",
            f"{score.paused_instance_hours:,.1f}",
            f"{score.scaling_actions:,}",
            f"{score.mirror_activations:,}",
            f"{run.seconds:.1f}",
        )
    console.print(table)
    for line in _trust_notes(result):
        console.print(line, highlight=False, markup=False)


def _trust_notes(result: BacktestResult) -> list[str]:
    """Why a forecasting strategy scored as it did when its forecasts were untrusted (the JSON says
    it too): an untrusted forecast makes the rules fall back to their reactive terms."""
    notes = []
    reactive = result.runs.get("reactive")
    for name, run in result.runs.items():
        untrusted = int(run.extra.get("untrusted_cycles", 0) or 0)
        cycles = int(run.extra.get("cycles", 0) or 0)
        if not untrusted or not cycles:
            continue
        same = (
            reactive is not None
            and name != "reactive"
            and run.score.underprovisioned_minutes == reactive.score.underprovisioned_minutes
            and run.score.instance_hours == reactive.score.instance_hours
        )
        examples = run.extra.get("degraded_examples") or []
        why = f" ({examples[0]})" if examples else ""
        notes.append(
            f"{name}: forecast untrusted in {untrusted} of {cycles} cycles{why}; "
            + (
                "so its rules fell back to their reactive terms and it did what reactive did"
                if same
                else "in those cycles its rules fell back to their reactive terms"
            )
        )
    return notes


def register(app: typer.Typer) -> None:
    """Add ``backtest`` to the ``mirrorcast`` command line."""
    app.command("backtest")(backtest)


def _progress_bar(*, title: str, unit: str, console: Console) -> Progress:
    """The transient progress bar a backtest or a sweep shows while it runs.

    Both show the same columns (title, bar, done/total, what is counted, time elapsed) and
    vanish when done so only the results table stays; one place keeps them alike.

    :param title: what runs (``backtest web``, ``sweep web``).
    :param unit: the column after the count (a rich template, e.g. ``runs: {task.description}``).
    """
    return Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
