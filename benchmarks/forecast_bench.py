"""Benchmark: the engine's production path against statsforecast MSTL on real NAB windows.

    .venv/bin/python benchmarks/forecast_bench.py /work/shared/data/traces --series 1000

Builds N series of 14 days of 5-minute history (sliding windows of the NAB series) with the
real next hour held out, then runs, in the same process:

* the engine, cold (model selection by rolling-origin CV for every series) and warm (the cached
  choices, i.e. what every later driver cycle costs), through ``forecast_many``;
* statsforecast MSTL (daily season) on the first ``--mstl-series`` of the same series (MSTL
  costs ~0.5 s a series here; its per-series time is measured, not guessed).

and prints wall time per series and MASE (scaled by the in-sample seasonal-naive error) on the
same series.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import ForecastEngine
from forecasting._result import Forecast
from forecasting.evaluation import mase, mase_scale
from forecasting.models import ModelOptions, forecast_models
from infra.config import ForecastSettings

logger = logging.getLogger(__name__)

HISTORY = 14 * 288
H = 12
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PRODUCTION_MODELS = ["seasonal_naive", "naive", "ses", "seasonal_window_average"]


def build_series(traces: Path, count: int) -> list[tuple[str, pd.Series, np.ndarray]]:
    """``count`` (name, 14-day history, next hour) windows from the NAB CSVs under ``traces``."""
    pools: list[tuple[str, pd.Series]] = []
    for path in sorted((traces / "nab").rglob("*.csv")):
        frame = pd.read_csv(path, parse_dates=["timestamp"])
        series = frame.set_index("timestamp")["value"].astype(float)
        series = series[~series.index.duplicated()].resample("5min").mean().interpolate()
        if len(series) >= HISTORY + H:
            pools.append((path.stem, series))
    out: list[tuple[str, pd.Series, np.ndarray]] = []
    offset = 0
    while len(out) < count:
        for name, series in pools:
            end = len(series) - H - offset
            if end >= HISTORY and len(out) < count:
                out.append(
                    (
                        f"{name}@{end}",
                        series.iloc[end - HISTORY : end],
                        series.iloc[end : end + H].to_numpy(),
                    )
                )
        offset += 37  # co-prime with the daily period, so windows start at varied times of day
        if offset > 40 * 288:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--series", type=int, default=1000, help="number of series (default 1000)")
    parser.add_argument(
        "--mstl-series", type=int, default=60, help="series MSTL runs on (default 60)"
    )
    parser.add_argument("--write", type=Path, help="markdown file whose bench block is replaced")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    windows = build_series(args.traces, args.series)
    n = len(windows)
    scales = {name: mase_scale(h.to_numpy(), season=288) for name, h, _ in windows}
    actual = {name: a for name, _, a in windows}
    histories = {("bench", name): h for name, h, _ in windows}

    with tempfile.TemporaryDirectory() as cache:
        engine = ForecastEngine(ForecastSettings(models=PRODUCTION_MODELS), cache_dir=Path(cache))
        t0 = time.perf_counter()
        engine.forecast_many(histories)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = engine.forecast_many(histories)
        warm = time.perf_counter() - t0

    engine_mase: dict[str, float] = {}
    chosen: dict[str, int] = {}
    untrusted = 0
    for (_, name), fc in results.items():
        assert isinstance(fc, Forecast), fc
        engine_mase[name] = mase(actual[name], fc.mean, scale=scales[name])
        chosen[fc.model] = chosen.get(fc.model, 0) + 1
        untrusted += not fc.trusted

    subset = [name for name, _, _ in windows[: args.mstl_series]]
    df = pd.concat(
        [
            pd.DataFrame({"unique_id": name, "ds": h.index, "y": h.to_numpy()})
            for name, h, _ in windows[: args.mstl_series]
        ]
    )
    # The reference is MSTL as statsforecast ships it (every-point loess), not the engine's
    # faster loess jumps: the comparison is against what a user of the library would run.
    shipped = ModelOptions(loess_jumps=False)
    forecast_models(
        df.iloc[: 2 * 288],
        models=["mstl"],
        h=H,
        freq="300s",
        season=288,
        levels=[80],
        options=shipped,
    )  # compile
    t0 = time.perf_counter()
    mstl = forecast_models(
        df, models=["mstl"], h=H, freq="300s", season=288, levels=[80], options=shipped
    )
    mstl_time = time.perf_counter() - t0
    mstl_mase = {
        str(uid): mase(actual[str(uid)], g.sort_values("ds")["mstl"], scale=scales[str(uid)])
        for uid, g in mstl.groupby("unique_id")
    }

    lines: list[str] = []
    say = lines.append  # the report goes to stdout and, with --write, into the docs

    per_mstl = mstl_time / len(subset)
    per_warm = warm / n
    say(
        f"series: {n} windows of 14 days at 5 min, horizon 1 h (12 steps); MSTL on {len(subset)} of them"
    )
    say(
        f"{'path':<34}{'total s':>10}{'ms/series':>12}{'MASE mean':>11}{'MASE median':>13}   (MASE on the MSTL subset)"
    )
    same = [engine_mase[s] for s in subset]
    say(f"{'engine cold (CV selection)':<34}{cold:>10.2f}{1000 * cold / n:>12.2f}")
    say(
        f"{'engine warm (cached choice)':<34}{warm:>10.2f}{1000 * per_warm:>12.2f}"
        f"{np.mean(same):>11.3f}{np.median(same):>13.3f}"
    )
    say(
        f"{'statsforecast MSTL':<34}{mstl_time:>10.2f}{1000 * per_mstl:>12.2f}"
        f"{np.mean(list(mstl_mase.values())):>11.3f}{np.median(list(mstl_mase.values())):>13.3f}"
    )
    say(
        f"engine over all {n} series: MASE mean {np.mean(list(engine_mase.values())):.3f}, median {np.median(list(engine_mase.values())):.3f}"
    )
    say(f"speed-up per series, warm engine vs MSTL: {per_mstl / per_warm:.1f}x")
    say(
        f"models chosen: {dict(sorted(chosen.items()))}; untrusted (no daily cycle, or baseline fallback): {untrusted}"
    )

    report = "\n".join(lines)
    sys.stdout.write(report + "\n")
    if args.write is not None:
        command = (
            f".venv/bin/python benchmarks/forecast_bench.py <traces> --series {args.series} "
            f"--mstl-series {args.mstl_series} --write {args.write}"
        )
        block = f"{BEGIN}\nGenerated by `{command}`:\n\n```\n{report}\n```\n{END}"
        text = args.write.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.write.write_text(head + block + tail)


if __name__ == "__main__":
    main()
