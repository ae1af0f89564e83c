"""A long-running driver's long-lived heap, kept out of Python's cyclic garbage collector.

A warm driver holds what it learnt (kept fits, calibration errors, model choices, the parsed
stack) for hours, and each cycle allocates and drops a few hundred thousand containers while
it forecasts and plans. Python's collector then runs a few full (oldest-generation)
collections a cycle, and each walks every container the process holds: at 2,000 series a
process that was 0.25 ms of CPU a series a cycle, growing with what the process keeps.
Nothing that lives from one cycle to the next is garbage, so after the first cycle the heap is
collected once and frozen (:func:`gc.freeze`): later collections walk only what was allocated
since. A frozen object that dies by its reference count is freed as always; one that becomes
part of a reference cycle is only found by a collection, so the heap is unfrozen, collected and
frozen again every :data:`REFREEZE_EVERY` cycles (an hour at the 5-minute default), which
bounds what such garbage can hold to what the heap held at the last freeze.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["HEAP", "REFREEZE_EVERY", "LongLivedHeap"]

REFREEZE_EVERY = 12
"""Cycles between two collections of the frozen heap (one full collection each)."""


class LongLivedHeap:
    """Freezes the process's heap after its first cycle, and again every ``every`` cycles.

    The collector is process-wide, so one instance (:data:`HEAP`) serves every driver loop of
    the process; ``after_cycle`` is called once per cycle of the loop.

    :param every: cycles between refreezes; default :data:`REFREEZE_EVERY`.
    """

    def __init__(self, *, every: int = REFREEZE_EVERY) -> None:
        if every < 1:
            raise ValueError(f"LongLivedHeap(every=...) must be at least 1 cycle, got {every}")
        self.every = every
        self.cycles = 0
        self.freezes = 0
        self._lock = threading.Lock()

    def after_cycle(self) -> None:
        """Count a finished cycle; after the first, and every ``every`` after it, collect
        everything (the frozen heap included) and freeze what is left."""
        with self._lock:
            self.cycles += 1
            if (self.cycles - 1) % self.every:
                return
            self.freezes += 1
        gc.unfreeze()
        gc.collect()
        gc.freeze()


HEAP = LongLivedHeap()
"""The process's one heap policy, used by :meth:`driver.service.Driver.run_forever`."""
