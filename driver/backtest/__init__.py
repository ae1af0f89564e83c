"""Trace-driven backtests: the driver's own cycle against baselines, on a simulated cloud and clock.

Import from here::

    from driver.backtest import load_trace, run_backtest, ReactivePolicy
"""

from driver.backtest.cloud import CloudRecord, CloudTiming, SimulatedCloud
from driver.backtest.policies import (
    POLICY_NAMES,
    MirrorcastPolicy,
    OraclePolicy,
    PlanNote,
    Policy,
    ReactivePolicy,
    ScheduledPredictivePolicy,
    SimulationContext,
    StaticPeakPolicy,
    TargetTracker,
)
from driver.backtest.scoring import CapacityModel, PolicyScore, score_record
from driver.backtest.simulator import (
    BacktestResult,
    BacktestSettings,
    PolicyRun,
    default_instance_capacity,
    run_backtest,
)
from driver.backtest.trace import Trace, TraceError, load_trace, trace_from_series

__all__ = [
    "POLICY_NAMES",
    "BacktestResult",
    "BacktestSettings",
    "CapacityModel",
    "CloudRecord",
    "CloudTiming",
    "MirrorcastPolicy",
    "OraclePolicy",
    "PlanNote",
    "Policy",
    "PolicyRun",
    "PolicyScore",
    "ReactivePolicy",
    "ScheduledPredictivePolicy",
    "SimulatedCloud",
    "SimulationContext",
    "StaticPeakPolicy",
    "TargetTracker",
    "Trace",
    "TraceError",
    "default_instance_capacity",
    "load_trace",
    "run_backtest",
    "score_record",
    "trace_from_series",
]
