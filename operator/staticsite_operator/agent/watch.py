"""List, then watch, the pool's entries: every event goes to a queue for the sync loop.

Paged lists, watches that resume from the last resourceVersion, and a re-list after
"410 Gone" or a broken stream. A re-list reports the entries that vanished meanwhile as
deleted, so the sync loop never serves a site that left while the watch was down.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from typing import Any

from ..clients.kube import ApiError, Kube
from ..core import kinds
from ..core import pool as pl

log = logging.getLogger(__name__)

LISTED = "LISTED"  # a complete listing has been queued


class EntryWatcher:
    def __init__(self, kube: Kube, pool: str, namespace: str, events: queue.Queue[tuple[str, dict[str, Any]]],
                 timeout: int = 300) -> None:
        self.kube = kube
        self.path = kinds.CONFIGMAP.path(namespace)
        self.selector = [("labelSelector", f"{pl.POOL_KEY}={pool},app.kubernetes.io/component={pl.ENTRY}")]
        self.events = events
        self.timeout = timeout
        self.stopping = threading.Event()
        self.known: set[str] = set()

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                version = self._list()
                failures = 0
                while not self.stopping.is_set():
                    version = self._watch(version)
            except (ApiError, OSError, ValueError) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * (0.5 + random.random() / 2)  # noqa: S311
                log.warning("watching the pool's entries failed (%s); again in %.1fs", exc, delay)
                time.sleep(delay)

    def _list(self) -> str:
        seen: set[str] = set()
        cont, version = "", ""
        while True:
            page = self.kube.get_json(self.path, [*self.selector, ("limit", "200"), *([("continue", cont)]
                                                                                      if cont else [])])
            for item in page.get("items") or []:
                seen.add(item["metadata"]["name"])
                self.events.put(("ADDED", item))
            meta = page.get("metadata") or {}
            version, cont = meta.get("resourceVersion", version), meta.get("continue", "")
            if not cont:
                break
        for name in self.known - seen:
            self.events.put(("DELETED", {"metadata": {"name": name}}))
        self.known = seen
        self.events.put((LISTED, {}))
        return str(version)

    def _watch(self, version: str) -> str:
        for event in self.kube.watch(self.path, [*self.selector, ("resourceVersion", version),
                                                 ("allowWatchBookmarks", "true")], self.timeout):
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise ValueError(f"watch ended: {body.get('message', body)}")  # 410 Gone: list again
            version = (body.get("metadata") or {}).get("resourceVersion", version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                name = body["metadata"]["name"]
                (self.known.discard if kind == "DELETED" else self.known.add)(name)
                self.events.put((str(kind), body))
            if self.stopping.is_set():
                break
        return version
