"""The work queue: bursts of events for one site coalesce, a site is never reconciled by
two workers at once, and failures retry with exponential backoff.
"""

from __future__ import annotations

import asyncio

from staticsite_operator.runtime.workqueue import WorkQueue


async def _drain(queue: WorkQueue[str], timeout: float = 5) -> None:
    async def idle() -> None:
        while not queue.idle():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(idle(), timeout)


def test_burst_coalesces_and_keys_never_overlap() -> None:
    calls: list[str] = []
    running: set[str] = set()
    overlap: list[str] = []

    async def handler(key: str) -> None:
        if key in running:
            overlap.append(key)
        running.add(key)
        calls.append(key)
        await asyncio.sleep(0.05)
        running.discard(key)

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(handler, workers=4)
        task = asyncio.create_task(queue.run())
        for _ in range(50):
            queue.add("a")
            queue.add("b")
        await asyncio.sleep(0.01)
        queue.add("a")  # arrives while "a" is being processed: one more pass, later
        await asyncio.sleep(0.01)
        await _drain(queue)
        task.cancel()

    asyncio.run(main())
    assert overlap == []
    assert calls.count("b") == 1
    assert calls.count("a") == 2


def test_failures_retry_with_backoff() -> None:
    times: list[float] = []

    async def handler(key: str) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) < 3:
            raise RuntimeError("transient")

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(handler, workers=1, base_delay=0.05, max_delay=1)
        task = asyncio.create_task(queue.run())
        queue.add("a")
        for _ in range(200):
            if len(times) >= 3 and queue.idle():
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert len(times) == 3
    first, second = times[1] - times[0], times[2] - times[1]
    assert first >= 0.05
    assert second >= 0.1, "the delay doubles"


def test_depth_is_reported_on_every_change_and_ends_at_zero() -> None:
    """The workqueue_depth gauge: a stale non-zero value would say the operator never settles."""
    depths: list[int] = []
    release = asyncio.Event()

    async def handler(key: str) -> None:
        await release.wait()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(handler, workers=2, on_depth=depths.append)
        task = asyncio.create_task(queue.run())
        queue.add("a")
        queue.add("b")
        queue.add("a")  # coalesced: no change, nothing reported
        await asyncio.sleep(0.01)
        assert depths == [1, 2]
        release.set()
        await _drain(queue)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert depths[-1] == 0
    assert len(depths) == 4
