"""Coverage of the forecast as the driver makes it, on the shared traces.

Usage (from the project root)::

    .venv/bin/python benchmarks/forecast_as_driven.py ../shared/data/traces [--only NAME]
        [--max-days 14] [--windows 72] [--streams DIR] [--variant NAME=JSON ...]

Runs ``forecasting.as_driven.evaluate_as_driven`` (the driver's engine: selection, trust,
calibration; one call per 5-minute cycle) with the driver's default ``forecast`` settings on each
NAB and NASA trace, truncated to ``--max-days`` (default 14) to stay bounded on a shared machine,
and prints one markdown row per trace: scored points, MASE, weighted quantile loss, the 80%
interval's (p10-p90) coverage and the p90's, against issue 15's targets (75-85% and 85-95% on
every trace with at least 300 scored points). The quantiles are scored against each step's
busiest observation (``calibration.target: peak``), as the planner uses them.

``--variant NAME=JSON`` (repeatable) calibrates the same forecasts again under other
``forecast.calibration`` settings (JSON of the fields that differ from the defaults) and prints
their coverage beside the defaults', in the same run: calibration is a layer over the engine's
forecasts, so the engine runs once per trace (``forecasting.as_driven.RecordingEngine``) and
every variant calibrates that very stream (``ReplayedEngine``). ``--streams DIR`` keeps the
recorded streams there and reuses them on the next run with the same trace, days and windows.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.as_driven import (
    INTERVAL_QUANTILES,
    DrivenEvaluation,
    RecordingEngine,
    ReplayedEngine,
    evaluate_as_driven,
)
from forecasting.calibration import CalibratedEngine
from forecasting.engine import ForecastEngine
from forecasting.errors import UnusableSeriesError
from forecasting.trace import read_trace_csv
from infra.config import CalibrationSettings, ForecastSettings, MetricSpec

GROUPS = ("nab/realAWSCloudwatch", "nab/realKnownCause", "nab/realTweets", "nasa_http")


def _in_bands(result: DrivenEvaluation, *, tie_aware: bool = False) -> tuple[bool, bool]:
    # The verdict evaluate-forecast prints (DrivenEvaluation.bands), on traces with enough points.
    bands = result.bands(tie_aware=tie_aware) or {}
    return bands.get("80% interval", False), bands.get("p90", False)


def _variant(text: str) -> tuple[str, CalibrationSettings]:
    name, _, body = text.partition("=")
    if not name or not body:
        raise SystemExit(f"--variant {text!r}: expected NAME=JSON, e.g. lower='{{\"bins\": 1}}'")
    try:
        fields = json.loads(body)
        return name, CalibrationSettings(**{**CalibrationSettings().model_dump(), **fields})
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"--variant {name}: {exc}") from None


def _recorded(
    series: pd.Series,
    *,
    name: str,
    settings: ForecastSettings,
    spec: MetricSpec,
    windows: int | None,
    cache: Path | None,
) -> tuple[DrivenEvaluation, dict[pd.Timestamp, Any]]:
    """The defaults' evaluation and the engine's uncalibrated stream (recorded, or from cache)."""
    if cache is not None and cache.exists():
        stream = pickle.loads(cache.read_bytes())
    else:
        recorder = RecordingEngine(ForecastEngine(settings))
        evaluate_as_driven(
            series,
            name=name,
            settings=settings,
            spec=spec,
            windows=windows,
            engine=CalibratedEngine(recorder, settings=settings.calibration),
        )
        stream = recorder.stream
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps(stream))
    return _replayed(
        series, name=name, settings=settings, spec=spec, windows=windows, stream=stream
    ), stream


def _replayed(
    series: pd.Series,
    *,
    name: str,
    settings: ForecastSettings,
    spec: MetricSpec,
    windows: int | None,
    stream: dict[pd.Timestamp, Any],
) -> DrivenEvaluation:
    return evaluate_as_driven(
        series,
        name=name,
        settings=settings,
        spec=spec,
        windows=windows,
        engine=CalibratedEngine(ReplayedEngine(stream, name=name), settings=settings.calibration),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path)
    parser.add_argument("--only", default="", help="comma-separated parts of trace names")
    parser.add_argument("--max-days", type=float, default=14.0)
    parser.add_argument(
        "--windows", type=int, default=None, help="scored origins (default: about 300 points)"
    )
    parser.add_argument("--streams", type=Path, default=None, help="keep recorded streams here")
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")
    wanted = [part for part in args.only.split(",") if part]
    variants = [_variant(text) for text in args.variant]
    # The quantiles the evaluation scores (p10 added), so that the recorded engine makes them.
    base = ForecastSettings()
    base = base.model_copy(update={"quantiles": sorted({*base.quantiles, *INTERVAL_QUANTILES})})
    head = "| trace | points | MASE | wQL | p10-p90 | p90 | tie-aware p10-p90 / p90 | targets |"
    head += "".join(f" {name}: p10-p90 / p90 (tie-aware) |" for name, _ in variants) + " s |"
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---|" + "---:|" * len(variants) + "---:|")
    counts: dict[str, list[int]] = {"default": [0, 0, 0]}
    for name, _ in variants:
        counts[name] = [0, 0, 0]
    rows: dict[str, Any] = {}
    for group in GROUPS:
        for path in sorted((args.traces / group).glob("*.csv")):
            if wanted and not any(part in path.stem for part in wanted):
                continue
            series = read_trace_csv(path)
            if args.max_days:
                series = series[series.index <= series.index[0] + timedelta(days=args.max_days)]
            # CPU utilisation series are percentages; everything else is a count or a rate.
            unit = "percent" if "cpu" in path.stem.lower() else "count"
            spec = MetricSpec(unit=unit)
            cache = None
            if args.streams is not None:
                tag = f"{path.stem}.d{args.max_days:g}.w{args.windows or 'default'}.pickle"
                cache = args.streams / tag
            started = time.perf_counter()
            try:
                result, stream = _recorded(
                    series,
                    name=path.stem,
                    settings=base,
                    spec=spec,
                    windows=args.windows,
                    cache=cache,
                )
            except UnusableSeriesError as exc:
                print(
                    f"| {path.stem} | - | - | - | - | - | - | skipped: {exc.reason} |"
                    + " - |" * len(variants)
                    + " - |"
                )
                continue
            others = [
                (
                    name,
                    _replayed(
                        series,
                        name=path.stem,
                        settings=base.model_copy(update={"calibration": calibration}),
                        spec=spec,
                        windows=args.windows,
                        stream=stream,
                    ),
                )
                for name, calibration in variants
            ]
            scored = result.bands() is not None
            verdict = "fewer than 300 points"
            if scored:
                interval_ok, p90_ok = _in_bands(result)
                verdict = ", ".join(
                    [
                        ("✓ " if interval_ok else "✗ ") + "80% interval",
                        ("✓ " if p90_ok else "✗ ") + "p90",
                    ]
                )
            cells = ""
            for name, evaluation in [("default", result), *others]:
                if scored:
                    counts[name][0] += all(_in_bands(evaluation))
                    counts[name][1] += _in_bands(evaluation)[1]
                    counts[name][2] += all(_in_bands(evaluation, tie_aware=True))
                if name != "default":
                    cells += (
                        f" {evaluation.coverage_80 or 0:.2f} / {evaluation.coverage[90]:.2f} "
                        f"({evaluation.tie_aware_coverage_80 or 0:.2f} / "
                        f"{evaluation.tie_aware_coverage[90]:.2f}) |"
                    )
            rows[path.stem] = {name: e.to_json() for name, e in [("default", result), *others]}
            print(
                f"| {path.stem} | {result.scored_points} | {result.mase:.2f} | {result.wql:.3f} | "
                f"{result.coverage_80 or 0:.2f} | {result.coverage[90]:.2f} | "
                f"{result.tie_aware_coverage_80 or 0:.2f} / {result.tie_aware_coverage[90]:.2f} | "
                f"{verdict} |{cells} {time.perf_counter() - started:.0f} |",
                flush=True,
            )
    print()
    for name, (both, p90, tie_both) in counts.items():
        print(
            f"- {name}: both bands on {both}, the p90 on {p90}; tie-aware both bands on "
            f"{tie_both} (traces with >= 300 points)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "counts": counts}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
