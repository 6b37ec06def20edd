"""The controller loop: queued keys in, the core's reconcile run on a thread pool, metrics out.

The reconcile is synchronous code that makes blocking API calls, so it runs on a pool
of `workers` threads, each with its own pooled connection; the work queue guarantees a
site is never reconciled by two threads at once. A reconcile that raises (transient API
trouble) is retried with backoff by the queue; one that asks to be looked at again
(a git ref's interval) is re-queued after that delay.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from ..core.ports import ApiError
from ..core.reconcile import Outcome
from . import metrics
from .workqueue import WorkQueue

Key = tuple[str, str]  # namespace, name


class Controller:
    def __init__(self, reconcile: Callable[[str, str], Outcome], workers: int,
                 gate: Callable[[], AbstractAsyncContextManager[None]] | None = None) -> None:
        self._reconcile = reconcile
        # Entered around each reconcile: waits while this replica stands by (runtime.leader).
        self._gate = gate or contextlib.nullcontext
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="reconcile")
        self._gauge = metrics.SitesGauge()
        self.queue: WorkQueue[Key] = WorkQueue(self._run, workers=workers, on_depth=metrics.QUEUE_DEPTH.set,
                                               expected=(ApiError, OSError))

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    async def _run(self, key: Key) -> None:
        async with self._gate():
            await self._reconciled(key)

    async def _reconciled(self, key: Key) -> None:
        started = time.monotonic()
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(self._pool, self._reconcile, *key)
        except Exception:
            metrics.RECONCILE_ERRORS.inc()
            metrics.RECONCILES.labels("error").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        metrics.RECONCILES.labels("ok").inc()
        self._gauge.set(key, outcome.ready)
        if outcome.recheck is not None:
            self.queue.add_after(key, outcome.recheck)
