"""The chart's shared tier: pool RBAC, the default pool, and admission.

- The operator's rules cover every kind it writes in a pool's namespace (core.kinds
  POOL_KINDS) and the StaticSitePools themselves, through a ClusterRole in both modes.
- The pool agent's Role is the least it needs: ConfigMaps of its own namespace.
- Pools are opt-in (pools.enabled): no cluster-wide rights otherwise. The default pool is
  off by default; enabled, it is admitted by the real API server.
- The chart's ValidatingAdmissionPolicy refuses, at `kubectl apply` by a tenant, a site
  asking for the chart's pool from a namespace the pool does not serve, and a refused
  Gateway annotation; a pool the chart does not know is left to the operator.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import yaml

from staticsite_operator.core import kinds
from tests.conftest import Cluster, wait_for
from tests.integration.poolkit import pool_crd  # noqa: F401 - a pytest fixture
from tests.integration.test_chart import CHART, helm, only, render
from tests.integration.test_tenants import tenant_apply, tenant_site

pytestmark = [pytest.mark.cluster]


def test_the_rules_cover_every_kind_written_in_a_pool_namespace() -> None:
    docs = render("--set", "pools.enabled=true")
    rules = next(r for r in only(docs, "ClusterRole") if not r["metadata"]["name"].endswith("-pools"))["rules"]
    for kind in kinds.POOL_KINDS:
        verbs = {v for r in rules if kind.group in r["apiGroups"] and kind.plural in r["resources"] for v in r["verbs"]}
        assert verbs == {"get", "list", "watch", "create", "patch", "delete"}, kind.kind
    pools = next(r for r in only(docs, "ClusterRole") if r["metadata"]["name"].endswith("-pools"))["rules"]
    assert {tuple(r["resources"]): tuple(r["verbs"]) for r in pools} == {
        ("staticsitepools",): ("list", "watch"), ("staticsitepools/status",): ("patch",),
        ("staticsitepools/finalizers",): ("update",)}


def test_namespaced_mode_still_grants_the_pools_cluster_wide_and_nothing_else() -> None:
    assert not only(render("--set", "watchNamespaces={team-a,pools}"), "ClusterRole"), "pools are opt-in"
    docs = render("--set", "watchNamespaces={team-a,pools}", "--set", "pools.enabled=true")
    (role,) = only(docs, "ClusterRole")
    assert {res for r in role["rules"] for res in r["resources"]} == {
        "staticsitepools", "staticsitepools/status", "staticsitepools/finalizers"}


def test_the_default_pool_is_off_and_the_agent_gets_configmaps_of_its_namespace_only() -> None:
    assert not only(render("--set", "pools.enabled=true"), "StaticSitePool")
    assert not only(render("--set", "pools.default.enabled=true"), "StaticSitePool"), "pools.enabled first"
    assert not [r for r in only(render(), "Role") if r["metadata"]["name"] == "staticsite-pool-agent"]
    docs = render("--set", "pools.enabled=true", "--set", "pools.default.enabled=true",
                  "--set", "pools.default.namespaces={team-*}",
                  "--set", "pools.agentNamespaces={more-pools}")
    (pool,) = only(docs, "StaticSitePool")
    assert pool["spec"] == {"namespace": "staticsite-pools", "replicas": 2, "namespaces": ["team-*"],
                            "maxSites": 1000}
    roles = [r for r in only(docs, "Role") if r["metadata"]["name"] == "staticsite-pool-agent"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["more-pools", "staticsite-pools"]
    for role in roles:
        assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                                  "verbs": ["get", "list", "watch", "create", "patch", "delete"]}]


@pytest.mark.usefixtures("kube_env", "crd", "pool_crd")
def test_the_default_pool_is_admitted_by_the_api_server(cluster: Cluster) -> None:
    name = f"chart-{uuid.uuid4().hex[:6]}"
    manifest = helm("template", "rel", str(CHART), "-n", "ops", "--set", "pools.enabled=true",
                    "--set", "pools.default.enabled=true",
                    "--set", f"pools.default.name={name}", "--show-only", "templates/pools.yaml").stdout
    (pool,) = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "StaticSitePool"]
    try:
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(pool))
        assert cluster.kubectl_json("get", "staticsitepool", name)["spec"]["maxSites"] == 1000
    finally:
        cluster.kubectl("delete", "staticsitepool", name, "--ignore-not-found", check=False)


@pytest.fixture
def tenant(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A ServiceAccount that may write StaticSites only, under the chart's admission policy
    with the default pool serving `team-*` namespaces (bound to this namespace only)."""
    release = f"p{uuid.uuid4().hex[:6]}"
    manifest = helm("template", release, str(CHART), "-n", namespace, "--set", f"watchNamespaces={{{namespace}}}",
                    "--set", "pools.enabled=true", "--set", "pools.default.enabled=true",
                    "--set", "pools.default.namespaces={team-*}",
                    "--show-only", "templates/admission-policy.yaml", cluster=cluster).stdout
    rbac = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant", "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "staticsites-only", "namespace": namespace},
         "rules": [{"apiGroups": ["staticsite.dev"], "resources": ["staticsites"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "tenant", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "staticsites-only"},
         "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}]},
    ]
    as_tenant = f"system:serviceaccount:{namespace}:tenant"
    probe = tenant_site(namespace, "probe", domains=["p.example.test"], serving={"tier": "shared", "pool": "shared"})
    try:
        cluster.kubectl("apply", "-f", "-", input=manifest + "\n---\n" + yaml.safe_dump_all(rbac))
        wait_for(lambda: "ValidatingAdmissionPolicy" in tenant_apply(cluster, as_tenant, probe, dry_run=True).stderr,
                 what="the admission policy to take effect")
        yield as_tenant
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest, check=False)


@pytest.mark.usefixtures("kube_env", "crd")
def test_admission_refuses_a_pool_the_namespace_may_not_use_and_a_refused_gateway_annotation(
        cluster: Cluster, namespace: str, tenant: str) -> None:
    shared = {"domains": ["p.example.test"], "serving": {"tier": "shared", "pool": "shared"}}
    result = tenant_apply(cluster, tenant, tenant_site(namespace, "a", **shared))
    assert result.returncode != 0
    assert f"spec.serving.pool: StaticSitePool shared does not serve namespace {namespace}" in result.stderr
    gateway = {"domains": ["g.example.test"], "gateway": {"parentRefs": [{"name": "public"}], "annotations": {
        "nginx.ingress.kubernetes.io/server-snippet": "x"}}}
    result = tenant_apply(cluster, tenant, tenant_site(namespace, "g", **gateway))
    assert "spec.gateway.annotations: nginx.ingress.kubernetes.io/server-snippet is refused" in result.stderr
    other = {"domains": ["o.example.test"], "serving": {"tier": "shared", "pool": "platform-made"}}
    assert tenant_apply(cluster, tenant, tenant_site(namespace, "o", **other)).returncode == 0, \
        "a pool the chart does not know is the operator's to judge"
