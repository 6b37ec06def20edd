"""The operator under test, run as a subprocess exactly as its container runs it.

`python -m staticsite_operator` with environment variables only. A separate process
(not a thread of the bench) so its memory and CPU are its own in /proc, and so the
bench's watches and thread pools never share its interpreter lock. Progress is read
from its Prometheus endpoint on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .profile import Profiler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, timeout: float = 2) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # only 127.0.0.1
            body: bytes = resp.read()
            return body.decode()
    except (urllib.error.URLError, OSError):
        return None


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_path: Path, python_path: Path, workers: int | None = None,
                 profile: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.profile = profile
        self.profiler: Profiler | None = None
        self.python_path = python_path
        self.log_path = log_path
        self.workers = workers
        self.extra_env = extra_env or {}  # e.g. leader election settings (bench/chaos)
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.health_port = 0
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> OperatorProcess:
        self.metrics_port, self.health_port = free_port(), free_port()
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), STATICSITE_METRICS_PORT=str(self.metrics_port),
                   STATICSITE_HEALTH_PORT=str(self.health_port), STATICSITE_LOG_FORMAT="json")
        # The measured source first: it wins over the editable install of the working tree.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.python_path), env.get("PYTHONPATH")) if p)
        env.pop("STATICSITE_NAMESPACES", None)  # all namespaces, the chart's default
        if self.workers:
            env["STATICSITE_WORKERS"] = str(self.workers)
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "staticsite_operator"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        if self.profile is not None:
            self.profiler = Profiler(self.proc.pid, self.profile)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        return _get(f"http://127.0.0.1:{self.health_port}/healthz") is not None

    def readiness(self) -> dict[str, object] | None:
        """GET /readyz's JSON ({"synced", "role", "identity"}), whatever its status; None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as resp:
                body: bytes = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        except (urllib.error.URLError, OSError):
            return None
        try:
            found: dict[str, object] = json.loads(body)
        except ValueError:
            return None
        return found

    def kill(self) -> None:
        """SIGKILL: no cleanup, no release of anything (what a node failure or the OOM killer does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from spawn until /healthz answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the operator exited ({self.proc and self.proc.returncode}); see {self.log_path}")
            if self.healthy() and self.metrics() is not None:
                return time.monotonic() - self.started_at
            time.sleep(0.05)
        raise TimeoutError(f"the operator did not become healthy in {timeout}s; see {self.log_path}")

    def metrics(self) -> dict[str, float] | None:
        """The few series the bench follows, summed over labels; None while the endpoint is down."""
        text = _get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        if text is None:
            return None
        out = {"reconciles": 0.0, "reconcile_errors": 0.0, "sites": 0.0, "queue_depth": 0.0, "writes": 0.0}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "staticsite_reconcile_total":
                    out["reconciles"] += sample.value
                elif sample.name == "staticsite_reconcile_errors_total":
                    out["reconcile_errors"] += sample.value
                elif sample.name == "staticsite_sites":
                    out["sites"] += sample.value   # one per site reconciled since start
                elif sample.name == "staticsite_workqueue_depth":
                    out["queue_depth"] = sample.value
                elif sample.name == "staticsite_api_writes_total":
                    out["writes"] += sample.value
                elif sample.name == "staticsite_watch_events_total":
                    # "events <kind>" and "queued <kind>": what woke the reconciles
                    kind = sample.labels.get("kind", "")
                    queued = [f"queued {kind}"] if sample.labels.get("queued") == "true" else []
                    for key in [f"events {kind}", *queued]:
                        out[key] = out.get(key, 0.0) + sample.value
        return out

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM (kopf shuts down gracefully), SIGKILL after `timeout`; returns the seconds taken."""
        if self.proc is None:
            return 0.0
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        return time.monotonic() - t0
