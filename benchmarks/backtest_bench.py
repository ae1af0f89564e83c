"""Backtest benchmark: mirrorcast against the baselines on the shared real traces.

Usage (from the project root)::

    .venv/bin/python benchmarks/backtest_bench.py ../shared/data/traces [--max-days 10] [--jobs 2]

Runs every NAB (realAWSCloudwatch, realKnownCause, realTweets) and NASA HTTP trace through
``mirrorcast backtest``'s code with the built-in stack, prints each result next to the
baselines as it finishes, and rewrites the results section of ``docs/backtest.md`` (between
the ``results:start`` / ``results:end`` markers). The Azure LLM traces are per-request logs of
about an hour each: shorter than the 7-day history the backtest needs, so they are skipped with
that reason. ``--max-days`` truncates each trace (7 days of history + the rest scored) to keep a
run on a shared 2-core machine short (default 10: three scored days); ``--max-days 0`` runs whole
traces. The table is rewritten after every trace, so a long run shows its progress in the doc.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from driver.backtest import (
    POLICY_NAMES,
    BacktestResult,
    BacktestSettings,
    TraceError,
    load_trace,
    run_backtest,
)
from driver.backtest.policies import ReactivePolicy
from driver.backtest.stack import build_policies, load_backtest_stack
from driver.backtest.trace import Trace
from infra.config import ConfigError

logger = logging.getLogger("backtest_bench")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backtest.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
GROUPS = ("nab/realAWSCloudwatch", "nab/realKnownCause", "nab/realTweets", "nasa_http")
HISTORY = timedelta(days=7)


FRONTIER_TARGETS = tuple(round(0.30 + 0.05 * i, 2) for i in range(12))
"""Target utilisations of the reactive runs that trace its cost/shortfall frontier (30%-85%)."""


@dataclass
class Row:
    group: str
    name: str
    result: BacktestResult | None = None
    skipped: str | None = None
    frontier: list[tuple[float, float, int]] | None = None  # (target, inst-h, short)


def reactive_frontier(trace: Trace, settings: BacktestSettings) -> list[tuple[float, float, int]]:
    """``reactive`` at every target in :data:`FRONTIER_TARGETS`: (target, inst-h, short)."""
    points = []
    for target in FRONTIER_TARGETS:
        policy = ReactivePolicy(target=target)
        run = run_backtest(trace, [policy], settings=settings).runs[policy.name]
        points.append((target, run.score.instance_hours, run.score.underprovisioned_minutes))
    return points


def interpolate_short(frontier: list[tuple[float, float, int]], cost: float) -> float | None:
    """Reactive's shortfall at ``cost`` instance-hours along its frontier (None outside it).

    Tuning reactive's target is what a team does without forecasts, so this is the fair "same
    money" comparison: fewer short minutes than this means the forecast bought something.
    """
    ordered = sorted((h, short) for _, h, short in frontier)
    for (h0, s0), (h1, s1) in itertools.pairwise(ordered):
        if h0 <= cost <= h1:
            share = 0.0 if h1 == h0 else (cost - h0) / (h1 - h0)
            return s0 + share * (s1 - s0)
    return None


def short_at_cost(frontier: list[tuple[float, float, int]], cost: float) -> str:
    """:func:`interpolate_short` for the table (a bound where ``cost`` is outside the frontier)."""
    value = interpolate_short(frontier, cost)
    if value is not None:
        return f"{value:,.0f}"
    ordered = sorted((h, short) for _, h, short in frontier)
    if cost < ordered[0][0]:
        return f">= {ordered[0][1]:,}"
    return f"<= {ordered[-1][1]:,}"


def _targets(result: BacktestResult) -> dict[str, bool]:
    runs = result.runs
    mc, re, sp, orc = (
        runs["mirrorcast"].score,
        runs["reactive"].score,
        runs["scheduled-predictive"].score,
        runs["oracle"].score,
    )
    return {
        "short<=20% reactive": mc.underprovisioned_minutes <= 0.2 * re.underprovisioned_minutes,
        "inst-h<=1.1x reactive": mc.instance_hours <= 1.1 * re.instance_hours,
        # "Beats on both": no worse on either measure and better on at least one (two policies
        # that are never short tie on shortfalls; the cheaper one then beats the other).
        "beats sched. (both)": mc.underprovisioned_minutes <= sp.underprovisioned_minutes
        and mc.instance_hours <= sp.instance_hours
        and (
            mc.underprovisioned_minutes < sp.underprovisioned_minutes
            or mc.instance_hours < sp.instance_hours
        ),
        "inst-h<=1.25x oracle": mc.instance_hours <= 1.25 * orc.instance_hours,
    }


def _why(result: BacktestResult, frontier: list[tuple[float, float, int]] | None = None) -> str:
    extra = result.runs["mirrorcast"].extra
    cycles = max(1, int(extra.get("cycles", 0)))
    untrusted = int(extra.get("untrusted_cycles", 0))
    if untrusted >= 0.8 * cycles:
        examples = extra.get("degraded_examples") or ["untrusted forecast"]
        reason = str(examples[0]).split(": ", 1)[-1].removeprefix("forecast untrusted (")
        if "no seasonality" in reason:
            why = "no seasonality to learn: forecasts untrusted, rules fall back to reactive"
        elif "no candidate beat" in reason:
            why = "no model beat seasonal-naive: forecasts untrusted, rules fall back to reactive"
        else:
            why = (
                f"forecasts untrusted ({reason.split('(')[0].strip()}): rules fall back to reactive"
            )
        if untrusted < cycles:
            # Some days' re-selection found a cycle: the floor acted then, so the numbers differ
            # from reactive's.
            why += f" (trusted in {(cycles - untrusted) / cycles:.0%} of cycles)"
        return why
    reactive = result.runs["reactive"].score
    mirrorcast = result.runs["mirrorcast"].score
    if reactive.underprovisioned_minutes == 0:
        return "reactive is never short here: nothing to improve on"
    parts = [
        f"forecasts trusted in {(cycles - untrusted) / cycles:.0%} of cycles",
        f"{mirrorcast.underprovisioned_minutes / reactive.underprovisioned_minutes:.0%} of "
        f"reactive's short minutes at {mirrorcast.instance_hours / reactive.instance_hours:.2f}x "
        "its instance-hours",
    ]
    same = interpolate_short(frontier, mirrorcast.instance_hours) if frontier else None
    if same is not None:
        verdict = "fewer" if mirrorcast.underprovisioned_minutes < same else "more"
        parts.append(f"{verdict} short minutes than reactive tuned to the same cost")
    if result.trace.step <= timedelta(minutes=1):
        parts.append(
            "per-minute noise inside 5-minute cycles: even a perfect 5-minute forecast meets "
            "the targets only at the edge (benchmarks/backtest_bound.py)"
        )
    elif mirrorcast.underprovisioned_minutes > 0.2 * reactive.underprovisioned_minutes:
        parts.append("the remaining short minutes are spikes no forecast of this history saw")
    return "; ".join(parts)


def _pair(result: BacktestResult, name: str) -> str:
    score = result.runs[name].score
    return f"{score.underprovisioned_minutes:,} / {_fmt(score.instance_hours)}"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def render(rows: list[Row], *, command: str, max_days: float, speed: list[str]) -> str:
    lines = [
        START,
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by:",
        "",
        "```",
        command,
        "```",
        "",
        (
            f"Each trace truncated to its first {max_days:g} days (7 days of history, the rest "
            "scored)."
            if max_days
            else "Whole traces (7 days of history, the rest scored)."
        )
        + " Short = under-provisioned minutes; inst-h = running instance-hours (primary + mirror,"
        " booting included). Built-in stack, same settings for every trace.",
        "",
        "| trace | scored min | reactive short / inst-h | scheduled short / inst-h | static-peak inst-h "
        "| oracle inst-h | **mirrorcast** short / inst-h | reactive short at mirrorcast's inst-h "
        "| targets met | why |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    met_all = 0
    counted = 0
    for row in rows:
        if row.result is None:
            lines.append(
                f"| {row.group}/{row.name} | - | - | - | - | - | - | - | skipped | {row.skipped} |"
            )
            continue
        result = row.result
        runs = result.runs
        targets = _targets(result)
        counted += 1
        met_all += all(targets.values())
        met = ", ".join(("✓ " if ok else "✗ ") + name for name, ok in targets.items())
        same = (
            short_at_cost(row.frontier, runs["mirrorcast"].score.instance_hours)
            if row.frontier
            else "-"
        )

        lines.append(
            f"| {row.group}/{row.name} | {result.scored_minutes:,} | {_pair(result, 'reactive')} | "
            f"{_pair(result, 'scheduled-predictive')} | {_fmt(runs['static-peak'].score.instance_hours)} | "
            f"{_fmt(runs['oracle'].score.instance_hours)} | **{_pair(result, 'mirrorcast')}** | "
            f"{same} | {met} | {_why(result, row.frontier)} |"
        )
    lines += [
        "",
        f"All four targets met on {met_all} of {counted} traces.",
        "",
        "Speed (wall time of the mirrorcast policy, the rest of the run is negligible):",
        "",
        *[f"- {line}" for line in speed],
        "",
        END,
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else f"# Backtest\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + section + tail, encoding="utf-8")


def run_one(
    group: str, path: Path, max_days: float, config: Path | None = None
) -> tuple[Row, list[str]]:
    """Backtest one trace with every policy (in a worker process).

    :param config: a stack file to backtest instead of the built-in stack (a design variant).
    """
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.simplefilter("ignore")
    stack = load_backtest_stack(config)
    settings = BacktestSettings(
        history=HISTORY, max_instances=stack.config.pools[stack.pool].primary.capacity.max
    )
    try:
        trace = load_trace(path)
    except TraceError as exc:
        return Row(group, path.stem, skipped=str(exc)), []
    full_days = trace.minutes / 1440
    if max_days:
        trace = trace.head(int(max_days * 1440))
    if trace.minutes <= HISTORY.total_seconds() / 60 + 60:
        return Row(
            group, path.stem, skipped=f"{full_days:.1f} days: shorter than the 7-day history"
        ), []
    policies = build_policies(list(POLICY_NAMES), stack=stack)
    result = run_backtest(trace, policies, settings=settings)
    mc = result.runs["mirrorcast"]
    cycles = int(mc.extra.get("cycles", 0)) or 1
    per_cycle = mc.seconds / cycles
    speed = [
        f"{path.stem}: {cycles} cycles in {mc.seconds:.1f} s ({per_cycle * 1000:.0f} ms per cycle)"
    ]
    if group == "nasa_http":
        full_cycles = int((full_days - 7) * 1440 / 5) + 12
        speed.append(
            f"NASA HTTP is the 30-day trace: a whole-trace run has {full_cycles} cycles; at the "
            f"measured {per_cycle * 1000:.0f} ms per cycle that is about "
            f"{full_cycles * per_cycle / 60:.1f} min (target: under 2 min)"
        )
    return Row(group, path.stem, result=result, frontier=reactive_frontier(trace, settings)), speed


def _print(row: Row) -> None:
    if row.result is None:
        print(f"{row.name}: skipped ({row.skipped})", flush=True)
        return
    result = row.result
    print(f"\n{row.name}: {result.scored_minutes} scored minutes, {result.seconds:.1f} s")
    for name, run in result.runs.items():
        score = run.score
        print(
            f"  {name:22s} short {score.underprovisioned_minutes:6d}  "
            f"inst-h {score.instance_hours:10.1f}  {run.seconds:6.1f} s"
        )
    if row.frontier:
        cost = result.runs["mirrorcast"].score.instance_hours
        print(f"  reactive short at mirrorcast's inst-h: {short_at_cost(row.frontier, cost)}")
    print(f"  targets: {_targets(result)}  ({_why(result, row.frontier)})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument(
        "--max-days",
        type=float,
        default=10.0,
        help="truncate each trace to this many days (default 10: 7 history + 3 scored; 0: whole)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="traces run in parallel (default 1)")
    parser.add_argument("--only", default="", help="run only traces whose name contains this")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs alone")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="backtest this stack file (one pool) instead of the built-in stack, to measure a "
        "design variant; results are printed, never written to the docs",
    )
    args = parser.parse_args(argv)
    if args.config is not None:
        # Checked once here: a bad variant should be one line, not a traceback per trace.
        try:
            load_backtest_stack(args.config)
        except (OSError, ValueError, ConfigError) as exc:
            print(f"error: --config {args.config}: {exc}", file=sys.stderr)
            return 2

    files = [
        (group, path)
        for group in GROUPS
        for path in sorted((args.traces / group).glob("*.csv"))
        if args.only in path.stem
    ]
    order = [path.stem for _, path in files]
    done: dict[str, Row] = {}
    speed: dict[str, list[str]] = {}
    skipped = [
        Row(
            "azure_llm",
            "AzureLLMInferenceTrace_{code,conv}",
            skipped="per-request logs of about 1 hour: shorter than the 7-day history",
        )
    ]
    command = ".venv/bin/python benchmarks/backtest_bench.py ../shared/data/traces" + (
        f" --max-days {args.max_days:g}" if args.max_days != 10.0 else ""
    )
    write = not args.no_doc and not args.only and args.config is None

    def section() -> str:
        rows = [*skipped] + [
            done.get(stem) or Row(group, stem, skipped="not run yet (benchmark still running)")
            for (group, _), stem in zip(files, order, strict=True)
        ]
        lines = [line for stem in order for line in speed.get(stem, [])]
        return render(rows, command=command, max_days=args.max_days, speed=lines)

    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(run_one, group, path, args.max_days, args.config) for group, path in files
        ]
        for future in as_completed(futures):
            row, lines = future.result()
            done[row.name] = row
            speed[row.name] = lines
            _print(row)
            if write:
                write_doc(section())
    print()
    print(section())
    if write:
        print(f"\nresults written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
