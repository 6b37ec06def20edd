"""The shared tier on the real node: a StaticSitePool's pods serve sites of two namespaces.

The chart is installed with `pools.enabled` and its default pool (two replicas) in a
namespace of its own, running the pool image built from the Dockerfile's target `pool`
(hack/images.sh). Checked, as a user would see it:
- two shared sites in two tenant namespaces become Ready, and through the pool's Service
  (its ClusterIP, from the host) each Host gets its own content and its own routing
  (a spec redirect, the SPA fallback, the content's `_redirects` and `_headers`), an
  unknown Host a 404;
- an update goes live on every pool pod (each asked directly), while a bounded request
  loop through the Service sees no failed request and no third body;
- deleting a pool pod loses no site: the replacement takes traffic only once it serves
  every site (its readiness waits for the full sync), and the loop sees no failure;
- the agent's ServiceAccount reads its pool's ConfigMaps and nothing else: no Secret
  anywhere, no tenant's ConfigMap (`kubectl auth can-i` as that account);
- a site moves dedicated -> shared -> dedicated by one field, Ready on each tier and
  served by each (its own Service, then the pool's). The zero-error claim of the move is
  the integration tier's (through an ingress stand-in): this node has no ingress
  controller.

Every request goes to a ClusterIP or pod IP of this machine's own node, bounded in count
and in time.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ROOT, Cluster, wait_for
from tests.e2e import kit
from tests.integration import sites

POOL = "e2e-shared"
POOL_CRD = ROOT / "crds" / "staticsite.dev_staticsitepools.yaml"
POOL_SELECTOR = f"app.kubernetes.io/name=staticsite-pool,staticsite.dev/pool={POOL}"
AGENT_SA = "staticsite-pool-agent"
LOOP_SECONDS = 90
MAX_REQUESTS = 10_000
PAUSE = 0.01

A_HOST, B_HOST = "a.pool-e2e.test", "b.pool-e2e.test"
A_FILES = {"index.html": "A ONE", "app/index.html": "A APP"}
B_FILES = {"index.html": "B HOME", "docs/new.html": "B NEW",
           "_redirects": "/old/* /docs/:splat 301\n", "_headers": "/*\n  X-Tenant: b\n"}


@dataclass(frozen=True)
class Setup:
    release: kit.OperatorRelease
    pool_ns: str
    a: str  # tenant namespaces
    b: str


def get(address: str, port: int, host: str, path: str, timeout: float = 3) -> kit.Response:
    """One request to a ClusterIP or pod IP of the node, with the Host header a site answers to."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return kit.Response(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                            resp.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def pool_pods(cluster: Cluster, pool_ns: str) -> list[dict[str, Any]]:
    return kit.ready_pods(cluster, pool_ns, POOL_SELECTOR)


def pod_ip(pod: dict[str, Any]) -> str:
    ip: str = pod["status"]["podIP"]
    assert ip.startswith("100.96.0."), f"pod IP {ip} is outside the real node's pod range 100.96.0.0/24"
    return ip


def pool_ip(cluster: Cluster, pool_ns: str) -> str:
    return kit.cluster_ip(cluster, pool_ns, f"pool-{POOL}")


def shared_site(name: str, namespace: str, files: dict[str, str], host: str, **spec: Any) -> dict[str, Any]:
    return sites.site(name, namespace, files, domains=[host], serving={"tier": "shared", "pool": POOL}, **spec)


@pytest.fixture(scope="module")
def setup(cluster: Cluster, operator: kit.OperatorRelease, node: str, images: kit.Images) -> Iterator[Setup]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POOL_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/staticsitepools.staticsite.dev", "--timeout=60s")
    with kit.namespace(cluster, "e2e-pool") as pool_ns, kit.namespace(cluster, "e2e-ta") as a, \
            kit.namespace(cluster, "e2e-tb") as b:
        release = operator.ensure(extra=(
            "--set", "pools.enabled=true", "--set", f"pools.image={images.pool}",
            "--set", "pools.tierMoveGraceSeconds=3",
            "--set", "pools.default.enabled=true", "--set", f"pools.default.name={POOL}",
            "--set", f"pools.default.namespace={pool_ns}", "--set", "pools.default.replicas=2",
            "--set", "pools.default.namespaces={" + f"{a},{b}" + "}"))
        try:
            wait_for(lambda: len(pool_pods(cluster, pool_ns)) == 2, timeout=180,
                     what=f"two Ready pods of pool {POOL} in {pool_ns}")
            sites.apply(cluster, shared_site("one", a, A_FILES, A_HOST, routing={"spa": True}))
            sites.apply(cluster, shared_site("two", b, B_FILES, B_HOST, routing={
                "redirects": [{"from": "/legacy", "to": "/", "status": 302}]}))
            kit.wait_site_ready(cluster, a, "one", timeout=120)
            kit.wait_site_ready(cluster, b, "two", timeout=120)
            yield Setup(release, pool_ns, a, b)
        finally:
            # The pool's namespace goes with this module: the release that runs the pool goes first.
            release.uninstall()


def test_pool_pods_run_the_pool_image_restricted(cluster: Cluster, setup: Setup, images: kit.Images,
                                                 node: str) -> None:
    pods = pool_pods(cluster, setup.pool_ns)
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == node
        [container] = pod["spec"]["containers"]
        assert container["image"] == images.pool
        assert pod["spec"]["serviceAccountName"] == AGENT_SA
        assert not [v for v in pod["spec"].get("volumes") or [] if "secret" in v], "no Secret is mounted"
        kit.assert_restricted(kit.security_probe(cluster, setup.pool_ns, pod["metadata"]["name"], "agent"),
                              "the pool's agent")


def test_each_host_gets_its_own_site_and_routing(cluster: Cluster, setup: Setup) -> None:
    ip = pool_ip(cluster, setup.pool_ns)
    assert get(ip, 80, A_HOST, "/").body == "A ONE"
    assert get(ip, 80, A_HOST, "/deep/link").body == "A ONE", "the SPA fallback"
    assert get(ip, 80, B_HOST, "/").body == "B HOME"
    assert get(ip, 80, B_HOST, "/deep/link").status == 404, "b is no SPA"
    moved = get(ip, 80, B_HOST, "/old/new.html")
    assert (moved.status, moved.headers.get("location")) == (301, "/docs/new.html"), "b's _redirects"
    assert get(ip, 80, B_HOST, "/").headers.get("x-tenant") == "b", "b's _headers"
    assert get(ip, 80, A_HOST, "/").headers.get("x-tenant") is None, "b's headers stay on b"
    assert get(ip, 80, A_HOST, "/old/new.html").body == "A ONE", "b's redirects stay on b"
    legacy = get(ip, 80, B_HOST, "/legacy")
    assert (legacy.status, legacy.headers.get("location")) == (302, "/")
    assert get(ip, 80, B_HOST, "/_redirects").status == 404, "routing files are never served"
    assert get(ip, 80, "unknown.pool-e2e.test", "/").status == 404
    for namespace, name, host in ((setup.a, "one", A_HOST), (setup.b, "two", B_HOST)):
        obj = sites.get(cluster, namespace, "staticsite", name)
        assert obj is not None
        status = obj["status"]
        assert status["url"] == f"http://{host}"
        assert status["readyReplicas"] == 2 and status["poolRevision"], status


class Loop(threading.Thread):
    """GET / of one Host through the pool's Service on a new connection each time, until stopped."""

    def __init__(self, ip: str, host: str) -> None:
        super().__init__(daemon=True)
        self.ip, self.host = ip, host
        self.stop = threading.Event()
        self.outcomes: Counter[str] = Counter()

    def run(self) -> None:
        for _ in kit.bounded_loop(LOOP_SECONDS, MAX_REQUESTS):
            if self.stop.is_set():
                return
            try:
                resp = get(self.ip, 80, self.host, "/", timeout=2)
                self.outcomes[resp.body if resp.status == 200 else f"HTTP {resp.status}: {resp.body[:80]!r}"] += 1
            except OSError as exc:
                self.outcomes[f"{type(exc).__name__}: {exc}"] += 1
            time.sleep(PAUSE)

    def __enter__(self) -> Loop:
        self.start()
        wait_for(lambda: sum(self.outcomes.values()) > 5, timeout=10, what="the request loop to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=10)


def served_everywhere(cluster: Cluster, pool_ns: str, host: str, body: str) -> bool:
    pods = pool_pods(cluster, pool_ns)
    return len(pods) == 2 and all(get(pod_ip(p), 8080, host, "/").body == body for p in pods)


def test_an_update_goes_live_on_every_pod_without_a_failed_request(cluster: Cluster, setup: Setup) -> None:
    ip = pool_ip(cluster, setup.pool_ns)
    with Loop(ip, A_HOST) as loop:
        sites.apply(cluster, shared_site("one", setup.a, {**A_FILES, "index.html": "A TWO"}, A_HOST,
                                         routing={"spa": True}))
        wait_for(lambda: served_everywhere(cluster, setup.pool_ns, A_HOST, "A TWO"), timeout=60,
                 what="the new revision on every pool pod")
        time.sleep(2)
    assert set(loop.outcomes) == {"A ONE", "A TWO"}, f"failed or mixed responses: {dict(loop.outcomes)}"
    kit.wait_site_ready(cluster, setup.a, "one", timeout=60)
    assert get(ip, 80, B_HOST, "/").body == "B HOME", "the other tenant's site is untouched"


def test_deleting_a_pool_pod_loses_no_site(cluster: Cluster, setup: Setup) -> None:
    ip = pool_ip(cluster, setup.pool_ns)
    before = {p["metadata"]["name"] for p in pool_pods(cluster, setup.pool_ns)}
    victim = sorted(before)[0]
    with Loop(ip, B_HOST) as loop:
        cluster.kubectl("-n", setup.pool_ns, "delete", "pod", victim, "--wait=false")
        wait_for(lambda: len({p["metadata"]["name"] for p in pool_pods(cluster, setup.pool_ns)} - before) == 1
                 and len(pool_pods(cluster, setup.pool_ns)) == 2, timeout=120, what="a replacement pool pod, Ready")
        # The replacement serves both sites the moment it is Ready (readiness waits for the full sync).
        new = [p for p in pool_pods(cluster, setup.pool_ns) if p["metadata"]["name"] not in before]
        assert get(pod_ip(new[0]), 8080, B_HOST, "/").body == "B HOME"
        assert get(pod_ip(new[0]), 8080, A_HOST, "/").body in ("A ONE", "A TWO")
        time.sleep(5)
    assert set(loop.outcomes) == {"B HOME"}, f"failed requests while a pool pod was replaced: {dict(loop.outcomes)}"


def can_i(cluster: Cluster, verb: str, resource: str, namespace: str, pool_ns: str) -> bool:
    res = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace,
                          f"--as=system:serviceaccount:{pool_ns}:{AGENT_SA}", check=False)
    return res.stdout.strip() == "yes"


def test_the_agent_reads_its_pool_and_nothing_else(cluster: Cluster, setup: Setup) -> None:
    assert can_i(cluster, "list", "configmaps", setup.pool_ns, setup.pool_ns), "the agent must read its entries"
    assert can_i(cluster, "watch", "configmaps", setup.pool_ns, setup.pool_ns)
    for namespace in (setup.pool_ns, setup.a, setup.b, "default"):
        for verb in ("get", "list", "watch"):
            assert not can_i(cluster, verb, "secrets", namespace, setup.pool_ns), f"{verb} secrets in {namespace}"
    for namespace in (setup.a, setup.b, "default"):
        assert not can_i(cluster, "get", "configmaps", namespace, setup.pool_ns), f"configmaps of {namespace}"
    assert not can_i(cluster, "list", "staticsites.staticsite.dev", setup.a, setup.pool_ns)
    assert not can_i(cluster, "create", "pods", setup.pool_ns, setup.pool_ns)


def test_a_site_moves_between_tiers_by_one_field(cluster: Cluster, setup: Setup) -> None:
    ns, host = setup.b, "move.pool-e2e.test"
    files = {"index.html": "MOVING"}
    sites.apply(cluster, sites.site("mover", ns, files, domains=[host]))
    kit.wait_site_ready(cluster, ns, "mover", timeout=120)
    assert kit.ready_pods(cluster, ns, kit.site_selector("mover")), "served by its own pod first"

    sites.apply(cluster, shared_site("mover", ns, files, host))
    kit.wait_site_ready(cluster, ns, "mover", timeout=120)
    assert get(pool_ip(cluster, setup.pool_ns), 80, host, "/").body == "MOVING"
    # After the grace periods (3 s each here) the dedicated tier is gone.
    wait_for(lambda: sites.get(cluster, ns, "deployment", "mover") is None, timeout=60,
             what="the dedicated Deployment to go after the move to the pool")

    sites.apply(cluster, sites.site("mover", ns, files, domains=[host]))
    kit.wait_site_ready(cluster, ns, "mover", timeout=120)
    service_ip = kit.cluster_ip(cluster, ns, "mover")
    assert get(service_ip, 80, host, "/").body == "MOVING"
    wait_for(lambda: get(pool_ip(cluster, setup.pool_ns), 80, host, "/").status == 404, timeout=60,
             what="the pool to stop serving the site after the move back")
    entries = cluster.kubectl_json("-n", setup.pool_ns, "get", "configmaps")["items"]
    wait_for(lambda: not [e for e in cluster.kubectl_json("-n", setup.pool_ns, "get", "configmaps")["items"]
                          if e["metadata"]["name"].startswith(f"{ns}.mover.")], timeout=60,
             what=f"the site's pool entries to go (had {len(entries)} ConfigMaps)")
