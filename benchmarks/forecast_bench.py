"""Benchmark: the engine against statsforecast used directly, like for like, on real NAB windows.

    .venv/bin/python benchmarks/forecast_bench.py /work/shared/data/traces --series 1000

Builds N series of 14 days of 5-minute history (sliding windows of the NAB series) with the
real next hour held out, then runs, in the same process and with the same candidate set
(``--models``, default the fleet-affordable list):

* cold against cold: the engine's first ``forecast_many`` (rolling-origin selection for every
  series, then the forecast) against what a statsforecast user would write for the same job:
  ``StatsForecast(models=candidates).cross_validation`` with the same origins, the candidate
  with the lowest MASE per series, and ``StatsForecast.forecast`` of every candidate;
* warm against warm: the engine's next ``forecast_many`` (cached choice, kept fit updated or
  the conformal models refitted in one batch) against statsforecast's own cheapest call for each
  series' chosen model, the floor: ``forward`` on a model fitted beforehand (``forecast`` for the
  models that have no ``forward``); both taken ``--repeats`` times in turns, the fastest of
  each reported (the machine's load moves between calls);
* statsforecast MSTL on the first ``--mstl-series`` series, as a reference only (another
  candidate set: MSTL as the library ships it).

and prints wall time per series and MASE (scaled by the in-sample seasonal-naive error) of every
path on the same series.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


N_WINDOWS = 3
"""Rolling origins of every selection (the engine's default ``cv_windows``)."""


def statsforecast_cold(
    df: pd.DataFrame,
    *,
    candidates: list[str],
    scales: dict[str, float],
    actual: dict[str, np.ndarray],
) -> tuple[float, dict[str, float]]:
    """What a statsforecast user writes for "pick the best candidate per series and forecast".

    Cross-validation over the same origins as the engine (``N_WINDOWS`` of ``H`` steps), the
    lowest-MASE candidate per series, then one ``forecast`` of every candidate. Timed whole.
    :returns: seconds and each series' MASE on the held-out hour.
    """
    from statsforecast import StatsForecast

    from forecasting.models.statistical import _build

    models = [_build(n, season=288, h=H, weekly=False, options=ModelOptions()) for n in candidates]
    t0 = time.perf_counter()
    sf = StatsForecast(models=models, freq="300s", n_jobs=1)
    cv = sf.cross_validation(df=df, h=H, n_windows=N_WINDOWS, step_size=H, level=[80, 95])
    best: dict[str, str] = {}
    for uid, rows in cv.groupby("unique_id"):
        errors = {
            name: float(np.mean(np.abs(rows["y"] - rows[name]))) / scales[str(uid)]
            for name in candidates
        }
        best[str(uid)] = min(errors, key=lambda m: errors[m])
    forecast = sf.forecast(df=df, h=H, level=[80, 95])
    seconds = time.perf_counter() - t0
    out: dict[str, float] = {}
    for uid, rows in forecast.groupby("unique_id"):
        ordered = rows.sort_values("ds")
        out[str(uid)] = mase(actual[str(uid)], ordered[best[str(uid)]], scale=scales[str(uid)])
    return seconds, out


def floor_models(
    windows: list[tuple[str, pd.Series, np.ndarray]],
    *,
    chosen: dict[str, str],
    seasons: dict[str, int],
) -> list[tuple[str, np.ndarray, Any, bool]]:
    """statsforecast's models for the floor, each series' chosen one, fitted beforehand.

    Untimed, like the engine's kept fit. ``True`` marks a model with its own ``forward``;
    the others (statsforecast 2.1: the conformal SES and window average, which refit anyway)
    are timed with ``forecast``.
    """
    from forecasting.models.statistical import _build

    fitted = []
    for name, history, _ in windows:
        y = history.to_numpy(dtype=float)
        model = _build(
            chosen[name], season=seasons[name], h=H, weekly=False, options=ModelOptions()
        )
        own_forward = hasattr(model, "forward")
        if own_forward:
            model.fit(y=y)
        fitted.append((name, y, model, own_forward))
    return fitted


def statsforecast_floor(
    fitted: list[tuple[str, np.ndarray, Any, bool]],
    *,
    scales: dict[str, float],
    actual: dict[str, np.ndarray],
) -> tuple[float, dict[str, float], str]:
    """statsforecast's cheapest warm call for each series' chosen model: the floor.

    The timed call is each fitted model's ``forward`` on its series, or ``forecast`` for the
    models without their own ``forward`` (see :func:`floor_models`).
    """
    calls: set[str] = set()
    t0 = time.perf_counter()
    results: dict[str, dict[str, np.ndarray]] = {}
    for name, y, model, own_forward in fitted:
        if own_forward:
            results[name] = model.forward(y=y, h=H, level=[80, 95])
            calls.add("forward")
        else:
            results[name] = model.forecast(y=y, h=H, level=[80, 95])
            calls.add("forecast")
    seconds = time.perf_counter() - t0
    out = {name: mase(actual[name], r["mean"], scale=scales[name]) for name, r in results.items()}
    return seconds, out, " / ".join(sorted(calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path, help="the shared traces folder")
    parser.add_argument("--series", type=int, default=1000, help="number of series (default 1000)")
    parser.add_argument(
        "--mstl-series", type=int, default=60, help="series MSTL runs on (default 60)"
    )
    parser.add_argument(
        "--models",
        default=",".join(PRODUCTION_MODELS),
        help="candidate set, the same for every path (default the fleet-affordable list)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="warm calls of the engine and of the floor, in turns; the fastest of each counts",
    )
    parser.add_argument("--write", type=Path, help="markdown file whose bench block is replaced")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    windows = build_series(args.traces, args.series)
    n = len(windows)
    scales = {name: mase_scale(h.to_numpy(), season=288) for name, h, _ in windows}
    actual = {name: a for name, _, a in windows}
    histories = {("bench", name): h for name, h, _ in windows}

    candidates = args.models.split(",")
    # Both sides start compiled: numba kernels and imports are paid here, untimed, by a
    # throw-away engine on two series and by statsforecast on the same two.
    warmup = dict(list(histories.items())[:2])
    ForecastEngine(ForecastSettings(models=candidates, workers=1)).forecast_many(warmup)
    statsforecast_cold(
        pd.concat(
            [
                pd.DataFrame({"unique_id": name, "ds": h.index, "y": h.to_numpy()})
                for (_, name), h in warmup.items()
            ]
        ),
        candidates=candidates,
        scales=scales,
        actual=actual,
    )
    with tempfile.TemporaryDirectory() as cache:
        settings = ForecastSettings(models=candidates, workers=1)
        engine = ForecastEngine(settings, cache_dir=Path(cache))
        t0 = time.perf_counter()
        engine.forecast_many(histories)
        cold = time.perf_counter() - t0
        results = engine.forecast_many(histories)
        chosen_by_series = {
            name: fc.model for (_, name), fc in results.items() if isinstance(fc, Forecast)
        }
        # The season each series' model runs with (1 for series without a daily cycle).
        seasons = {}
        for name in chosen_by_series:
            selection = engine.store.load("bench", name)
            seasons[name] = selection.season if selection is not None else 288
        fitted = floor_models(windows, chosen=chosen_by_series, seasons=seasons)
        # Warm against warm, taken in turns and the fastest of each kept (as timeit does):
        # on a machine shared with other work a single call measures the neighbours' load.
        warm = floor_s = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            results = engine.forecast_many(histories)
            warm = min(warm, time.perf_counter() - t0)
            seconds, floor_mase, floor_calls = statsforecast_floor(
                fitted, scales=scales, actual=actual
            )
            floor_s = min(floor_s, seconds)

    engine_mase: dict[str, float] = {}
    chosen: dict[str, int] = {}
    untrusted = 0
    for (_, name), fc in results.items():
        assert isinstance(fc, Forecast), fc
        engine_mase[name] = mase(actual[name], fc.mean, scale=scales[name])
        chosen[fc.model] = chosen.get(fc.model, 0) + 1
        untrusted += not fc.trusted

    long = pd.concat(
        [
            pd.DataFrame({"unique_id": name, "ds": h.index, "y": h.to_numpy()})
            for name, h, _ in windows
        ]
    )
    direct_s, direct_mase = statsforecast_cold(
        long, candidates=candidates, scales=scales, actual=actual
    )

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

    per_warm = warm / n
    say(f"series: {n} windows of 14 days at 5 min, horizon 1 h (12 steps)")
    same = [engine_mase[s] for s in subset]

    def row(label: str, seconds: float, count: int, scores: list[float]) -> None:
        say(
            f"{label:<46}{seconds:>9.2f}{1000 * seconds / count:>11.2f}"
            f"{np.mean(scores):>11.3f}{np.median(scores):>13.3f}"
        )

    say(f"candidates (every path): {', '.join(candidates)}")
    say(f"warm rows: the fastest of {args.repeats} calls each, engine and floor in turns")
    say(f"{'path':<46}{'total s':>9}{'ms/series':>11}{'MASE mean':>11}{'MASE median':>13}")
    everyone = list(engine_mase.values())
    row("cold: engine (selection + forecast)", cold, n, everyone)
    row("cold: statsforecast directly (CV + forecast)", direct_s, n, list(direct_mase.values()))
    row(f"warm: engine (kept fits; best of {args.repeats})", warm, n, everyone)
    row(f"warm: statsforecast floor ({floor_calls})", floor_s, n, list(floor_mase.values()))
    say(
        f"cold: engine / statsforecast directly {cold / direct_s:.2f}x the time; "
        f"warm: engine / statsforecast floor {warm / floor_s:.2f}x the time"
    )
    say(f"reference, another candidate set: statsforecast MSTL on {len(subset)} of the series")
    row(
        "  statsforecast MSTL (refit, as shipped)", mstl_time, len(subset), list(mstl_mase.values())
    )
    row("  engine warm on the same series", per_warm * len(subset), len(subset), same)
    say(
        f"models chosen: {dict(sorted(chosen.items()))}; untrusted (no daily cycle, or baseline fallback): {untrusted}"
    )

    report = "\n".join(lines)
    sys.stdout.write(report + "\n")
    if args.write is not None:
        command = (
            f".venv/bin/python benchmarks/forecast_bench.py <traces> --series {args.series} "
            f"--mstl-series {args.mstl_series} --models {args.models} --repeats {args.repeats} "
            f"--write {args.write}"
        )
        block = f"{BEGIN}\nGenerated by `{command}`:\n\n```\n{report}\n```\n{END}"
        text = args.write.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.write.write_text(head + block + tail)


if __name__ == "__main__":
    main()
