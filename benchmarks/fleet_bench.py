"""Fleet engine: CPU-bound model selection of N series on a Dask cluster of worker processes
against the same selection in one process, side by side in one run.

    .venv/bin/python benchmarks/fleet_bench.py /work/shared/data/traces [--series 200] [--workers 2]

Builds ``--series`` CPU series of ``--history`` at 5 minutes from the real NAB CloudWatch traces
in TRACES (each cut at its own offset and rescaled, so no two are equal), then times a cold
``ForecastEngine.forecast_many`` (every series selected by rolling-origin cross-validation among
``--models``, then fitted) twice through ``forecast.backend: <scheduler>``, the code path a real
scheduler address takes: on a ``distributed.LocalCluster`` of one single-threaded worker process
(one process doing all the work) and on one of ``--workers``. It checks that both chose the
same model for every series and prints the wall times, the workers' CPU seconds and the ratio.

Each cluster is started, its workers have imported the forecasting stack and made one
selection before timing, as a long-running cluster's have; each worker runs in a session of its
own (own scheduling group under Linux's autogroup), as a pod or machine of a real cluster does:
see ``_own_session`` in ``main``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasting import Forecast, ForecastEngine  # noqa: E402
from infra.config import ForecastSettings  # noqa: E402


def fleet(traces: Path, *, series: int, days: int) -> dict[tuple[str, str], pd.Series]:
    """``series`` distinct 5-minute CPU series, all ending at the same time."""
    sources = sorted((traces / "nab" / "realAWSCloudwatch").glob("*.csv"))
    if not sources:
        raise SystemExit(f"no NAB CloudWatch traces under {traces}/nab/realAWSCloudwatch")
    points = days * 288
    end = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    index = pd.date_range(end=end, periods=points, freq="5min")
    rng = np.random.default_rng(0)
    out: dict[tuple[str, str], pd.Series] = {}
    values = [pd.read_csv(path)["value"].to_numpy(dtype=float) for path in sources]
    values = [v for v in values if len(v) > points + 288]
    for i in range(series):
        source = values[i % len(values)]
        start = int(rng.integers(0, len(source) - points))
        y = source[start : start + points] * float(rng.uniform(0.5, 2.0))
        out[(f"pool{i:04d}", "cpu")] = pd.Series(y, index=index)
    return out


def timed(
    engine: ForecastEngine, histories: dict[tuple[str, str], pd.Series]
) -> tuple[float, dict]:
    now = next(iter(histories.values())).index[-1].to_pydatetime()
    started = time.perf_counter()
    out = engine.forecast_many(histories, now=now)
    elapsed = time.perf_counter() - started
    return elapsed, {k: f.model if isinstance(f, Forecast) else None for k, f in out.items()}


def _own_session() -> int:
    """Make this (worker) process a session leader; its new session id."""
    return os.setsid()


def _warm(histories: dict[tuple[str, str], pd.Series], base: dict[str, object]) -> None:
    """One selection in this process, as a worker of a long-running cluster has made."""
    settings = ForecastSettings.model_validate({**base, "workers": 1})
    now = next(iter(histories.values())).index[-1].to_pydatetime()
    ForecastEngine(settings).forecast_many(histories, now=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", type=Path)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=3, help="history per series")
    parser.add_argument("--models", default="seasonal_naive,auto_ets,theta")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from distributed import Client, LocalCluster

    histories = fleet(args.traces, series=args.series, days=args.days)
    base = {"models": args.models.split(","), "history": f"{args.days}d"}

    def settings(**extra: object) -> ForecastSettings:
        return ForecastSettings.model_validate({**base, **extra})

    warm = dict(list(histories.items())[:4])
    runs: dict[int, tuple[float, float, dict]] = {}
    notes: list[str] = []
    for workers in (1, args.workers):
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            with Client(cluster) as client:
                # Each worker its own session, so its own scheduling group: Linux's autogroup
                # (kernel.sched_autogroup_enabled, on here) shares the CPU between sessions,
                # not processes, so on a shared machine two workers of one session got the
                # one session's share between them (measured 1 Dec: a 10M-step loop took 0.30 s
                # of CPU in 1.3-1.5 s on a worker, in 0.69 s in the session's main process).
                # Separate sessions are what separate pods or machines of a real cluster are.
                client.run(_own_session)
                # Warm the workers as a running cluster is: the forecasting stack imported and
                # its first selection made (first calls cost about 0.9 s of CPU more).
                client.run(_warm, warm, base)
                cpu_before = sum(client.run(time.process_time).values())
                engine = ForecastEngine(settings(backend=cluster.scheduler_address))
                seconds, models = timed(engine, histories)
                notes += engine.notes
                engine.close()
                cpu = sum(client.run(time.process_time).values()) - cpu_before
            runs[workers] = (seconds, cpu, models)

    (one_s, one_cpu, one_models), (many_s, many_cpu, many_models) = runs[1], runs[args.workers]
    same = sum(one_models[k] == many_models[k] for k in one_models)
    print(
        f"{args.series} series, {args.days}d history at 5m, candidates {args.models}; "
        f"cold selection + fit (s)"
    )
    print(f"{'':46} {'wall':>8} {'worker CPU':>11}")
    print(f"{'LocalCluster, 1 worker process':46} {one_s:8.1f} {one_cpu:11.1f}")
    print(f"{f'LocalCluster, {args.workers} worker processes':46} {many_s:8.1f} {many_cpu:11.1f}")
    print(f"{'speed-up':46} {one_s / many_s:7.2f}x")
    print(
        f"same model chosen for {same}/{len(one_models)} series"
        + (f"; notes: {notes}" if notes else "")
    )


if __name__ == "__main__":
    main()
