"""The operator works with exactly the chart's RBAC, and cannot do more.

For each RBAC mode of the chart (cluster-wide: ClusterRole; namespaced: a Role per
watched namespace), a real `helm install` creates the ServiceAccount and its rules. Then:

- the operator runs as a subprocess (`python -m staticsite_operator`) with a kubeconfig
  that holds only a token minted for that ServiceAccount, and reconciles StaticSites in
  the namespaces it serves: children created, Ready=True, Events posted, and the Ingress
  deleted when the site drops its domains. Its log shows no 403 at all, and the API
  server's audit log shows that its writes were exactly the expected (verb, resource)
  pairs, all successful;
- `kubectl auth can-i`, impersonating the ServiceAccount with its groups, confirms each
  rule it needs and denies what it must not do: Secrets (gitCredentials is off by
  default), changing Pods, Namespaces, CRDs, RBAC, editing or deleting sites, deleting
  Services and Deployments, and (namespaced mode) anything in a namespace it does not watch.

The cluster-wide run still passes STATICSITE_NAMESPACES (the test's own namespace): with
--all-namespaces it would reconcile every StaticSite on the shared cluster, including
other tests' sites. The ClusterRole's cluster-wide list/watch is checked with can-i.
The OwnerReferencesPermissionEnforcement admission plugin is off on the local cluster,
so the need for `update staticsites/finalizers` is checked with can-i only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, AuditLog, Cluster, wait_for

pytestmark = pytest.mark.cluster

CHART = ROOT / "charts" / "staticsite-operator"

# The writes an inline site with a domain, then without, makes: server-side apply of
# children (a PATCH, which creates when absent), status merge-patches, Events, deleting
# the Ingress. (Deleting the content ConfigMap on a move to git/archive is not exercised:
# it needs a reachable git remote.)
EXPECTED_WRITES = {
    ("patch", "", "configmaps", ""),
    ("patch", "", "services", ""),
    ("patch", "apps", "deployments", ""),
    ("patch", "networking.k8s.io", "ingresses", ""),
    ("delete", "networking.k8s.io", "ingresses", ""),
    ("patch", "staticsite.dev", "staticsites", "status"),
    ("create", "", "events", ""),
    # At start, whether it may list StaticSitePools (cluster-scoped): asked, not tried
    # (clients.kube.served). Audited as a create; it changes nothing.
    ("create", "authorization.k8s.io", "selfsubjectaccessreviews", ""),
}


@dataclass
class Install:
    mode: str
    release: str
    namespace: str       # the release's namespace, where the ServiceAccount lives
    served: list[str]    # namespaces whose sites the operator reconciles in the test
    outside: str         # a namespace outside watchNamespaces (namespaced mode)

    @property
    def service_account(self) -> str:
        return f"{self.release}-staticsite-operator"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def run(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), check=False, text=True, capture_output=True, env=cluster.env(), timeout=180)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module", params=["cluster-wide", "namespaced"])
def installed(request: pytest.FixtureRequest, cluster: Cluster, crd: None) -> Iterator[Install]:
    mode: str = request.param
    tag = uuid.uuid4().hex[:6]
    inst = Install(mode=mode, release=f"rbac-{tag}", namespace=f"t-rbac-op-{tag}",
                   served=[f"t-rbac-site-{tag}"] + ([f"t-rbac-site2-{tag}"] if mode == "namespaced" else []),
                   outside=f"t-rbac-out-{tag}")
    namespaces = [inst.namespace, *inst.served, inst.outside]
    for ns in namespaces:
        cluster.kubectl("create", "namespace", ns)
        cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    values = ["--set", "watchNamespaces={" + ",".join(inst.served) + "}"] if mode == "namespaced" else []
    try:
        run(cluster, "helm", "install", inst.release, str(CHART), "-n", inst.namespace, *values,
            "--wait", "--timeout", "90s")
        yield inst
    finally:
        subprocess.run(["helm", "uninstall", inst.release, "-n", inst.namespace, "--wait", "--timeout", "60s"],
                       check=False, capture_output=True, env=cluster.env(), timeout=120)
        for ns in namespaces:
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def token_kubeconfig(cluster: Cluster, inst: Install, path: Path) -> Path:
    """A kubeconfig with the cluster's server and CA, and the ServiceAccount's token as the only credential."""
    token = cluster.kubectl("-n", inst.namespace, "create", "token", inst.service_account,
                            "--duration=1h").stdout.strip()
    admin = cluster.kubectl_json("config", "view", "--raw", "--minify", "--flatten")
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "local", "cluster": {k: server[k] for k in ("server", "certificate-authority-data")}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "operator"}}],
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def site(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"domains": [f"{name}.{namespace}.example.test"],
                 "content": {"inline": {"files": [{"path": "index.html", "content": "<h1>hi</h1>"}]}}},
    }


def ready(cluster: Cluster, namespace: str, name: str) -> bool:
    status = cluster.kubectl_json("-n", namespace, "get", "staticsite", name).get("status") or {}
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def test_operator_reconciles_as_its_service_account(cluster: Cluster, installed: Install, tmp_path: Path) -> None:
    inst = installed
    kubeconfig = token_kubeconfig(cluster, inst, tmp_path / "kubeconfig")
    port = free_port()
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), STATICSITE_METRICS_PORT="0",
               STATICSITE_HEALTH_PORT=str(port), STATICSITE_NAMESPACES=",".join(inst.served))
    audit = AuditLog(cluster.audit_log) if cluster.audit_log else None
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "staticsite_operator", "--verbose"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for(lambda: proc.poll() is not None or healthy(port), timeout=30, what="the operator's /healthz")
        assert proc.poll() is None, log_path.read_text()[-3000:]
        reconcile_and_check(cluster, inst)
    except (AssertionError, pytest.fail.Exception) as exc:
        log = log_path.read_text()
        hint = ("\nkopf is scanning Namespaces/CRDs, which the chart does not grant (and the operator does not "
                "need): settings.configure should set settings.scanning.disabled = True.\n"
                if 'resource "namespaces"' in log or 'resource "customresourcedefinitions"' in log else "")
        pytest.fail(f"{exc}\n{hint}--- operator log (tail) ---\n{log[-4000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    log = log_path.read_text()
    denied = [line for line in log.splitlines() if "Forbidden" in line or " 403" in line]
    assert not denied, "the operator was denied something it tried:\n" + "\n".join(denied[:10])

    if audit is not None:  # only the local cluster writes an audit log
        records = audit.writes(user_agent_prefixes=("",), user=inst.user, reviews=True)
        failed = [(r.verb, r.uri, r.code) for r in records if r.code >= 400]
        assert not failed
        seen = {(r.verb, r.group, *[*r.resource.split("/"), ""][:2]) for r in records}
        assert seen == EXPECTED_WRITES
        # Every write in a served namespace (the access review is cluster-wide: it changes nothing).
        assert {r.namespace for r in records if r.resource != "selfsubjectaccessreviews"} <= set(inst.served)


def reconcile_and_check(cluster: Cluster, inst: Install) -> None:
    """With the operator running: sites become Ready, Events appear, a dropped domain deletes the Ingress."""
    for ns in inst.served:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(site("web", ns)))
    for ns in inst.served:
        wait_for(lambda ns=ns: ready(cluster, ns, "web"), timeout=30, what=f"web in {ns} to be Ready")
        deployment = cluster.kubectl_json("-n", ns, "get", "deployment", "web")
        assert deployment["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
        assert cluster.kubectl("-n", ns, "get", "ingress", "web").returncode == 0

    # Dropping the domains deletes the Ingress (the one delete the operator is granted).
    first = inst.served[0]
    cluster.kubectl("-n", first, "patch", "staticsite", "web", "--type=json",
                    "-p", '[{"op": "remove", "path": "/spec/domains"}]')
    wait_for(lambda: cluster.kubectl("-n", first, "get", "ingress", "web", check=False).returncode != 0,
             timeout=30, what="the operator to delete the Ingress")
    events = cluster.kubectl_json("-n", first, "get", "events", "--field-selector",
                                  "involvedObject.kind=StaticSite,involvedObject.name=web")["items"]
    assert {"Created", "Ready", "Deleted"} <= {e["reason"] for e in events}


# --- what the identity can and cannot do ----------------------------------------------
def can_i(cluster: Cluster, inst: Install, verb: str, resource: str, namespace: str | None) -> bool:
    """kubectl auth can-i as the ServiceAccount, with the groups a real token carries.

    namespace None: cluster-wide (--all-namespaces for namespaced resources).
    """
    resource, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={inst.user}", "--as-group=system:serviceaccounts",
            f"--as-group=system:serviceaccounts:{inst.namespace}", "--as-group=system:authenticated"]
    args += [f"--subresource={sub}"] if sub else []
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    result = cluster.kubectl(*args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


SITES = "staticsites.staticsite.dev"
NEEDED = [
    ("list", SITES), ("watch", SITES),
    ("patch", f"{SITES}/status"),
    ("update", f"{SITES}/finalizers"),
    *[(verb, kind) for kind in ("configmaps", "services", "deployments.apps", "ingresses.networking.k8s.io")
      for verb in ("get", "list", "watch", "create", "patch")],
    ("delete", "ingresses.networking.k8s.io"), ("delete", "configmaps"),
    ("list", "pods"), ("watch", "pods"),
    ("create", "events"),
]
FORBIDDEN_EVERYWHERE = [
    ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"),
    ("get", "pods"), ("create", "pods"), ("delete", "pods"), ("patch", "pods"), ("create", "pods/exec"),
    ("update", SITES), ("patch", SITES), ("delete", SITES), ("create", SITES),
    ("delete", "services"), ("delete", "deployments.apps"),
    ("create", "roles.rbac.authorization.k8s.io"), ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts/token"),
    ("patch", "events"),
]
FORBIDDEN_CLUSTER_SCOPED = [
    ("list", "namespaces"), ("delete", "namespaces"), ("create", "namespaces"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("list", "nodes"),
]


def check_all(cluster: Cluster, inst: Install, checks: list[tuple[str, str, str | None]]) -> dict[str, bool]:
    def one(check: tuple[str, str, str | None]) -> tuple[str, bool]:
        verb, resource, ns = check
        return f"{verb} {resource} in {ns or 'all namespaces'}", can_i(cluster, inst, verb, resource, ns)

    with ThreadPoolExecutor(16) as pool:
        return dict(pool.map(one, checks))


def test_service_account_can_do_what_the_operator_needs(cluster: Cluster, installed: Install) -> None:
    inst = installed
    checks: list[tuple[str, str, str | None]] = [(v, r, ns) for ns in inst.served for v, r in NEEDED]
    if inst.mode == "cluster-wide":
        # --all-namespaces: kopf lists and watches sites and children across the cluster.
        checks += [(v, r, None) for v, r in NEEDED if v in ("list", "watch")]
    denied = [what for what, allowed in check_all(cluster, inst, checks).items() if not allowed]
    assert not denied


def test_service_account_cannot_do_more(cluster: Cluster, installed: Install) -> None:
    inst = installed
    places: list[str | None] = [inst.namespace, *inst.served, None]
    checks: list[tuple[str, str, str | None]] = [(v, r, ns) for ns in places for v, r in FORBIDDEN_EVERYWHERE]
    checks += [(v, r, None) for v, r in FORBIDDEN_CLUSTER_SCOPED]
    if inst.mode == "namespaced":
        # Nothing at all outside the watched namespaces, nor cluster-wide; and its own
        # namespace is not a watched one either.
        for ns in (inst.outside, inst.namespace, None):
            checks += [(v, r, ns) for v, r in NEEDED]
    allowed = [what for what, ok in check_all(cluster, inst, checks).items() if ok]
    assert not allowed
