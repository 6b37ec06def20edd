"""Helpers of the end-to-end tier: images, namespaces on the real node, helm, port-forwards, HTTP.

Every HTTP request here goes to 127.0.0.1 (a kubectl port-forward) or to a ClusterIP of
this machine's own node (100.64.0.0/16), with a timeout; every loop is bounded in count
and in time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from tests.conftest import ROOT, Cluster, wait_for
from tests.unit.nginx_harness import stop

IMAGES_SH = ROOT / "hack" / "images.sh"
CLUSTER_SH = ROOT / "hack" / "cluster.sh"
CHART = ROOT / "charts" / "staticsite-operator"
HTTP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Images:
    """The local images (hack/images.sh): staticsite.local/NAME:<version>-<hash of inputs>."""

    operator: str
    nginx: str
    fetcher: str
    fixture: str
    pool: str  # the Dockerfile's target pool: a StaticSitePool's agent and nginx


@cache
def images() -> Images:
    """Read the image references; builds a missing image first (make test builds them before pytest)."""
    proc = subprocess.run([str(IMAGES_SH), "env"], capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        pytest.fail(f"hack/images.sh env failed: build the images with `make images`\n{proc.stderr[-3000:]}",
                    pytrace=False)
    refs = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return Images(operator=refs["OPERATOR_IMAGE"], nginx=refs["NGINX_IMAGE"], fetcher=refs["FETCHER_IMAGE"],
                  fixture=refs["FIXTURE_IMAGE"], pool=refs["POOL_IMAGE"])


def real_node_namespace(cluster: Cluster, prefix: str) -> str:
    """A namespace whose pods go to the real node, with the restricted Pod Security Standard enforced."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/enforce-version=latest")
    cluster.use_real_node(name)
    return name


@contextlib.contextmanager
def namespace(cluster: Cluster, prefix: str) -> Iterator[str]:
    """A real-node namespace for a fixture, deleted afterwards even when the set-up fails."""
    name = real_node_namespace(cluster, prefix)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def helm(cluster: Cluster, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["helm", *args], check=False, text=True, capture_output=True, env=cluster.env(),
                            timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: str


def request(host: str, port: int, path: str, *, method: str = "GET", body: bytes | None = None,
            timeout: float = HTTP_TIMEOUT) -> Response:
    """One HTTP request on a new connection; redirects are returned, never followed."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                        resp.read().decode("utf-8", "replace"))
    finally:
        conn.close()


@contextlib.contextmanager
def port_forward(cluster: Cluster, namespace: str, target: str, remote_port: int) -> Iterator[int]:
    """kubectl port-forward TARGET to a free port on 127.0.0.1; yields that port once it answers."""
    proc = subprocess.Popen(["kubectl", "-n", namespace, "port-forward", "--address", "127.0.0.1", target,
                             f":{remote_port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cluster.env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:41234 -> 8080"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"kubectl port-forward {target} did not start: {line!r} {err}")
        port = int(match.group(1))
        wait_for(lambda: _accepts(port), timeout=10, what=f"port-forward to {target} on 127.0.0.1:{port}")
        yield port
    finally:
        stop(proc)


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list(cluster.kubectl_json("-n", namespace, "get", "pods", "-l", selector)["items"])


def ready_pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    def ready(pod: dict[str, Any]) -> bool:
        conds = pod.get("status", {}).get("conditions") or []
        return pod["metadata"].get("deletionTimestamp") is None and any(
            c["type"] == "Ready" and c["status"] == "True" for c in conds)
    return [p for p in pods(cluster, namespace, selector) if ready(p)]


def site_selector(site: str) -> str:
    """The operator's pod selector for a site (labels.selector)."""
    return f"app.kubernetes.io/name=staticsite,app.kubernetes.io/instance={site}"


def cluster_ip(cluster: Cluster, namespace: str, service: str) -> str:
    ip: str = cluster.kubectl_json("-n", namespace, "get", "service", service)["spec"]["clusterIP"]
    assert ip.startswith("100.64."), f"ClusterIP {ip} is outside the node's Service range 100.64.0.0/16"
    return ip


# Run inside a container: its UID and GID, what the kernel says of its privileges, and
# whether / is writable. Only sh, id, grep and touch are needed.
PROBE_SCRIPT = ("id -u; id -g; grep -E '^(NoNewPrivs|CapEff|Seccomp):' /proc/self/status; "
                "if touch /probe-root-write 2>/dev/null; then echo root-writable; else echo root-read-only; fi")


def parse_probe(output: str) -> dict[str, str]:
    lines = output.strip().split("\n")
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines[2:] if ":" in line)}
    return {"uid": lines[0].strip(), "gid": lines[1].strip(), "root": lines[-1].strip(), **fields}


def security_probe(cluster: Cluster, namespace: str, pod: str, container: str) -> dict[str, str]:
    """What the kernel says about a running container's process, read from inside it."""
    return parse_probe(cluster.kubectl("-n", namespace, "exec", pod, "-c", container, "--",
                                       "sh", "-c", PROBE_SCRIPT).stdout)


def assert_restricted(probe: dict[str, str], what: str) -> None:
    """The restricted Pod Security Standard, as the kernel applies it to the process."""
    assert probe["uid"] != "0" and probe["gid"] != "0", f"{what} runs as root: {probe}"
    assert probe["NoNewPrivs"] == "1", f"{what} may gain privileges: {probe}"
    assert int(probe["CapEff"], 16) == 0, f"{what} has effective capabilities: {probe}"
    assert probe["Seccomp"] == "2", f"{what} has no seccomp filter: {probe}"
    assert probe["root"] == "root-read-only", f"{what} can write to /: {probe}"


@dataclass
class OperatorRelease:
    """The chart installed with the local operator image; at most one at a time (two operators
    watching the same namespaces would fight over the same sites)."""

    cluster: Cluster
    release: str = "e2e-operator"
    namespace: str = ""
    watch: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    installs: list[str] = field(default_factory=list)

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component=operator"

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}-staticsite-operator"

    def ensure(self, watch: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> OperatorRelease:
        if self.namespace and (watch, extra) == (self.watch, self.extra):
            return self
        self.uninstall()
        imgs = images()
        repository, _, tag = imgs.operator.rpartition(":")
        self.namespace = real_node_namespace(self.cluster, "e2e-op")
        values = ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
                  "--set", "image.pullPolicy=Never", "--set", f"sites.nginxImage={imgs.nginx}",
                  "--set", f"sites.fetcherImage={imgs.fetcher}"]
        if watch:
            values += ["--set", "watchNamespaces={" + ",".join(watch) + "}"]
        helm(self.cluster, "install", self.release, str(CHART), "-n", self.namespace, *values, *extra,
             "--wait", "--timeout", "120s")
        self.watch, self.extra = watch, extra
        self.installs.append(f"{self.namespace} watch={list(watch) or 'all'}")
        return self

    def uninstall(self) -> None:
        if not self.namespace:
            return
        helm(self.cluster, "uninstall", self.release, "-n", self.namespace, "--wait", "--timeout", "60s",
             check=False)
        self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)
        self.namespace = ""

    def pod(self) -> dict[str, Any]:
        running = [p for p in pods(self.cluster, self.namespace, self.selector)
                   if p["metadata"].get("deletionTimestamp") is None]
        assert len(running) == 1, f"expected one operator pod, got {[p['metadata']['name'] for p in running]}"
        return running[0]


def bounded_loop(seconds: float, max_requests: int) -> Iterator[int]:
    """Yield request numbers until either bound is reached."""
    deadline = time.monotonic() + seconds
    for n in range(max_requests):
        if time.monotonic() >= deadline:
            return
        yield n


# Degraded reasons that waiting cannot cure: the platform's policy refused the spec.
HOPELESS = ("SourceNotAllowed",)


def wait_site_ready(cluster: Cluster, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    """Until Ready=True refers to the site's current generation; a failure shows its conditions."""
    deadline = time.monotonic() + timeout
    obj: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        res = cluster.kubectl("-n", namespace, "get", "staticsite", name, "-o", "json", check=False)
        obj = json.loads(res.stdout) if res.returncode == 0 else None
        status = (obj or {}).get("status") or {}
        conditions = status.get("conditions") or []
        if obj and status.get("observedGeneration") == obj["metadata"]["generation"]:
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return obj
            if any(c["type"] == "Degraded" and c["status"] == "True" and c["reason"] in HOPELESS for c in conditions):
                break
        time.sleep(0.5)
    conditions = ((obj or {}).get("status") or {}).get("conditions")
    pytest.fail(f"StaticSite {namespace}/{name} is not Ready; conditions: {json.dumps(conditions)}")
