"""Reflectors: kopf's watch streams, run straight into the operator's cache.

One reflector per watched kind (and namespace): it lists, then watches, through kopf's
own informer stream (`infinite_watch`: paged lists, bookmarks, reconnects, inactivity
timeouts, re-lists after "410 Gone"), and hands every event to the cache at once.

Why not kopf's handlers and indexes: kopf gives every listed object its own worker, and
with indexes holds each one (its body, queue and locks) until every kind is indexed;
at a restart over thousands of sites that was most of the operator's peak memory. Here
an event is a dict update and nothing waits.

What the indexes gave us, the reflector gives back:
- a barrier: `listed` is set when the stream's first listing is complete, so the
  controller starts only once every kind is in the cache (a restart never mistakes a
  not-yet-listed child for a missing one);
- deletions that happened while the stream was down: after each (re-)listing, every
  cached object of this stream that the listing did not contain is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from kopf._cogs.clients.watching import Bookmark, infinite_watch
from kopf._cogs.structs.references import NamespaceName, Resource

from ..core import kinds

log = logging.getLogger(__name__)

Key = tuple[str, str]  # namespace, name
# observe(kind, event type or None for a listed object, body) and sweep(kind, namespace, keys seen)
Observe = Callable[[kinds.Kind, str | None, dict[str, Any]], None]
Sweep = Callable[[kinds.Kind, str | None, set[Key]], None]


def resource_of(kind: kinds.Kind) -> Resource:
    return Resource(kind.group, kind.version, kind.plural, kind=kind.kind, namespaced=kind.namespaced,
                    verbs=frozenset({"list", "watch"}))


class Reflector:
    def __init__(self, settings: Any, kind: kinds.Kind, namespace: str | None, observe: Observe,
                 sweep: Sweep) -> None:
        self.settings = settings
        self.kind = kind
        self.namespace = namespace
        self._observe = observe
        self._sweep = sweep
        self.listed = asyncio.Event()
        self.failures = 0

    def __repr__(self) -> str:
        return f"{self.kind.plural} in {self.namespace or 'all namespaces'}"

    async def run(self) -> None:
        """Stream forever; a failed stream is logged and restarted with backoff, never left dead."""
        while True:
            try:
                await self._stream()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # kopf #1276: a watcher that dies must not stay dead
                self.failures += 1
                delay = min(60.0, 2.0 ** min(self.failures, 6)) * (0.5 + random.random() / 2)  # noqa: S311
                log.warning("watching %r failed (%s); retrying in %.0fs", self, exc, delay)
                await asyncio.sleep(delay)

    async def _stream(self) -> None:
        seen: set[Key] = set()
        resource = resource_of(self.kind)
        namespace = NamespaceName(self.namespace) if self.namespace is not None else None
        async for event in infinite_watch(settings=self.settings, resource=resource, namespace=namespace):
            if event is Bookmark.LISTED:
                self._sweep(self.kind, self.namespace, seen)
                seen = set()
                self.failures = 0
                self.listed.set()
                continue
            if not isinstance(event, dict):
                continue
            raw: dict[str, Any] = dict(event)
            kind, body = raw.get("type"), dict(raw.get("object") or {})
            if kind == "BOOKMARK":
                continue
            if kind is None:  # part of a listing
                meta: dict[str, Any] = body.get("metadata") or {}
                seen.add((meta.get("namespace", ""), meta.get("name", "")))
            self._observe(self.kind, kind, body)


class Informers:
    """Every reflector the operator runs, and the barrier "everything has been listed"."""

    def __init__(self, settings: Any, watched: list[kinds.Kind], namespaces: tuple[str, ...],
                 observe: Observe, sweep: Sweep) -> None:
        scopes: list[str | None] = list(namespaces) or [None]
        # A cluster-scoped kind (StaticSitePool) is watched once, whatever the namespaces.
        self.reflectors = [Reflector(settings, kind, ns, observe, sweep) for kind in watched
                           for ns in (scopes if kind.namespaced else [None])]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(r.run(), name=f"reflector {r!r}") for r in self.reflectors]

    async def synced(self) -> None:
        await asyncio.gather(*(r.listed.wait() for r in self.reflectors))

    def is_synced(self) -> bool:
        return all(r.listed.is_set() for r in self.reflectors)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
