"""The shared tier end to end, against the real API server: the operator (in this
process) reconciles a StaticSitePool and shared sites, and a pool agent (a local
process with its own nginx) serves them.

- a shared site becomes Ready when the pool serves its revision, with its url and
  poolRevision; the pool gets its Deployment, Service and status;
- a revision the pool's nginx refuses makes the site Degraded/PoolRejected while the
  pool keeps serving the last good one;
- a tier move, both ways, under a steady request loop through an ingress controller
  stand-in (tests/integration/poolkit.Router), sees no failed request;
- with the Gateway API's real CRDs: the HTTPRoute and ReferenceGrant are admitted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from staticsite_operator.api import models
from staticsite_operator.core import pool as pl
from tests.conftest import Cluster, wait_for
from tests.integration import sites
from tests.integration.poolkit import (  # noqa: F401 - pytest fixtures
    Agent,
    DedicatedPods,
    Router,
    gateway_api,
    pool_crd,
    pool_object,
    run_agent,
)

pytestmark = [pytest.mark.cluster, pytest.mark.nginx, pytest.mark.usefixtures("kube_env", "crd", "pool_crd")]

GRACE = "2"
FILES = {"index.html": "<h1>moving</h1>"}


@pytest.fixture
def pool_ns(cluster: Cluster, namespace: str) -> Iterator[str]:
    name = f"{namespace[:50]}-pool"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    cluster.kubectl("-n", name, "create", "serviceaccount", "staticsite-pool-agent")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def pool(cluster: Cluster, namespace: str, pool_ns: str) -> Iterator[str]:
    name = pool_ns
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(pool_object(name, pool_ns, [namespace])))
    yield name
    cluster.kubectl("delete", "staticsitepool", name, "--wait=false", check=False)


@pytest.fixture
def operator(namespace: str, pool_ns: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STATICSITE_TIER_MOVE_GRACE_SECONDS", GRACE)
    with sites.running_operator(f"{namespace},{pool_ns}"):
        yield


@pytest.fixture
def agent(cluster: Cluster, pool: str, pool_ns: str) -> Iterator[Agent]:
    with run_agent(cluster, pool, pool_ns) as running:
        yield running


def shared(namespace: str, pool: str, files: dict[str, str] = FILES, **spec: Any) -> dict[str, Any]:
    return sites.site("web", namespace, files, domains=spec.pop("domains", ["web.example.test"]),
                      serving={"tier": "shared", "pool": pool}, **spec)


@pytest.mark.usefixtures("operator")
def test_a_shared_site_is_served_by_the_pool_and_ready(cluster: Cluster, namespace: str, pool: str, pool_ns: str,
                                                       agent: Agent) -> None:
    sites.apply(cluster, shared(namespace, pool))
    obj = sites.wait_ready(cluster, namespace, "web")
    status = obj["status"]
    assert status["url"] == "http://web.example.test"
    assert agent.get("web.example.test") == (200, FILES["index.html"].encode())
    assert agent.report(cluster)[f"{namespace}.web"]["served"] == status["poolRevision"]
    assert sites.get(cluster, namespace, "deployment", "web") is None, "no pods of its own"
    ingress = sites.get(cluster, pool_ns, "ingress", f"{namespace}.web")
    assert ingress is not None and ingress["spec"]["rules"][0]["host"] == "web.example.test"
    dep = sites.get(cluster, pool_ns, "deployment", pl.service_name(pool))
    assert dep is not None and dep["metadata"]["ownerReferences"][0]["kind"] == "StaticSitePool"
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "staticsite-pool-agent"
    wait_for(lambda: (cluster.kubectl_json("get", "staticsitepool", pool).get("status") or {}).get("sites") == 1,
             what="the pool's status to count the site")


@pytest.mark.usefixtures("operator")
def test_a_refused_revision_is_pool_rejected_and_the_last_good_one_serves(
        cluster: Cluster, namespace: str, pool: str, agent: Agent) -> None:
    sites.apply(cluster, shared(namespace, pool))
    good = sites.wait_ready(cluster, namespace, "web")["status"]["poolRevision"]
    long_host = "l" * 60 + "." + "o" * 55 + ".example.test"
    sites.apply(cluster, shared(namespace, pool, {"index.html": "new"}, domains=["web.example.test", long_host]))
    cond = sites.wait_condition(cluster, namespace, "web", "Degraded", "True", "PoolRejected")
    assert "map_hash_bucket_size" in cond["message"]
    obj = sites.get(cluster, namespace, "staticsite", "web")
    assert obj is not None and obj["status"]["poolRevision"] == good
    assert agent.get("web.example.test") == (200, FILES["index.html"].encode())


def test_moving_between_tiers_both_ways_fails_no_request(cluster: Cluster, namespace: str, pool: str,
                                                         pool_ns: str, agent: Agent,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    spec = models.StaticSiteSpec.model_validate(sites.site("web", namespace, FILES,
                                                           domains=["web.example.test"])["spec"])
    # The stand-ins are harsh on purpose: the pods go 50 ms after their Deployment, and the
    # router follows the Ingresses only every second, so a move that removed the old tier
    # before the routing moved (grace 0) would fail requests (checked by hand: it does).
    pods = DedicatedPods(namespace, "web", spec, interval=0.05)

    def backends(ns: str, service: str) -> int | None:
        if ns == pool_ns and service == pl.service_name(pool):
            return agent.port
        return pods.port if (ns, service) == (namespace, "web") else None

    monkeypatch.setenv("STATICSITE_TIER_MOVE_GRACE_SECONDS", GRACE)
    router = Router("web.example.test", backends, interval=1.0)
    with sites.running_operator(f"{namespace},{pool_ns}"), pods.running(), router.running():
        sites.apply(cluster, sites.site("web", namespace, FILES, domains=["web.example.test"]))
        sites.wait_ready(cluster, namespace, "web")
        wait_for(lambda: router.get()[0] == 200, what="the dedicated site to answer through the router")
        seen: list[int] = []
        stop = threading.Event()

        def load() -> None:  # bounded: at most 5000 requests or 240 s, to 127.0.0.1 only
            deadline = time.monotonic() + 240
            while not stop.is_set() and len(seen) < 5000 and time.monotonic() < deadline:
                status, body = router.get()
                seen.append(status if body == FILES["index.html"].encode() else -status)
                time.sleep(0.02)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            sites.apply(cluster, shared(namespace, pool))
            wait_for(lambda: sites.get(cluster, namespace, "deployment", "web") is None, timeout=90,
                     what="the dedicated Deployment to go after the move")
            sites.wait_ready(cluster, namespace, "web")
            time.sleep(3)  # the router's lag, and then some: requests go on after each move
            moved_in = len(seen)
            sites.apply(cluster, sites.site("web", namespace, FILES, domains=["web.example.test"]))
            wait_for(lambda: not cluster.kubectl("-n", pool_ns, "get", "configmaps", "-l",
                                                 f"app.kubernetes.io/component={pl.ENTRY}", "-o", "name").stdout,
                     timeout=90, what="the site's pool entries to go after the move back")
            time.sleep(3)
        finally:
            stop.set()
            loader.join()
    failed = [s for s in seen if s != 200]
    assert failed == [], f"{len(failed)} of {len(seen)} requests failed during the moves: {failed[:10]}"
    targets = [t for _, t in router.switches]
    assert targets == [(namespace, "web"), (pool_ns, pl.service_name(pool)), (namespace, "web")], targets
    assert moved_in > 20 and len(seen) - moved_in > 20, "the loop ran through both moves"


@pytest.mark.usefixtures("operator", "gateway_api")
def test_gateway_api_objects_are_admitted_by_the_real_crds(cluster: Cluster, namespace: str, pool: str,
                                                           pool_ns: str, agent: Agent) -> None:
    gateway = {"parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "http"}]}
    sites.apply(cluster, shared(namespace, pool, gateway=gateway))
    sites.wait_ready(cluster, namespace, "web")
    route = sites.get(cluster, namespace, "httproute", "web")
    assert route is not None
    assert route["spec"]["rules"][0]["backendRefs"][0]["namespace"] == pool_ns
    assert route["spec"]["hostnames"] == ["web.example.test"]
    grant = sites.get(cluster, pool_ns, "referencegrant", pl.grant_name(pool, namespace))
    assert grant is not None and grant["spec"]["from"][0]["namespace"] == namespace
    assert sites.get(cluster, pool_ns, "ingress", f"{namespace}.web") is None, "a Gateway site needs no Ingress"
    sites.apply(cluster, sites.site("dedicated", namespace, FILES, domains=["dedicated.example.test"],
                                    gateway=gateway))
    wait_for(lambda: sites.get(cluster, namespace, "httproute", "dedicated"), what="the dedicated site's HTTPRoute")
    route = sites.get(cluster, namespace, "httproute", "dedicated")
    assert route is not None and route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "dedicated", "port": 80, "weight": 1}]
