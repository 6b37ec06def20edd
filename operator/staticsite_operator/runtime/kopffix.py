"""A workaround for a quadratic start-up in kopf 1.45's index readiness (ToggleSet).

While the initial listing is indexed, kopf makes one toggle per listed object in a
ToggleSet, and every object's worker waits on the set. Each make/drop notifies *every*
waiter, and each waiter re-checks the whole set: O(N²) wake-ups, which made a restart
over many sites spend nearly all its time here (bench/README.md has the figures).
Waiters only ever wait for the aggregate state (all toggles on/off), so waking them
only when that aggregate flips is equivalent, and linear.

Applied only to the kopf line it was written against (pinned in pyproject.toml);
on another version it does nothing and says so, so an upgrade can never half-apply it.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

log = logging.getLogger(__name__)
SUPPORTED = "1.45."


async def _make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> Any:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        before = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != before:
            self._condition.notify_all()
    return toggle


async def _drop_toggle(self: Any, toggle: Any) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.discard(toggle)
        if self.is_on() != before:
            self._condition.notify_all()


async def _drop_toggles(self: Any, toggles: Iterable[Any]) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != before:
            self._condition.notify_all()


def apply() -> bool:
    version = importlib.metadata.version("kopf")
    if not version.startswith(SUPPORTED):
        log.warning("kopf %s: the ToggleSet start-up workaround is for %sx only; not applied", version, SUPPORTED)
        return False
    cls: Any = aiotoggles.ToggleSet
    cls.make_toggle, cls.drop_toggle, cls.drop_toggles = _make_toggle, _drop_toggle, _drop_toggles
    return True
