"""`python -m staticsite_operator.agent`: run a pool pod's agent and its nginx.

The loop: take entry events from the watcher, and once the stream has been quiet for
`debounce` seconds (or `max_delay` after the first event), run one batch (sync.py) and
report what changed. nginx starts after the first complete listing, so a new pod
answers its readiness probe with every site of the pool on disk.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import prometheus_client

from ..clients.kube import Kube
from ..core import poolconf
from .config import AgentConfig
from .disk import Layout
from .nginx import Nginx
from .report import Reporter
from .sync import Syncer
from .watch import LISTED, EntryWatcher

log = logging.getLogger("staticsite_operator.agent")


class Agent:
    def __init__(self, config: AgentConfig, kube: Kube) -> None:
        self.config = config
        self.layout = Layout(config.data_dir)
        self.layout.main.write_text(poolconf.main_conf(
            include=str(self.layout.conf / "*.conf"), listen=config.listen, tmp_dir=str(self.layout.tmp),
            pid=str(self.layout.tmp / "nginx.pid")))
        self.nginx = Nginx(config.nginx, self.layout.main, config.status_port)
        self.syncer = Syncer(self.layout, self.nginx, config.listen, config.status_port)
        self.reporter = Reporter(kube, config.pool, config.namespace, config.pod, config.pod_uid)
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.watcher = EntryWatcher(kube, config.pool, config.namespace, self.events)
        self.stopping = threading.Event()

    def run(self) -> None:
        threading.Thread(target=self.watcher.run, name="entries", daemon=True).start()
        listed, first = False, None
        while not self.stopping.is_set():
            if self.syncer.started and not self.nginx.alive():
                raise RuntimeError("nginx exited")
            wait = 0.5 if first is None else max(0.0, min(self.config.debounce,
                                                          first + self.config.max_delay - time.monotonic()))
            try:
                kind, body = self.events.get(timeout=wait)
            except queue.Empty:
                if listed and (first is not None or not self.syncer.started):
                    self._batch()
                    first = None
                continue
            if kind == LISTED:
                listed = True
            elif kind == "DELETED":
                self.syncer.gone(body["metadata"]["name"])
            else:
                self.syncer.seen(body)
            first = first if first is not None else time.monotonic()
            if first + self.config.max_delay <= time.monotonic() and listed:
                self._batch()
                first = None

    def _batch(self) -> None:
        if self.syncer.pending():
            self.syncer.run()
        self.reporter.send(self.syncer.states())

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.stopping.set()
        self.nginx.stop()
        try:
            self.reporter.withdraw()
        except Exception as exc:
            log.warning("could not remove the report: %s", exc)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = AgentConfig.from_env(os.environ)
    agent = Agent(config, Kube.from_environment(pool_size=4))
    if config.metrics_port:
        prometheus_client.start_http_server(config.metrics_port)

    def terminate(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        agent.stopping.set()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    try:
        agent.run()
    finally:
        agent.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
