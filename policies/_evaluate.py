"""Evaluate a parsed rule against one pool's observations, forecasts and calendar.

Pure: the inputs are data, the output is a :class:`RuleEvaluation` that says whether the rule
fired and why, in words, with the forecast values and thresholds involved.

Semantics, in short (docs/rules.md has the long form):

- ``predicted(m, pQ) > X within W`` holds when the pQ curve exceeds X at some forecast point in
  ``(issued_at, now + W + lead]``. ``lead`` is the time the rule's actions need to take effect
  (the mirror's and/or the primary's time-to-ready), so the action lands before the demand.
- ``current(m) > X for D`` holds when every observation in the last D exceeded X and the data
  reaches back D; without ``for``, the latest observation decides.
- A rule that fired last cycle stays fired until its value falls ``hysteresis`` below the
  threshold (points for percent metrics, percent of the threshold otherwise).
- A predicted term whose forecast is missing, stale or untrusted is *unknown*; the rule's
  ``on_untrusted`` decides what happens, and the outcome says so.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting import Forecast
from infra.config import MetricSpec, PoolSpec, RuleSpec, format_duration
from infra.config.rules import (
    And,
    Arithmetic,
    Comparison,
    Condition,
    Current,
    During,
    Not,
    Or,
    Predicted,
    Quantity,
    Value,
    comparisons,
    metric_terms,
    parse_rule,
    unit_factor,
)

__all__ = ["PoolView", "RuleEvaluation", "Trigger", "evaluate_rule", "parsed"]

logger = logging.getLogger(__name__)

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def parsed(text: str) -> Condition:
    """The parsed rule (``parse_rule`` caches trees, so this is cheap every cycle)."""
    return parse_rule(text)


@dataclass(frozen=True)
class PoolView:
    """What rule evaluation sees of one pool at one instant.

    :param name: the pool's name.
    :param spec: the pool's config.
    :param now: decision time (UTC).
    :param current: metric -> recent observations (UTC index).
    :param forecasts: metric -> forecast (missing: no forecast).
    :param active_events: calendar events in effect now.
    :param horizon: the forecast horizon from config (window of a predicted term without ``within``).
    :param max_staleness: oldest forecast or observation still used.
    """

    name: str
    spec: PoolSpec
    now: datetime
    current: Mapping[str, pd.Series]
    forecasts: Mapping[str, Forecast]
    active_events: frozenset[str]
    horizon: timedelta
    max_staleness: timedelta


@dataclass(frozen=True)
class Trigger:
    """The forecast evidence behind a predictive rule firing (kept in memory for feedback)."""

    metric: str
    quantile: int
    peak: float
    peak_at: datetime | None
    threshold: float
    crossing_at: datetime | None
    window_end: datetime
    lead: timedelta
    curve: tuple[tuple[datetime, float, float], ...] = ()
    """(time, median, the rule's quantile) over the window, for comparing with realised demand."""

    def as_memory(self) -> dict[str, Any]:
        """JSON-friendly form for :class:`~policies._plan.PoolMemory`.trigger."""
        return {
            "kind": "forecast",
            "metric": self.metric,
            "quantile": self.quantile,
            "peak": self.peak,
            "peak_at": self.peak_at.isoformat() if self.peak_at else None,
            "threshold": self.threshold,
            "crossing_at": self.crossing_at.isoformat() if self.crossing_at else None,
            "curve": [[t.isoformat(), median, upper] for t, median, upper in self.curve],
        }


@dataclass(frozen=True)
class _Result:
    holds: bool | None
    details: tuple[str, ...] = ()
    untrusted: tuple[str, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    reactive: tuple[tuple[str, float], ...] = ()
    """(metric, threshold) of current() comparisons that held."""


@dataclass(frozen=True)
class RuleEvaluation:
    """How one rule came out.

    :param fired: whether its actions should run (after hysteresis and ``on_untrusted``).
    :param status: ``fired``, ``not_fired``, ``untrusted_fallback`` or ``held``.
    :param detail: values and thresholds in words.
    :param trigger: forecast evidence when a predictive term held (earliest crossing first).
    :param reactive: (metric, threshold) of reactive comparisons that held.
    :param lookahead: how far ahead its predicted terms looked (window plus lead).
    """

    rule: RuleSpec
    fired: bool
    status: str
    detail: str
    trigger: Trigger | None = None
    reactive: tuple[tuple[str, float], ...] = ()
    lookahead: timedelta = field(default=timedelta(0))


def evaluate_rule(
    rule: RuleSpec,
    view: PoolView,
    *,
    fired_before: bool,
    lead: timedelta,
    hysteresis: float,
) -> RuleEvaluation:
    """Evaluate ``rule`` for ``view``.

    :param rule: the rule (its text must already have passed the load-time checks).
    :param view: the pool's data now.
    :param fired_before: the rule fired last cycle (hysteresis keeps it fired a little longer).
    :param lead: time its actions need to take effect; predicted terms look this much further.
    :param hysteresis: the pool's hysteresis (points for percent metrics, else percent of threshold).
    """
    condition = parsed(rule.when)
    context = _Context(view, fired_before, lead, hysteresis)
    result = context.condition(condition)
    lookahead = max(
        (context.window(c) for c in _comparisons(condition) if c.predictive),
        default=timedelta(0),
    )
    trigger = min(
        result.triggers,
        key=lambda t: (t.crossing_at or t.window_end, t.metric),
        default=None,
    )
    details = "; ".join(result.details)
    if result.untrusted:
        reasons = "; ".join(dict.fromkeys(result.untrusted))
        if rule.on_untrusted == "fire":
            return RuleEvaluation(
                rule,
                True,
                "untrusted_fallback",
                f"forecast not trusted ({reasons}); on_untrusted=fire treats the rule as fired",
                None,
                result.reactive,
                lookahead,
            )
        if rule.on_untrusted == "hold":
            state = "fired" if fired_before else "not fired"
            return RuleEvaluation(
                rule,
                fired_before,
                "untrusted_fallback",
                f"forecast not trusted ({reasons}); on_untrusted=hold keeps last cycle's decision ({state})",
                None,
                (),
                lookahead,
            )
        fired = bool(result.holds)
        verdict = "fired" if fired else "did not fire"
        evaluated = details or "no current()/during() terms to evaluate"
        return RuleEvaluation(
            rule,
            fired,
            "untrusted_fallback",
            f"forecast not trusted ({reasons}); on_untrusted=reactive evaluated only the "
            f"current()/during() terms and the rule {verdict}: {evaluated}",
            None,
            result.reactive,
            lookahead,
        )
    fired = bool(result.holds)
    return RuleEvaluation(
        rule,
        fired,
        "fired" if fired else "not_fired",
        details,
        trigger if fired else None,
        result.reactive if fired else (),
        lookahead,
    )


def _comparisons(condition: Condition) -> list[Comparison]:
    return list(comparisons(condition))


@dataclass(frozen=True)
class _Context:
    view: PoolView
    fired_before: bool
    lead: timedelta
    hysteresis: float

    # ---- boolean structure (three-valued: None is "unknown", i.e. an untrusted forecast)

    def condition(self, node: Condition) -> _Result:
        if isinstance(node, Comparison):
            return self.comparison(node)
        if isinstance(node, During):
            active = node.event in self.view.active_events
            return _Result(
                active, (f"during({node.event}): {'active' if active else 'not active'}",)
            )
        if isinstance(node, Not):
            inner = self.condition(node.operand)
            negated = None if inner.holds is None else not inner.holds
            return _Result(negated, inner.details, inner.untrusted)
        parts = [self.condition(operand) for operand in node.operands]
        known = [p.holds for p in parts if p.holds is not None]
        holds: bool | None
        if not known:
            holds = None
        elif isinstance(node, And):
            holds = all(known)
        else:
            assert isinstance(node, Or)
            holds = any(known)
        return _Result(
            holds,
            tuple(d for p in parts for d in p.details),
            tuple(u for p in parts for u in p.untrusted),
            tuple(t for p in parts if p.holds for t in p.triggers),
            tuple(r for p in parts if p.holds for r in p.reactive),
        )

    # ---- comparisons

    def window(self, node: Comparison) -> timedelta:
        return (node.within or self.view.horizon) + self.lead

    def _metric_unit(self, node: Comparison) -> str:
        terms = metric_terms(node)
        spec: MetricSpec | None = self.view.spec.metrics.get(terms[0].metric) if terms else None
        return spec.unit if spec is not None else "percent"

    def _margin(self, threshold: float, unit: str) -> float:
        if not self.fired_before:
            return 0.0
        if unit == "percent":
            return self.hysteresis
        return abs(threshold) * self.hysteresis / 100

    def comparison(self, node: Comparison) -> _Result:
        left, op, right = node.left, node.op, node.right
        # Read every comparison as "<metric side> op <threshold side>" for hysteresis and words.
        if not _has_metric(left) and _has_metric(right):
            left, right, op = right, left, _FLIP[op]  # type: ignore[assignment]
        if node.predictive:
            return self._predictive(node, left, op, right)
        return self._reactive(node, left, op, right)

    def _forecast(self, term: Predicted) -> tuple[Forecast | None, str | None]:
        forecast = self.view.forecasts.get(term.metric)
        if forecast is None:
            return None, f"no forecast for {term.metric}"
        if not forecast.trusted:
            return None, f"{term.metric}: {forecast.reason or 'forecast marked untrusted'}"
        if self.view.now - forecast.issued_at > self.view.max_staleness:
            age = format_duration(self.view.now - forecast.issued_at)
            return None, f"the {term.metric} forecast is {age} old (stale)"
        if term.quantile not in forecast.quantiles:
            return None, f"the {term.metric} forecast has no p{term.quantile}"
        if len(forecast.times) == 0:
            return None, f"the {term.metric} forecast is empty"
        return forecast, None

    def _predictive(self, node: Comparison, left: Value, op: str, right: Value) -> _Result:
        predicted = [t for t in metric_terms(node) if isinstance(t, Predicted)]
        reasons: list[str] = []
        forecasts: dict[Predicted, Forecast] = {}
        for term in predicted:
            forecast, reason = self._forecast(term)
            if forecast is None:
                reasons.append(reason or "no forecast")
            else:
                forecasts[term] = forecast
        text = _render(node)
        if reasons:
            return _Result(None, (f"{text}: unknown",), tuple(reasons))
        lead_forecast = forecasts[predicted[0]]
        window = self.window(node)
        end = self.view.now + window
        times = [t for t in lead_forecast.times if lead_forecast.issued_at < t <= end]
        if not times:
            return _Result(False, (f"{text}: the forecast has no points before {end:%H:%M}",))
        unit = self._metric_unit(node)
        try:
            lhs = self._series(left, forecasts, times, unit)
            rhs = self._series(right, forecasts, times, unit)
        except _NoData as missing:
            return _Result(False, (f"{text}: {missing}",))
        threshold = float(np.max(rhs)) if op in (">", ">=") else float(np.min(rhs))
        margin = self._margin(threshold, unit)
        adjusted = rhs - margin if op in (">", ">=") else rhs + margin
        hits = np.asarray(_OPS[op](lhs, adjusted), dtype=bool)
        hits = np.broadcast_to(hits, (len(times),))
        first = next((t for t, hit in zip(times, hits, strict=True) if hit), None)
        term = predicted[0]
        peak, peak_at = lead_forecast.peak(term.quantile, end - lead_forecast.issued_at)
        ahead = format_duration(window)
        words = (
            f"{text}: p{term.quantile} of {term.metric} peaks at {peak:.4g} "
            f"{'at ' + peak_at.strftime('%H:%M') if peak_at else ''} within {ahead} "
            f"(window {format_duration(node.within or self.view.horizon)} + "
            f"time-to-ready {format_duration(self.lead)} of the rule's slowest action), "
            f"threshold {threshold:.4g}"
        )
        if margin:
            words += f" (less {margin:.4g} hysteresis: fired last cycle)"
        if first is None:
            return _Result(False, (f"{words}: not crossed",))
        crossing = f"crosses at {first:%H:%M}"
        if first - self.lead <= self.view.now:
            crossing += " (act now to be ready in time)"
        else:
            crossing += f" (ready in time if acted on by {first - self.lead:%H:%M})"
        median = _curve(lead_forecast, 50, times) if 50 in lead_forecast.quantiles else None
        upper = _curve(lead_forecast, term.quantile, times)
        curve = tuple(
            (t, float(median[i]) if median is not None else float(upper[i]), float(upper[i]))
            for i, t in enumerate(times)
        )
        trigger = Trigger(
            metric=term.metric,
            quantile=term.quantile,
            peak=peak,
            peak_at=peak_at,
            threshold=threshold,
            crossing_at=first,
            window_end=end,
            lead=self.lead,
            curve=curve,
        )
        return _Result(True, (f"{words}: {crossing}",), (), (trigger,))

    def _series(
        self,
        value: Value,
        forecasts: Mapping[Predicted, Forecast],
        times: list[datetime],
        unit: str,
    ) -> npt.NDArray[np.float64] | float:
        if isinstance(value, Quantity):
            return value.value * (unit_factor(value.unit, unit) or 1.0)
        if isinstance(value, Predicted):
            return _curve(forecasts[value], value.quantile, times)
        if isinstance(value, Current):
            return self._latest(value.metric)
        left = self._series(value.left, forecasts, times, unit)
        right = self._series(value.right, forecasts, times, unit)
        return _arith(value, left, right)

    def _observations(self, metric: str) -> pd.Series:
        series = self.view.current.get(metric)
        if series is None or len(series) == 0:
            raise _NoData(f"no recent observations of {metric}")
        index = series.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            # A programming error in the caller, not bad data: comparing naive and UTC times
            # would silently shift every window by the local offset.
            raise ValueError(
                f"observations of {self.view.name}.{metric} need a timezone-aware (UTC) DatetimeIndex"
            )
        if not index.is_monotonic_increasing:
            series = series.sort_index()
        # In time order now, so "up to now" is one binary search: a boolean mask over two weeks
        # of 5-minute points cost about a millisecond per term, per pool, per cycle.
        end = int(series.index.searchsorted(self.view.now, side="right"))
        if end < len(series):
            # The usual history ends before now; slicing all of it anyway cost a quarter of a
            # millisecond a term on a week of minutes (iloc's machinery, not a copy).
            series = series.iloc[:end]
        # dropna copies the whole history even when nothing is missing. For float64 (what every
        # source returns) numpy's isnan is pandas' isna, without hasnans' Series machinery
        # (about a tenth of a millisecond per pool per cycle on two weeks of points).
        if series.dtype == np.float64:
            missing = bool(np.isnan(series.to_numpy()).any())
        else:
            missing = series.hasnans
        if missing:
            series = series.dropna()
        if len(series) == 0:
            raise _NoData(f"no observations of {metric} up to now")
        age = self.view.now - series.index[-1]
        if age > self.view.max_staleness:
            raise _NoData(
                f"the latest observation of {metric} is {format_duration(age)} old (stale)"
            )
        # Read only (sliced, compared, aligned into new series): a float series needs no copy.
        return series if series.dtype == np.float64 else series.astype(float)

    def _latest(self, metric: str) -> float:
        return float(self._observations(metric).iloc[-1])

    def _reactive(self, node: Comparison, left: Value, op: str, right: Value) -> _Result:
        text = _render(node)
        unit = self._metric_unit(node)
        window = node.for_
        try:
            lhs = self._observed(left, unit, window)
            rhs = self._observed(right, unit, window)
        except _NoData as missing:
            return _Result(False, (f"{text}: {missing}",))
        lhs, rhs = _align(lhs, rhs)
        threshold = float(rhs.max()) if isinstance(rhs, pd.Series) else float(rhs)
        margin = self._margin(threshold, unit)
        adjusted = rhs - margin if op in (">", ">=") else rhs + margin
        # Compared as numpy arrays: both sides are aligned on one index already (or scalars),
        # and pandas' comparison operator cost about a tenth of a millisecond per pool per cycle.
        held = _OPS[op](_values_of(lhs), _values_of(adjusted))
        holds = bool(np.all(held))
        latest = float(lhs.iloc[-1]) if isinstance(lhs, pd.Series) else float(lhs)
        words = f"{text}: now {latest:.4g}, threshold {threshold:.4g}"
        if window is not None and isinstance(lhs, pd.Series):
            worst = _extreme(lhs, lowest=op in (">", ">="))
            words += f", {'lowest' if op in ('>', '>=') else 'highest'} over {format_duration(window)} {worst:.4g}"
        if margin:
            words += f" (less {margin:.4g} hysteresis: fired last cycle)"
        metrics = [t.metric for t in metric_terms(node)]
        return _Result(
            holds,
            (f"{words}: {'holds' if holds else 'does not hold'}",),
            reactive=((metrics[0], threshold),) if holds else (),
        )

    def _observed(self, value: Value, unit: str, window: timedelta | None) -> pd.Series | float:
        if isinstance(value, Quantity):
            return value.value * (unit_factor(value.unit, unit) or 1.0)
        if isinstance(value, Current):
            series = self._observations(value.metric)
            if window is None:
                return float(series.iloc[-1])
            start = self.view.now - window
            first = series.index[0]
            # Observations in time order that begin at or before the window's start cover it
            # whatever their spacing (a median step is never negative then): the median of two
            # weeks of steps, a sort per pool per cycle, is needed only otherwise.
            if first > start or not series.index.is_monotonic_increasing:
                # The median step between observations (pandas' Series.diff().median() of the
                # index, computed on its nanoseconds without building a Series).
                spacing = (
                    pd.Timedelta(float(np.median(np.diff(series.index.asi8))), unit="ns")
                    if len(series) > 1
                    else pd.Timedelta(0)
                )
                if first > start + spacing:
                    covered = format_duration(self.view.now - first)
                    raise _NoData(
                        f"observations of {value.metric} cover only {covered} of the {format_duration(window)} window"
                    )
            recent = series.iloc[series.index.searchsorted(start, side="left") :]  # in time order
            if len(recent) == 0:
                # A source that still answers but stopped updating (a dead exporter): the
                # condition cannot be said to have held over the window.
                raise _NoData(
                    f"no observation of {value.metric} in the last {format_duration(window)} (stale)"
                )
            return recent
        if isinstance(value, Predicted):  # pragma: no cover - excluded by _reactive's caller
            raise _NoData("predicted() in a reactive comparison")
        assert isinstance(value, Arithmetic)
        left = self._observed(value.left, unit, window)
        right = self._observed(value.right, unit, window)
        left, right = _align(left, right)
        return _arith(value, left, right)


class _NoData(Exception):
    """A current() term has nothing to read; the comparison does not hold and says why."""


def _has_metric(value: Value) -> bool:
    if isinstance(value, Predicted | Current):
        return True
    if isinstance(value, Arithmetic):
        return _has_metric(value.left) or _has_metric(value.right)
    return False


def _arith(node: Arithmetic, left: Any, right: Any) -> Any:
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return left / right


def _extreme(series: pd.Series, *, lowest: bool) -> float:
    """``series.min()`` (or ``max()``), skipping NaN as pandas does, on the float array:
    pandas' reduction machinery cost about 50 us per reactive rule per pool per cycle."""
    values = series.to_numpy()
    if values.dtype != np.float64:
        return float(series.min() if lowest else series.max())
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return math.nan
    return float(present.min() if lowest else present.max())


def _values_of(side: pd.Series | float) -> npt.NDArray[np.float64] | float:
    return side.to_numpy() if isinstance(side, pd.Series) else side


def _align(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, pd.Series) and isinstance(right, pd.Series):
        left, right = left.align(right, join="outer")
        return left.ffill().bfill(), right.ffill().bfill()
    return left, right


def _curve(forecast: Forecast, quantile: int, times: list[datetime]) -> npt.NDArray[np.float64]:
    """The ``quantile`` curve at ``times`` (interpolated when grids differ)."""
    values = np.asarray(forecast.quantile(quantile), dtype=float)
    if list(forecast.times[: len(times)]) == times:
        return values[: len(times)]
    source = np.array([t.timestamp() for t in forecast.times])
    target = np.array([t.timestamp() for t in times])
    return np.interp(target, source, values)


def _render_value(value: Value) -> str:
    if isinstance(value, Quantity):
        return f"{value.value:g}{value.unit or ''}"
    if isinstance(value, Predicted):
        return f"predicted({value.metric}, p{value.quantile})"
    if isinstance(value, Current):
        return f"current({value.metric})"
    return f"{_render_value(value.left)} {value.op} {_render_value(value.right)}"


def _render(node: Comparison) -> str:
    text = f"{_render_value(node.left)} {node.op} {_render_value(node.right)}"
    if node.within is not None:
        text += f" within {format_duration(node.within)}"
    if node.for_ is not None:
        text += f" for {format_duration(node.for_)}"
    return text
