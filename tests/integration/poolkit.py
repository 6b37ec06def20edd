"""Fixtures and helpers for the shared tier's tests against the real API server: the
StaticSitePool and Gateway API CRDs, and pool agents run as local processes (as the
nginx tests run nginx), each with its own data directory and loopback ports."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from staticsite_operator.api import models
from staticsite_operator.core import pool as pl
from tests.conftest import ROOT, Cluster, wait_for
from tests.unit.nginx_harness import _free_port, nginx_binary, stop, workdir

POOL_CRD = ROOT / "crds" / "staticsite.dev_staticsitepools.yaml"


@pytest.fixture(scope="session")
def pool_crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POOL_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/staticsitepools.staticsite.dev", "--timeout=60s")


@pytest.fixture(scope="session")
def gateway_api(cluster: Cluster) -> None:
    """The Gateway API's standard CRDs, pinned in hack/versions.env (hack/gateway-api.sh)."""
    result = subprocess.run([str(ROOT / "hack" / "gateway-api.sh"), "apply"], env=cluster.env(), text=True,
                            capture_output=True, timeout=600, check=False)
    if result.returncode != 0:
        pytest.fail(f"hack/gateway-api.sh apply failed: {result.stderr}")


def pool_object(name: str, namespace: str, tenants: list[str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSitePool", "metadata": {"name": name},
            "spec": {"namespace": namespace, "replicas": 1, "namespaces": tenants, **spec}}


@dataclass
class Agent:
    port: int
    status_port: int
    data: Path
    proc: subprocess.Popen[bytes]
    log: Path
    pool: str
    namespace: str
    pod: str

    def get(self, host: str, path: str = "/") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def generation(self) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=5)
        try:
            conn.request("GET", "/generation")
            return int(conn.getresponse().read())
        finally:
            conn.close()

    def report(self, cluster: Cluster) -> dict[str, dict[str, str]]:
        res = cluster.kubectl("-n", self.namespace, "get", "configmap", pl.report_name(self.pool, self.pod),
                              "-o", "json", check=False)
        if res.returncode != 0:
            return {}
        return {k: json.loads(v) for k, v in (json.loads(res.stdout).get("data") or {}).items()}

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def run_agent(cluster: Cluster, pool: str, namespace: str, pod: str = "agent-0",
              debounce: float = 0.2) -> Iterator[Agent]:
    """`python -m staticsite_operator.agent` with its nginx, on 127.0.0.1."""
    nginx = nginx_binary()
    with workdir() as tmp:
        port, status_port = _free_port(), _free_port()
        log = tmp / "agent.log"
        env = {**cluster.env(), "STATICSITE_POOL": pool, "STATICSITE_POOL_NAMESPACE": namespace,
               "STATICSITE_POD_NAME": pod, "STATICSITE_POOL_DATA_DIR": str(tmp / "data"),
               "STATICSITE_POOL_LISTEN": f"127.0.0.1:{port}", "STATICSITE_POOL_STATUS_PORT": str(status_port),
               "STATICSITE_POOL_METRICS_PORT": "0", "STATICSITE_NGINX": nginx,
               "STATICSITE_POOL_DEBOUNCE_SECONDS": str(debounce)}
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "staticsite_operator.agent"], env=env, stdout=out,
                                    stderr=out, stdin=subprocess.DEVNULL)
        agent = Agent(port, status_port, tmp / "data", proc, log, pool, namespace, pod)
        try:
            yield agent
        finally:
            stop(proc, timeout=30)


def entry(pool_obj: dict[str, Any], namespace: str, name: str, files: dict[str, str],
          hosts: tuple[str, ...], **spec: Any) -> dict[str, Any]:
    """The entry the operator would write for a shared site (core.pool.render_entry)."""
    parsed = models.StaticSiteSpec.model_validate({
        "content": {"inline": {"files": [{"path": p, "content": c} for p, c in files.items()]}},
        "domains": list(hosts), "serving": {"tier": "shared", "pool": pool_obj["metadata"]["name"]}, **spec})
    return pl.render_entry(pool_obj, pl.parse_pool(pool_obj), namespace, name, f"uid-{name}", parsed, hosts).obj


def apply_all(cluster: Cluster, objs: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))


def wait_served(cluster: Cluster, agent: Agent, revisions: dict[str, str], timeout: float = 60) -> None:
    """Until the agent's report says it serves each site's revision."""
    def served() -> bool:
        report = agent.report(cluster)
        return all((report.get(site) or {}).get("served") == rev for site, rev in revisions.items())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served():
            return
        if agent.proc.poll() is not None:
            pytest.fail(f"the agent exited:\n{agent.output()[-3000:]}")
        time.sleep(0.1)
    wait_for(served, timeout=1, what=f"the agent to serve {len(revisions)} revisions; log:\n{agent.output()[-2000:]}")


def revision(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["annotations"][pl.REVISION_ANNOTATION])



# --- a stand-in for an ingress controller and a dedicated site's pods -----------------------

class Router:
    """An ingress controller stand-in on 127.0.0.1 for one Host: it re-reads the Ingresses
    the API server holds every `interval` seconds (its sync lag) and proxies to the
    backend of the oldest one for the host, as ingress-nginx does with two Ingresses of
    one host. `backends(namespace, service)` gives the local port, or None (502)."""

    def __init__(self, host: str, backends: Any, interval: float = 0.3) -> None:
        import kubernetes

        self.host = host
        self.backends = backends
        self.interval = interval
        self.api = kubernetes.client.NetworkingV1Api(kubernetes.config.new_client_from_config())
        self.target: tuple[str, str] | None = None
        self.stopping = False
        self.port = _free_port()
        self.switches: list[tuple[float, tuple[str, str] | None]] = []

    def _pick(self) -> tuple[str, str] | None:
        found = []
        for ing in self.api.list_ingress_for_all_namespaces().items:
            for rule in ing.spec.rules or []:
                if rule.host == self.host:
                    service = rule.http.paths[0].backend.service.name
                    found.append((ing.metadata.creation_timestamp, ing.metadata.namespace, ing.metadata.name,
                                  (ing.metadata.namespace, service)))
        return min(found)[3] if found else None

    def _sync(self) -> None:
        while not self.stopping:
            try:
                target = self._pick()
            except Exception:
                target = self.target
            if target != self.target:
                self.switches.append((time.monotonic(), target))
                self.target = target
            time.sleep(self.interval)

    @contextmanager
    def running(self) -> Iterator[Router]:
        import http.server
        import threading

        router = self

        class Proxy(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                port = router.backends(*router.target) if router.target else None
                status, body = 502, b"no backend"
                if port is not None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    try:
                        conn.request("GET", self.path, headers={"Host": router.host})
                        resp = conn.getresponse()
                        status, body = resp.status, resp.read()
                    except OSError as exc:
                        status, body = 502, str(exc).encode()
                    finally:
                        conn.close()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Proxy)
        threads = [threading.Thread(target=self._sync, daemon=True),
                   threading.Thread(target=server.serve_forever, daemon=True)]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self.stopping = True
            server.shutdown()
            server.server_close()

    def get(self, path: str = "/") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


class DedicatedPods:
    """A dedicated site's pods, stood in for by a local nginx serving its spec: up while its
    Deployment exists (checked every `interval` seconds), gone when it is deleted."""

    def __init__(self, namespace: str, name: str, spec: models.StaticSiteSpec, interval: float = 0.2) -> None:
        import kubernetes

        self.namespace, self.name, self.spec, self.interval = namespace, name, spec, interval
        self.apps = kubernetes.client.AppsV1Api(kubernetes.config.new_client_from_config())
        self.port: int | None = None
        self.stopping = False

    def _exists(self) -> bool:
        import kubernetes

        try:
            self.apps.read_namespaced_deployment(self.name, self.namespace)
            return True
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise

    @contextmanager
    def running(self) -> Iterator[DedicatedPods]:
        import contextlib
        import threading

        from tests.unit.nginx_harness import serve

        def loop() -> None:
            with contextlib.ExitStack() as stack:
                while not self.stopping:
                    exists = self._exists()
                    if exists and self.port is None:
                        self.port = stack.enter_context(serve(self.spec)).port
                    elif not exists and self.port is not None:
                        self.port = None
                        stack.close()
                    time.sleep(self.interval)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stopping = True
            thread.join(timeout=30)
