"""A tenant's StaticSite never reaches past its own site: each hole of the security review,
tried as a tenant would, on the real API server.

- Admission: the chart's ValidatingAdmissionPolicy and its policy ConfigMap (rendered by
  `helm template`, bound to this test's namespace only) refuse, at `kubectl apply` by a
  ServiceAccount that may write StaticSites and nothing else: config-running and unlisted
  Ingress annotations, other images, dot segments, foreign domains, git hosts, replicas
  (also through `kubectl scale`) and resources above the bounds; each message names the field.
- The operator's own layer, with no admission policy in the way: a refused annotation is
  never copied, and the site is Degraded (AnnotationNotAllowed).
- Domain claims across two namespaces: the later claimant gets no Ingress rule for the
  host, the owner's deletion hands it over, and nothing is written while nothing changes.
- Outbound requests: with a policy that does not allow loopback, a git URL naming
  127.0.0.1 (where the test runs a listener) is never contacted, neither directly nor
  through a redirect from an allowed server; an open port and a closed one read the same.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, AuditLog, Cluster, wait_for
from tests.integration import sites
from tests.integration.test_chart import helm
from tests.unit.gitserver import QuietHandler, counting_listener, http_server

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kube_env", "crd")]

CHART = ROOT / "charts" / "staticsite-operator"
FILES = {"files": [{"path": "index.html", "content": "x"}]}


def tenant_site(namespace: str, name: str = "t", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"content": {"inline": FILES}, **spec}}


@pytest.fixture
def tenant(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A ServiceAccount that may write StaticSites in `namespace` and nothing else; the
    chart's admission policy bound to that namespace only (so no other test sees it)."""
    release = f"t{uuid.uuid4().hex[:6]}"
    values = ["--set", f"watchNamespaces={{{namespace}}}",
              "--set-json", f'policy.domains.namespaces={{"{namespace}": ["*.tenant.example.com"]}}',
              "--set", "policy.sources.hosts={git.example.com}",
              "--set", "policy.limits.maxReplicas=3"]
    manifest = helm("template", release, str(CHART), "-n", namespace, *values,
                    "--show-only", "templates/policy.yaml", "--show-only", "templates/admission-policy.yaml",
                    cluster=cluster).stdout
    rbac = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant", "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "staticsites-only", "namespace": namespace},
         "rules": [{"apiGroups": ["staticsite.dev"], "resources": ["staticsites", "staticsites/scale"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "tenant", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "staticsites-only"},
         "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}]},
    ]
    as_tenant = f"system:serviceaccount:{namespace}:tenant"
    probe = tenant_site(namespace, "probe", nginx={"image": "evil/miner:1"})
    try:
        cluster.kubectl("apply", "-f", "-", input=manifest + "\n---\n" + yaml.safe_dump_all(rbac))
        wait_for(lambda: "ValidatingAdmissionPolicy" in tenant_apply(cluster, as_tenant, probe, dry_run=True).stderr,
                 what="the admission policy to take effect")
        yield as_tenant
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest, check=False)


def tenant_apply(cluster: Cluster, as_tenant: str, obj: dict[str, Any], dry_run: bool = False) -> Any:
    args = ["apply", "--server-side", f"--as={as_tenant}", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return cluster.kubectl(*args, input=json.dumps(obj), check=False)


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("config snippet", {"domains": ["a.tenant.example.com"], "ingress": {"annotations": {
        "nginx.ingress.kubernetes.io/server-snippet": "location /x { return 200 pwned; }"}}},
     "spec.ingress.annotations: nginx.ingress.kubernetes.io/server-snippet is refused"),
    ("auth-url injection", {"domains": ["a.tenant.example.com"], "ingress": {"annotations": {
        "nginx.ingress.kubernetes.io/auth-url": "http://x/#;}}}\n"}}},
     "spec.ingress.annotations: nginx.ingress.kubernetes.io/auth-url is refused"),
    ("unlisted annotation", {"domains": ["a.tenant.example.com"], "ingress": {"annotations": {
        "example.com/anything": "x"}}}, "spec.ingress.annotations: example.com/anything is not allowed"),
    ("any image", {"nginx": {"image": "docker.io/someone/cryptominer:latest"}},
     "spec.nginx.image: docker.io/someone/cryptominer:latest is not an image the platform allows"),
    ("another tenant's domain", {"domains": ["docs.other-team.example.com"]},
     "spec.domains: docs.other-team.example.com is not a domain namespace"),
    ("dot segments", {"routing": {"redirects": [{"from": "/leak", "to": "/../../etc/passwd", "status": 200}]}},
     "spec.routing.redirects[0].to"),
    ("a git host the platform does not allow", {"content": {"git": {"url": "http://169.254.169.254/latest"}}},
     "spec.content: content from 169.254.169.254 is not allowed"),
    ("replicas over the bound", {"replicas": 4}, "spec.replicas: more than the platform allows (3)"),
    ("memory over the bound", {"nginx": {"resources": {"limits": {"memory": "64Gi"}}}},
     "spec.nginx.resources.limits.memory: more than the platform allows"),
]


@pytest.mark.parametrize(("spec", "message"), [(c[1], c[2]) for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_at_apply_naming_the_field(cluster: Cluster, namespace: str, tenant: str,
                                           spec: dict[str, Any], message: str) -> None:
    result = tenant_apply(cluster, tenant, tenant_site(namespace, **spec))
    assert result.returncode != 0, f"admitted: {spec}"
    assert message in result.stderr, result.stderr
    assert sites.get(cluster, namespace, "staticsite", "t") is None


def test_what_the_policy_allows_is_admitted_and_scale_is_bounded(cluster: Cluster, namespace: str,
                                                                 tenant: str) -> None:
    allowed = tenant_site(namespace, domains=["docs.tenant.example.com"], replicas=2,
                          ingress={"annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}},
                          content={"git": {"url": "https://git.example.com/team/site.git"}})
    result = tenant_apply(cluster, tenant, allowed)
    assert result.returncode == 0, result.stderr
    scaled = cluster.kubectl("-n", namespace, "scale", "staticsite", "t", "--replicas=50", f"--as={tenant}",
                             check=False)
    assert scaled.returncode != 0 and "spec.replicas: more than the platform allows (3)" in scaled.stderr
    scaled = cluster.kubectl("-n", namespace, "scale", "staticsite", "t", "--replicas=3", f"--as={tenant}")
    assert scaled.returncode == 0


def test_the_operator_never_copies_a_refused_annotation(cluster: Cluster, namespace: str) -> None:
    """The second layer: here no admission policy is installed (a cluster without it, or a
    site created before the policy tightened)."""
    with sites.running_operator(namespace):
        sites.apply(cluster, tenant_site(namespace, "snippet", domains=["snippet.example.com"], ingress={
            "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "return 200 pwned;"}}))
        cond = sites.wait_condition(cluster, namespace, "snippet", "Degraded", "True", "AnnotationNotAllowed")
        assert "configuration-snippet" in cond["message"]
        assert sites.get(cluster, namespace, "ingress", "snippet") is None
        assert sites.get(cluster, namespace, "deployment", "snippet") is None, "nothing of the spec is applied"
        reasons = [e["reason"] for e in sites.events(cluster, namespace, "snippet")]
        assert "AnnotationNotAllowed" in reasons


# --- domain claims ----------------------------------------------------------------------
@pytest.fixture
def second_namespace(cluster: Cluster, namespace: str) -> Iterator[str]:
    other = f"{namespace[:50]}-b"
    cluster.kubectl("create", "namespace", other)
    cluster.kubectl("label", "namespace", other, "pod-security.kubernetes.io/enforce=restricted")
    annotations = cluster.kubectl_json("get", "namespace", namespace)["metadata"].get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith("scheduler.alpha.kubernetes.io/"):  # the same (fake) nodes as the test's namespace
            cluster.kubectl("annotate", "namespace", other, f"{key}={value}")
    yield other
    cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def ingress_hosts(cluster: Cluster, namespace: str, name: str) -> list[str] | None:
    ingress = sites.get(cluster, namespace, "ingress", name)
    return None if ingress is None else [r["host"] for r in ingress["spec"]["rules"]]


def test_a_domain_belongs_to_its_first_claimant_until_it_lets_go(cluster: Cluster, namespace: str,
                                                                 second_namespace: str, audit: AuditLog) -> None:
    host = f"docs-{uuid.uuid4().hex[:6]}.example.com"
    with sites.running_operator(f"{namespace},{second_namespace}"):
        sites.apply(cluster, tenant_site(namespace, "owner", domains=[host]))
        sites.wait_ready(cluster, namespace, "owner")
        time.sleep(1.1)  # creation timestamps have one-second resolution
        sites.apply(cluster, tenant_site(second_namespace, "thief", domains=[host, f"thief-{host}"]))
        cond = sites.wait_condition(cluster, second_namespace, "thief", "Degraded", "True", "DomainConflict")
        assert host in cond["message"]
        assert namespace not in cond["message"], "the owner's namespace is not revealed by default"
        assert ingress_hosts(cluster, namespace, "owner") == [host]
        wait_for(lambda: ingress_hosts(cluster, second_namespace, "thief") == [f"thief-{host}"],
                 what="the later claimant's Ingress without the host")

        # Nothing changes: nothing is written.
        time.sleep(2)
        audit.mark()
        time.sleep(6)
        assert audit.writes() == []

        cluster.kubectl("-n", namespace, "delete", "staticsite", "owner")
        wait_for(lambda: ingress_hosts(cluster, second_namespace, "thief") == [host, f"thief-{host}"],
                 what="the next claimant to get the host")
        sites.wait_condition(cluster, second_namespace, "thief", "Degraded", "False", "Reconciled")


# --- outbound requests ------------------------------------------------------------------
def git_site(namespace: str, name: str, url: str) -> dict[str, Any]:
    return tenant_site(namespace, name, content={"git": {"url": url, "ref": "main", "interval": "10s"}})


def test_the_operator_never_contacts_a_refused_address(cluster: Cluster, namespace: str) -> None:
    with counting_listener() as (forbidden, accepted):
        class Redirect(QuietHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{forbidden}/r.git/info/refs?service=git-upload-pack")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with http_server(Redirect) as allowed:
            policy = {"sources.allowedNetworks": f"127.0.0.1/32 {allowed.server_port}"}
            with sites.running_operator(namespace, policy=policy):
                sites.apply(cluster, git_site(namespace, "direct", f"http://127.0.0.1:{forbidden}/r.git"))
                sites.apply(cluster, git_site(namespace, "redirected", f"http://127.0.0.1:{allowed.server_port}/r.git"))
                for name in ("direct", "redirected"):
                    cond = sites.wait_condition(cluster, namespace, name, "Degraded", "True", "SourceNotAllowed")
                    assert "does not let the operator contact '127.0.0.1'" in cond["message"]
                    assert str(forbidden) not in cond["message"]
    assert accepted == [], "the refused listener was contacted"


def test_an_open_port_and_a_closed_port_read_the_same(cluster: Cluster, namespace: str) -> None:
    with counting_listener() as (open_port, _), socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # bound, never listening: connections are refused
        policy = {"sources.allowedNetworks": f"127.0.0.1/32 {open_port},{closed_port}"}
        with sites.running_operator(namespace, policy=policy):
            messages = []
            for name, port in (("open", open_port), ("closed", closed_port)):
                sites.apply(cluster, git_site(namespace, name, f"http://127.0.0.1:{port}/r.git"))
                cond = sites.wait_condition(cluster, namespace, name, "Degraded", "True", "GitResolveFailed")
                messages.append(cond["message"].replace(str(port), "PORT"))
    assert messages[0] == messages[1], messages
