"""The cache's view of the shared tier (runtime.poolindex through runtime.cache): which
sites and pools each event concerns, and what the reconciles read back."""

from __future__ import annotations

import json
from typing import Any

from staticsite_operator.core import kinds
from staticsite_operator.core import pool as pl
from staticsite_operator.runtime.cache import Cache
from staticsite_operator.runtime.poolindex import pool_key


def site_body(name: str, created: str, pool: str | None = "p", rv: str = "1") -> dict[str, Any]:
    spec: dict[str, Any] = {"domains": [f"{name}.test"]}
    if pool:
        spec["serving"] = {"tier": "shared", "pool": pool}
    return {"kind": "StaticSite", "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}",
                                               "resourceVersion": rv, "creationTimestamp": created}, "spec": spec}


def in_pool(name: str, component: str, rv: str, site: str | None = None,
            data: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "pools", "resourceVersion": rv,
                            "labels": pl.pool_labels("p", component)}
    if site:
        meta["annotations"] = {pl.SITE_ANNOTATION: site}
    return {"kind": "ConfigMap", "metadata": meta, "data": data or {}}


def test_members_are_kept_in_creation_order_and_a_free_place_requeues_the_others() -> None:
    cache = Cache()
    assert cache.observe(kinds.STATICSITE, None, site_body("b", "2026-01-02T00:00:00Z")) >= {pool_key("p")}
    cache.observe(kinds.STATICSITE, None, site_body("a", "2026-01-01T00:00:00Z"))
    assert [m.name for m in cache.pool_members("p")] == ["a", "b"]
    affected = cache.observe(kinds.STATICSITE, "MODIFIED", site_body("a", "2026-01-01T00:00:00Z", pool=None, rv="2"))
    assert {pool_key("p"), ("ns", "b")} <= affected, "b may now be admitted"
    assert [m.name for m in cache.pool_members("p")] == ["b"]


def test_entries_and_reports_concern_their_site_and_pool() -> None:
    cache = Cache()
    affected = cache.observe(kinds.CONFIGMAP, None, in_pool("ns.a.0123", pl.ENTRY, "5", site="ns/a"))
    assert affected == {pool_key("p"), ("ns", "a")}
    assert [o["metadata"]["name"] for o in cache.site_pool_objects("ns", "a")] == ["ns.a.0123"]
    report = in_pool("pool-p.report.x", pl.REPORT, "6", data={"ns.a": json.dumps({"served": "r1"}),
                                                               "ns.b": json.dumps({"served": "r1"})})
    assert cache.observe(kinds.CONFIGMAP, None, report) == {pool_key("p"), ("ns", "a"), ("ns", "b")}
    report["metadata"]["resourceVersion"] = "7"
    report["data"]["ns.b"] = json.dumps({"served": "r2"})
    assert cache.observe(kinds.CONFIGMAP, "MODIFIED", report) == {pool_key("p"), ("ns", "b")}, \
        "only the site whose state changed"
    assert cache.pool_reports("p") == {"pool-p.report.x": {"ns.a": {"served": "r1"}, "ns.b": {"served": "r2"}}}
    assert cache.observe(kinds.CONFIGMAP, "DELETED", report) >= {("ns", "a"), ("ns", "b")}
    assert cache.pool_reports("p") == {}


def test_a_pool_is_cluster_scoped_and_its_events_concern_its_members() -> None:
    cache = Cache()
    cache.observe(kinds.STATICSITE, None, site_body("a", "2026-01-01T00:00:00Z"))
    pool = {"kind": "StaticSitePool", "metadata": {"name": "p", "uid": "pu", "resourceVersion": "3"},
            "spec": {"namespace": "pools"}}
    assert cache.observe(kinds.STATICSITEPOOL, None, pool) == {pool_key("p"), ("ns", "a")}
    found = cache.pool("p")
    assert found is not None and found["spec"] == {"namespace": "pools"}
