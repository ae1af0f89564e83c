"""Trace-driven backtests: the driver's own cycle against baselines, on a simulated cloud and clock.

Import from here::

    from driver.backtest import load_trace, run_backtest, ReactiveStrategy
"""

from driver.backtest.cloud import CloudRecord, CloudTiming, SimulatedCloud
from driver.backtest.scoring import CapacityModel, StrategyScore, score_record
from driver.backtest.simulator import (
    BacktestResult,
    BacktestSettings,
    StrategyRun,
    default_instance_capacity,
    run_backtest,
)
from driver.backtest.strategies import (
    STRATEGY_NAMES,
    MirrorcastStrategy,
    OracleStrategy,
    PlanNote,
    ReactiveStrategy,
    ScheduledPredictiveStrategy,
    SimulationContext,
    StaticPeakStrategy,
    Strategy,
    TargetTracker,
)
from driver.backtest.trace import Trace, TraceError, load_trace, trace_from_series

__all__ = [
    "STRATEGY_NAMES",
    "BacktestResult",
    "BacktestSettings",
    "CapacityModel",
    "CloudRecord",
    "CloudTiming",
    "MirrorcastStrategy",
    "OracleStrategy",
    "PlanNote",
    "ReactiveStrategy",
    "ScheduledPredictiveStrategy",
    "SimulatedCloud",
    "SimulationContext",
    "StaticPeakStrategy",
    "Strategy",
    "StrategyRun",
    "StrategyScore",
    "TargetTracker",
    "Trace",
    "TraceError",
    "default_instance_capacity",
    "load_trace",
    "run_backtest",
    "score_record",
    "trace_from_series",
]
