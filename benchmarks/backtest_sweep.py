"""Sweep benchmark: every shared trace's cost/shortfall frontiers (``mirrorcast backtest --sweep``).

Usage (from the project root)::

    .venv/bin/python benchmarks/backtest_sweep.py ../shared/data/traces [--max-days 10] [--only NAME]

Runs :func:`driver.backtest.sweep.run_sweep` (the code behind ``backtest --sweep``) with the
built-in stack on every trace ``benchmarks/backtest_bench.py`` scores, truncated like it to the
first ``--max-days`` days (7 of history, the rest scored). It prints, per trace, mirrorcast's
same-money ratio at the stack's own floor setting and at its best setting, scheduled-predictive's
at its configured 60% and its best, and whether mirrorcast's frontier lies on or below
reactive's and scheduled-predictive's over the instance-hours both span; then, per floor
setting (quantile x utilisation), the same-money ratio summed over the traces and the worst
trace. That second table is how a floor setting is chosen for every trace at once: nothing is
tuned per trace. It rewrites the section between the ``sweep:start`` / ``sweep:end`` markers
of ``docs/backtest.md`` after every trace (not with ``--only`` or ``--no-doc``); ``--json-dir``
keeps each trace's sweep JSON (the ``--sweep --json`` document, plus the excerpt's daily-cycle
strength), ``--plot-dir`` each trace's frontier plot; ``--daily`` sweeps only the traces with a
daily cycle (:data:`DAILY_STRENGTH`), the ones issue 15's frontier target is about. Each worker
prints a line per run (the sweep's progress).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from backtest_bench import GROUPS, HISTORY

from driver.backtest import BacktestSettings, Trace, TraceError, load_trace
from driver.backtest.stack import load_backtest_stack
from driver.backtest.sweep import (
    FLOOR_QUANTILES,
    FLOOR_UTILISATIONS,
    Frontier,
    FrontierComparison,
    FrontierPoint,
    SameMoney,
    SweepResult,
    compare_frontiers,
    run_sweep,
)
from forecasting.selection import seasonal_strength

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backtest.md"
START, END = "<!-- sweep:start -->", "<!-- sweep:end -->"


@dataclass
class Row:
    name: str
    frontiers: dict[str, Frontier] | None = None
    seconds: float = 0.0
    skipped: str | None = None
    strength: float | None = None

    @classmethod
    def of(cls, name: str, result: SweepResult, *, strength: float | None = None) -> Row:
        return cls(name, frontiers=result.frontiers, seconds=result.seconds, strength=strength)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Row:
        """A row from a sweep's ``--sweep --json`` document (``--from-json``)."""

        def point(data: dict[str, Any]) -> FrontierPoint:
            judged = data.get("same_money")
            ratio = judged["ratio"] if judged and judged["ratio"] is not None else math.inf
            return FrontierPoint(
                knobs=data["knobs"],
                underprovisioned_minutes=data["underprovisioned_minutes"],
                instance_hours=data["instance_hours"],
                cost_instance_hours=data["cost_instance_hours"],
                default=data["default"],
                same_money=SameMoney(judged["reactive_short"], ratio, judged["bound"])
                if judged
                else None,
            )

        frontiers = {
            name: Frontier(
                strategy=name, knob=data["knob"], points=[point(p) for p in data["points"]]
            )
            for name, data in document["frontiers"].items()
        }
        return cls(
            document["trace"],
            frontiers=frontiers,
            seconds=document["seconds"],
            strength=document.get("daily_strength"),
        )


def _ratio(point: FrontierPoint | None) -> float | None:
    if point is None or point.same_money is None:
        return None
    return point.same_money.ratio


def _best(frontier: Frontier) -> FrontierPoint | None:
    """The point with the lowest same-money ratio (ties: the cheaper)."""
    judged = [p for p in frontier.points if _ratio(p) is not None]
    return min(judged, key=lambda p: (_ratio(p), p.instance_hours), default=None)


def _short_along(frontier: Frontier, hours: float) -> float | None:
    """Short minutes along ``frontier``'s efficient points at ``hours`` (None outside them)."""
    points = sorted((p.instance_hours, p.underprovisioned_minutes) for p in frontier.efficient())
    if not points or hours < points[0][0]:
        return None
    for (h0, s0), (h1, s1) in itertools.pairwise(points):
        if h0 <= hours <= h1:
            return s0 if h1 == h0 else s0 + (hours - h0) / (h1 - h0) * (s1 - s0)
    # Dearer than the dearest efficient point: that point's shortfall is had for less.
    return float(points[-1][1])


def below(mirrorcast: Frontier, other: Frontier) -> tuple[int, int]:
    """How many of ``other``'s points mirrorcast's frontier matches or beats at their cost.

    Only points within the instance-hours mirrorcast's settings span (from its cheapest up)
    count: outside them the comparison would be extrapolated.
    """
    counted = beaten = 0
    for point in other.points:
        short = _short_along(mirrorcast, point.instance_hours)
        if short is None:
            continue
        counted += 1
        beaten += short <= point.underprovisioned_minutes
    return beaten, counted


def verdict(judged: FrontierComparison) -> str:
    """``on or below (-12 at 540 h)``, ``above (+30 at 610 h)`` or ``no overlap``."""
    if judged.overlap is None or judged.worst_excess is None or judged.at_hours is None:
        return "no overlap"
    words = "on or below" if judged.on_or_below else "**above**"
    return f"{words} ({judged.worst_excess:+.0f} at {judged.at_hours:.0f} h)"


def _text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(rows: Sequence[Row], *, command: str, seconds: float) -> str:
    lines = [
        START,
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by:",
        "",
        "```",
        command,
        "```",
        "",
        "Per trace: same-money ratios (short minutes / reactive's at the same instance-hours) of "
        "mirrorcast at the stack's own floor setting and at its best, of scheduled-predictive "
        "at 60% and at its best, and how many of reactive's and scheduled-predictive's points "
        "mirrorcast's frontier matches or beats at their cost (within the instance-hours its "
        "settings span).",
        "",
        "The two frontier columns say whether mirrorcast's frontier lies on or below "
        "reactive's and scheduled-predictive's (each frontier: the line through its efficient "
        "points, flat from the last to its dearest setting; on or below: at every "
        "instance-hours both span, mirrorcast's short minutes, interpolated, are at most the "
        "other's; `compare_frontiers` in "
        "driver/backtest/sweep.py), with the worst gap in short minutes (positive: above, "
        "negative: below everywhere by at least that) and the instance-hours where it is.",
        "",
        "| trace | daily cycle | mirrorcast own | mirrorcast best (setting) | scheduled 60% | "
        "scheduled best (setting) | frontier vs reactive | frontier vs scheduled | "
        "reactive points beaten | scheduled points beaten | seconds |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    sums: dict[str, list[float]] = {}
    worst: dict[str, tuple[float, str]] = {}
    seen: dict[str, int] = {}
    for row in rows:
        if row.frontiers is None:
            lines.append(
                f"| {row.name} | - | - | - | - | - | - | - | - | - | skipped: {row.skipped} |"
            )
            continue
        fronts = row.frontiers
        mc, sp, re = fronts["mirrorcast"], fronts["scheduled-predictive"], fronts["reactive"]
        best_mc, best_sp = _best(mc), _best(sp)
        beat_re, of_re = below(mc, re)
        beat_sp, of_sp = below(mc, sp)
        lines.append(
            f"| {row.name} | {_text(row.strength)} | {_text(_ratio(mc.default))} | "
            f"{_text(_ratio(best_mc))} ({best_mc.setting if best_mc else '-'}) | "
            f"{_text(_ratio(sp.default))} | "
            f"{_text(_ratio(best_sp))} ({best_sp.setting if best_sp else '-'}) | "
            f"{verdict(compare_frontiers(mc, re))} | {verdict(compare_frontiers(mc, sp))} | "
            f"{beat_re} of {of_re} | {beat_sp} of {of_sp} | {row.seconds:.0f} |"
        )
        for point in mc.points:
            if point.same_money is None:
                continue
            key = point.setting
            seen[key] = seen.get(key, 0) + 1
            total = sums.setdefault(key, [0.0, 0.0])
            total[0] += point.underprovisioned_minutes
            total[1] += point.same_money.reactive_short
            if point.same_money.ratio > worst.get(key, (-1.0, ""))[0]:
                worst[key] = (point.same_money.ratio, row.name)
    judged = [row for row in rows if row.frontiers is not None]
    both = [
        row.name
        for row in judged
        if row.frontiers is not None
        and all(
            compare_frontiers(row.frontiers["mirrorcast"], row.frontiers[name]).on_or_below
            for name in ("reactive", "scheduled-predictive")
        )
    ]
    lines += [
        "",
        f"Mirrorcast's frontier lies on or below both reactive's and scheduled-predictive's on "
        f"{len(both)} of the {len(judged)} traces swept"
        + (f" ({', '.join(both)})." if both else "."),
    ]
    lines += [
        "",
        "Per floor setting, over the traces above (the built-in stack with only the floor's "
        "quantile and utilisation changed; summed like the results table: short minutes / "
        "reactive's at the same instance-hours):",
        "",
        "| floor setting | summed same-money | worst trace |",
        "|---|---:|---|",
    ]
    swept = sum(row.frontiers is not None for row in rows)
    everywhere = [key for key in sums if seen[key] == swept]
    for key in sorted(everywhere, key=lambda k: sums[k][0] / max(sums[k][1], 1e-9)):
        short, reactive = sums[key]
        ratio, name = worst[key]
        lines.append(
            f"| {key} | {short / reactive if reactive else float('nan'):.2f} | "
            f"{ratio:.2f} ({name}) |"
        )
    partial = sorted(key for key in sums if key not in everywhere)
    if partial:
        lines += [
            "",
            "Swept on only some of the traces (not summed: the sums would not be like for "
            "like): " + ", ".join(f"{key} ({seen[key]} of {swept})" for key in partial) + ".",
        ]
    lines += ["", f"Whole run: {seconds / 60:.1f} min.", "", END]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(head + section + tail, encoding="utf-8")
    else:
        raise SystemExit(f"{DOC}: no {START} / {END} markers to write between")


DAILY_STRENGTH = 0.2
"""A trace "has a daily cycle" when the engine's own measure of one (forecasting.selection's
``seasonal_strength`` at a lag of one day) reaches this over the swept excerpt: the engine's
default ``min_seasonal_strength``, below which it treats a series as having no cycle."""


def daily_strength(trace: Trace) -> float:
    """The excerpt's daily-cycle strength at its own observation step (gaps interpolated)."""
    step = max(1, int(trace.step.total_seconds() // 60))
    values = pd.Series(trace.values[::step]).interpolate(limit_direction="both").to_numpy()
    return seasonal_strength(values, season=max(2, 1440 // step))


def sweep_one(
    path: Path,
    max_days: float,
    json_dir: Path | None,
    quantiles: tuple[int, ...] = FLOOR_QUANTILES,
    utilisations: tuple[int, ...] = FLOOR_UTILISATIONS,
    plot_dir: Path | None = None,
    daily_only: bool = False,
) -> Row:
    """One trace's sweep (run in a worker process)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.simplefilter("ignore")
    stack = load_backtest_stack(None)
    settings = BacktestSettings(
        history=HISTORY, max_instances=stack.config.pools[stack.pool].primary.capacity.max
    )
    try:
        trace = load_trace(path)
    except TraceError as exc:
        return Row(path.stem, skipped=str(exc))
    if max_days:
        trace = trace.head(int(max_days * 1440))
    if trace.minutes <= HISTORY.total_seconds() / 60 + 60:
        return Row(path.stem, skipped="shorter than the 7-day history")
    strength = daily_strength(trace)
    if daily_only and strength < DAILY_STRENGTH:
        return Row(
            path.stem, skipped=f"no daily cycle (strength {strength:.2f} < {DAILY_STRENGTH})"
        )

    def progress(label: str, done: int, total: int) -> None:
        # The sweep shows progress: one line a run, from each worker.
        print(
            f"  {path.stem}: run {done + 1 if done < total else done} of {total}: {label}",
            flush=True,
        )

    result = run_sweep(
        trace,
        stack=stack,
        settings=settings,
        quantiles=quantiles,
        utilisations=utilisations,
        progress=progress,
    )
    document = {**result.to_json(), "daily_strength": round(strength, 3)}
    if json_dir is not None:
        json_dir.mkdir(parents=True, exist_ok=True)
        out = json_dir / f"{path.stem}.json"
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if plot_dir is not None:
        from driver.backtest.plot import plot_frontiers  # matplotlib only when plotting

        plot_dir.mkdir(parents=True, exist_ok=True)
        plot_frontiers(result, plot_dir / f"{path.stem}.png")
    return Row.of(path.stem, result, strength=strength)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--max-days", type=float, default=10.0, help="days per trace (default 10)")
    parser.add_argument("--only", default="", help="run only traces whose name contains this")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs alone")
    parser.add_argument("--jobs", type=int, default=1, help="traces swept in parallel (default 1)")
    parser.add_argument(
        "--first",
        default="",
        help="comma-separated name parts to sweep first (the order of the work, not the table)",
    )
    parser.add_argument(
        "--floors",
        default="",
        help="sweep only the quantiles and utilisations named here, crossed, besides the "
        "stack's own floor, e.g. 50:60,80:80 "
        "(quantile:utilisation; default the whole grid)",
    )
    parser.add_argument("--json-dir", type=Path, default=None, help="keep each sweep's JSON here")
    parser.add_argument(
        "--plot-dir", type=Path, default=None, help="write each trace's frontier plot here (PNG)"
    )
    parser.add_argument(
        "--daily",
        action="store_true",
        help=f"sweep only traces with a daily cycle (strength >= {DAILY_STRENGTH}, see "
        "DAILY_STRENGTH); the others are listed as skipped",
    )
    parser.add_argument(
        "--from-json",
        nargs="+",
        type=Path,
        default=None,
        metavar="DIR",
        help="render the section from sweeps already run (their --json-dir; a later folder's "
        "trace replaces an earlier one's) instead of running them",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        documents: dict[str, dict[str, Any]] = {}
        for folder in args.from_json:
            for path in sorted(folder.glob("*.json")):
                document = json.loads(path.read_text(encoding="utf-8"))
                documents[document["trace"]] = document
        rows = [Row.from_json(document) for document in documents.values()]
        command = ".venv/bin/python benchmarks/backtest_sweep.py ../shared/data/traces (" + (
            f"{len(rows)} traces: --from-json of the runs listed below)"
        )
        section = render(rows, command=command, seconds=sum(row.seconds for row in rows))
        print(section)
        if not args.no_doc:
            write_doc(section)
        return 0
    files = [
        path
        for group in GROUPS
        for path in sorted((args.traces / group).glob("*.csv"))
        if args.only in path.stem
    ]
    command = (
        ".venv/bin/python benchmarks/backtest_sweep.py ../shared/data/traces"
        + (f" --max-days {args.max_days:g}" if args.max_days != 10.0 else "")
        + (f" --floors {args.floors}" if args.floors else "")
        + (" --daily" if args.daily else "")
    )
    write = not args.no_doc and not args.only
    pairs = [tuple(int(v) for v in item.split(":")) for item in args.floors.split(",") if item]
    quantiles = tuple(sorted({q for q, _ in pairs})) or FLOOR_QUANTILES
    utilisations = tuple(sorted({u for _, u in pairs})) or FLOOR_UTILISATIONS
    started = time.perf_counter()
    done: dict[str, Row] = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        first = [part for part in args.first.split(",") if part]
        ordered = sorted(
            files,
            key=lambda p: next((i for i, part in enumerate(first) if part in p.stem), len(first)),
        )
        futures = [
            pool.submit(
                sweep_one,
                path,
                args.max_days,
                args.json_dir,
                quantiles,
                utilisations,
                args.plot_dir,
                args.daily,
            )
            for path in ordered
        ]
        for future in as_completed(futures):
            row = future.result()
            done[row.name] = row
            rows = [done[p.stem] for p in files if p.stem in done]
            section = render(rows, command=command, seconds=time.perf_counter() - started)
            mine = next(line for line in section.splitlines() if line.startswith(f"| {row.name} |"))
            print(mine, flush=True)
            if write:
                write_doc(section)
    rows = [done[p.stem] for p in files]
    print(render(rows, command=command, seconds=time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
