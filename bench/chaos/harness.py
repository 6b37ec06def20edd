"""The chaos suite's fixtures: its cluster, the operator replicas and their proxies, the audit log.

The operator runs as its container does (`python -m staticsite_operator`, bench's
OperatorProcess), as the bench's ServiceAccount (every one of its requests is in the
audit log, Lease calls included), with leader election on as the chart runs it, and
connected through a ProxyProcess (proxy.py) so that watch stalls and API errors can be
injected; with no fault injected the proxy only forwards.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..audit import AuditLog
from ..cluster import OPERATOR_USER, SA_NAMESPACE, BenchCluster
from ..kclient import Client
from ..operator_process import OperatorProcess
from ..timing import Progress
from .control import ControlPlane
from .proxy import ProxyProcess, kubeconfig_through

ROOT = Path(__file__).resolve().parent.parent.parent
LEASE = "staticsite-chaos"
LEASE_DURATION = 10.0  # the operator's default (config.py), which the chart uses too


@dataclass
class Harness:
    cluster: BenchCluster
    driver: Client
    out: Path
    progress: Progress
    sites: int
    threads: int
    audit: AuditLog = field(init=False)
    control: ControlPlane = field(init=False)
    token: str = field(init=False)
    server: str = field(init=False)
    ca_file: str = field(init=False)
    replicas: list[tuple[OperatorProcess, ProxyProcess]] = field(default_factory=list)
    _started: int = 0
    _proxies: int = 0
    _supervising: threading.Event = field(init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    restarts: list[tuple[float, str, int | None]] = field(default_factory=list)  # (wall, log, exit code)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.cluster.audit_log)
        self.control = ControlPlane(self.cluster.directory)
        self.control.record()
        self._supervising = threading.Event()
        self.control.supervise(self._supervising, self.progress)
        threading.Thread(target=self._supervise, name="operator supervisor", daemon=True).start()
        identity = self.cluster.operator_identity(self.out / "operator.kubeconfig", hours=12)
        config: dict[str, Any] = yaml.safe_load(identity.read_text())
        self.token = config["users"][0]["user"]["token"]
        admin: dict[str, Any] = yaml.safe_load(self.cluster.kubeconfig.read_text())
        cluster = admin["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self.ca_file = cluster.get("certificate-authority") or self._ca_from_data(cluster)

    def _ca_from_data(self, cluster: dict[str, Any]) -> str:
        import base64
        path = self.out / "cluster-ca.crt"
        path.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        return str(path)

    # --- operator replicas -------------------------------------------------------------
    def proxy(self, seed: int = 0) -> ProxyProcess:
        self._proxies += 1
        return ProxyProcess(self.server, self.ca_file, seed, self.out / "logs" / f"proxy-{self._proxies}.log")

    def start_operator(self, proxy: ProxyProcess) -> OperatorProcess:
        """One more replica, through `proxy`: leader election on, a new identity."""
        with self._lock:
            op = self._spawn(proxy)
            self.replicas.append((op, proxy))
        return op

    def retire(self, op: OperatorProcess) -> ProxyProcess:
        """Take `op` out of the supervised replicas (before a fault kills or stops it); returns its proxy."""
        with self._lock:
            proxy = next(p for o, p in self.replicas if o is op)
            self.replicas = [(o, p) for o, p in self.replicas if o is not op]
        return proxy

    def _supervise(self) -> None:
        """The kubelet's part: a replica that exits on its own is started again (and the restart noted)."""
        while not self._supervising.wait(1.0):
            with self._lock:
                for i, (op, proxy) in enumerate(self.replicas):
                    if not op.alive():
                        code = op.proc.returncode if op.proc is not None else None
                        self.restarts.append((time.time(), op.log_path.name, code))
                        self.progress(f"WARNING: {op.log_path.name} exited ({code}); restarting it")
                        self.replicas[i] = (self._spawn(proxy), proxy)

    def _spawn(self, proxy: ProxyProcess) -> OperatorProcess:
        self._started += 1
        n = self._started
        kubeconfig = self.out / f"operator-{n}.kubeconfig"
        kubeconfig.write_text(json.dumps(kubeconfig_through(proxy.port, self.token)))
        kubeconfig.chmod(0o600)
        env = {"POD_ID": f"chaos-op-{n}", "STATICSITE_LEADER_ELECTION": "true",
               "STATICSITE_LEADER_ELECTION_NAMESPACE": SA_NAMESPACE, "STATICSITE_LEADER_ELECTION_LEASE": LEASE,
               "STATICSITE_LISTEN_ADDRESS": "127.0.0.1"}
        return OperatorProcess(kubeconfig, self.out / "logs" / f"operator-{n}.log", ROOT / "operator",
                               extra_env=env).start()

    def wait_role(self, op: OperatorProcess, roles: tuple[str, ...], timeout: float = 120) -> float:
        """Seconds until `op` reports a synced cache and one of `roles` on /readyz."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if not op.alive():
                raise RuntimeError(f"operator exited ({op.proc and op.proc.returncode}); see {op.log_path}")
            ready = op.readiness()
            if ready and ready.get("synced") and ready.get("role") in roles:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise TimeoutError(f"{op.log_path.name}: not {'/'.join(roles)} within {timeout}s: {op.readiness()}")

    def leader(self) -> OperatorProcess | None:
        for op, _ in self.replicas:
            if op.alive() and (op.readiness() or {}).get("role") == "leader":
                return op
        return None

    def stop_all(self) -> None:
        with self._lock:
            replicas, self.replicas = self.replicas, []
        for op, proxy in replicas:
            op.stop()
            proxy.stop()

    def close(self) -> None:
        self.stop_all()
        self._supervising.set()

    # --- the control plane -------------------------------------------------------------
    def wait_api(self, timeout: float = 120) -> float:
        """Seconds until the API server serves a list from etcd again."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                self.driver.request("GET", "/api/v1/namespaces", query=[("limit", "1")], timeout=5)
                return time.monotonic() - t0
            except Exception:  # refused, reset, 5xx while it starts: all mean "not yet"
                time.sleep(0.2)
        raise TimeoutError(f"the API server did not come back within {timeout}s")

    def operator_requests(self, mark: Any) -> list[Any]:
        time.sleep(1.5)  # the last records reach the file
        return self.audit.read(mark, keep=(OPERATOR_USER.encode(),))
