"""Reflectors: kopf's list and watch requests, run straight into the operator's cache.

One reflector per watched kind (and namespace): it lists (kopf's `fetch_objs`: paged,
with the server-side label selectors of runtime.settings), then watches from the
listing's resourceVersion (kopf's `watch_objs`: bookmarks, reconnects, inactivity and
server timeouts), re-lists after "410 Gone", and hands every event to the cache at once.

Why not kopf's handlers and indexes: kopf gives every listed object its own worker, and
with indexes holds each one (its body, queue and locks) until every kind is indexed;
at a restart over thousands of sites that was most of the operator's peak memory. Here
an event is a dict update and nothing waits.

What the indexes gave us, the reflector gives back:
- a barrier: `listed` is set when the stream's first listing is complete, so the
  controller starts only once every kind is in the cache (a restart never mistakes a
  not-yet-listed child for a missing one);
- deletions that happened while the stream was down: after each (re-)listing, every
  cached object of this stream that the listing did not contain, and that is older than
  the listing (a paged list is a snapshot: what was created since is not in it, and the
  watch brings it), is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from kopf._cogs.clients.fetching import fetch_objs
from kopf._cogs.clients.watching import watch_objs
from kopf._cogs.structs.references import NamespaceName, Resource

from ..core import kinds, snapshot

log = logging.getLogger(__name__)

Key = tuple[str, str]  # namespace, name
# observe(kind, event type or None for a listed object, body), and
# sweep(kind, namespace, keys listed, the listing's resourceVersion)
Observe = Callable[[kinds.Kind, str | None, dict[str, Any]], None]
Sweep = Callable[[kinds.Kind, str | None, set[Key], int], None]


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
        resource = resource_of(self.kind)
        namespace = NamespaceName(self.namespace) if self.namespace is not None else None
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # kopf's "paused" signal
        while True:
            listed: set[Key] = set()
            version = ""
            async for chunk, page_version in fetch_objs(settings=self.settings, resource=resource,
                                                        namespace=namespace, logger=log):
                version = page_version  # the same on every page: the listing's snapshot
                for item in chunk:
                    listed_body: dict[str, Any] = dict(item)
                    meta = listed_body.get("metadata") or {}
                    listed.add((meta.get("namespace", ""), meta.get("name", "")))
                    self._observe(self.kind, None, listed_body)
            self._sweep(self.kind, self.namespace, listed, snapshot.version_number(version))
            self.failures = 0
            self.listed.set()
            # Watch from the listing on; a dropped connection resumes where it was, and only
            # "410 Gone" (that version is compacted away) needs a new listing.
            while True:
                gone = False
                async for raw in watch_objs(settings=self.settings, resource=resource, namespace=namespace,
                                            since=version, operator_pause_waiter=never):
                    event: dict[str, Any] = dict(raw)
                    kind, body = event.get("type"), dict(event.get("object") or {})
                    if kind == "ERROR":
                        if body.get("code") == 410:
                            gone = True
                            break
                        raise RuntimeError(f"watch error: {body.get('message', body)}")
                    version = (body.get("metadata") or {}).get("resourceVersion", version)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._observe(self.kind, kind, body)
                if gone:
                    log.debug("re-listing %r: its watch expired", self)
                    break


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

    def dead(self) -> list[str]:
        """The reflectors whose task has ended: none should (run() retries forever), so one that did is a bug
        that would leave its kind's cache frozen (kopf #1276); liveness reports it."""
        return sorted(repr(r) for r, t in zip(self.reflectors, self._tasks, strict=True) if t.done())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
