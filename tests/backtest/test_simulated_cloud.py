"""The simulated cloud carries out changes with the cloud's delays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from driver.backtest import CloudTiming, SimulatedCloud
from driver.backtest.cloud import SimulatedObserver
from driver.observers import StackObserver
from infra.config import Cloud, load_stack
from policies import MirrorHealth

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def health(sim: SimulatedCloud) -> MirrorHealth:
    """The mirror's health read the way the driver reads a real cloud (driver.observers)."""
    observer = StackObserver(observers={c.value: SimulatedObserver(sim) for c in Cloud})
    return observer.observe(load_stack("demo", ROOT), now=AT).health()["web"]


def cloud(**kwargs: object) -> SimulatedCloud:
    return SimulatedCloud(minutes=20, initial=1, timing=CloudTiming(), **kwargs)  # type: ignore[arg-type]


def test_primary_scale_up_serves_after_the_primary_ready_time_and_costs_at_once() -> None:
    sim = cloud()
    sim.advance(2)
    sim.set_primary(3, at=2)
    sim.advance(20)
    rec = sim.record()
    assert rec.primary_ready[:7].tolist() == [1] * 7
    assert rec.primary_ready[7:].tolist() == [3] * 13
    assert rec.primary_running[2:].tolist() == [3] * 18
    assert rec.scaling_actions == 1


def test_scale_in_drops_booting_instances_first() -> None:
    sim = cloud()
    sim.set_primary(4, at=0)
    sim.set_primary(2, at=1)
    sim.advance(20)
    rec = sim.record()
    assert rec.primary_ready[5:].tolist() == [2] * 15
    assert rec.primary_running[1:].tolist() == [2] * 19


def test_warm_mirror_serves_after_its_own_ready_time_and_reports_health() -> None:
    sim = cloud(mirror_ready=timedelta(minutes=2), mirror_size=3)
    sim.advance(1)
    assert health(sim).ready is False
    sim.set_mirror(active=True, size=3, at=1)
    sim.advance(2)
    assert health(sim).running == 3 and health(sim).healthy == 0
    sim.advance(3)
    assert health(sim).ready is True
    rec = sim.record()
    assert rec.mirror_paused[:1].tolist() == [3]
    assert rec.mirror_ready[:3].tolist() == [0, 0, 0]
    assert rec.mirror_running[1:3].tolist() == [3, 3]
    assert rec.mirror_activations == 1


def test_scaled_to_zero_mirror_takes_the_primary_time_and_keeps_nothing_paused() -> None:
    sim = cloud(warm_pool=False, mirror_size=2)
    sim.set_mirror(active=True, size=2, at=0)
    sim.advance(20)
    rec = sim.record()
    assert rec.mirror_ready[:5].tolist() == [0] * 5 and rec.mirror_ready[5] == 2
    assert rec.mirror_paused.sum() == 0


def test_a_weight_change_takes_effect_after_the_dns_ttl() -> None:
    sim = SimulatedCloud(minutes=10, initial=1, timing=CloudTiming(dns_ttl=timedelta(seconds=120)))
    sim.set_weights(40, at=3)
    sim.advance(10)
    assert sim.record().mirror_share.tolist() == [0] * 5 + [0.4] * 5


def test_pausing_the_mirror_stops_its_instances_at_once() -> None:
    sim = cloud(mirror_ready=timedelta(minutes=2), mirror_size=2)
    sim.set_mirror(active=True, size=2, at=0)
    sim.advance(4)
    sim.set_mirror(active=False, size=2, at=4)
    sim.advance(20)
    rec = sim.record()
    assert rec.mirror_running[4:].sum() == 0
    assert rec.mirror_paused[4:].tolist() == [2] * 16


class TestObservedThroughTheObserverInterface:
    """The backtest and the driver take one path: the simulated cloud is a CloudObserver."""

    def test_a_paused_warm_mirror_is_warm_instances_and_no_healthy_target(self) -> None:
        sim = cloud(mirror_size=3)
        sim.advance(1)
        observer = StackObserver(observers={c.value: SimulatedObserver(sim) for c in Cloud})
        seen = observer.observe(load_stack("demo", ROOT), now=AT).pools["web"]
        assert seen.mirror is not None and seen.primary is not None
        assert (seen.mirror.warm, seen.mirror.serving, seen.mirror.healthy_targets) == (3, 0, 0)
        assert (seen.primary.desired, seen.primary.healthy_targets) == (1, 1)
        # The simulation has no images or rules: not observed, so never reported as drift.
        assert seen.mirror.image is None and seen.mirror.security_rules is None

    def test_the_primary_size_the_planner_sees_is_the_simulated_groups(self) -> None:
        sim = cloud()
        sim.set_primary(5, at=0)
        sim.advance(2)
        observer = StackObserver(observers={c.value: SimulatedObserver(sim) for c in Cloud})
        seen = observer.observe(load_stack("demo", ROOT), now=AT)
        assert seen.observed_desired() == {"web": 5}
        primary = seen.pools["web"].primary
        assert primary is not None and (primary.serving, primary.starting) == (1, 4)
