"""``mirrorcast forecast``: a pool's forecast, as a table or a PNG plot.

The forecasts shown are the ones the driver acts on: this command runs the driver's own
preview (:meth:`driver.service.Driver.preview`: same history window, event feed, engine and
last-good fallbacks as ``plan`` and ``run``), so the peak printed here is the peak a rule sees.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driver.commands._common import out_console, parse_at, print_json, project_root, user_errors

if TYPE_CHECKING:
    from forecasting import Forecast
    from infra.config import PoolSpec

__all__ = ["Threshold", "forecast_figure", "plot_forecast", "register", "rule_thresholds"]

logger = logging.getLogger(__name__)

# What the plot's y axis says for each MetricSpec.unit (infra.config.MetricSpec).
_UNIT_LABELS = {
    "percent": "%",
    "rps": "requests/s",
    "ms": "ms",
    "count": "count",
    "bytes_per_second": "bytes/s",
    "ratio": "ratio",
}


@dataclass(frozen=True)
class Threshold:
    """A rule's threshold on one metric: ``predicted(cpu, p90) > 80%`` is (rule, cpu, >, 80, 90)."""

    rule: str
    metric: str
    op: str
    value: float
    quantile: int | None  # None for current(...) terms


def rule_thresholds(pool: PoolSpec) -> list[Threshold]:
    """Every ``metric <op> number`` comparison in the pool's enabled rules (either side order)."""
    from infra.config.rules import comparisons
    from policies import Current, Predicted, Quantity, parse_rule

    flipped = {">": "<", ">=": "<=", "<": ">", "<=": ">="}

    out: list[Threshold] = []
    for rule in pool.rules:
        if not rule.enabled:
            continue
        for comparison in comparisons(parse_rule(rule.when)):
            term, number = comparison.left, comparison.right
            op: str = comparison.op
            if isinstance(term, Quantity):
                term, number, op = number, term, flipped[op]
            if not isinstance(number, Quantity) or not isinstance(term, Predicted | Current):
                continue
            quantile = term.quantile if isinstance(term, Predicted) else None
            out.append(Threshold(rule.name, term.metric, op, number.value, quantile))
    return out


def plot_forecast(
    history: Mapping[str, Any],
    forecasts: list[Forecast],
    path: Path,
    *,
    pool: PoolSpec | None = None,
    events: Any = None,
) -> None:
    """Write :func:`forecast_figure` to ``path`` as a PNG."""
    import matplotlib.pyplot as plt

    figure = forecast_figure(history, forecasts, pool=pool, events=events)
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def forecast_figure(
    history: Mapping[str, Any],
    forecasts: list[Forecast],
    *,
    pool: PoolSpec | None = None,
    events: Any = None,
) -> Any:
    """A matplotlib figure with one panel per forecast.

    A panel shows the observed history before the forecast (four horizons of it), the quantile
    bands, p80/p90 and the mean, every rule threshold on that metric (dashed, labelled with the
    rule), the windows of known events (shaded), and the metric's unit on the y axis.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt
    import pandas as pd

    thresholds = rule_thresholds(pool) if pool is not None else []
    figure, axes = plt.subplots(
        len(forecasts), 1, figsize=(10, 3.4 * len(forecasts)), squeeze=False
    )
    for ax, fc in zip(axes[:, 0], forecasts, strict=True):
        horizon = fc.times[-1] - fc.issued_at
        start = pd.Timestamp(fc.issued_at) - 4 * horizon
        observed = history.get(fc.metric)
        if isinstance(observed, pd.Series) and len(observed):
            recent = observed.sort_index()
            recent = recent[recent.index >= start]
            ax.plot(recent.index, recent.to_numpy(), color="black", linewidth=1, label="observed")
        # Forecasts carry the upper percentiles capacity is sized on (p50 .. p99): shade from the
        # lowest up to each higher one, darker nearer the median.
        qs = sorted(fc.quantiles)
        for i, high in enumerate(q for q in reversed(qs) if q > qs[0]):
            ax.fill_between(
                fc.times,
                fc.quantiles[qs[0]],
                fc.quantiles[high],
                alpha=0.1 + 0.05 * i,
                color="tab:blue",
                label=f"p{qs[0]}-p{high}" if i == 0 else None,
            )
        for q, colour in ((80, "tab:orange"), (90, "tab:red")):
            if q in fc.quantiles:
                ax.plot(
                    fc.times,
                    fc.quantiles[q],
                    color=colour,
                    linestyle="--",
                    linewidth=1,
                    label=f"p{q}",
                )
        ax.plot(fc.times, fc.mean, color="tab:blue", linewidth=1.5, label=f"forecast ({fc.model})")
        for threshold in (t for t in thresholds if t.metric == fc.metric):
            which = f"p{threshold.quantile}" if threshold.quantile is not None else "current"
            ax.axhline(
                threshold.value,
                color="tab:purple",
                linestyle=":",
                linewidth=1.2,
                label=f"{threshold.rule}: {which} {threshold.op} {threshold.value:g}",
            )
        for event in _events_between(events, start.to_pydatetime(), fc.times[-1]):
            ax.axvspan(event.start, event.end, color="tab:green", alpha=0.12, label=event.name)
        ax.set_xlim(start.to_pydatetime(), fc.times[-1])
        ax.axvline(fc.issued_at, color="grey", linewidth=0.8)
        unit = (
            pool.metrics[fc.metric].unit if pool is not None and fc.metric in pool.metrics else None
        )
        if unit is not None:
            ax.set_ylabel(f"{fc.metric} ({_UNIT_LABELS.get(unit, unit)})")
        ax.set_xlabel("UTC")
        ax.set_title(
            f"{fc.pool}.{fc.metric}, issued {fc.issued_at:%Y-%m-%d %H:%M} UTC"
            + ("" if fc.trusted else " (untrusted)")
        )
        ax.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    return figure


def _events_between(events: Any, start: datetime, end: datetime) -> list[Any]:
    if events is None:
        return []
    return [e for e in events if e.end > start and e.start < end]


def register(app: typer.Typer) -> None:
    @app.command("forecast")
    def forecast(
        stack: Annotated[str, typer.Option("--stack", help="Stack name.")],
        pool: Annotated[str, typer.Option("--pool", help="The pool to forecast.")],
        metric: Annotated[
            list[str] | None, typer.Option("--metric", help="Metric(s); default all of the pool's.")
        ] = None,
        at: Annotated[
            str | None,
            typer.Option("--at", help="Forecast as of this UTC time (ISO 8601); default now."),
        ] = None,
        plot: Annotated[
            Path | None,
            typer.Option("--plot", help="Write a PNG plot here instead of printing a table."),
        ] = None,
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Forecast a pool's metrics over the stack's horizon (the forecasts the driver acts on)."""
        from driver.executor import DriverError
        from driver.logs import setup_logging
        from driver.render import render_forecast
        from driver.service import Driver

        setup_logging(level="WARNING")
        when = parse_at(at)
        with user_errors():
            driver = Driver(stack=stack, root=project_root(), mode="plan")
            config = driver.load_config()
            if pool not in config.pools:
                raise DriverError(
                    f"stack {stack} has no pool {pool!r}; its pools are {', '.join(config.pools)}"
                )
            spec = config.pools[pool].metrics
            wanted = metric or list(spec)
            unknown = [m for m in wanted if m not in spec]
            if unknown:
                raise DriverError(
                    f"pool {pool} has no metric {', '.join(unknown)}; its metrics are {', '.join(spec)}"
                )
            report = driver.preview(now=when)
            assert report.result is not None  # preview always decides
            by_metric = report.result.forecasts.get(pool, {})
            missing = [m for m in wanted if m not in by_metric]
            if missing:
                detail = "; ".join(report.degraded) or "no observations in the history window"
                raise DriverError(f"no forecast for {pool}.{', '.join(missing)} ({detail})")
            forecasts = [by_metric[m] for m in wanted]
            if plot is not None:
                plot_forecast(
                    report.history.get(pool, {}),
                    forecasts,
                    plot,
                    pool=config.pools[pool],
                    events=driver.events(config, report.now),
                )
        if json_output:
            print_json([fc.to_json() for fc in forecasts] if plot is None else {"plot": str(plot)})
        elif plot is not None:
            out_console.print(f"wrote {plot}")
        else:
            from driver.render import percent_overflow

            for fc in forecasts:
                render_forecast(out_console, fc)
            for line in percent_overflow(config, forecasts):
                out_console.print(f"note: {line}", highlight=False)
