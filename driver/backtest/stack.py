"""Which stack, pool and metric a backtest simulates, and the strategies it runs.

Without a stack file the backtest uses the packaged ``default_stack.yaml``: one pool whose
``rps`` metric is the trace, with rules written relative to current demand, so it fits any trace
without tuning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.backtest.errors import BacktestError
from driver.backtest.strategies import (
    STRATEGY_NAMES,
    MirrorcastStrategy,
    OracleStrategy,
    ReactiveStrategy,
    ScheduledPredictiveStrategy,
    StaticPeakStrategy,
    Strategy,
)
from infra.config import MirrorcastConfig, load_stack_file

__all__ = [
    "DEFAULT_STACK",
    "BacktestStack",
    "build_strategies",
    "load_backtest_stack",
    "parse_strategy_names",
]

logger = logging.getLogger(__name__)

DEFAULT_STACK = Path(__file__).with_name("default_stack.yaml")
"""The packaged stack used when no ``--config`` is given."""


@dataclass(frozen=True)
class BacktestStack:
    """The stack config under test and the pool and metric the trace stands for."""

    config: MirrorcastConfig
    pool: str
    metric: str
    source: str


def load_backtest_stack(
    path: str | Path | None = None, *, pool: str | None = None, metric: str | None = None
) -> BacktestStack:
    """Load the stack to backtest.

    :param path: a stack file; default: the packaged default stack.
    :param pool: the pool to simulate; default: the stack's only pool (an error if it has several).
    :param metric: the pool metric the trace is fed in as; default: ``rps`` if the pool has it,
        else its only metric, else its first metric with ``per_instance_capacity``.
    :raises BacktestError: naming the stack file and the choices when pool or metric is ambiguous.
    :raises infra.config.ConfigError: when the stack file is invalid.
    """
    source = str(path) if path is not None else str(DEFAULT_STACK)
    config = load_stack_file(path if path is not None else DEFAULT_STACK)
    if pool is None:
        if len(config.pools) != 1:
            raise BacktestError(
                f"{source} has pools {', '.join(config.pools)}; choose one with --pool"
            )
        pool = next(iter(config.pools))
    elif pool not in config.pools:
        raise BacktestError(f"{source} has no pool {pool!r}; pools are {', '.join(config.pools)}")
    metrics = config.pools[pool].metrics
    if metric is None:
        sized = [name for name, spec in metrics.items() if spec.per_instance_capacity]
        if "rps" in metrics:
            metric = "rps"
        elif len(metrics) == 1:
            metric = next(iter(metrics))
        elif sized:
            metric = sized[0]
        else:
            raise BacktestError(
                f"{source}: pool {pool!r} has metrics {', '.join(metrics)}; choose the one the "
                "trace stands for with --metric"
            )
    elif metric not in metrics:
        raise BacktestError(
            f"{source}: pool {pool!r} has no metric {metric!r}; it has {', '.join(metrics)}"
        )
    return BacktestStack(config=config, pool=pool, metric=metric, source=source)


def parse_strategy_names(text: str) -> list[str]:
    """Split ``reactive,oracle`` into names, refusing unknown ones with the known list."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in STRATEGY_NAMES]
    if unknown:
        raise BacktestError(
            f"unknown strateg{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"choose from {', '.join(STRATEGY_NAMES)}"
        )
    if not names:
        raise BacktestError(f"no strategies given; choose from {', '.join(STRATEGY_NAMES)}")
    return list(dict.fromkeys(names))


def build_strategies(
    names: Sequence[str],
    *,
    stack: BacktestStack,
    engine_factory: Callable[[MirrorcastConfig], Any] | None = None,
    events: Any = None,
) -> list[Strategy]:
    """Fresh strategy objects for one backtest run.

    :param names: strategy names, from :data:`~driver.backtest.strategies.STRATEGY_NAMES`.
    :param stack: the stack under test (the mirrorcast strategy runs it; the oracle takes the
        mirror's ready time from it).
    :param engine_factory: builds the forecasting engine from the config; default:
        ``forecasting.ForecastEngine(config.forecast)``. Only called for ``mirrorcast``.
    :param events: an event schedule for the mirrorcast strategy; default none.
    """
    pool = stack.config.pools[stack.pool]
    strategies: list[Strategy] = []
    for name in names:
        if name == "reactive":
            strategies.append(ReactiveStrategy())
        elif name == "scheduled-predictive":
            strategies.append(ScheduledPredictiveStrategy())
        elif name == "static-peak":
            strategies.append(StaticPeakStrategy())
        elif name == "oracle":
            strategies.append(OracleStrategy(mirror_ready=pool.mirror_ready_time))
        elif name == "mirrorcast":
            factory = engine_factory or default_engine
            strategies.append(
                MirrorcastStrategy(
                    config=stack.config,
                    pool=stack.pool,
                    metric=stack.metric,
                    engine=factory(stack.config),
                    events=events,
                )
            )
        else:
            raise BacktestError(
                f"unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)}"
            )
    return strategies


def default_engine(config: MirrorcastConfig) -> Any:
    """The driver's forecasting engine for this stack's forecast settings (quantiles calibrated
    online as in the driver, ``forecast.calibration``)."""
    try:
        from forecasting.as_driven import driver_engine
    except ImportError as exc:
        raise BacktestError(
            "the mirrorcast strategy needs forecasting.ForecastEngine, which this installation "
            f"does not provide ({exc}); run the baselines only with --strategies"
        ) from None
    # The very engine the driver service runs (one factory for both).
    return driver_engine(config.forecast)
