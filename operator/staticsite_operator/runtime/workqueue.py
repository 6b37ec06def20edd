"""A coalescing work queue, as in client-go: many events for a site become one reconcile.

Why not reconcile inside each kopf event handler? A site has five children and each
rollout step changes the Deployment's status several times: reconciling per event would
repeat the same work many times over and race with itself. Here a key is queued at
most once, is never processed by two workers at the same time, and is retried with
exponential backoff when its reconcile raises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)


class WorkQueue(Generic[K]):
    def __init__(self, handler: Callable[[K], Awaitable[None]], *, workers: int = 8,
                 base_delay: float = 0.5, max_delay: float = 60.0,
                 on_depth: Callable[[int], None] | None = None,
                 expected: tuple[type[Exception], ...] = ()) -> None:
        self._handler = handler
        self._expected = expected  # failures logged without a traceback
        self._on_depth = on_depth  # told pending() whenever it may have changed (a gauge)
        self._workers = workers
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._dirty: set[K] = set()       # wanted: queued, or to be re-queued when done
        self._active: set[K] = set()      # being processed right now
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, key: K) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._active:
            self._queue.put_nowait(key)
        self._depth_changed()

    def add_after(self, key: K, delay: float) -> None:
        if key in self._timers:
            return  # a retry is already scheduled; an event in between re-queues it anyway
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def idle(self) -> bool:
        return not self._dirty and not self._active and self._queue.empty()

    def pending(self) -> int:
        return len(self._dirty) + len(self._active)

    def _depth_changed(self) -> None:
        if self._on_depth is not None:
            self._on_depth(self.pending())

    def start(self) -> None:
        """Start processing, once; keys added before wait until then."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="workqueue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self._workers)))

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._dirty.discard(key)
            self._active.add(key)
            try:
                await self._handler(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(self._base_delay * 2 ** (failures - 1), self._max_delay)
                # An expected failure (the API server busy or away) is a line; a bug, a traceback.
                log.warning("reconcile of %s failed (attempt %d); retrying in %.1fs: %s", key, failures, delay, exc,
                            exc_info=not isinstance(exc, self._expected))
                self.add_after(key, delay)
            else:
                self._failures.pop(key, None)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._queue.put_nowait(key)  # an event arrived while we worked
                self._depth_changed()
