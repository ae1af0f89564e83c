"""A Forecast serializes itself: what is read back is exactly what was saved (issue 17 item 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from driver.journal import Journal
from forecasting import Forecast
from forecasting._result import Repair

NOW = datetime(2026, 11, 23, 13, 55, tzinfo=UTC)


def _forecast() -> Forecast:
    step = timedelta(minutes=5)
    times = [NOW + step * i for i in range(1, 5)]
    mean = np.array([40.0, 41.5, 60.25, 61.0])
    return Forecast(
        pool="web",
        metric="cpu",
        issued_at=NOW,
        step=step,
        times=times,
        mean=mean,
        quantiles={q: mean + (q - 50) / 7 for q in (50, 80, 90, 95, 99)},
        model="mstl",
        trusted=False,
        reason="no model beat seasonal-naive",
        accuracy={"mase": 0.81, "coverage_80": 0.79},
        repairs=(Repair(kind="gap", count=3, detail="3 missing points filled"),),
        adjustments=("event early-access x1.5 from 14:25 to 16:25",),
    )


def _same(a: Forecast, b: Forecast) -> None:
    assert (a.pool, a.metric, a.issued_at, a.step, a.times) == (
        b.pool,
        b.metric,
        b.issued_at,
        b.step,
        b.times,
    )
    np.testing.assert_array_equal(a.mean, b.mean)
    assert sorted(a.quantiles) == sorted(b.quantiles)
    for q in a.quantiles:
        np.testing.assert_array_equal(a.quantiles[q], b.quantiles[q])
    assert (a.model, a.trusted, a.reason, a.accuracy) == (b.model, b.trusted, b.reason, b.accuracy)
    assert a.repairs == b.repairs
    assert a.adjustments == b.adjustments


def test_every_field_survives_a_round_trip_through_json_text() -> None:
    original = _forecast()

    back = Forecast.from_json(json.loads(json.dumps(original.to_json())))

    _same(original, back)


def test_a_payload_journaled_before_adjustments_were_kept_reads_as_no_adjustments() -> None:
    payload = _forecast().to_json()
    del payload["adjustments"]

    assert Forecast.from_json(payload).adjustments == ()


def test_the_journal_keeps_a_forecasts_event_adjustments(tmp_path: Path) -> None:
    """The last-good fallback is read from the journal: it must still say why it was raised."""
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        original = _forecast()
        journal.save_forecasts(stack="demo", forecasts={"web": {"cpu": original}})

        kept = journal.last_forecasts(stack="demo")["web"]["cpu"]
    finally:
        journal.close()

    _same(original, kept)
