"""The bench's own cluster, and the identity its operator runs as.

The cluster comes from hack/cluster.sh under another name, kubeconfig and node count,
so the test cluster ("staticsite") is never touched. The operator runs as the
ServiceAccount staticsite-bench/operator: the audit policy in hack/cluster.sh logs
*every* request of that user (reads too), which is how the bench counts the
operator's API requests, kopf's own included. Everyone else is logged for writes only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "hack" / "cluster.sh"
CRD_FILE = ROOT / "crds" / "staticsite.dev_staticsites.yaml"
SA_NAMESPACE, SA_NAME = "staticsite-bench", "operator"
OPERATOR_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
BENCH_SERVICE_CIDR = "100.65.0.0/16"  # outside 10/8, and next to the cluster's own 100.64.0.0/16 (hack/lib.sh)


def cache_dir() -> Path:
    root = os.environ.get("STATICSITE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "staticsite-operator")
    return Path(root)


@dataclass
class BenchCluster:
    name: str
    nodes: int
    kubeconfig: Path
    # The controller-manager's client rate limit, when the cluster is created (hack/cluster.sh
    # KCM_API_QPS); None: its default of 20/s.
    kcm_qps: int | None = None

    @classmethod
    def named(cls, name: str, nodes: int, kcm_qps: int | None = None) -> BenchCluster:
        return cls(name, nodes, cache_dir() / f"kubeconfig-{name}", kcm_qps)

    # --- hack/cluster.sh ---------------------------------------------------------------
    def _sh(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, CLUSTER_NAME=self.name, KUBECONFIG_PATH=str(self.kubeconfig), NODES=str(self.nodes),
                   KCM_API_QPS=str(self.kcm_qps or ""))
        return subprocess.run([str(CLUSTER_SH), *args], env=env, text=True, capture_output=True,
                              timeout=timeout, check=False)

    def env(self) -> dict[str, str]:
        out = self._sh("env").stdout
        path = out.split('PATH="', 1)[1].split(":$PATH", 1)[0]
        return dict(os.environ, PATH=f"{path}:{os.environ['PATH']}", KUBECONFIG=str(self.kubeconfig))

    def running(self) -> bool:
        return self._sh("status", timeout=30).returncode == 0

    def up(self) -> None:
        # Building the tools the first time takes minutes; starting takes seconds.
        result = self._sh("up")
        if result.returncode != 0:
            raise RuntimeError(f"hack/cluster.sh up failed:\n{result.stderr[-3000:]}")

    def ensure_nodes(self) -> int:
        """A reused cluster may have fewer nodes than this run needs: add them (never removes)."""
        have = len(self.kubectl("get", "nodes", "-o", "name").split())
        if have < self.nodes:
            env = self.env() | {"KWOK_WORKDIR": os.environ.get("KWOK_WORKDIR") or str(cache_dir() / "kwok")}
            subprocess.run(["kwokctl", "scale", "node", "--name", self.name, "--replicas", str(self.nodes)],
                           env=env, capture_output=True, timeout=300, check=True)
            self.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")
            have = self.nodes
        return have

    def down(self) -> None:
        self._sh("down", timeout=120)

    @functools.cached_property
    def directory(self) -> Path:
        return Path(self._sh("audit-log").stdout.strip()).parent.parent

    @property
    def audit_log(self) -> Path:
        return self.directory / "logs" / "audit.log"

    def logs_every_request_of(self, user: str) -> bool:
        """Whether the running cluster's audit policy has the bench's all-verbs rule."""
        policy = self.directory / "audit.yaml"
        return policy.exists() and user in policy.read_text()

    def running_kcm_qps(self) -> int:
        """The controller-manager's client requests/s as the running cluster was started (a reused
        cluster keeps its flags, whatever this run asked for)."""
        config = self.directory / "kwok.yaml"
        found = re.search(r"--kube-api-qps=(\d+)", config.read_text()) if config.exists() else None
        return int(found.group(1)) if found else 20

    def component_pids(self) -> dict[str, int]:
        """Control-plane processes by component name (kwokctl's binary runtime writes pid files)."""
        out = {}
        for pid_file in sorted((self.directory / "pids").glob("*.pid")):
            try:
                out[pid_file.stem] = int(pid_file.read_text().strip())
            except ValueError:
                continue
        return out

    # --- kubectl -------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(["kubectl", *args], input=input, text=True, capture_output=True,
                                env=self.env(), timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def kube_version(self) -> str:
        info = json.loads(self.kubectl("version", "-o", "json"))
        return str(info.get("serverVersion", {}).get("gitVersion", "unknown"))

    def install_crd(self, crd: Path = CRD_FILE) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        self.kubectl("wait", "--for=condition=Established", "crd/staticsites.staticsite.dev", "--timeout=60s")

    def widen_service_ips(self) -> None:
        """Room for more than ~250 Services: a second ServiceCIDR of 65k addresses.

        kwokctl starts the API server with a /24 service range, and every site has a
        ClusterIP Service: at 1000 sites creates fail with "range is full". Kubernetes
        allocates from every ServiceCIDR object (MultiCIDRServiceAllocator, GA in 1.33),
        so one more is added at run time; hack/cluster.sh stays as the tests use it.
        """
        cidr = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                "metadata": {"name": "staticsite-bench"}, "spec": {"cidrs": [BENCH_SERVICE_CIDR]}}
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(cidr))
        self.kubectl("wait", "--for=condition=Ready", "servicecidr/staticsite-bench", "--timeout=60s")

    def operator_identity(self, out: Path, hours: int = 2) -> Path:
        """A kubeconfig for the bench ServiceAccount (cluster-admin), with a fresh token.

        cluster-admin rather than the chart's ClusterRole: the chart is not the subject of
        this bench, and RBAC evaluation costs the API server the same either way.
        """
        manifests = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SA_NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA_NAME, "namespace": SA_NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "staticsite-bench-operator"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
             "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}]},
        ]
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                           "items": manifests}))
        token = self.kubectl("-n", SA_NAMESPACE, "create", "token", SA_NAME, f"--duration={hours}h").strip()
        admin: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        server = admin["clusters"][0]["cluster"]
        cluster = {k: v for k, v in server.items() if k in ("server", "certificate-authority",
                                                             "certificate-authority-data")}
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "bench-operator",
            "clusters": [{"name": self.name, "cluster": cluster}],
            "users": [{"name": OPERATOR_USER, "user": {"token": token}}],
            "contexts": [{"name": "bench-operator", "context": {"cluster": self.name, "user": OPERATOR_USER}}],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(config))
        out.chmod(0o600)
        return out

    def delete_namespace(self, name: str, wait: float = 0.0) -> None:
        """Delete a namespace, and wait up to `wait` seconds until it is gone. Without waiting,
        scenario e has already emptied it; after the scale run it holds 10,000 sites, whose
        garbage collection must not run under the floor's clock."""
        self.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            left = max(1, min(60, int(deadline - time.monotonic())))
            self.kubectl("wait", "--for=delete", f"namespace/{name}", f"--timeout={left}s", check=False,
                         timeout=left + 30)
            if not self.kubectl("get", "namespace", name, "--ignore-not-found", check=False):
                return
        if wait:
            raise RuntimeError(f"namespace {name} still exists after {wait:.0f}s")
