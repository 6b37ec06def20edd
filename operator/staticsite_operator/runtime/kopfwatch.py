"""What kopf 1.45 knows about its own watches and does not tell: are the caches synced, is every watch alive.

Two questions the health endpoints (runtime.health) must answer, and kopf has no API for:

- **Synced?** kopf starts event handlers only once every watched kind is listed and
  indexed, and it tracks that in a private ToggleSet (`Ensemble.operator_indexed`).
  Readiness needs the same fact, also when no object exists (then no handler ever runs
  and nothing else would tell).
- **Is every watch alive?** kopf #1276: when a watch task ends, the orchestrator drops
  it from its ensemble and starts it again only when the cluster's namespaces or
  resources change, which, with scanning disabled (runtime.settings), is never. The
  operator then runs on a cache that no longer moves. Liveness fails instead, so
  the kubelet restarts the pod.

Both come from the orchestrator's `Ensemble`, which this module takes as kopf passes it
to `spawn_missing_watchers` (looked up as a module global at every call, so a wrapper
sees every call). Applied only to the kopf line it was written against; on another
version it does nothing and says so: readiness then does not wait for the caches, and
liveness sees no dead watch.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kopf._core.reactor import orchestration

log = logging.getLogger(__name__)
SUPPORTED = "1.45."


class Watches:
    """The watches of the kopf operator running in this process (one per process)."""

    def __init__(self) -> None:
        self.ensemble: Any = None
        self.expected: frozenset[Any] = frozenset()  # the watch keys kopf meant to run, as last spawned
        self.supported = True

    def seen(self, ensemble: Any) -> None:
        self.ensemble = ensemble
        self.expected = frozenset(ensemble.watcher_tasks)

    def synced(self) -> bool:
        """Every watched kind listed and every listed object indexed (kopf's own barrier)."""
        if not self.supported:
            return True  # cannot tell: do not hold readiness hostage to a kopf upgrade
        ensemble = self.ensemble
        # Until the first spawn has returned, kopf's toggles may not all exist yet.
        return bool(ensemble is not None and self.expected and ensemble.operator_indexed.is_on())

    def dead(self) -> list[str]:
        """The watches kopf started and no longer runs (ended, failed or dropped)."""
        ensemble = self.ensemble
        if ensemble is None:
            return []
        tasks = ensemble.watcher_tasks
        return sorted(f"{key.resource.plural}@{key.namespace or '*'}" for key in self.expected
                      if key not in tasks or tasks[key].done())


WATCHES = Watches()


def _wrap(original: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Coroutine[Any, Any, None]]:
    async def spawn_missing_watchers(*, ensemble: Any, **kwargs: Any) -> None:
        await original(ensemble=ensemble, **kwargs)
        WATCHES.seen(ensemble)

    spawn_missing_watchers.__wrapped__ = original  # type: ignore[attr-defined]
    return spawn_missing_watchers


def apply() -> bool:
    """Install the wrapper (once); False when this kopf is not the version it was written for."""
    version = importlib.metadata.version("kopf")
    if not version.startswith(SUPPORTED):
        log.warning("kopf %s: watch health is written for %sx; readiness will not wait for the caches and "
                    "liveness will not see dead watches", version, SUPPORTED)
        WATCHES.supported = False
        return False
    current = orchestration.spawn_missing_watchers
    if not hasattr(current, "__wrapped__"):
        orchestration.spawn_missing_watchers = _wrap(current)
    return True
