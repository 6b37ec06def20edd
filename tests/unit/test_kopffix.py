"""runtime.kopffix: kopf 1.45's ToggleSet wakes its waiters only when the aggregate flips.

The workaround must keep kopf's semantics (a waiter for "all on" wakes exactly when the
last toggle turns on or the last off one is dropped) while making adds and drops that
do not change the aggregate wake nobody: that is what made a restart quadratic.
"""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from staticsite_operator.runtime import kopffix


def test_applies_to_the_pinned_kopf_line_only() -> None:
    assert kopffix.apply() is True
    assert aiotoggles.ToggleSet.make_toggle is kopffix._make_toggle


def test_waiters_wake_when_the_aggregate_flips_and_only_then() -> None:
    kopffix.apply()

    async def scenario() -> tuple[int, bool, bool]:
        toggles = aiotoggles.ToggleSet(all)
        notified = 0
        original = toggles._condition.notify_all

        def counting() -> None:
            nonlocal notified
            notified += 1
            original()

        toggles._condition.notify_all = counting  # type: ignore[method-assign]
        first = await toggles.make_toggle(False)   # all() flips from True (empty) to False: one wake-up
        others = [await toggles.make_toggle(False) for _ in range(50)]  # no flip: none
        adds = notified
        waiter = asyncio.create_task(toggles.wait_for(True))
        await asyncio.sleep(0)
        for toggle in others:
            await toggles.drop_toggle(toggle)                 # still one off: no flip
        await asyncio.sleep(0)
        woke_early = waiter.done()
        await toggles.drop_toggle(first)                        # empty again: all() is True
        await asyncio.wait_for(waiter, timeout=1)
        return adds, woke_early, toggles.is_on()

    adds, woke_early, on = asyncio.run(scenario())
    assert adds == 1
    assert woke_early is False
    assert on is True
