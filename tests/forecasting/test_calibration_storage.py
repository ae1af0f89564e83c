"""The calibrator keeps its errors in arrays, cheaply, and calibrates exactly as it did.

A warm series holds ``window / step`` errors at each lead (3 days at 5 minutes, 12 leads:
10,368). Kept as Python lists of floats and ints (the implementation before issue 16, kept
in ``tests/calibration_reference.py`` as the reference) each error cost about 130 bytes; a start, error and level in arrays
20; the table of scored steps (``calibration._ErrorTable``: a step's start, realised value and
typical level once, a forecast mean per lead, the errors computed when read) 10. Its quantiles
came from ``np.quantile``/``np.percentile`` (about 0.2 ms a call, twice per lead per cycle) and
now from the same arithmetic written for one dimension; the raw history went through
``pd.to_numeric`` and a converted index. The replaced pieces run side by side with the new ones
on the real NASA excerpt through the driver's calibrated engine, level bands and the window's
forgetting included, and must give the same quantiles bit for bit.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from calibration_reference import ListErrorTable, list_clean, numpy_quantiles
from object_graph import walked_bytes

import forecasting.calibration as calibration
from forecasting import CalibratedEngine, Forecast, ForecastEngine
from infra.config import CalibrationSettings, ForecastSettings


def _nasa(data_dir: Path) -> pd.Series:
    raw = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    return pd.Series(
        raw.iloc[:, 1].to_numpy(dtype=float), index=pd.to_datetime(raw.iloc[:, 0], utc=True)
    )


def _replay(
    series: pd.Series,
    *,
    bins: int,
    cycles: int,
    window: timedelta = timedelta(hours=2),
    twice: bool = False,
    min_samples: int = 10,
) -> tuple[list[Forecast], CalibratedEngine]:
    # A 2-hour window at 5 minutes: the forgetting runs from the 25th cycle on. ``twice``:
    # each cycle's forecast is asked for twice, as a cycle shorter than the step would: two
    # forecasts of the same steps, scored at the same leads in one observation.
    settings = ForecastSettings(
        horizon=timedelta(hours=1),
        history=timedelta(days=3),
        models=["seasonal_naive", "naive"],
        calibration=CalibrationSettings(min_samples=min_samples, bins=bins, window=window),
    )
    engine = CalibratedEngine(ForecastEngine(settings), settings=settings.calibration)
    start = len(series) - cycles
    out = []
    for end in range(start, len(series)):
        for _ in range(2 if twice else 1):
            forecast = engine.forecast(series.iloc[:end], pool="web", metric="rps")
            out.append(forecast)
    return out, engine


@pytest.mark.parametrize(("bins", "twice"), [(1, False), (3, False), (3, True)])
def test_the_calibrated_engine_gives_the_old_quantiles_on_a_real_trace(
    bins: int, twice: bool, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = _nasa(data_dir)
    new, engine = _replay(series, bins=bins, cycles=60, twice=twice)
    with monkeypatch.context() as patched:
        patched.setattr(calibration, "_ErrorTable", ListErrorTable)
        patched.setattr(calibration, "_linear_quantiles", numpy_quantiles)
        patched.setattr(calibration, "_clean", list_clean)
        old, reference = _replay(series, bins=bins, cycles=60, twice=twice)
    kept = engine.calibrator._series[("web", "rps")].table
    assert isinstance(kept, calibration._ErrorTable)
    assert isinstance(reference.calibrator._series[("web", "rps")].table, ListErrorTable)
    assert len(kept) == len(reference.calibrator._series[("web", "rps")].table)
    calibrated = 0
    for cycle, (got, want) in enumerate(zip(new, old, strict=True)):
        assert got.adjustments == want.adjustments, cycle
        calibrated += any("quantiles calibrated" in note for note in got.adjustments)
        for q, curve in want.quantiles.items():
            np.testing.assert_array_equal(got.quantiles[q], curve, err_msg=f"cycle {cycle} p{q}")
    # The comparison covered calibrated forecasts and a window that forgets.
    assert calibrated >= 30 * (2 if twice else 1)
    # 2 hours of 5-minute steps (each scored twice when asked twice).
    assert engine.calibrator.samples(("web", "rps"), 1) == 24 * (2 if twice else 1)


def test_a_kept_error_costs_10_bytes_with_the_growth_margin(data_dir: Path) -> None:
    """What a series' calibration keeps (everything but its pending forecasts), walked object
    by object, after a replay of the real NASA excerpt through the calibrated engine with a
    one-day window: at 12 leads a scored step's row is 24 bytes and 8 a lead, 10 bytes an
    error, at most an eighth unused and a few hundred bytes of array headers. The store before
    (int32 start, float64 error and level per error) took 20 and the margin: 22.5."""
    series = _nasa(data_dir)
    _, engine = _replay(series, bins=3, cycles=420, window=timedelta(days=1), min_samples=100)
    kept = engine.calibrator._series[("web", "rps")]
    errors = sum(engine.calibrator.samples(("web", "rps"), lead) for lead in range(1, 13))
    assert errors == 12 * 288  # a day of 5-minute steps at each of the 12 leads
    held = walked_bytes(value for name, value in vars(kept).items() if name != "pending")
    assert held / errors <= 10 * (1 + 1 / 8) + 0.5


def test_the_table_forgets_the_steps_before_the_cutoff_and_keeps_the_rest(
    data_dir: Path,
) -> None:
    """Each lead's errors, against the errors computed one at a time as they were scored, as
    the window forgets: rows in time order (forgotten as a prefix) and one out of it (the
    calibrator does not write them so, but a store must neither lose nor keep a wrong step
    then), zero means (the floored scale), and more leads arriving later."""
    stamps = _nasa(data_dir).index.asi8
    step = 300 * 1_000_000_000
    table = calibration._ErrorTable()
    expected: list[tuple[int, int, float]] = []  # start, lead, error
    rng = np.random.default_rng(16)
    order = [*range(100), 150, *range(100, 150), *range(151, 300)]
    for number, index in enumerate(order):
        start, typical = int(stamps[index]), 2.0
        realised = float(rng.uniform(0, 10))
        rows: dict[tuple[int, int], int] = {}
        for lead in range(1, 4 if number < 200 else 7):
            mean = float(number % 5) * lead
            table.add(
                lead=lead,
                start=start,
                end=start + step,
                realised=realised,
                mean=mean,
                typical=typical,
                rows=rows,
            )
            scale = max(abs(mean), 0.1 * typical)
            expected.append((start, lead, (realised - mean) / scale))
        cutoff = int(stamps[max(index - 24, 0)])
        table.forget_before(cutoff)
        expected = [kept for kept in expected if kept[0] >= cutoff]
        got = table.leads()
        assert len(table) == len(expected), number
        assert sorted(got) == sorted({lead for _, lead, _ in expected}), number
        for lead, errors in got.items():
            want = sorted(error for _, at, error in expected if at == lead)
            np.testing.assert_array_equal(np.sort(errors.errors), want, err_msg=f"{number}")
            assert table.samples(lead) == len(want)
    assert table._means.shape[1] == 6
    table.forget_before(int(stamps[-1]) + 1)
    assert len(table) == 0 and table.leads() == {}


def test_quantiles_are_numpy_s_bit_for_bit(data_dir: Path) -> None:
    rng = np.random.default_rng(16)
    _, engine = _replay(_nasa(data_dir), bins=3, cycles=60)
    real = [
        array
        for lead in engine.calibrator._series[("web", "rps")].table.leads().values()
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
