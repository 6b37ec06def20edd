"""What N sites ask of the cluster, dedicated against shared: from the manifests the
operator renders (core.render, core.pool), so the figures are exactly what it applies."""

from __future__ import annotations

from collections import Counter
from typing import Any

from staticsite_operator.api import models
from staticsite_operator.core import pool as pl
from staticsite_operator.core import quantity, render


def site_spec(i: int, tier: str, pool: str = "shared", version: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "content": {"inline": {"files": [{"path": "index.html", "content": f"site {i} v{version}"},
                                         {"path": "404.html", "content": "not found"}]}},
        "domains": [f"s{i}.bench.example.test"], "routing": {"cleanUrls": True}}
    if tier == "shared":
        spec["serving"] = {"tier": "shared", "pool": pool}
    return spec


def _pod_requests(template: dict[str, Any]) -> tuple[float, float]:
    cpu = mem = 0.0
    for container in template["spec"]["containers"]:
        req = (container.get("resources") or {}).get("requests") or {}
        cpu += float(quantity.parse(req.get("cpu")) or 0)
        mem += float(quantity.parse(req.get("memory")) or 0)
    return cpu, mem


def dedicated(n: int) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    cpu = mem = 0.0
    pods = 0
    for i in range(n):
        spec = models.StaticSiteSpec.model_validate(site_spec(i, "dedicated"))
        for obj in render.render(render.Site(f"s{i}", "bench", f"uid-{i}", spec)).objects:
            kinds[obj["kind"]] += 1
            if obj["kind"] == "Deployment":
                c, m = _pod_requests(obj["spec"]["template"])
                replicas = obj["spec"]["replicas"]
                cpu, mem, pods = cpu + c * replicas, mem + m * replicas, pods + replicas
    return {"pods": pods, "cpu_cores": round(cpu, 3), "memory_mib": round(mem / 2**20, 1),
            "cluster_ips": kinds["Service"], "objects": dict(kinds)}


def shared(n: int, replicas: int) -> dict[str, Any]:
    pool_obj = {"metadata": {"name": "shared", "uid": "pool-uid"},
                "spec": {"namespace": "pools", "replicas": replicas, "namespaces": ["*"]}}
    pspec = pl.parse_pool(pool_obj)
    kinds: Counter[str] = Counter()
    cpu = mem = 0.0
    for obj in pl.render_pool(pool_obj, pspec, "pool:bench"):
        kinds[obj["kind"]] += 1
        if obj["kind"] == "Deployment":
            c, m = _pod_requests(obj["spec"]["template"])
            cpu, mem = c * replicas, m * replicas
    for i in range(n):
        spec = models.StaticSiteSpec.model_validate(site_spec(i, "shared"))
        hosts = tuple(spec.domains)
        kinds[pl.render_entry(pool_obj, pspec, "bench", f"s{i}", f"uid-{i}", spec, hosts).obj["kind"]] += 1
        kinds[pl.render_pool_ingress(pool_obj, pspec, "bench", f"s{i}", spec, hosts)["kind"]] += 1
    return {"pods": replicas, "cpu_cores": round(cpu, 3), "memory_mib": round(mem / 2**20, 1),
            "cluster_ips": kinds["Service"], "objects": dict(kinds)}
