"""The shared tier in the core, against the fakes (no cluster): admission to a pool, the
entry, Ready from the agents' reports, PoolRejected, Gateway API routing, the ordered
moves between tiers, and the pool's own reconcile (its objects, pruning, status).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from staticsite_operator.api import conditions as c
from staticsite_operator.api import models
from staticsite_operator.api.pool import POOL_KIND
from staticsite_operator.core import pool as pl
from staticsite_operator.core.poolreconcile import PoolReconciler
from staticsite_operator.core.reconcile import Reconciler
from tests.unit.fakes import Cluster, site

POOL_UID = "pool-uid-1"
FILES = {"inline": {"files": [{"path": "index.html", "content": "<h1>hi</h1>"}]}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool_obj(name: str = "shared", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": POOL_KIND,
            "metadata": {"name": name, "uid": POOL_UID, "generation": 1, "namespace": ""},
            "spec": {"namespace": "pools", "replicas": 2, "namespaces": ["team-*", "ns"], **spec}}


def shared_site(name: str = "web", namespace: str = "ns", created: str = "2026-01-01T00:00:00Z",
                gateway: bool = False, pool: str = "shared", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"content": FILES, "domains": [f"{name}.example.test"],
                            "serving": {"tier": "shared", "pool": pool}, **extra}
    if gateway:
        spec["gateway"] = {"parentRefs": [{"name": "public", "namespace": "gateways"}]}
    return site(name, namespace, uid=f"uid-{namespace}-{name}", created=created, **spec)


def setup(*sites: dict[str, Any], grace: float = 30.0, **pool_spec: Any) -> tuple[Cluster, Reconciler, Clock]:
    cluster, clock = Cluster(), Clock()
    cluster.put(pool_obj(**pool_spec))
    for s in sites:
        cluster.put(s)
    return cluster, Reconciler(cluster, cluster, lambda *_: "", quiet_rollout=0, clock=clock,
                               tier_move_grace=grace), clock


def report(cluster: Cluster, pod: str, states: dict[str, dict[str, str]]) -> None:
    """What an agent writes: its pod's report in the pool's namespace."""
    cluster.put({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": pl.report_name("shared", pod), "namespace": "pools",
                              "labels": pl.pool_labels("shared", pl.REPORT)},
                 "data": {k: json.dumps(v) for k, v in states.items()}})


def entries(cluster: Cluster, site_name: str = "web") -> list[dict[str, Any]]:
    return [o for (kind, ns, _), o in cluster.objects.items() if kind == "ConfigMap" and ns == "pools"
            and (o["metadata"].get("annotations") or {}).get(pl.SITE_ANNOTATION, "").endswith(f"/{site_name}")]


def serve_all(cluster: Cluster, site_name: str = "web", namespace: str = "ns", pods: int = 2) -> str:
    (entry,) = entries(cluster, site_name)
    revision = entry["metadata"]["annotations"][pl.REVISION_ANNOTATION]
    for i in range(pods):
        report(cluster, f"pod-{i}", {pl.site_key(namespace, site_name): {"served": revision}})
    return str(revision)


# --- the API ----------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "field"), [
    ({"serving": {"tier": "shared"}}, "serving.pool"),
    ({"serving": {"pool": "p"}}, "serving.pool"),
    ({"serving": {"tier": "shared", "pool": "p"}}, "domains"),
    ({"serving": {"tier": "shared", "pool": "p"}, "domains": ["a.test"],
      "content": {"git": {"url": "https://example.com/r.git"}}}, "git and archive"),
    ({"serving": {"tier": "shared", "pool": "p"}, "domains": ["a.test"], "ingress": {"tls": {"secretName": "t"}}},
     "ingress.tls"),
    ({"gateway": {"parentRefs": [{"name": "gw"}]}}, "gateway"),
    ({"gateway": {"parentRefs": []}, "domains": ["a.test"]}, "gateway.parentRefs"),
])
def test_the_models_refuse_what_the_shared_tier_cannot_do(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        models.StaticSiteSpec.model_validate({"content": FILES, **spec})
    assert field in str(excinfo.value)


# --- admission ----------------------------------------------------------------------------

def test_a_missing_pool_a_refused_namespace_and_a_full_pool_are_degraded_and_write_nothing_else() -> None:
    cluster, reconcile, _ = setup(shared_site("a", created="2026-01-01T00:00:01Z"),
                                  shared_site("b", created="2026-01-01T00:00:02Z"),
                                  shared_site("c", namespace="other"), shared_site("d", pool="nope"), maxSites=1)
    for namespace, name in [("ns", "a"), ("ns", "b"), ("other", "c"), ("ns", "d")]:
        reconcile.reconcile(namespace, name)
    degraded = {name: (cluster.objects["StaticSite", ns, name]["status"]["conditions"][2])
                for ns, name in [("ns", "a"), ("ns", "b"), ("other", "c"), ("ns", "d")]}
    assert degraded["a"]["status"] == "False"
    assert degraded["b"]["reason"] == c.POOL_FULL and "maximum of 1" in degraded["b"]["message"]
    assert degraded["c"]["reason"] == c.POOL_NOT_ALLOWED and "'other'" in degraded["c"]["message"]
    assert degraded["d"]["reason"] == c.POOL_NOT_FOUND
    written = {(call.kind, call.name) for call in cluster.writes() if call.verb in ("apply", "create")}
    assert all(kind == "ConfigMap" and name.startswith("ns.a.") for kind, name in written), written


# --- a shared site ------------------------------------------------------------------------

def test_a_shared_site_is_ready_once_every_pool_replica_serves_its_revision() -> None:
    cluster, reconcile, _ = setup(shared_site())
    reconcile.reconcile("ns", "web")
    (entry,) = entries(cluster)
    assert entry["metadata"]["namespace"] == "pools" and entry["immutable"] is True
    assert entry["metadata"]["ownerReferences"][0]["uid"] == POOL_UID
    described = json.loads(entry["data"][pl.SITE_JSON])
    assert described["hosts"] == ["web.example.test"] and described["spec"]["content"]["inline"]["files"] == [
        {"path": "index.html", "content": ""}]
    assert cluster.condition(c.READY)["status"] == "False"
    assert not [o for (kind, *_), o in cluster.objects.items() if kind == "Ingress"], "no routing before serving"
    revision = serve_all(cluster, pods=1)
    reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["status"] == "False", "one of two replicas is not enough"
    (ingress,) = [o for (kind, *_), o in cluster.objects.items() if kind == "Ingress"]
    assert ingress["metadata"]["namespace"] == "pools", "routing moves once a replica serves the site"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "pool-shared"
    serve_all(cluster)
    reconcile.reconcile("ns", "web")
    status = cluster.status()
    assert cluster.condition(c.READY)["status"] == "True"
    assert status["poolRevision"] == revision and status["url"] == "http://web.example.test"
    assert status["readyReplicas"] == 2
    cluster.calls.clear()
    reconcile.reconcile("ns", "web")
    assert cluster.writes() == [], "a converged shared site writes nothing"


def test_a_new_revision_replaces_the_entry_and_a_rejected_one_is_reported() -> None:
    cluster, reconcile, _ = setup(shared_site())
    reconcile.reconcile("ns", "web")
    old = serve_all(cluster)
    reconcile.reconcile("ns", "web")
    updated = shared_site(generation=2, status=cluster.status())
    updated["spec"]["content"] = {"inline": {"files": [{"path": "index.html", "content": "v2"}]}}
    cluster.put(updated)
    reconcile.reconcile("ns", "web")
    new = next(e for e in entries(cluster) if e["metadata"]["annotations"][pl.REVISION_ANNOTATION] != old)
    revision = new["metadata"]["annotations"][pl.REVISION_ANNOTATION]
    report(cluster, "pod-0", {"ns.web": {"served": old, "rejected": revision, "error": "host name too long"}})
    reconcile.reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert (degraded["status"], degraded["reason"]) == ("True", c.POOL_REJECTED)
    assert "pod-0" in degraded["message"] and "host name too long" in degraded["message"]
    assert cluster.status()["poolRevision"] == old, "the last good revision is what the pool serves"
    for i in range(2):
        report(cluster, f"pod-{i}", {"ns.web": {"served": revision}})
    reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["status"] == "True"
    assert [e["metadata"]["annotations"][pl.REVISION_ANNOTATION] for e in entries(cluster)] == [revision], \
        "the superseded entry goes once every replica serves the new one"


def test_gateway_routing_for_a_shared_site_uses_the_pool_service_and_a_reference_grant() -> None:
    cluster, reconcile, _ = setup(shared_site(gateway=True))
    reconcile.reconcile("ns", "web")
    serve_all(cluster)
    reconcile.reconcile("ns", "web")
    route = cluster.objects["HTTPRoute", "ns", "web"]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "public", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["web.example.test"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "pool-shared", "namespace": "pools", "port": 80}]
    (grant,) = [o for (kind, *_), o in cluster.objects.items() if kind == "ReferenceGrant"]
    assert grant["metadata"]["namespace"] == "pools"
    assert grant["spec"] == {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "ns"}],
                             "to": [{"group": "", "kind": "Service", "name": "pool-shared"}]}
    assert not [o for (kind, *_), o in cluster.objects.items() if kind == "Ingress"]


def test_a_dedicated_site_with_a_gateway_gets_an_httproute_to_its_own_service_and_no_ingress() -> None:
    cluster = Cluster()
    cluster.put(site(content=FILES, domains=["web.example.test"],
                     gateway={"parentRefs": [{"name": "public", "sectionName": "https"}]}))
    Reconciler(cluster, cluster, lambda *_: "").reconcile("ns", "web")
    route = cluster.objects["HTTPRoute", "ns", "web"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "web", "port": 80}]
    assert ("Ingress", "ns", "web") not in cluster.objects


def test_without_the_gateway_api_a_gateway_site_is_degraded() -> None:
    cluster = Cluster()
    cluster.put(site(content=FILES, domains=["web.example.test"], gateway={"parentRefs": [{"name": "public"}]}))
    Reconciler(cluster, cluster, lambda *_: "", gateway_api=False).reconcile("ns", "web")
    assert cluster.condition(c.DEGRADED)["reason"] == c.GATEWAY_API_UNAVAILABLE


# --- moving between tiers -------------------------------------------------------------------

def _dedicated(cluster: Cluster, reconcile: Reconciler) -> None:
    cluster.put(site(content=FILES, domains=["web.example.test"], uid="uid-ns-web"))
    reconcile.reconcile("ns", "web")
    cluster.roll_out()
    reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["status"] == "True"


def kinds_in(cluster: Cluster, namespace: str) -> set[str]:
    """The kinds of the site's objects in a namespace (not the agents' reports)."""
    return {kind for (kind, ns, _), o in cluster.objects.items() if ns == namespace and kind != "StaticSite"
            and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") != pl.REPORT}


def test_dedicated_to_shared_serves_from_the_pool_before_routing_moves_and_routing_before_pods_go() -> None:
    cluster, reconcile, clock = setup()
    _dedicated(cluster, reconcile)
    cluster.put(shared_site(generation=2, status=cluster.status()))
    reconcile.reconcile("ns", "web")
    assert kinds_in(cluster, "ns") == {"ConfigMap", "Service", "Deployment", "Ingress"}, "nothing goes yet"
    assert len(entries(cluster)) == 1 and kinds_in(cluster, "pools") == {"ConfigMap"}
    serve_all(cluster)
    outcome = reconcile.reconcile("ns", "web")
    assert "Ingress" in kinds_in(cluster, "pools"), "routing moved to the pool"
    assert kinds_in(cluster, "ns") == {"ConfigMap", "Service", "Deployment", "Ingress"}, "the old tier stays a while"
    assert outcome.recheck == pytest.approx(30.0)
    clock.now += 31
    outcome = reconcile.reconcile("ns", "web")
    assert kinds_in(cluster, "ns") == {"ConfigMap", "Service", "Deployment"}, "first the old routing goes"
    assert outcome.recheck == pytest.approx(30.0)
    clock.now += 31
    reconcile.reconcile("ns", "web")
    assert kinds_in(cluster, "ns") == set(), "then, once nothing routes to them, the dedicated objects"
    assert cluster.condition(c.READY)["status"] == "True"


def test_shared_to_dedicated_keeps_routing_on_the_pool_until_the_deployment_is_rolled_out() -> None:
    cluster, reconcile, clock = setup(shared_site())
    reconcile.reconcile("ns", "web")
    serve_all(cluster)
    reconcile.reconcile("ns", "web")
    back = shared_site(generation=2, status=cluster.status())
    del back["spec"]["serving"]
    cluster.put(back)
    reconcile.reconcile("ns", "web")
    assert kinds_in(cluster, "ns") == {"ConfigMap", "Service", "Deployment"}, "no Ingress before the pods are ready"
    assert {"Ingress", "ConfigMap"} <= kinds_in(cluster, "pools")
    cluster.roll_out()
    outcome = reconcile.reconcile("ns", "web")
    assert "Ingress" in kinds_in(cluster, "ns") and "Ingress" in kinds_in(cluster, "pools")
    assert outcome.recheck == pytest.approx(30.0)
    clock.now += 31
    reconcile.reconcile("ns", "web")
    assert kinds_in(cluster, "pools") == {"ConfigMap"}, "first the pool's Ingress for the site goes"
    clock.now += 31
    reconcile.reconcile("ns", "web")
    assert kinds_in(cluster, "pools") == set(), "then its entry"


# --- the pool's own reconcile -----------------------------------------------------------------

def test_the_pool_reconcile_applies_its_objects_prunes_what_gone_sites_left_and_says_how_many_sites() -> None:
    cluster, reconcile, _ = setup(shared_site("a"), shared_site("b", gateway=True, namespace="team-x"),
                                  autoscaling={"minReplicas": 2, "maxReplicas": 4})
    for ns, name in [("ns", "a"), ("team-x", "b")]:
        reconcile.reconcile(ns, name)
        serve_all(cluster, name, ns)
        reconcile.reconcile(ns, name)
    pools = PoolReconciler(cluster, cluster, "pool-image:1")
    pools.reconcile("shared")
    dep = cluster.objects["Deployment", "pools", "pool-shared"]
    assert "replicas" not in dep["spec"], "the autoscaler owns replicas"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "pool-image:1"
    assert cluster.objects["HorizontalPodAutoscaler", "pools", "pool-shared"]["spec"]["maxReplicas"] == 4
    assert cluster.objects["Service", "pools", "pool-shared"]["spec"]["selector"] == pl.pool_selector("shared")
    assert cluster.objects[POOL_KIND, "", "shared"]["status"]["sites"] == 2
    cluster.calls.clear()
    pools.reconcile("shared")
    assert cluster.writes() == [], "a converged pool writes nothing"
    del cluster.objects["StaticSite", "team-x", "b"]  # deleted: its entry, and the grant, are left behind
    pools.reconcile("shared")
    assert not entries(cluster, "b")
    assert not [k for k in cluster.objects if k[0] == "ReferenceGrant"]
    assert entries(cluster, "a"), "a site that still exists keeps its entry"
    assert cluster.objects[POOL_KIND, "", "shared"]["status"]["sites"] == 1


def test_the_annotation_policy_applies_to_gateway_annotations() -> None:
    cluster = Cluster()
    cluster.put(site(content=FILES, domains=["web.example.test"], gateway={
        "parentRefs": [{"name": "public"}], "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "x"}}))
    Reconciler(cluster, cluster, lambda *_: "").reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert degraded["reason"] == c.ANNOTATION_NOT_ALLOWED
    assert degraded["message"].startswith("spec.gateway.annotations: 'nginx.ingress.kubernetes.io/server-snippet'")
    assert ("HTTPRoute", "ns", "web") not in cluster.objects
