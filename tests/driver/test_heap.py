"""A long-running driver's heap is frozen out of the collector's full walks, and refrozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_service_cycles import make_driver

from driver import heap as heap_module
from driver.heap import LongLivedHeap


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (the collector is process-wide)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only a collection frees it


def test_the_heap_is_frozen_after_the_first_cycle_and_refrozen_every_n() -> None:
    heap = LongLivedHeap(every=3)
    assert gc.get_freeze_count() == 0

    heap.after_cycle()
    assert gc.get_freeze_count() > 0 and heap.freezes == 1

    heap.after_cycle()
    heap.after_cycle()
    assert heap.freezes == 1
    heap.after_cycle()  # the fourth: 1 + every
    assert heap.freezes == 2


def test_cyclic_garbage_of_the_frozen_heap_is_collected_at_the_next_refreeze() -> None:
    heap = LongLivedHeap(every=2)
    node = _Node()
    alive = weakref.ref(node)
    heap.after_cycle()  # node is frozen with the rest
    del node
    gc.collect()
    # Frozen: the collector does not look at it (this is the walk it saves).
    assert alive() is not None
    heap.after_cycle()
    assert alive() is not None
    heap.after_cycle()  # the refreeze collects the frozen heap first
    assert alive() is None


def test_garbage_made_after_the_freeze_is_collected_as_always() -> None:
    heap = LongLivedHeap(every=12)
    heap.after_cycle()
    node = _Node()
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None


def test_every_must_be_at_least_one_cycle() -> None:
    with pytest.raises(ValueError, match="at least 1 cycle"):
        LongLivedHeap(every=0)


def test_the_service_loop_freezes_its_heap_after_a_cycle(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heap = LongLivedHeap()
    monkeypatch.setattr(heap_module, "HEAP", heap)
    monkeypatch.setattr("driver.service.HEAP", heap)
    driver = make_driver(project, mode="plan")
    driver.clock = lambda: datetime.now(UTC)
    seen: list[int] = []
    real = driver.run_cycle
    at = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)

    def cycle(**_kwargs: Any) -> Any:
        seen.append(gc.get_freeze_count())
        if len(seen) == 2:
            driver.stop.set()
        return real(now=at + timedelta(minutes=5 * len(seen)))

    driver.run_cycle = cycle  # type: ignore[method-assign]
    assert driver.run_forever(every=timedelta(milliseconds=20)) == 0

    # Nothing frozen before the first cycle; the second ran with the first's heap frozen.
    assert seen[0] == 0 and seen[1] > 0
    assert heap.cycles == 2 and heap.freezes == 1


def test_a_one_shot_cycle_freezes_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heap = LongLivedHeap()
    monkeypatch.setattr("driver.service.HEAP", heap)
    driver = make_driver(project, mode="plan")
    driver.clock = lambda: datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    driver.run_forever(every=timedelta(minutes=5), once=True)
    assert heap.cycles == 0 and gc.get_freeze_count() == 0
