"""Keeping the loaded bundle out of the garbage collector's way.

A worker holds a compiled bundle (for 1,000 profiles about 200,000 objects the collector tracks:
the model, the generated functions and their globals) and, with ``--preload-history``, the
history cache. Every collection of the oldest generation walks all of them again while the
scoring thread waits: measured on the service's batch path at 1,000 profiles, 0.26–0.45 s of
collection per 10,000 declarations, a third of the time (docs/performance.md, "The service's
batch path"). :func:`gc.freeze` moves everything alive at that moment to the permanent
generation, which no collection walks: after it, 0.04 s per 10,000.

What is frozen is never collected as a cycle. Reference counting still frees what has no cycle;
a bundle swapped out does have cycles (a generated function and the globals that hold it), so
:class:`HeapFreezer` thaws, collects and freezes again once the requests scored with the old
bundle have had time to end (:data:`SETTLE` seconds after the swap), which frees the old bundle
and costs one full collection (tenths of a second) per swap.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

__all__ = ["SETTLE", "HeapFreezer"]

#: Seconds after a swap before the heap is collected and frozen again: longer than a request
#: scored with the old bundle takes (its answer waits at most ``ACK_TIMEOUT``, 30 s).
SETTLE = 45.0

_log = logging.getLogger("riskengine.service")


class HeapFreezer:
    """Freezes the heap after the first bundle is loaded and again after each swap settles.

    ``freeze()``: now (at startup, after the bundle and the history are loaded).
    ``swapped()``: a new bundle is in use; the next :meth:`maintain` call after :data:`SETTLE`
    seconds thaws, collects and freezes. ``enabled=False`` does nothing (``--no-freeze``)."""

    def __init__(self, *, enabled: bool = True, settle: float = SETTLE) -> None:
        self.enabled = enabled
        self.settle = settle
        self._due: float | None = None
        self._lock = threading.Lock()
        self.refreezes = 0
        #: Objects frozen by the last freeze (counted then: ``gc.get_freeze_count()`` walks
        #: them all, tens of milliseconds for a large bundle).
        self.frozen = 0

    def freeze(self) -> None:
        """Move every object alive now to the permanent generation."""
        if self.enabled:
            gc.freeze()
            self.frozen = gc.get_freeze_count()

    def swapped(self) -> None:
        """A bundle was swapped in: refreeze once the old one's requests have ended."""
        if self.enabled:
            with self._lock:
                self._due = time.monotonic() + self.settle

    def maintain(self) -> bool:
        """Thaw, collect and freeze again when a swap has settled; returns whether it did."""
        with self._lock:
            if self._due is None or time.monotonic() < self._due:
                return False
            self._due = None
        started = time.perf_counter()
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        self.refreezes += 1
        _log.info(
            "heap collected after the bundle swap: %d objects freed, %d frozen, %.2f s",
            freed, self.frozen, time.perf_counter() - started,
        )  # fmt: skip
        return True
