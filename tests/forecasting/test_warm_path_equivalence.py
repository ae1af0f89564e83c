"""The warm path's shortcuts give the numbers of the code they replaced, on real excerpts.

The engine's warm cycle was made cheaper (issue 16) without changing a single result: the
cleaning's front half on arrays, the selection anchor checked by binary search, the conformal
models forecast on arrays instead of through StatsForecast's long frames, the forecast's times
by datetime arithmetic, and the cleaned series reused as the history window. Each replaced
implementation is kept here, as it was, and run side by side with the engine's on the real NAB
and NASA excerpts (tests/data), messy variants of them included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forecasting.engine as engine_module
import forecasting.selection as selection_module
from forecasting import ForecastEngine, ModelOptions
from forecasting._result import Forecast, Repair
from forecasting.cleaning import (
    UNIT_UPPER_BOUNDS,
    CleanedSeries,
    _as_datetime_index,
    _as_numbers,
    _counter_to_rate,
    _describe,
    clean_series,
    out_of_range,
)
from forecasting.errors import UnusableSeriesError
from forecasting.models import forecast_models, statistical
from forecasting.models.statistical import REUSABLE, forecast_each
from forecasting.selection import anchor_of
from infra.config import ForecastSettings

MODELS = ["seasonal_naive", "naive", "ses", "seasonal_window_average", "auto_ets"]
"""The fleet-affordable candidates, plus one model with a kept fit (AutoETS)."""


# ---------------------------------------------------------------- the replaced implementations


def reference_clean_series(
    raw: pd.Series,
    *,
    name: str,
    step: timedelta | None = None,
    counter: bool = False,
    non_negative: bool = True,
    end: datetime | None = None,
    unit: str | None = None,
) -> CleanedSeries:
    """``clean_series`` before issue 16's warm-path work (pandas front half, median step)."""
    repairs: list[Repair] = []
    index = _as_datetime_index(raw, name)
    values = _as_numbers(raw, name)
    if index.tz is None:
        index = index.tz_localize("UTC")
        repairs.append(
            Repair("timezone", len(index), "timestamps carried no time zone and were taken as UTC")
        )
    elif str(index.tz) not in ("UTC", "utc", "UTC+00:00"):
        source_tz = str(index.tz)
        index = index.tz_convert("UTC")
        repairs.append(
            Repair("timezone", len(index), f"timestamps were converted from {source_tz} to UTC")
        )
    series = pd.Series(values, index=index)
    if series.index.hasnans:
        bad = int(series.index.isna().sum())
        series = series[series.index.notna()]
        repairs.append(Repair("bad_timestamp", bad, f"{bad} points without a timestamp dropped"))
    if end is not None:
        limit = pd.Timestamp(end)
        limit = limit.tz_localize("UTC") if limit.tz is None else limit.tz_convert("UTC")
        series = series[series.index <= limit]
    if not series.index.is_monotonic_increasing:
        stamps = series.index.asi8
        moved = int((stamps[1:] < np.maximum.accumulate(stamps)[:-1]).sum())
        series = series.sort_index(kind="stable")
        repairs.append(
            Repair("reordered", moved, f"{moved} points arrived out of time order and were sorted")
        )
    duplicated = series.index.duplicated(keep="first")
    if duplicated.any():
        count = int(duplicated.sum())
        how = "last"
        if counter:
            series = series.groupby(level=0).last()
        else:
            how = "mean"
            series = series.groupby(level=0).mean()
        repairs.append(
            Repair(
                "duplicates", count, f"{count} duplicate timestamps merged (kept the {how} value)"
            )
        )

    def step_of(stamps: np.ndarray) -> timedelta:
        diffs = np.diff(pd.DatetimeIndex(stamps.view("datetime64[ns]")).asi8)
        diffs = diffs[diffs > 0]
        return timedelta(seconds=max(1, round(int(np.median(diffs)) / 1e9)))

    stamps = pd.DatetimeIndex(series.index).as_unit("ns").asi8
    numbers = series.to_numpy(dtype=float)
    inferred = step_of(stamps) if len(stamps) > 1 else None
    valid = ~np.isnan(numbers)
    missing = int(len(numbers) - valid.sum())
    if missing:
        repairs.append(
            Repair("nan", missing, f"{missing} missing values (NaN) kept as gaps, not zeros")
        )
        stamps, numbers = stamps[valid], numbers[valid]
    if counter:
        stamps, numbers, resets = _counter_to_rate(stamps, numbers)
        if resets:
            repairs.append(
                Repair(
                    "counter_reset",
                    resets,
                    f"counter reset {resets} times; the rate after a reset counts from zero",
                )
            )
    if non_negative:
        negative = numbers < 0
        if negative.any():
            count = int(negative.sum())
            stamps, numbers = stamps[~negative], numbers[~negative]
            repairs.append(
                Repair(
                    "negative",
                    count,
                    f"{count} negative values masked as gaps (impossible for this unit)",
                )
            )
    above = out_of_range(numbers, unit=unit)
    if above.any():
        count = int(above.sum())
        largest = float(numbers[above].max())
        stamps, numbers = stamps[~above], numbers[~above]
        repairs.append(
            Repair(
                "out_of_range",
                count,
                f"{count} values above {UNIT_UPPER_BOUNDS[unit or '']:g} (the most a {unit} "
                f"can be; largest {largest:g}) masked as gaps",
            )
        )
    if len(numbers) < 3:
        raise UnusableSeriesError(name, "too short")
    grid_step = step or inferred or step_of(stamps)
    offset = int(pd.Timedelta(grid_step).value)
    origin = int(stamps[0])
    relative = stamps - origin
    on_grid = relative % offset == 0
    moved = 0
    if bool(on_grid.all()):
        positions = relative // offset
        grid_values = np.full(int(positions[-1]) + 1, np.nan)
        grid_values[positions] = numbers
        grid = origin + offset * np.arange(len(grid_values), dtype=np.int64)
        grid_index = pd.DatetimeIndex(grid.view("datetime64[ns]")).tz_localize("UTC")
        gridded = pd.Series(grid_values, index=grid_index, name=name)
    else:
        kept = pd.Series(
            numbers, index=pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC")
        )
        gridded = kept.resample(pd.Timedelta(offset), origin="start").mean()
        moved = int((~on_grid).sum()) + (len(numbers) - int(gridded.notna().sum()))
        gridded.index.freq = None
        gridded.name = name
    if moved:
        repairs.append(
            Repair(
                "resampled",
                moved,
                f"irregular timestamps averaged onto a {_describe(grid_step)} grid ({moved} points moved or merged)",
            )
        )
    gaps = int(np.isnan(gridded.to_numpy()).sum())
    if gaps:
        repairs.append(
            Repair(
                "gap",
                gaps,
                f"{gaps} grid steps had no data and are left as gaps (masked, never zero demand)",
            )
        )
    return CleanedSeries(values=gridded.astype(float), step=grid_step, repairs=tuple(repairs))


def reference_points_hold(points: tuple[pd.DatetimeIndex, np.ndarray], values: pd.Series) -> bool:
    """``selection._points_hold`` before issue 16 (pandas ``reindex``)."""
    times, expected = points
    if len(times) == 0 or not values.index.is_unique:
        return False
    seen = values.reindex(times).to_numpy(dtype=float)
    return bool(np.all(np.isclose(seen, expected, rtol=1e-9, atol=1e-12)))


def reference_columns_by_series(frame: pd.DataFrame) -> dict[str, Mapping[str, np.ndarray]]:
    """How the engine split StatsForecast's long forecast frame before issue 16."""
    out: dict[str, Mapping[str, np.ndarray]] = {}
    names = [
        c for c in frame.columns if c not in ("unique_id", "ds") and frame[c].dtype.kind in "fiu"
    ]
    for uid, rows in frame.groupby("unique_id", sort=False):
        ordered = rows.sort_values("ds")
        out[str(uid)] = {c: ordered[c].to_numpy(dtype=float) for c in names}
    return out


class ReferenceEngine(ForecastEngine):
    """The engine with the warm path it had before issue 16 (see the module docstring)."""

    def _forecast_group(self, items, *, model, step_seconds, season, h, selections, now):  # type: ignore[no-untyped-def]
        if model in REUSABLE:
            return super()._forecast_group(
                items,
                model=model,
                step_seconds=step_seconds,
                season=season,
                h=h,
                selections=selections,
                now=now,
            )
        self.fits += len(items)
        batched = forecast_models(
            self._long_frame(items),
            models=[model],
            h=h,
            freq=engine_module.freq_of(timedelta(seconds=step_seconds)),
            season=season,
            levels=self.levels,
            options=self.options,
            future=self._future_frame(items),
        )
        return reference_columns_by_series(batched)

    def _result(self, item, frame, selection, events):  # type: ignore[no-untyped-def]
        made = super()._result(item, frame, selection, events)
        times = [t.to_pydatetime() for t in item.future_index()]
        return Forecast(**{**made.__dict__, "times": times})


# ---------------------------------------------------------------- real inputs


def _excerpts(data_dir: Path, seasonal_cpu: pd.Series, flat_cpu: pd.Series) -> dict[str, pd.Series]:
    frame = pd.read_csv(data_dir / "nasa_http_5min_excerpt.csv")
    nasa = pd.Series(
        frame["requests"].to_numpy(dtype=float),
        index=pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local_minus0400"])).tz_localize(
            "Etc/GMT+4"
        ),
    )
    return {"asg": seasonal_cpu, "ec2": flat_cpu, "nasa": nasa}


def _messy(series: pd.Series, rng: np.random.Generator) -> Iterator[tuple[str, pd.Series, dict]]:
    """The excerpt as sources hand it over: clean, zoned, holed, shuffled, doubled, counted."""
    yield "as is", series, {}
    zoned = series.tz_localize("UTC") if series.index.tz is None else series
    yield "UTC", zoned, {}
    yield "Paris", zoned.tz_convert("Europe/Paris"), {}
    holed = series.copy()
    holed.iloc[rng.integers(0, len(holed), 40)] = np.nan
    yield "NaN", holed, {}
    yield "shuffled", series.sample(frac=1.0, random_state=1), {}
    doubled = pd.concat([series, series.iloc[100:160] * 1.1])
    yield "duplicates", doubled, {}
    yield "counter", doubled.cumsum().sample(frac=1.0, random_state=2), {"counter": True}
    negative = series.copy()
    negative.iloc[5:9] = -1.0
    yield "negative", negative, {"unit": "percent"}
    jittered = series.copy()
    jittered.index = jittered.index + pd.to_timedelta(rng.integers(0, 40, len(series)), unit="s")
    yield "jittered", jittered, {}
    undated = series.copy()
    stamps = list(undated.index)
    stamps[3] = pd.NaT
    undated.index = pd.DatetimeIndex(stamps)
    yield "NaT", undated, {}
    yield "until", series, {"end": series.index[len(series) // 2].to_pydatetime()}
    yield "given step", series.iloc[::3], {"step": timedelta(minutes=5)}


# ---------------------------------------------------------------- the specifications


class TestCleaning:
    def test_cleaning_gives_the_pandas_implementation_s_grid_and_repairs(
        self, data_dir: Path, seasonal_cpu: pd.Series, flat_cpu: pd.Series
    ) -> None:
        rng = np.random.default_rng(16)
        for trace, series in _excerpts(data_dir, seasonal_cpu, flat_cpu).items():
            for variant, raw, options in _messy(series, rng):
                name = f"{trace}.{variant}"
                new = clean_series(raw, name=name, **options)
                old = reference_clean_series(raw, name=name, **options)
                assert new.step == old.step, name
                assert new.repairs == old.repairs, name
                pd.testing.assert_series_equal(new.values, old.values, check_exact=True)


class TestSelectionAnchor:
    def test_the_anchor_check_answers_as_reindex_does(self, seasonal_cpu: pd.Series) -> None:
        values = clean_series(seasonal_cpu, name="asg.cpu").values
        anchor = anchor_of(values)
        points = selection_module._anchor_points(anchor)
        changed = values.copy()
        changed.iloc[-3] += 1.0
        hair = values.copy()
        hair.iloc[-2] *= 1 + 1e-6  # beyond the check's rtol of 1e-9
        holed = values.copy()
        holed.iloc[-5] = np.nan
        doubled = pd.concat([values, values.iloc[-1:]])
        shuffled = values.sample(frac=1.0, random_state=3)
        later = values.iloc[12:]
        earlier = values.iloc[:-1]
        cases = {
            "same": values,
            "one value changed": changed,
            "one value changed by a hair": hair,
            "a gap at an anchor time": holed,
            "a repeated time": doubled,
            "unsorted": shuffled,
            "more data after": pd.concat(
                [values, values.iloc[:3].set_axis(values.index[-3:] + pd.Timedelta("15min"))]
            ),
            "shifted window": later,
            "the last point missing": earlier,
            "in another zone": values.tz_convert("Europe/Paris"),
            "empty": values.iloc[:0],
        }
        answers = {
            case: selection_module._points_hold(points, series) for case, series in cases.items()
        }
        assert answers == {
            case: reference_points_hold(points, series) for case, series in cases.items()
        }
        # And they are not all the same answer: the cases test both outcomes.
        assert set(answers.values()) == {True, False}


def _of_three_lengths(seasonal_cpu: pd.Series, flat_cpu: pd.Series) -> dict[str, np.ndarray]:
    """Histories of different lengths (a batch's weekly decision is its shortest series')."""
    return {
        "asg": seasonal_cpu.to_numpy(dtype=float),
        "asg-short": seasonal_cpu.to_numpy(dtype=float)[:-400],
        "ec2": flat_cpu.to_numpy(dtype=float),
    }


def _long_frame(
    histories: Mapping[str, np.ndarray],
    *,
    start: pd.Timestamp = pd.Timestamp("2026-11-01"),
    step: pd.Timedelta = pd.Timedelta("300s"),
) -> pd.DataFrame:
    """``histories`` as one ``unique_id, ds, y`` frame on a 5-minute grid from ``start``."""
    return pd.concat(
        [
            pd.DataFrame(
                {"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq=step), "y": y}
            )
            for uid, y in histories.items()
        ],
        ignore_index=True,
    )


class TestConformalModels:
    @pytest.mark.parametrize("model", ["ses", "seasonal_window_average"])
    def test_arrays_give_statsforecast_s_batched_numbers(
        self, model: str, seasonal_cpu: pd.Series, flat_cpu: pd.Series
    ) -> None:
        # Series of different lengths: the batch's weekly decision is the shortest one's.
        histories = _of_three_lengths(seasonal_cpu, flat_cpu)
        long = _long_frame(histories)
        options = ModelOptions()
        batched = reference_columns_by_series(
            forecast_models(
                long,
                models=[model],
                h=12,
                freq="300s",
                season=288,
                levels=[80, 95],
                options=options,
            )
        )
        each = forecast_each(
            histories, model=model, h=12, season=288, levels=[80, 95], options=options
        )
        assert each.keys() == batched.keys()
        for uid, columns in batched.items():
            assert each[uid].keys() == columns.keys()
            for column, values in columns.items():
                np.testing.assert_array_equal(each[uid][column], values, err_msg=f"{uid} {column}")


class TestFitsOnArrays:
    @pytest.mark.parametrize(
        "model", ["seasonal_naive", "naive", "seasonal_profile", "auto_ets", "mstl"]
    )
    def test_arrays_give_the_long_frame_fit_s_forecasts_and_fits(
        self, model: str, seasonal_cpu: pd.Series, flat_cpu: pd.Series
    ) -> None:
        # The parameter-free fallback of a fleet's cold start is fitted on arrays (fit_each);
        # the long-frame fit() it replaced gives the same forecasts on series of different
        # lengths, and kept fits that forecast the next step alike. Two reusable models with
        # kept state (AutoETS's parameters, MSTL's seasonal cycle) show the shared body is the
        # whole fit, not only the naive one.
        histories = _of_three_lengths(seasonal_cpu, flat_cpu)
        start = pd.Timestamp("2026-11-01")
        step = pd.Timedelta("300s")
        long = _long_frame(histories, start=start, step=step)
        options = ModelOptions()
        arguments = {"model": model, "h": 12, "season": 288, "levels": [80, 95], "options": options}
        frame, fits = statistical.fit(long, freq="300s", **arguments)  # type: ignore[arg-type]
        each = statistical.fit_each(
            {uid: (y, start + step * (len(y) - 1)) for uid, y in histories.items()},
            step=step,
            **arguments,  # type: ignore[arg-type]
        )
        expected = reference_columns_by_series(frame)
        assert each.keys() == expected.keys()
        for uid, (columns, fitted) in each.items():
            assert columns.keys() == expected[uid].keys()
            for column, values in expected[uid].items():
                np.testing.assert_array_equal(columns[column], values, err_msg=f"{uid} {column}")
            assert (fitted.model, fitted.end, fitted.step) == (
                fits[uid].model,
                fits[uid].end,
                fits[uid].step,
            )
            y = np.append(histories[uid], histories[uid][-288])
            later = {
                name: statistical.forward_columns(
                    kept, y, end=kept.end + step, h=12, levels=[80, 95]
                )
                for name, kept in (("arrays", fitted), ("frame", fits[uid]))
            }
            assert later["arrays"] is not None and later["frame"] is not None
            for column, values in later["frame"].items():
                np.testing.assert_array_equal(later["arrays"][column], values, err_msg=uid)


class TestWholeWarmPath:
    @pytest.mark.parametrize("history", ["14d", "4d"])
    def test_warm_cycles_give_the_old_engine_s_forecasts(
        self,
        history: str,
        monkeypatch: pytest.MonkeyPatch,
        data_dir: Path,
        seasonal_cpu: pd.Series,
        flat_cpu: pd.Series,
    ) -> None:
        # Windows of the three excerpts (and messy variants), a cold cycle and three warm ones
        # that each see one more step: kept fits updated, conformal models refitted, choices
        # checked against their anchors. "4d" cuts each history, "14d" keeps it whole.
        traces = _excerpts(data_dir, seasonal_cpu, flat_cpu)
        rng = np.random.default_rng(7)
        full: dict[tuple[str, str], pd.Series] = {}
        for trace, series in traces.items():
            for variant, raw, _options in _messy(series, rng):
                # The engine's input is a raw series (options are spec-level); four variants
                # keep the test's two engines times four cycles within seconds.
                if variant in ("as is", "Paris", "NaN", "duplicates"):
                    full[(trace, variant)] = raw
        settings = ForecastSettings(models=MODELS, history=history, workers=1)

        def cycles(engine: ForecastEngine) -> list[dict]:
            out = []
            for back in (3, 2, 1, 0):
                histories = {
                    key: raw.sort_index().iloc[: len(raw) - back] for key, raw in full.items()
                }
                out.append(engine.forecast_many(histories))
            return out

        new = cycles(ForecastEngine(settings))
        with monkeypatch.context() as patched:
            patched.setattr(engine_module, "clean_series", reference_clean_series)
            patched.setattr(selection_module, "_points_hold", reference_points_hold)
            old = cycles(ReferenceEngine(settings))
        for cycle, (got, want) in enumerate(zip(new, old, strict=True)):
            assert got.keys() == want.keys()
            for key, expected in want.items():
                actual = got[key]
                assert isinstance(actual, Forecast) and isinstance(expected, Forecast), key
                where = f"cycle {cycle}, {key}"
                assert actual.times == expected.times, where
                assert actual.issued_at == expected.issued_at, where
                assert (actual.model, actual.trusted, actual.reason) == (
                    expected.model,
                    expected.trusted,
                    expected.reason,
                ), where
                assert (actual.repairs, actual.adjustments, actual.accuracy) == (
                    expected.repairs,
                    expected.adjustments,
                    expected.accuracy,
                ), where
                np.testing.assert_allclose(actual.mean, expected.mean, rtol=0, atol=1e-12)
                assert actual.quantiles.keys() == expected.quantiles.keys()
                for q, curve in expected.quantiles.items():
                    np.testing.assert_allclose(
                        actual.quantiles[q], curve, rtol=0, atol=1e-12, err_msg=where
                    )
        models = {fc.model for cycle in new for fc in cycle.values()}
        # The comparison covered the conformal path and a kept fit, not only the baseline.
        assert models & {"ses", "seasonal_window_average"} and models & {"auto_ets", "naive"}
        assert all(fc.times[0].tzinfo is not None for cycle in new for fc in cycle.values())
