"""The real work the operator converges while faults hit it: N sites in a namespace.

The driver server-side applies the sites (bench/sites.py: three files, one domain, so
all five children exist), remembers the last spec it wrote to each (the invariants
compare the cluster with it), and a watch (bench/watcher.py) stamps when each site
is Ready at the generation that write produced.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import sites
from ..kclient import Client, collection
from ..measure import SITES
from ..watcher import Watcher, site_ready
from .decoys import Decoys

MANAGER = "staticsite-chaos"  # the field manager of the user who owns the sites


@dataclass
class Workload:
    client: Client
    namespace: str
    names: list[str]
    threads: int = 16
    wanted: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> the last spec written
    version: dict[str, int] = field(default_factory=dict)
    watcher: Watcher | None = None
    decoys: Decoys | None = None
    _generation: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create_namespace(cls, client: Client, namespace: str, n: int, threads: int) -> Workload:
        client.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": namespace}})
        work = cls(client, namespace, [sites.name(i) for i in range(n)], threads)
        work.watcher = Watcher(client, collection(*SITES, namespace), name=f"watch-{namespace}").start()
        return work

    def apply(self, name: str, version: int, expect: bool = True) -> int:
        """Write version `version` of a site's content; returns the generation it produced."""
        manifest = sites.manifest(name, self.namespace, version)
        since = time.monotonic()
        result = self.client.apply(manifest, MANAGER, force=True)
        generation = int(result["metadata"]["generation"])
        with self._lock:
            # Concurrent writes to one site (the flood) land in the API server's order, not ours:
            # the last content written is the one of the highest generation.
            if generation < self._generation.get(name, 0):
                return generation
            self._generation[name] = generation
            self.wanted[name], self.version[name] = manifest["spec"], version
        if expect and self.watcher is not None:
            self.watcher.expect(name, since, site_ready(generation))
        return generation

    def push_all(self, version: int) -> float:
        """Apply `version` to every site at once (threads); returns the seconds it took."""
        assert self.watcher is not None
        self.watcher.reset()
        t0 = time.monotonic()
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(lambda name: self.apply(name, version), self.names))
        return time.monotonic() - t0

    def forget(self, name: str) -> None:
        """A site the scenario deleted: no longer expected."""
        with self._lock:
            self.wanted.pop(name, None)
            self.version.pop(name, None)
            self._generation.pop(name, None)

    def wait_ready(self, deadline: float, progress: Any, label: str) -> float | None:
        """Until every expectation is met: the monotonic time the last site became Ready, or None."""
        assert self.watcher is not None
        done = self.watcher.wait(deadline, lambda d, t: progress(f"{label}: {d}/{t} Ready"), every=10)
        reached = self.watcher.results()
        if not done:
            return None
        return max((at for _, at in reached), default=time.monotonic())

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
