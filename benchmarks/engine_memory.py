"""Benchmark: what a warm series holds in the driver's forecasting engine, per series.

    .venv/bin/python benchmarks/engine_memory.py /work/shared/data/traces --series 10

Runs the engine the driver runs (``forecasting.as_driven.driver_engine``: cached model choice,
kept fits, online quantile calibration with the default 3-day window) on ``--series`` real NAB
series for as many 5-minute cycles as the calibration window and the horizon span (876), each
cycle handed the last 14 days, as a metric source returns them. Every series then holds a full
window of errors at every lead: the steady state of a driver that has run for three days.
``--timed`` more cycles are then timed without tracing.

Measured twice in the same run, like for like: with the calibrator as it is (a table of scored
steps, ``calibration._ErrorTable``, the errors computed from it when read; quantiles by
``calibration._linear_quantiles``; the raw history read as arrays) and as it was before issue
16 (each error kept in Python lists, ``tests/calibration_reference.py``; ``np.quantile``; the
history through ``pd.to_numeric`` and a converted index). For each it
prints the memory the cycles left allocated (``tracemalloc``, after a
garbage collection; the imports and the first cycle's one-off costs excluded) per series, and
what the engine's state objects hold, walked object by object: the kept fits, the model
choices, the calibration errors and the pending forecasts. ``--no-lists`` runs the calibrator
as it is only (both columns then show it): two heads of the repository are compared by running
each with it at the same time.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

import forecasting.calibration as calibration
from forecasting.as_driven import driver_engine
from infra.config import ForecastSettings

# The memory tests' object-graph walk and the calibrator of before, one copy each
# (benchmarks/scale.py reads tests/reliability the same way).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from calibration_reference import ListErrorTable, list_clean, numpy_quantiles
from object_graph import walked_bytes

STEP = pd.Timedelta("5min")
HISTORY = 14 * 288
HORIZON = 12
MODELS = ["seasonal_naive", "naive", "ses", "seasonal_window_average", "auto_ets"]
"""The fleet-affordable candidates of forecast_bench.py, plus AutoETS (a kept fit with state)."""


def long_series(traces: Path, count: int, *, cycles: int) -> dict[tuple[str, str], pd.Series]:
    """``count`` NAB series long enough for 14 days of history plus ``cycles`` steps."""
    needed = HISTORY + cycles
    pools: list[tuple[str, pd.Series]] = []
    for path in sorted((traces / "nab").rglob("*.csv")):
        frame = pd.read_csv(path, parse_dates=["timestamp"])
        series = frame.set_index("timestamp")["value"].astype(float)
        series = series[~series.index.duplicated()].resample(STEP).mean().interpolate()
        if len(series) >= needed:
            pools.append((path.stem, series))
    if not pools:
        raise SystemExit(f"no NAB series under {traces} spans {needed} steps of 5 minutes")
    out: dict[tuple[str, str], pd.Series] = {}
    offset = 0
    while len(out) < count:
        for name, series in pools:
            end = len(series) - offset
            if end >= needed and len(out) < count:
                out[(f"{name}@{end}", "cpu")] = series.iloc[end - needed : end]
        offset += 37  # co-prime with the daily period: windows start at varied times of day
        if offset > len(pools[0][1]):
            break
    return out


def deep_size(roots: Iterable[Any]) -> int:
    """Bytes held by ``roots`` and everything they reach (tests/object_graph.py's walk)."""
    return walked_bytes(roots)


def fetched(
    histories: dict[tuple[str, str], pd.Series], end: int
) -> dict[tuple[str, str], pd.Series]:
    """The last 14 days before step ``end`` of every series, as new objects, as a metric
    source returns them each cycle. A pandas slice of the benchmark's own series would leave a
    weak reference on that series' block and index every cycle (pandas 2's copy-on-write
    bookkeeping, cleared only once hundreds pile up): tens of KB a series counted as "left
    allocated by the cycles" that no driver holds."""
    out = {}
    for key, series in histories.items():
        stamps = series.index.asi8[end - HISTORY : end].copy()
        index = pd.DatetimeIndex(stamps.view("datetime64[ns]"))  # asi8: UTC instants
        if series.index.tz is not None:
            index = index.tz_localize("UTC").tz_convert(series.index.tz)
        out[key] = pd.Series(series.to_numpy()[end - HISTORY : end].copy(), index=index)
    return out


def run(
    histories: dict[tuple[str, str], pd.Series], *, cycles: int, timed: int, before: bool
) -> dict[str, float]:
    """The driver's engine over ``cycles`` cycles; ``before``: with the calibrator of before."""
    saved = (calibration._ErrorTable, calibration._linear_quantiles, calibration._clean)
    if before:
        calibration._ErrorTable = ListErrorTable  # type: ignore[misc,assignment]
        calibration._linear_quantiles = numpy_quantiles
        calibration._clean = list_clean
    try:
        engine = driver_engine(ForecastSettings(models=MODELS, workers=1))
        # The first cycle selects and fits: its one-off allocations (numba, imports) are not
        # what a warm series holds.
        engine.forecast_many(fetched(histories, HISTORY))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        for end in range(HISTORY + 1, HISTORY + cycles + 1):
            engine.forecast_many(fetched(histories, end))
        seconds = time.perf_counter() - t0
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        # Then the steady state's cost, untraced: every lead's window is full.
        t0 = time.perf_counter()
        for end in range(HISTORY + cycles + 1, HISTORY + cycles + timed + 1):
            engine.forecast_many(fetched(histories, end))
        steady = time.perf_counter() - t0
    finally:
        calibration._ErrorTable, calibration._linear_quantiles, calibration._clean = saved
    inner = engine.engine
    series = engine.calibrator._series.values()
    errors = sum(len(s.table) for s in series)
    n = len(histories)
    return {
        "retained": retained / n,
        "fits": deep_size(inner._kept.values()) / n,
        "choices": deep_size([inner.store._memory, inner._strengths]) / n,
        "errors": deep_size(s.table for s in series) / n,
        "pending": deep_size(s.pending for s in series) / n,
        "errors_per_series": errors / n,
        "ms_per_cycle": 1000 * seconds / cycles / n,
        "steady_ms": 1000 * steady / max(timed, 1) / n,
    }


def fit_sizes(histories: dict[tuple[str, str], pd.Series]) -> None:
    """Each reusable model's kept fit on the first series' 14 days, as statsforecast leaves it
    and lean (``forecasting.models.statistical.lean``), walked object by object."""
    import copy

    import forecasting.models.statistical as statistical
    from forecasting.models import ModelOptions

    series = next(iter(histories.values())).iloc[:HISTORY]
    index = pd.DatetimeIndex(series.index)
    frame = pd.DataFrame(
        {
            "unique_id": "s",
            "ds": index.tz_localize(None) if index.tz is not None else index,
            "y": series.to_numpy(dtype=float),
        }
    )
    print(f"kept fit of one series (14 days at 5 minutes, {series.to_numpy().nbytes:,} bytes)")
    print(f"{'KB':<28}{'as fitted':>12}{'lean':>10}")
    keep = statistical.lean
    statistical.lean = lambda fitted: fitted  # type: ignore[assignment]
    try:
        for model in sorted(statistical.REUSABLE):
            _, fits = statistical.fit(
                frame,
                model=model,
                h=HORIZON,
                freq="300s",
                season=288,
                levels=[80, 90, 95, 99],
                options=ModelOptions(seed=0),
            )
            full = fits["s"]
            lean = keep(copy.deepcopy(full))
            print(f"{model:<28}{deep_size([full]) / 1e3:>12.1f}{deep_size([lean]) / 1e3:>10.1f}")
    finally:
        statistical.lean = keep  # type: ignore[assignment]


def calibrator_only(traces: Path, count: int) -> None:
    """What the calibrator alone holds per series after three days of 5-minute cycles: its
    own ``record`` and ``observe`` every cycle, the same-step-a-day-ago forecast of ``count``
    real NAB CloudWatch series (cheap enough for any head: only the calibrator's public
    methods are called, so ``PYTHONPATH=<another head>`` measures that head's store)."""
    from datetime import timedelta

    import numpy as np

    from forecasting import Forecast
    from infra.config import CalibrationSettings

    folder = traces / "nab" / "realAWSCloudwatch"
    bases = [pd.read_csv(p)["value"].to_numpy(float) for p in sorted(folder.glob("*.csv"))]
    bases = [base for base in bases if len(base) >= HISTORY]
    points = HISTORY + HORIZON
    stamps = pd.date_range(end="2026-11-27 13:00", periods=points, freq="5min", tz="UTC").asi8
    data = [np.resize(np.roll(bases[i % len(bases)], 37 * i), points) for i in range(count)]
    calibrator = calibration.QuantileCalibrator(CalibrationSettings())
    step, season, kept = timedelta(minutes=5), 288, 2016 + 13
    cycles = 3 * season + HORIZON  # the default 3-day window and the horizon
    started = time.process_time()
    for at in range(HISTORY - cycles + 1, HISTORY + 1):
        now = pd.Timestamp(stamps[at - 1], tz="UTC").to_pydatetime()
        index = pd.DatetimeIndex(stamps[at - kept : at].view("datetime64[ns]")).tz_localize("UTC")
        times = [now + step * (lead + 1) for lead in range(HORIZON)]
        for number, values in enumerate(data):
            key = (f"p{number}", "cpu")
            calibrator.observe(key, pd.Series(values[at - kept : at], index=index), now=now)
            mean = values[at - season : at - season + HORIZON].copy()
            calibrator.record(
                Forecast(
                    pool=key[0],
                    metric="cpu",
                    issued_at=now,
                    step=step,
                    times=times,
                    mean=mean,
                    quantiles={50: mean},
                    model="seasonal_naive",
                )
            )
    cpu = time.process_time() - started
    states = list(calibrator._series.values())
    errors = sum(
        calibrator.samples(key, lead) for key in calibrator._series for lead in range(1, 13)
    )
    store = walked_bytes(
        value for state in states for name, value in vars(state).items() if name != "pending"
    )
    pending = walked_bytes(state.pending for state in states)
    # What reading the store costs: one calibrate() of a 12-step forecast of the first series.
    key = next(iter(calibrator._series))
    now = pd.Timestamp(stamps[HISTORY - 1], tz="UTC").to_pydatetime()
    mean = np.linspace(20.0, 40.0, HORIZON)
    forecast = Forecast(
        pool=key[0],
        metric=key[1],
        issued_at=now,
        step=step,
        times=[now + step * (lead + 1) for lead in range(HORIZON)],
        mean=mean,
        quantiles={q: mean * (1 + q / 500) for q in (50, 80, 90, 95, 99)},
        model="seasonal_naive",
    )
    for _ in range(20):
        calibrator.calibrate(forecast)
    timed = time.process_time()
    for _ in range(300):
        calibrator.calibrate(forecast)
    per_call = (time.process_time() - timed) / 300
    # Of it, computing the errors from the table when read (a head whose store keeps the
    # errors has no such step): what caching them per lead could save at most.
    table = getattr(calibrator._series[key], "table", None)
    read = ""
    if table is not None and hasattr(table, "leads"):
        timed = time.process_time()
        for _ in range(300):
            table.leads()
        read = f", of it the errors computed on read {(time.process_time() - timed) / 0.3:.3f} ms"
    print(
        f"{count} series, {cycles} cycles: errors kept {errors / count:,.0f} a series; "
        f"calibration store {store / count / 1e6:.4f} MB a series ({store / errors:.2f} bytes "
        f"an error); pending forecasts {pending / count / 1e6:.4f} MB a series; "
        f"{cpu:.1f} s CPU; calibrate() {per_call * 1000:.2f} ms CPU a call (300 calls){read}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--series", type=int, default=10, help="number of series (default 10)")
    parser.add_argument(
        "--cycles",
        type=int,
        default=876,
        help="warm cycles (default 876: the 3-day calibration window and the 1-hour horizon)",
    )
    parser.add_argument(
        "--timed",
        type=int,
        default=50,
        help="cycles timed after the traced ones, untraced, with full windows (default 50)",
    )
    parser.add_argument(
        "--no-lists",
        action="store_true",
        help="skip the list calibrator of before (its column repeats the current one): for "
        "comparing two heads of the repository, each run with this flag at the same time",
    )
    parser.add_argument(
        "--fit-sizes",
        action="store_true",
        help="print each reusable model's kept fit as fitted and lean, and stop",
    )
    parser.add_argument(
        "--calibrator-only",
        action="store_true",
        help="measure only what the calibrator holds a series after three days of cycles of "
        "the same-step-a-day-ago forecast (seconds, not the engine's minutes), and stop",
    )
    args = parser.parse_args()
    if args.calibrator_only:
        calibrator_only(args.traces, args.series)
        return
    histories = long_series(args.traces, args.series, cycles=args.cycles + args.timed)
    if args.fit_sizes:
        fit_sizes(histories)
        return
    n = len(histories)
    lists = (
        None if args.no_lists else run(histories, cycles=args.cycles, timed=args.timed, before=True)
    )
    after = run(histories, cycles=args.cycles, timed=args.timed, before=False)
    before = after if lists is None else lists

    def mb(value: float) -> str:
        return f"{value / 1e6:.3f}"

    print(
        f"{n} series, {args.cycles} warm cycles of the driver's engine (history 14d, "
        f"calibration window 3d), candidates {', '.join(MODELS)}"
    )
    print(f"{'MB per series':<52}{'before':>16}{'now':>14}")
    rows = [
        ("left allocated by the cycles (tracemalloc)", "retained"),
        ("  calibration errors (walked)", "errors"),
        ("  pending forecasts (walked)", "pending"),
        ("  kept fits (walked)", "fits"),
        ("  model choices and cycle strengths (walked)", "choices"),
    ]
    for label, key in rows:
        print(f"{label:<52}{mb(before[key]):>16}{mb(after[key]):>14}")
    print(
        f"{'errors kept per series':<52}{before['errors_per_series']:>16,.0f}"
        f"{after['errors_per_series']:>14,.0f}"
    )
    print(
        f"{'warm cycle, ms per series (tracemalloc on)':<52}{before['ms_per_cycle']:>16.2f}"
        f"{after['ms_per_cycle']:>14.2f}"
    )
    print(
        f"{f'steady warm cycle, ms per series ({args.timed} cycles)':<52}"
        f"{before['steady_ms']:>16.2f}{after['steady_ms']:>14.2f}"
    )
    print(
        f"errors: {before['errors'] / after['errors']:.1f}x less memory; "
        f"retained {before['retained'] / after['retained']:.1f}x less"
    )


if __name__ == "__main__":
    main()
