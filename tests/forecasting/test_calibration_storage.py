"""The calibrator keeps its errors in arrays, cheaply, and calibrates exactly as it did.

A warm series holds ``window / step`` errors at each lead (3 days at 5 minutes, 12 leads:
10,368). Kept as Python lists of floats and ints (the implementation before issue 16, kept
below as the reference) each error cost about 130 bytes; the arrays cost 24. Its quantiles
came from ``np.quantile``/``np.percentile`` (about 0.2 ms a call, twice per lead per cycle) and
now from the same arithmetic written for one dimension; the raw history went through
``pd.to_numeric`` and a converted index. The replaced pieces run side by side with the new ones
on the real NASA excerpt through the driver's calibrated engine, level bands and the window's
forgetting included, and must give the same quantiles bit for bit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

import forecasting.calibration as calibration
from forecasting import CalibratedEngine, Forecast, ForecastEngine
from infra.config import CalibrationSettings, ForecastSettings


@dataclass
class ListLeadErrors:
    """``calibration._LeadErrors`` before issue 16: three Python lists."""

    starts: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    def add(self, start: int, error: float, level: float) -> None:
        self.starts.append(start)
        self.errors.append(error)
        self.levels.append(level)

    def forget_before(self, cutoff: int) -> None:
        drop = bisect.bisect_left(self.starts, cutoff)
        if drop:
            del self.starts[:drop], self.errors[:drop], self.levels[:drop]

    def near(
        self, level: float, *, bins: int, at_least: int
    ) -> tuple[npt.NDArray[np.float64], bool]:
        errors = np.asarray(self.errors, dtype=float)
        if bins <= 1:
            return errors, False
        levels = np.asarray(self.levels, dtype=float)
        edges = np.quantile(levels, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        band = np.searchsorted(edges, levels, side="right")
        own = errors[band == int(np.searchsorted(edges, level, side="right"))]
        if len(own) < at_least:
            return errors, True
        return own, False

    def __len__(self) -> int:
        return len(self.errors)


def reference_quantiles(values: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> Any:
    """What the calibrator called before: numpy's own quantile."""
    return np.quantile(values, q)


def reference_clean(
    history: pd.Series, *, now: datetime | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``calibration._clean`` before issue 16."""
    index = pd.DatetimeIndex(history.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    values = pd.to_numeric(pd.Series(history.to_numpy()), errors="coerce").to_numpy(dtype=float)
    stamps = index.asi8
    keep = np.isfinite(values)
    if now is not None:
        keep &= stamps <= pd.Timestamp(now).value
    stamps, values = stamps[keep], values[keep]
    if len(stamps) > 1 and not bool(np.all(np.diff(stamps) >= 0)):
        order = np.argsort(stamps, kind="stable")
        stamps, values = stamps[order], values[order]
    return stamps, values


def _nasa(data_dir: Path) -> pd.Series:
    raw = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    return pd.Series(
        raw.iloc[:, 1].to_numpy(dtype=float), index=pd.to_datetime(raw.iloc[:, 0], utc=True)
    )


def _replay(
    series: pd.Series, *, bins: int, cycles: int
) -> tuple[list[Forecast], CalibratedEngine]:
    # A 2-hour window at 5 minutes: the forgetting runs from the 25th cycle on.
    settings = ForecastSettings(
        horizon=timedelta(hours=1),
        history=timedelta(days=3),
        models=["seasonal_naive", "naive"],
        calibration=CalibrationSettings(min_samples=10, bins=bins, window=timedelta(hours=2)),
    )
    engine = CalibratedEngine(ForecastEngine(settings), settings=settings.calibration)
    start = len(series) - cycles
    out = []
    for end in range(start, len(series)):
        forecast = engine.forecast(series.iloc[:end], pool="web", metric="rps")
        out.append(forecast)
    return out, engine


@pytest.mark.parametrize("bins", [1, 3])
def test_the_calibrated_engine_gives_the_old_quantiles_on_a_real_trace(
    bins: int, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = _nasa(data_dir)
    new, engine = _replay(series, bins=bins, cycles=60)
    with monkeypatch.context() as patched:
        patched.setattr(calibration, "_LeadErrors", ListLeadErrors)
        patched.setattr(calibration, "_linear_quantiles", reference_quantiles)
        patched.setattr(calibration, "_clean", reference_clean)
        old, _ = _replay(series, bins=bins, cycles=60)
    calibrated = 0
    for cycle, (got, want) in enumerate(zip(new, old, strict=True)):
        assert got.adjustments == want.adjustments, cycle
        calibrated += any("quantiles calibrated" in note for note in got.adjustments)
        for q, curve in want.quantiles.items():
            np.testing.assert_array_equal(got.quantiles[q], curve, err_msg=f"cycle {cycle} p{q}")
    # The comparison covered calibrated forecasts and a window that forgets.
    assert calibrated >= 30
    assert engine.calibrator.samples(("web", "rps"), 1) == 24  # 2 hours of 5-minute steps


def test_a_kept_error_costs_20_bytes_and_the_growth_margin(data_dir: Path) -> None:
    """A lead's store at the default window's steady state (3 days of 5-minute steps, then a
    day of one in, one out), the real NASA excerpt's step starts, measured on its arrays: 20
    bytes an error (int32 seconds, float64 error and level) and at most an eighth unused. The
    store before took 24 (int64 nanoseconds) and up to a quarter more."""
    series = _nasa(data_dir)
    starts = series.index.asi8
    window = 864 * 300 * 1_000_000_000
    lead = calibration._LeadErrors()
    rng = np.random.default_rng(16)
    for start in starts:
        lead.add(int(start), float(rng.normal()), float(rng.uniform(0.1, 2.0)))
        lead.forget_before(int(start) - window)
    assert len(lead) == 865  # the window's 864 steps and the one at its start
    held = lead._starts.nbytes + lead._errors.nbytes + lead._levels.nbytes
    assert held / len(lead) <= 20 * (1 + 1 / 8)
    np.testing.assert_array_equal(lead.starts, starts[-865:])


def test_the_stores_keep_the_lists_starts_and_forget_the_same_steps(data_dir: Path) -> None:
    series = _nasa(data_dir)
    stamps = series.index.asi8
    two_hours = 2 * 3600 * 1_000_000_000
    # Whole-second steps (int32 seconds), then a start off the second (widened to int64 ns,
    # exact), then whole seconds again, each forgotten at the same cutoffs.
    odd = int(stamps[200]) + 1
    starts = [*map(int, stamps[:200]), odd, *map(int, stamps[201:400])]
    new, old = calibration._LeadErrors(), ListLeadErrors()
    for number, start in enumerate(starts):
        for store in (new, old):
            store.add(start, float(number), 1.0)
            store.forget_before(start - two_hours)
        assert new.starts.tolist() == old.starts, number
        np.testing.assert_array_equal(new.errors, np.asarray(old.errors))
    assert new._starts.dtype == np.int64  # widened at the odd start, exactly
    # A cutoff far past every start (beyond int32 seconds from the first) forgets them all.
    whole = calibration._LeadErrors()
    for start in stamps[:10]:
        whole.add(int(start), 0.0, 1.0)
    assert whole._starts.dtype == np.int32
    whole.forget_before(int(stamps[0]) + 2**40 * 1_000_000_000)
    assert len(whole) == 0


def test_quantiles_are_numpy_s_bit_for_bit(data_dir: Path) -> None:
    rng = np.random.default_rng(16)
    _, engine = _replay(_nasa(data_dir), bins=3, cycles=60)
    real = [
        array
        for lead in engine.calibrator._series[("web", "rps")].by_lead.values()
        for array in (lead.errors.copy(), lead.levels.copy())
    ]
    made = [rng.normal(size=n) for n in (1, 2, 3, 10, 99, 100, 101, 288, 864, 2016)] + [
        rng.standard_t(df=2, size=500),  # heavy tails
        np.round(rng.normal(size=400), 1),  # ties
        np.full(50, 3.25),
    ]
    probabilities = [
        np.true_divide(np.asarray([1, 5, 10, 20, 50, 80, 90, 95, 99]), 100),
        np.linspace(0.0, 1.0, 4)[1:-1],
        np.linspace(0.0, 1.0, 11)[1:-1],
        np.array([0.0, 1.0, 0.5]),
    ]
    for values in real + made:
        for q in probabilities:
            np.testing.assert_array_equal(
                calibration._linear_quantiles(values, q), np.quantile(values, q)
            )
    holed = rng.normal(size=20)
    holed[4] = np.nan
    np.testing.assert_array_equal(
        calibration._linear_quantiles(holed, probabilities[0]),
        np.quantile(holed, probabilities[0]),
    )
