"""Where the engine's heavy work runs: this machine's cores, or a Dask cluster.

Model selection (about a second of CPU per series with the default candidates) and refits
(80-1,500 ms per series) are independent per series, so the engine cuts each batch into chunks
of series and hands the chunks to a :class:`WorkPool` as tasks; every chunk runs the very
function the one-process path runs on the whole batch, so results are the same series by series
(``tests/forecasting/test_distributed.py`` checks it on a ``distributed.LocalCluster`` with
worker processes). ``forecast.backend`` picks the pool:

- ``local``: a pool of worker processes on this machine (``forecast.workers``, default one per
  CPU), kept across cycles; batches too small to pay for a task run in the driver itself, and
  the pool is started only for a batch big enough to pay for starting it
  (:meth:`LocalPool.parallelism_for`: a one-shot cycle with a handful of series spawns nothing);
- a Dask scheduler address (``tcp://dask-scheduler:8786``): the chunks go to the cluster through
  ``dask.distributed`` (``Client.map``). A scheduler that cannot be reached within the connect
  timeout means local work and one degraded line per cycle, never a cycle without forecasts.

:func:`forecast_distributed` is the other route: a Dask DataFrame through statsforecast's own
fugue backend, for fleets whose histories are already on the cluster.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from forecasting.models import ModelOptions
from forecasting.models.statistical import NAMES as STATISTICAL_NAMES
from forecasting.models.statistical import _build

__all__ = [
    "DaskPool",
    "LocalPool",
    "WorkPool",
    "chunked",
    "forecast_distributed",
    "open_pool",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MIN_SERIES_PER_TASK = 4
"""Fewer series than this per task cost more to ship (and, locally, to start a worker) than
they save; smaller batches run in the driver."""

TASKS_PER_WORKER = 4
"""Chunks per worker: series differ in cost (a Theta fit can take ten times an ETS one), so a
few chunks each let a worker that finished early take more instead of idling."""

START_SELECTIONS = 12
"""A local pool that is not running yet is started for a batch of at least this many series to
select; smaller batches select in the driver. Starting costs each spawned worker a fresh
interpreter and the forecasting stack's imports (about 4-6 s for two workers on the loaded 2-core
machine, about three selections' worth), and a one-shot cycle (CronJob, systemd timer) pays it
every run. Measured in fresh processes, default candidates, 2 workers vs 1 (load 9-12): 8 series
11.6 s vs 10.3 s, 24 series 30.4 s vs 37.2 s (docs/forecasting.md, "Every core, or a Dask
cluster")."""

START_REFITS = 64
"""The same for a batch of refits only (no selection): a refit costs about a seventh of a
selection, so workers pay for their start only from many more series. Measured as above: 8
refits 9.7 s vs 4.1 s with 2 workers vs 1, 24 refits 12.4 s vs 7.0 s."""


class WorkPool(Protocol):
    """Runs a picklable function over tasks, in order; ``parallelism`` tasks at a time."""

    name: str
    parallelism: int

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]: ...

    def close(self) -> None: ...


def chunked(items: Sequence[T], *, parallelism: int) -> list[list[T]]:
    """``items`` in at most :data:`TASKS_PER_WORKER` x ``parallelism`` contiguous chunks of at
    least :data:`MIN_SERIES_PER_TASK` items (one chunk when that leaves a single one)."""
    if parallelism <= 1 or len(items) < 2 * MIN_SERIES_PER_TASK:
        return [list(items)] if items else []
    count = min(TASKS_PER_WORKER * parallelism, len(items) // MIN_SERIES_PER_TASK)
    size, extra = divmod(len(items), count)
    out: list[list[T]] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


class LocalPool:
    """Worker processes on this machine, started on first use and kept across cycles.

    Processes are spawned (not forked): the driver runs threads (metric collection, the
    ``/metrics`` server), and forking a threaded process can copy a held lock.

    :param workers: default ``None`` (one per CPU: ``os.process_cpu_count``, else ``os.cpu_count``).
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        counted = getattr(os, "process_cpu_count", os.cpu_count)()
        self.parallelism = max(1, workers or counted or 1)
        self._executor: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether worker processes are running (started by an earlier batch)."""
        return self._executor is not None

    def parallelism_for(self, series: int, *, selecting: bool) -> int:
        """How many workers a batch of ``series`` should use: all of them once they run; before,
        only when the batch is big enough to pay for starting them (:data:`START_SELECTIONS`,
        :data:`START_REFITS`), else 1 (the batch runs in the driver, nothing is spawned)."""
        if self.started:
            return self.parallelism
        enough = START_SELECTIONS if selecting else START_REFITS
        return self.parallelism if series >= enough else 1

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        if self.parallelism <= 1 or len(tasks) <= 1:
            return [fn(task) for task in tasks]
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.parallelism, mp_context=multiprocessing.get_context("spawn")
            )
        return list(self._executor.map(fn, tasks))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


class DaskPool:
    """Tasks on a Dask cluster through ``dask.distributed``.

    :param address: the scheduler, e.g. ``tcp://dask-scheduler:8786``.
    :param timeout: how long to wait for the scheduler before giving up.
    :raises OSError: the scheduler cannot be reached in time (``distributed`` raises it).
    """

    name = "dask"

    def __init__(self, address: str, *, timeout: timedelta = timedelta(seconds=10)) -> None:
        from distributed import Client

        self.address = address
        seconds = timeout.total_seconds()
        self.client = Client(address, timeout=seconds, set_as_default=False)
        threads = self.client.nthreads()
        self.parallelism = max(1, sum(threads.values()))

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        if not tasks:
            return []
        # pure=False: equal payloads in two cycles are still two runs (and never a stale hit).
        futures = self.client.map(fn, list(tasks), pure=False)
        results: list[R] = self.client.gather(futures)
        return results

    def close(self) -> None:
        self.client.close()


def open_pool(
    backend: str, *, workers: int | None = None, timeout: timedelta = timedelta(seconds=10)
) -> tuple[WorkPool, str | None]:
    """The pool ``forecast.backend`` names, and a degraded sentence when it fell back to local.

    :param backend: ``local`` or a Dask scheduler address.
    :param workers: local worker processes (``None``: one per CPU).
    :param timeout: the Dask scheduler's connect timeout.
    """
    if backend == "local":
        return LocalPool(workers), None
    try:
        return DaskPool(backend, timeout=timeout), None
    except ImportError:
        problem = "dask.distributed is not installed (pip install 'mirrorcast[fleet]')"
    except (OSError, TimeoutError) as exc:
        problem = f"cannot reach the Dask scheduler {backend} ({exc})"
    note = f"forecast.backend: {problem}; selecting and fitting on this machine instead"
    logger.warning("%s", note)
    return LocalPool(workers), note


def forecast_distributed(
    frame: Any,
    *,
    models: Sequence[str],
    h: int,
    freq: str,
    season: int,
    levels: Sequence[int],
    options: ModelOptions | None = None,
) -> Any:
    """Forecast every series of a Dask DataFrame on its cluster (statsforecast's fugue backend).

    :param frame: a Dask DataFrame with columns ``unique_id`` (str), ``ds`` (timestamp),
        ``y`` (float), gap-free and regular at ``freq`` (cleaned as the engine cleans).
    :param models: statistical model names (see :data:`forecasting.models.MODEL_NAMES`).
    :param h: steps ahead.
    :param freq: pandas frequency of the grid, e.g. ``"300s"``.
    :param season: season length in steps.
    :param levels: interval levels to produce.
    :param options: default ``None``; conformal windows.
    :returns: a Dask DataFrame with ``unique_id, ds`` and each model's columns.
    :raises ValueError: a model that is not statistical (LightGBM and the LSTM train globally;
        run them through mlforecast's and neuralforecast's own distributed classes instead).
    """
    # statsforecast registers its fugue backend (what runs a Dask frame on the cluster) when
    # statsforecast.distributed.fugue is imported; forecasting.models._imports defers that
    # module (0.5 s of fugue a one-shot cycle never uses), so this route imports it itself.
    import statsforecast.distributed.fugue  # noqa: F401
    from statsforecast import StatsForecast

    other = [m for m in models if m not in STATISTICAL_NAMES]
    if other:
        raise ValueError(
            f"distributed forecasting supports the statistical models only; {', '.join(other)} "
            "train one global model (use mlforecast.distributed / neuralforecast on the cluster)"
        )
    opts = options or ModelOptions()
    built = [_build(n, season=season, h=h, weekly=False, options=opts) for n in models]
    engine = StatsForecast(models=built, freq=freq, n_jobs=1)
    return engine.forecast(df=frame, h=h, level=list(levels))
