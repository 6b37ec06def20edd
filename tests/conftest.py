"""Shared fixtures: a real Kubernetes API for the tests that need one.

- default: the local cluster (hack/cluster.sh), started here if it is not running
  and stopped at the end if this session started it. Its pods go to kwok's fake nodes,
  except in namespaces that opt in to the real node (`Cluster.use_real_node`, used by
  tests/e2e): the images of the integration tests' pods cannot be pulled here;
- `--kubeconfig PATH`: an existing cluster;
- `--cluster=kind`: a kind cluster from pytest-kind-ng, on a host with Docker.

Each test gets its own namespace, labelled to *enforce* the restricted Pod Security
Standard, so a pod template that breaks it fails the test at admission.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bench import audit as audit_log

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "hack" / "cluster.sh"
CRD_FILE = ROOT / "crds" / "staticsite.dev_staticsites.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    # --kubeconfig and --keep-cluster come from pytest-kind-ng; we honour them for kwok too.
    group = parser.getgroup("staticsite")
    group.addoption("--cluster", default="kwok", choices=["kwok", "kind"],
                    help="kwok: local control plane from hack/cluster.sh (default); kind: pytest-kind-ng (Docker)")


@dataclass
class Cluster:
    kubeconfig: str
    tools_bin: str | None
    audit_log: Path | None  # only the local cluster writes one

    def env(self) -> dict[str, str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        if self.tools_bin:
            env["PATH"] = f"{self.tools_bin}:{env['PATH']}"
        return env

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["kubectl", *args], input=input, text=True, capture_output=True,
                                env=self.env(), timeout=120, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def use_real_node(self, namespace: str) -> None:
        """Pods of `namespace` go to the real node (a default toleration and node selector)."""
        result = subprocess.run([str(CLUSTER_SH), "use-real-node", namespace], text=True, capture_output=True,
                                env=self.env() | {"KUBECONFIG_PATH": self.kubeconfig}, timeout=60, check=False)
        if result.returncode != 0:
            pytest.fail(f"hack/cluster.sh use-real-node {namespace} failed: {result.stderr.strip()}")


def _cluster_env_value(name: str) -> str:
    out = subprocess.run([str(CLUSTER_SH), "env"], text=True, capture_output=True, check=True).stdout
    return out.split(f'{name}="', 1)[1].split('"', 1)[0].split(":$PATH")[0]


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    kubeconfig = request.config.getoption("--kubeconfig")
    mode = request.config.getoption("--cluster")
    tools_bin = _cluster_env_value("PATH")
    if kubeconfig:
        yield Cluster(kubeconfig, tools_bin if Path(tools_bin).is_dir() else None, None)
        return
    if mode == "kind":
        kind_cluster = request.getfixturevalue("kind_cluster")  # from pytest-kind-ng; needs Docker
        yield Cluster(str(kind_cluster.kubeconfig_path), None, None)
        return
    started = subprocess.run([str(CLUSTER_SH), "status"], check=False).returncode != 0
    if started:
        # Builds the tools on first use (minutes), then starts in seconds; progress goes to stderr.
        subprocess.run([str(CLUSTER_SH), "up"], check=True, stdout=subprocess.DEVNULL)
    audit = Path(subprocess.run([str(CLUSTER_SH), "audit-log"], text=True, capture_output=True,
                                check=True).stdout.strip())
    yield Cluster(_cluster_env_value("KUBECONFIG"), tools_bin, audit)
    if started and not request.config.getoption("--keep-cluster"):
        subprocess.run([str(CLUSTER_SH), "down"], check=False)


@pytest.fixture(scope="session")
def kube_env(cluster: Cluster) -> Iterator[Cluster]:
    """Point this process (kopf, the kubernetes client) at the test cluster."""
    from kubernetes.config import kube_config

    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    # The kubernetes client (and so kopf's login) reads $KUBECONFIG once, at import time.
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = cluster.kubeconfig
    os.environ.setdefault("STATICSITE_METRICS_PORT", "0")  # many operators start in one process
    yield cluster
    if old is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = old


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    cluster.kubectl("wait", "--for=condition=Established", "crd/staticsites.staticsite.dev", "--timeout=60s")


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/enforce-version=latest")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.3, what: str = "") -> Any:
    """Poll until `predicate` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}; last value: {last!r}")


class AuditLog:
    """Write requests the API server recorded since the last mark (bench.audit reads the
    log, rotated files included; the local cluster's audit policy logs every write)."""

    def __init__(self, path: Path) -> None:
        self.log = audit_log.AuditLog(path)
        self.mark()

    def mark(self) -> None:
        self._mark = self.log.mark()

    def writes(self, user_agent_prefixes: tuple[str, ...] = ("staticsite-operator", "kopf"),
               user: str | None = None, reviews: bool = False) -> list[audit_log.Request]:
        """`reviews`: also the access reviews, which store nothing but are asked as creates."""
        return [r for r in self.log.read(self._mark, keep=(b"",))
                if (r.is_write or (reviews and r.verb not in audit_log.READS))
                and r.user_agent.startswith(user_agent_prefixes)
                and (user is None or r.user == user)]


@pytest.fixture
def audit(cluster: Cluster) -> AuditLog:
    if cluster.audit_log is None:
        pytest.skip("needs the API server's audit log, which only the local kwok cluster provides")
    return AuditLog(cluster.audit_log)
