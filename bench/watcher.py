"""Know the moment each object reaches a state, from a watch (not from polling).

A `Watcher` follows one collection in one namespace in a thread. The bench tells it
what it expects of an object (`expect(name, since, check)`); the watcher stamps the
first event that satisfies `check` with the monotonic clock. Polling 1000 objects
would load the API server we are measuring, and stamp only to the poll interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .kclient import ApiError, Client, WatchStream

log = logging.getLogger(__name__)
Check = Callable[[dict[str, Any]], bool]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def site_ready(generation: int) -> Check:
    """Ready=True and it refers to `generation` or later (observedGeneration is current)."""
    def check(obj: dict[str, Any]) -> bool:
        current = obj["metadata"].get("generation", 0)
        status = obj.get("status") or {}
        ready = condition(obj, "Ready")
        return bool(current >= generation and status.get("observedGeneration") == current
                    and ready.get("status") == "True" and ready.get("observedGeneration", current) == current)
    return check


def deployment_ready(generation: int) -> Check:
    """Rolled out at `generation` or later: what the operator's own Ready condition requires."""
    def check(obj: dict[str, Any]) -> bool:
        current = obj["metadata"].get("generation", 0)
        want = (obj.get("spec") or {}).get("replicas", 1)
        status = obj.get("status") or {}
        return bool(current >= generation and status.get("observedGeneration", 0) >= current
                    and status.get("updatedReplicas", 0) == want and status.get("availableReplicas", 0) == want
                    and status.get("replicas", 0) == want)
    return check


class Watcher:
    def __init__(self, client: Client, path: str, name: str = "watch") -> None:
        self.client = client
        self.path = path
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, tuple[float, Check]] = {}
        self.reached: dict[str, tuple[float, float]] = {}  # name -> (since, at), monotonic
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # --- what the bench expects ------------------------------------------------------
    def expect(self, name: str, since: float, check: Check) -> None:
        """Stamp the first time `name` satisfies `check`; it may already (the latest copy counts)."""
        with self._lock:
            self.reached.pop(name, None)
            self._pending[name] = (since, check)
            if name in self._latest:
                self._evaluate(name, self._latest[name], time.monotonic())

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()
            self.reached.clear()

    def results(self) -> list[tuple[float, float]]:
        """(since, at) of every expectation met so far."""
        with self._lock:
            return list(self.reached.values())

    def progress(self) -> tuple[int, int]:
        """(reached, expected in all)."""
        with self._lock:
            return len(self.reached), len(self.reached) + len(self._pending)

    def wait(self, deadline: float, report: Callable[[int, int], None], every: float = 5.0) -> bool:
        """Block until every expectation is met or the monotonic `deadline` passes."""
        next_report = time.monotonic() + every
        while (now := time.monotonic()) < deadline:
            done, total = self.progress()
            if done == total:
                return True
            if now >= next_report:
                report(done, total)
                next_report = now + every
            time.sleep(0.05)
        return False

    # --- the watch thread -----------------------------------------------------------
    def start(self, timeout: float = 30) -> Watcher:
        self._thread.start()
        if not self._synced.wait(timeout):
            raise TimeoutError(f"could not list {self.path}")
        return self

    def stop(self) -> None:
        self._stop.set()
        if (stream := self._stream) is not None:
            stream.shutdown()
        self._thread.join(timeout=5)

    def _evaluate(self, name: str, obj: dict[str, Any], at: float) -> None:
        pending = self._pending.get(name)
        if pending is not None and pending[1](obj):
            del self._pending[name]
            self.reached[name] = (pending[0], at)

    def _relist(self) -> str:
        page = self.client.request("GET", self.path, timeout=120)
        now = time.monotonic()
        with self._lock:
            self._latest = {o["metadata"]["name"]: o for o in page.get("items") or []}
            for name, obj in self._latest.items():
                self._evaluate(name, obj, now)
        self._synced.set()
        return str(page["metadata"]["resourceVersion"])

    def _run(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                rv = rv or self._relist()
                # Short server-side timeouts: each reconnect resumes from the last resourceVersion.
                self._stream = self.client.watch(self.path, rv, timeout_seconds=60)
                for event in self._stream:
                    if self._stop.is_set():
                        return
                    if not (rv := self._handle(event, rv)):
                        break  # the server said our resourceVersion is too old: list again
            except ApiError as exc:
                log.debug("watch %s: %s; re-listing", self.path, exc)
                rv = ""
                time.sleep(0.5)
            except Exception as exc:  # connection dropped or shut down: resume, unless stopping
                if self._stop.is_set():
                    return
                log.debug("watch %s ended: %r", self.path, exc)
                time.sleep(0.2)

    def _handle(self, event: dict[str, Any], rv: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":  # typically 410 Gone: the resourceVersion is too old
            return ""
        new_rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
        if kind == "BOOKMARK":
            return new_rv
        name = obj["metadata"]["name"]
        now = time.monotonic()
        with self._lock:
            if kind == "DELETED":
                self._latest.pop(name, None)
            else:
                self._latest[name] = obj
                self._evaluate(name, obj, now)
        return new_rv
