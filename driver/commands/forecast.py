"""``mirrorcast forecast``: a pool's forecast, as a table or a PNG plot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from driver.commands._common import out_console, parse_at, print_json, project_root, user_errors

__all__ = ["plot_forecast", "register"]

logger = logging.getLogger(__name__)


def plot_forecast(history: object, forecasts: list[object], path: Path) -> None:
    """Draw recent history, each forecast's mean, p80/p90 lines and quantile bands into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt
    import pandas as pd

    from forecasting._result import Forecast

    fcs = [fc for fc in forecasts if isinstance(fc, Forecast)]
    figure, axes = plt.subplots(len(fcs), 1, figsize=(10, 3.2 * len(fcs)), squeeze=False)
    series_by_metric = history if isinstance(history, dict) else {}
    for ax, fc in zip(axes[:, 0], fcs, strict=True):
        observed = series_by_metric.get(fc.metric)
        if isinstance(observed, pd.Series) and len(observed):
            recent = observed.sort_index()
            recent = recent[
                recent.index >= pd.Timestamp(fc.issued_at) - 4 * (fc.times[-1] - fc.issued_at)
            ]
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
        if 80 in fc.quantiles:
            ax.plot(
                fc.times,
                fc.quantiles[80],
                color="tab:orange",
                linestyle="--",
                linewidth=1,
                label="p80",
            )
        if 90 in fc.quantiles:
            ax.plot(
                fc.times,
                fc.quantiles[90],
                color="tab:red",
                linestyle="--",
                linewidth=1,
                label="p90",
            )
        ax.plot(fc.times, fc.mean, color="tab:blue", linewidth=1.5, label=f"forecast ({fc.model})")
        ax.set_title(f"{fc.pool}.{fc.metric}" + ("" if fc.trusted else " (untrusted)"))
        ax.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


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
        """Forecast a pool's metrics over the stack's horizon."""
        from driver.collect import collect_history
        from driver.executor import DriverError
        from driver.journal import forecast_to_json
        from driver.logs import setup_logging
        from driver.render import render_forecast
        from driver.service import Driver

        setup_logging(level="WARNING")
        when = parse_at(at)
        with user_errors():
            root = project_root()
            driver = Driver(stack=stack, root=root, mode="plan")
            from infra.config import load_stack

            config = load_stack(stack, root)
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
            now, _notes = driver.decision_time(config, when)
            collected = collect_history(config, root=root, now=now)
            engine = driver.engine(config)
            history = collected.history.get(pool, {})
            missing = [m for m in wanted if m not in history or len(history[m]) == 0]
            if missing:
                detail = "; ".join(collected.degraded) or "no observations in the history window"
                raise DriverError(f"no history for {pool}.{', '.join(missing)} ({detail})")
            forecasts = [
                engine.forecast(history[m], pool=pool, metric=m, spec=spec[m], now=now)
                for m in wanted
            ]
            if plot is not None:
                plot_forecast(history, list(forecasts), plot)
        if json_output:
            print_json(
                [forecast_to_json(fc) for fc in forecasts] if plot is None else {"plot": str(plot)}
            )
        elif plot is not None:
            out_console.print(f"wrote {plot}")
        else:
            for fc in forecasts:
                render_forecast(out_console, fc)
