"""Accuracy of every model on every shared trace, written into ``docs/forecasting.md``.

    .venv/bin/python benchmarks/evaluate_traces.py /work/shared/data/traces --write docs/forecasting.md

Runs the same rolling-origin evaluation as ``mirrorcast evaluate-forecast`` on each CSV under
the traces folder, at ``--cutoffs`` points spread over the trace (the trace cut there, as if it
were the decision time) with ``--windows`` hourly origins each. NAB series are scored twice:
on all points, and without the labelled anomaly windows (``nab/labels/combined_windows.json``),
which mark episodes a forecaster is not expected to predict. The tables replace the block
between the ``<!-- traces:begin -->`` and ``<!-- traces:end -->`` markers of ``--write``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.cleaning import infer_step
from forecasting.errors import ForecastingError
from forecasting.trace import evaluate_trace, read_trace_csv

MODELS = ("seasonal_naive", "mstl", "auto_ets", "ses", "theta", "seasonal_profile")
BEGIN, END = "<!-- traces:begin -->", "<!-- traces:end -->"


def _windows(traces: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    path = traces / "nab" / "labels" / "combined_windows.json"
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {
        key.split("/")[-1]: [
            (pd.Timestamp(a).tz_localize("UTC"), pd.Timestamp(b).tz_localize("UTC"))
            for a, b in spans
        ]
        for key, spans in raw.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path)
    parser.add_argument(
        "--windows", type=int, default=6, help="hourly origins per cutoff (default 6)"
    )
    parser.add_argument("--cutoffs", type=int, default=2, help="cut points per trace (default 2)")
    parser.add_argument("--horizon", default="1h")
    parser.add_argument(
        "--max-points",
        type=int,
        default=4032,
        help="training points per fit, at most (default 4032 = 14 days at 5 min)",
    )
    parser.add_argument("--write", type=Path, help="markdown file whose traces block is replaced")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    horizon = pd.Timedelta(args.horizon).to_pytimedelta()
    anomalies = _windows(args.traces)

    rows: list[str] = []
    totals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    chosen_count: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    files = sorted(p for p in args.traces.rglob("*.csv"))
    for path in files:
        label = str(path.relative_to(args.traces))
        try:
            series = read_trace_csv(path)
        except ForecastingError as exc:
            rows.append(f"| {label} |{' |' * len(MODELS)} error: {exc} |")
            continue
        spans = anomalies.get(path.name, [])
        # MSTL and Theta cost grows with points x season: 14 days of 1-minute data (season
        # 1440) takes minutes per fit, so finer traces train on the same number of points.
        step = infer_step(pd.DatetimeIndex(series.index.sort_values()))
        history = min(timedelta(days=14), step * args.max_points)
        first, last = series.index.min(), series.index.max()
        needed = timedelta(days=3)
        cuts = [
            last - (last - first - needed) * k / max(1, args.cutoffs) for k in range(args.cutoffs)
        ]
        per_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        verdicts: list[str] = []
        error = ""
        for cut in cuts:
            try:
                result = evaluate_trace(
                    series[series.index <= cut],
                    name=label,
                    horizon=horizon,
                    models=MODELS,
                    n_windows=args.windows,
                    history=history,
                    exclude=spans,
                )
            except ForecastingError as exc:
                error = str(exc)
                continue
            verdicts.append(result.chosen + ("" if result.trusted else " (untrusted)"))
            chosen_count[result.chosen if result.trusted else "untrusted"] += 1
            for model, scores in result.models.items():
                for key, value in scores.items():
                    per_model[model][key].append(value)
                    totals[model][key].append(value)
                if spans and model in result.models_excluding:
                    per_model[model]["mase_clean"].append(result.models_excluding[model]["mase"])
                    totals[model]["mase_clean"].append(result.models_excluding[model]["mase"])
        if not per_model:
            rows.append(f"| {label} |{' |' * len(MODELS)} error: {error} |")
            continue

        def cell(model: str, key: str, per: dict[str, dict[str, list[float]]] = per_model) -> str:
            values = per[model].get(key, [])
            return f"{np.mean(values):.2f}" if values else "-"

        cells = " | ".join(cell(model, "mase") for model in MODELS)
        rows.append(f"| {label} | {cells} | {'; '.join(dict.fromkeys(verdicts))} |")
        print(rows[-1], flush=True)

    summary = [
        "| model | mean MASE | median MASE | mean MASE without anomaly windows (NAB) | cov80 | cov95 | mean seconds per evaluation |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        t = totals[model]
        if not t.get("mase"):
            continue
        clean = f"{np.mean(t['mase_clean']):.3f}" if t.get("mase_clean") else "-"
        summary.append(
            f"| {model} | {np.mean(t['mase']):.3f} | {np.median(t['mase']):.3f} | {clean} "
            f"| {np.mean(t['coverage_80']):.2f} | {np.mean(t['coverage_95']):.2f} | {np.mean(t['seconds']):.2f} |"
        )
    block = "\n".join(
        [
            BEGIN,
            f"Generated by `.venv/bin/python benchmarks/evaluate_traces.py <traces> --windows {args.windows} "
            f"--cutoffs {args.cutoffs} --horizon {args.horizon} --max-points {args.max_points} --write docs/forecasting.md` "
            f"({len(files)} files, {time.perf_counter() - started:.0f} s on the shared 2-core machine).",
            "",
            "MASE per trace (mean over cutoffs; < 1 beats the in-sample seasonal-naive error); "
            "the last column is what the engine would choose at each cutoff.",
            "",
            f"| trace | {' | '.join(MODELS)} | engine's choice |",
            "|---" * (len(MODELS) + 2) + "|",
            *rows,
            "",
            f"Choices over all cutoffs: {dict(sorted(chosen_count.items()))}.",
            "",
            *summary,
            END,
        ]
    )
    print(block)
    if args.write is not None:
        text = args.write.read_text() if args.write.exists() else f"{BEGIN}\n{END}\n"
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.write.write_text(head + block + tail)


if __name__ == "__main__":
    main()
