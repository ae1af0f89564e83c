"""Cleaning raw metric series: every kind of mess is handled and stated, bad input is named."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting import CleanedSeries, UnusableSeriesError, clean_series, fill_for_fit


def _kinds(cleaned: CleanedSeries) -> dict[str, int]:
    return {r.kind: r.count for r in cleaned.repairs}


def _series(
    values: list[float],
    *,
    start: str = "2024-01-01 00:00",
    freq: str = "5min",
    tz: str | None = "UTC",
) -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq=freq, tz=tz)
    return pd.Series(values, index=index, dtype=float)


def test_naive_timestamps_are_taken_as_utc_and_said_so() -> None:
    raw = _series([1, 2, 3, 4], tz=None)
    cleaned = clean_series(raw, name="web.cpu")
    assert str(cleaned.values.index.tz) == "UTC"
    assert _kinds(cleaned)["timezone"] == 4


def test_zoned_timestamps_are_converted_to_utc() -> None:
    raw = _series([1, 2, 3, 4], start="2024-01-01 00:00", tz="America/New_York")
    cleaned = clean_series(raw, name="web.cpu")
    assert cleaned.values.index[0] == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert any("America/New_York" in r.detail for r in cleaned.repairs)


def test_out_of_order_points_are_sorted() -> None:
    raw = _series([1, 2, 3, 4, 5]).iloc[[0, 2, 1, 3, 4]]
    cleaned = clean_series(raw, name="web.cpu")
    assert list(cleaned.values) == [1, 2, 3, 4, 5]
    assert _kinds(cleaned)["reordered"] == 1


def test_duplicate_timestamps_are_averaged() -> None:
    raw = _series([1, 2, 3, 4])
    raw = pd.concat([raw, pd.Series([4.0], index=[raw.index[1]])])
    cleaned = clean_series(raw, name="web.cpu")
    assert cleaned.values.iloc[1] == pytest.approx(3.0)
    assert _kinds(cleaned)["duplicates"] == 1


def test_gaps_stay_gaps_never_zero_demand() -> None:
    raw = _series([5, 6, 7, 8, 9, 10]).drop(index=_series([0] * 6).index[2:4])
    cleaned = clean_series(raw, name="web.cpu")
    assert len(cleaned.values) == 6
    assert cleaned.values.isna().sum() == 2
    assert (cleaned.values.dropna() > 0).all()
    assert _kinds(cleaned)["gap"] == 2


def test_nan_values_are_masked_and_reported() -> None:
    cleaned = clean_series(_series([1, np.nan, 3, 4]), name="web.cpu")
    assert np.isnan(cleaned.values.iloc[1])
    assert _kinds(cleaned)["nan"] == 1


def test_irregular_steps_are_resampled_onto_the_inferred_grid() -> None:
    index = pd.DatetimeIndex(
        [
            "2024-01-01 00:00",
            "2024-01-01 00:05",
            "2024-01-01 00:11",
            "2024-01-01 00:15",
            "2024-01-01 00:20",
        ],
        tz="UTC",
    )
    cleaned = clean_series(pd.Series([1.0, 2, 3, 4, 5], index=index), name="web.cpu")
    assert cleaned.step == timedelta(minutes=5)
    assert (np.diff(cleaned.values.index.asi8) == 300 * 10**9).all()
    assert "resampled" in _kinds(cleaned)


def test_counter_resets_become_a_rate_counting_from_zero() -> None:
    # 60 requests per 5 minutes, the process restarts after the third sample.
    raw = _series([0, 60, 120, 30, 90, 150])
    cleaned = clean_series(raw, name="web.requests", counter=True)
    assert cleaned.values.to_numpy() == pytest.approx([0.2, 0.2, 0.1, 0.2, 0.2])
    assert _kinds(cleaned)["counter_reset"] == 1


def test_negative_values_of_a_non_negative_unit_are_masked() -> None:
    cleaned = clean_series(_series([5, -1, 7, 8]), name="web.cpu")
    assert np.isnan(cleaned.values.iloc[1])
    assert _kinds(cleaned)["negative"] == 1


def test_points_after_the_decision_time_are_not_used() -> None:
    raw = _series([1, 2, 3, 4, 5, 6])
    cleaned = clean_series(raw, name="web.cpu", end=raw.index[3].to_pydatetime())
    assert cleaned.values.index[-1] == raw.index[3]


def test_fill_for_fit_uses_the_same_slot_of_an_earlier_season() -> None:
    values = _series([1, 2, 3, 1, np.nan, 3])
    filled, repair = fill_for_fit(values, season=3)
    assert filled.iloc[4] == 2
    assert repair is not None and repair.count == 1


def test_all_missing_series_is_an_error_naming_it() -> None:
    with pytest.raises(UnusableSeriesError, match=r"web\.cpu: every value is missing"):
        clean_series(_series([np.nan] * 5), name="web.cpu")


def test_too_short_series_is_an_error_naming_it() -> None:
    with pytest.raises(UnusableSeriesError, match=r"web\.cpu: only 2 usable points"):
        clean_series(_series([1, 2]), name="web.cpu")


def test_text_values_are_an_error_naming_the_position() -> None:
    raw = pd.Series(["1", "2", "lots", "4"], index=_series([0] * 4).index)
    with pytest.raises(UnusableSeriesError, match=r"web\.cpu: .*position 2 .*'lots'"):
        clean_series(raw, name="web.cpu")


def test_non_time_index_is_an_error_naming_the_position() -> None:
    raw = pd.Series([1.0, 2.0, 3.0], index=["2024-01-01", "yesterday-ish", "2024-01-03"])
    with pytest.raises(
        UnusableSeriesError, match=r"web\.cpu: the index is not timestamps \(position 1"
    ):
        clean_series(raw, name="web.cpu")


def test_not_a_series_is_an_error_naming_it() -> None:
    with pytest.raises(UnusableSeriesError, match=r"web\.cpu: expected a pandas Series"):
        clean_series([1, 2, 3], name="web.cpu")


def test_a_regular_series_with_missing_points_keeps_them_as_gaps_on_its_grid(
    seasonal_cpu: pd.Series,
) -> None:
    raw = seasonal_cpu.tz_localize("UTC").drop(
        seasonal_cpu.index[[5, 6, 7, 400]].tz_localize("UTC")
    )
    cleaned = clean_series(raw, name="asg.cpu")
    expected = raw.resample(pd.Timedelta(minutes=5), origin="start").mean()
    np.testing.assert_array_equal(cleaned.values.index, expected.index)
    np.testing.assert_array_equal(cleaned.values.to_numpy(), expected.to_numpy())
    assert [r.kind for r in cleaned.repairs] == ["gap"]
    assert cleaned.repairs[0].count == 4
