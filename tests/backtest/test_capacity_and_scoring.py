"""The capacity model and the score, on hand-built series with exact expected minutes."""

from __future__ import annotations

import numpy as np
import pytest

from driver.backtest import CapacityModel, CloudRecord, score_record

MODEL = CapacityModel(instance_capacity=10.0, slo_utilisation=0.8)  # 8 units per instance


def record(
    ready: list[float],
    *,
    running: list[float] | None = None,
    mirror_ready: list[float] | None = None,
    share: list[float] | None = None,
    paused: list[float] | None = None,
) -> CloudRecord:
    n = len(ready)
    zeros = [0.0] * n
    return CloudRecord(
        primary_ready=np.array(ready, dtype=float),
        primary_running=np.array(running if running is not None else ready, dtype=float),
        mirror_ready=np.array(mirror_ready or zeros, dtype=float),
        mirror_running=np.array(mirror_ready or zeros, dtype=float),
        mirror_paused=np.array(paused or zeros, dtype=float),
        mirror_share=np.array(share or zeros, dtype=float),
    )


def test_a_minute_above_ready_capacity_at_slo_utilisation_is_under_provisioned() -> None:
    demand = np.array([8.0, 9.0, 16.0, 17.0])
    score = score_record(record([1, 1, 2, 2]), demand=demand, scored=np.ones(4, bool), model=MODEL)
    assert score.underprovisioned_minutes == 2  # minutes 1 (9 > 8) and 3 (17 > 16)


def test_unscored_and_gap_minutes_count_neither_shortfall_nor_cost() -> None:
    demand = np.array([50.0, np.nan, 50.0, 50.0])
    scored = np.array([False, True, True, True]) & ~np.isnan(demand)
    score = score_record(record([1, 1, 1, 7]), demand=demand, scored=scored, model=MODEL)
    assert score.underprovisioned_minutes == 1  # minute 2 only
    assert score.instance_hours == pytest.approx((1 + 7) / 60)


def test_booting_instances_cost_but_do_not_serve() -> None:
    demand = np.array([10.0, 10.0])
    score = score_record(
        record([1, 2], running=[2, 2]), demand=demand, scored=np.ones(2, bool), model=MODEL
    )
    assert score.underprovisioned_minutes == 1
    assert score.instance_hours == pytest.approx(4 / 60)


def test_traffic_is_split_by_the_share_in_effect() -> None:
    # 1 primary + 1 mirror at 50/50 serve 16; 17 overloads both halves.
    rec = record([1, 1], mirror_ready=[1, 1], share=[0.5, 0.5])
    assert list(MODEL.underprovisioned(np.array([16.0, 17.0]), rec)) == [False, True]


def test_traffic_sent_to_a_mirror_not_yet_serving_is_lost() -> None:
    rec = record([10], mirror_ready=[0], share=[0.3])
    assert MODEL.underprovisioned(np.array([2.0]), rec).tolist() == [True]


def test_paused_mirror_instances_cost_the_configured_fraction() -> None:
    score = score_record(
        record([1, 1], paused=[4, 4]),
        demand=np.array([1.0, 1.0]),
        scored=np.ones(2, bool),
        model=MODEL,
        paused_cost_fraction=0.25,
    )
    assert score.paused_instance_hours == pytest.approx(8 / 60)
    assert score.cost_instance_hours == pytest.approx(2 / 60 + 0.25 * 8 / 60)


def test_instances_for_rounds_up_without_float_noise() -> None:
    assert MODEL.instances_for(8.0) == 1
    assert MODEL.instances_for(8.01) == 2
    assert MODEL.instances_for(6.0, utilisation=0.6) == 1
    assert MODEL.instances_for(0.0) == 0


def test_an_impossible_capacity_model_is_refused() -> None:
    with pytest.raises(ValueError, match="instance capacity must be a positive number"):
        CapacityModel(instance_capacity=0)
