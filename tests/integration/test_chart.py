"""The Helm chart (charts/staticsite-operator): lint, schema, rendering, and a full lifecycle.

- the chart's CRD is byte-for-byte crds/, and its appVersion is the package version;
- `helm lint --strict` passes in every supported configuration;
- values.schema.json rejects unknown keys and mistyped values, with a message;
- what `helm template` renders in both RBAC modes (cluster-wide, namespaced), checked
  structurally, then accepted by the API server (`kubectl apply --dry-run=server`) in a
  namespace that enforces, and warns about, the "restricted" Pod Security Standard;
- `helm install` → `helm upgrade` → `helm test` → `helm uninstall` on the local cluster:
  the upgrade takes effect, nothing the chart created is left behind (looked up by the
  release's instance label, cluster-wide), and a StaticSite and its CRD survive.

kwok fakes pods: the operator pod is "Running" without anything running, and kwok only
completes pods owned by a Job, so the `helm test` pod never finishes here. The lifecycle
test checks that helm creates that pod and that admission accepts it. Whether it passes
is not checked anywhere here: it needs cluster DNS, which the local cluster does not run;
tests/e2e installs the chart on the real node and checks the operator pod's endpoints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CRD_FILE, ROOT, Cluster, _cluster_env_value, wait_for

CHART = ROOT / "charts" / "staticsite-operator"
CHART_CRD = CHART / "crds" / CRD_FILE.name
INSTANCE = "app.kubernetes.io/instance"
# Everything the chart can create in the release namespace, plus what Kubernetes derives
# from it (ReplicaSets, Pods, EndpointSlices) and helm's own release records (Secrets).
NAMESPACED_KINDS = ("deployments,replicasets,pods,services,endpointslices,serviceaccounts,configmaps,secrets,"
                    "poddisruptionbudgets")
RBAC_KINDS = "roles,rolebindings"
CLUSTER_KINDS = "clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings"
SITE = {
    "apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
    "metadata": {"name": "survivor"},
    "spec": {"content": {"inline": {"files": [{"path": "index.html", "content": "<h1>hi</h1>"}]}}},
}


def helm(*args: str, check: bool = True, cluster: Cluster | None = None) -> subprocess.CompletedProcess[str]:
    """Run helm from the pinned tools (no cluster needed unless `cluster` is given)."""
    if cluster is not None:
        env = cluster.env()
    else:
        env = dict(os.environ, PATH=f"{_cluster_env_value('PATH')}:{os.environ['PATH']}")
    result = subprocess.run(["helm", *args], check=False, text=True, capture_output=True, env=env, timeout=180)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def render(*values: str, namespace: str = "ops", release: str = "rel") -> list[dict[str, Any]]:
    out = helm("template", release, str(CHART), "-n", namespace, *values).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def only(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def assert_restricted(pod_spec: dict[str, Any]) -> None:
    """The "restricted" Pod Security Standard, as the chart's defaults set it."""
    pod_sc = pod_spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert isinstance(pod_sc["runAsUser"], int)
    assert pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod_spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}


# --- files -------------------------------------------------------------------------
def test_chart_crd_is_an_exact_copy_of_crds() -> None:
    assert CHART_CRD.read_bytes() == CRD_FILE.read_bytes(), (
        f"{CHART_CRD.relative_to(ROOT)} differs from {CRD_FILE.relative_to(ROOT)}: run `make crd`")


def test_app_version_is_the_package_version() -> None:
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == package


# Values whose value is a Kubernetes object passed through as a whole (documented as one).
PASS_THROUGH = {"podSecurityContext", "securityContext", "resources"}


def test_every_value_is_camel_case_and_commented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[str] = []
    undocumented, badly_named = [], []
    for i, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z0-9_.-]+):", line)
        if not match or line.lstrip().startswith("-"):
            continue
        depth = len(match.group(1)) // 2
        parents = [*parents[:depth], match.group(2)]
        if set(parents[:-1]) & PASS_THROUGH:
            continue
        if not re.fullmatch(r"[a-z][a-zA-Z0-9]*", match.group(2)):
            badly_named.append(".".join(parents))
        is_parent = line.rstrip().endswith(":")
        if not is_parent and not lines[i - 1].lstrip().startswith("#"):
            undocumented.append(".".join(parents))
    assert not badly_named
    assert not undocumented


def test_schema_and_values_have_the_same_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, sub in node.get("properties", {}).items():
            out.add(prefix + key)
            if sub.get("additionalProperties") is False and key not in PASS_THROUGH:
                out |= keys(sub, f"{prefix}{key}.")
        return out

    def value_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, sub in node.items():
            out.add(prefix + key)
            if isinstance(sub, dict) and key not in PASS_THROUGH and sub:
                out |= value_keys(sub, f"{prefix}{key}.")
        return out

    assert schema["additionalProperties"] is False
    assert keys(schema) - {"global"} == value_keys(values)


# --- lint and schema -----------------------------------------------------------------
@pytest.mark.parametrize("values", [
    [],
    ["--set", "watchNamespaces={team-a,team-b}"],
    ["--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prom"],
    ["--set", "metrics.enabled=false", "--set", "logFormat=json", "--set", "extraArgs={--verbose}"],
    ["--set", "serviceAccount.create=false", "--set", "serviceAccount.name=existing", "--set", "rbac.create=false"],
    ["--set", "gitCredentials.enabled=true", "--set", "watchNamespaces={team-a}"],
    ["--set", "image.digest=sha256:" + "a" * 64, "--set", "nodeSelector.disk=ssd",
     "--set", "tolerations[0].key=dedicated", "--set", "tolerations[0].operator=Exists"],
], ids=["defaults", "namespaced", "servicemonitor", "no-metrics", "own-serviceaccount", "git-credentials",
        "placement"])
def test_helm_lint_strict(values: list[str]) -> None:
    result = helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(("values", "message"), [
    (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
    (["--set", "serviceAccount.bogus=1"], "additional properties 'bogus' not allowed"),
    (["--set", "workers=eight"], "at '/workers': got string, want integer"),
    (["--set", "watchNamespaces=team-a"], "at '/watchNamespaces': got string, want array"),
    (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
    (["--set", "logFormat=xml"], "/logFormat"),
    (["--set", "metrics.port=70000"], "/metrics/port"),
    (["--set-string", "metrics.enabled=yes"], "at '/metrics/enabled': got string, want boolean"),
], ids=["unknown-top-level", "unknown-nested", "workers-not-int", "namespaces-not-list", "namespace-not-dns",
        "log-format-enum", "port-range", "bool-as-string"])
def test_schema_rejects_bad_values(values: list[str], message: str) -> None:
    for command in (["template", "rel"], ["lint", "--strict"]):
        result = helm(*command, str(CHART), *values, check=False)
        assert result.returncode != 0, f"helm {command[0]} accepted {values}"
        assert "don't meet the specifications of the schema" in result.stderr + result.stdout
        assert message in result.stderr + result.stdout


def test_schema_rejects_a_typo_in_a_values_file(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("serviceMonitor:\n  enable: true\n")  # `enabled` misspelt: must not be ignored
    result = helm("template", "rel", str(CHART), "-f", str(values), check=False)
    assert result.returncode != 0
    assert "at '/serviceMonitor': additional properties 'enable' not allowed" in result.stderr


def test_servicemonitor_needs_metrics() -> None:
    result = helm("template", "rel", str(CHART), "--set", "serviceMonitor.enabled=true",
                  "--set", "metrics.enabled=false", check=False)
    assert result.returncode != 0
    assert "serviceMonitor.enabled needs metrics.enabled" in result.stderr


# --- rendering -----------------------------------------------------------------------
def test_cluster_wide_mode_renders_cluster_rbac() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Pod", "PodDisruptionBudget",
                     "Role", "RoleBinding", "Service", "ServiceAccount", "ValidatingAdmissionPolicy",
                     "ValidatingAdmissionPolicyBinding"]
    (binding,) = only(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-staticsite-operator", "namespace": "ops"}]
    assert binding["roleRef"]["name"] == only(docs, "ClusterRole")[0]["metadata"]["name"]
    container = only(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STATICSITE_NAMESPACES"] == ""  # all namespaces


def test_the_chart_sets_only_variables_the_operator_reads() -> None:
    """config.Config lists every variable; a typo in the chart would be silently ignored."""
    from staticsite_operator.config import Config

    container = only(render(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container["env"]}
    assert names - {"POD_ID"} <= set(Config.variables()), names - set(Config.variables())
    Config.from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})  # and parses


def test_the_policy_configmap_is_what_the_operator_reads(tmp_path: Path) -> None:
    """The chart's policy ConfigMap, mounted as the operator mounts it, loads into the policy
    the values asked for; and the chart's default nginx image is the operator's."""
    from staticsite_operator.api import models
    from staticsite_operator.config import Config

    docs = render("--set", "policy.annotations.allowed={example.com/*}", "--set", "policy.limits.maxReplicas=4",
                  "--set-json", 'policy.domains.namespaces={"team-a": ["*.team-a.example.com"]}',
                  "--set-json", 'policy.sources.allowedNetworks=[{"cidr": "100.64.0.0/16", "ports": [80]}]')
    (configmap,) = only(docs, "ConfigMap")
    for key, value in configmap["data"].items():
        (tmp_path / key).write_text(value)
    container = only(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    policy = Config.from_env(env | {"STATICSITE_POLICY_DIR": str(tmp_path)}).policy()
    assert policy.allowed_annotations == ("example.com/*",)
    assert policy.max_replicas == 4
    assert policy.domain_allowed("team-a", "x.team-a.example.com") and not policy.domain_allowed("team-a", "b.io")
    assert [(str(n.net), n.ports) for n in policy.allowed_networks] == [("100.64.0.0/16", frozenset({80}))]
    assert configmap["data"]["images.default"] == models.DEFAULT_NGINX_IMAGE
    assert env["STATICSITE_POLICY_DIR"] == "/etc/staticsite/policy"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in only(docs, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/etc/staticsite/policy"]]["configMap"]["name"] == configmap["metadata"]["name"]


def test_the_rules_cover_every_child_kind() -> None:
    """core.kinds is the one table of child kinds: the chart lets the operator watch, read,
    create and patch each, and delete exactly the kinds it may prune (least privilege). A
    site's Deployment and Service are deleted only by a move to the shared tier: without
    pools.enabled the garbage collector removes them with their site, and the chart grants
    no delete on them."""
    from staticsite_operator.core import kinds

    moved_only = {kinds.DEPLOYMENT, kinds.SERVICE}
    for values, deletable in ((), set(kinds.PRUNABLE) - moved_only), (("--set", "pools.enabled=true"),
                                                                         set(kinds.PRUNABLE)):
        rules = [r for doc in only(render(*values), "ClusterRole") for r in doc["rules"]]
        for kind in kinds.CHILD_KINDS:
            verbs = {v for r in rules if kind.group in r["apiGroups"] and kind.plural in r["resources"]
                     for v in r["verbs"]}
            wanted = {"get", "list", "watch", "create", "patch"} | ({"delete"} if kind in deletable else set())
            assert verbs == wanted, (kind.kind, values)


def test_namespaced_mode_renders_a_role_per_namespace_and_nothing_cluster_wide() -> None:
    docs = render("--set", "watchNamespaces={team-a,team-b}")
    assert not only(docs, "ClusterRole")
    assert not only(docs, "ClusterRoleBinding")
    roles, bindings = served(only(docs, "Role")), served(only(docs, "RoleBinding"))
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    cluster_rules = only(render(), "ClusterRole")[0]["rules"]
    for role, binding in zip(roles, bindings, strict=True):
        assert role["rules"] == cluster_rules  # one set of rules, two scopes
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-staticsite-operator",
                                        "namespace": "ops"}]
    container = only(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STATICSITE_NAMESPACES"] == "team-a,team-b"


def served(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Roles (or bindings) of the served namespaces, not the leader election's own."""
    return [d for d in docs if not d["metadata"]["name"].endswith("-leader-election")]


def test_leader_election_may_touch_only_its_lease_in_the_release_namespace() -> None:
    for values in ([], ["--set", "watchNamespaces={team-a}"]):
        docs = render(*values)
        (role,) = [r for r in only(docs, "Role") if r not in served(only(docs, "Role"))]
        (binding,) = [b for b in only(docs, "RoleBinding") if b not in served(only(docs, "RoleBinding"))]
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ops"
        lease = {e["name"]: e.get("value") for e in
                 only(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert lease["STATICSITE_LEADER_ELECTION"] == "true"
        assert lease["STATICSITE_LEADER_ELECTION_NAMESPACE"] == "ops"
        # create cannot be limited to a name; every other verb is, to the one Lease.
        assert role["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": [lease["STATICSITE_LEADER_ELECTION_LEASE"]], "verbs": ["get", "update"]},
        ]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
    off = render("--set", "leaderElection.enabled=false")
    assert not only(off, "Role")


def secret_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    roles = only(docs, "ClusterRole") + only(docs, "Role")
    return [rule for role in roles for rule in role["rules"] if "secrets" in rule["resources"]]


def test_secrets_only_with_git_credentials_and_never_listed() -> None:
    assert not secret_rules(render())
    assert not secret_rules(render("--set", "watchNamespaces={team-a}"))
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}"]):
        rules = secret_rules(render("--set", "gitCredentials.enabled=true", *values))
        assert rules
        assert all(rule["verbs"] == ["get"] for rule in rules)  # by name: no list, no watch


def test_deployment_rolls_hardened_replicas_behind_a_lease() -> None:
    (deployment,) = only(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    # A new pod is Ready (caches synced, standing by) before an old one stops and hands over.
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    (pdb,) = only(render(), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    (two,) = only(render("--set", "replicaCount=2"), "Deployment")
    assert two["spec"]["replicas"] == 2
    # Without leader election, two pods must never overlap: Recreate, and no second replica.
    (alone,) = only(render("--set", "leaderElection.enabled=false"), "Deployment")
    assert alone["spec"]["strategy"] == {"type": "Recreate"}
    refused = helm("template", "rel", str(CHART), "--set", "leaderElection.enabled=false", "--set", "replicaCount=2",
                   check=False)
    assert refused.returncode != 0 and "replicaCount > 1 needs leaderElection.enabled" in refused.stderr
    pod = spec["template"]["spec"]
    assert_restricted(pod)
    assert pod["serviceAccountName"] == "rel-staticsite-operator"
    container = pod["containers"][0]
    assert container["image"] == "staticsite-operator:0.1.0"  # tag defaults to appVersion
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"health": 8080, "metrics": 9090}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    # In-flight reconciles finish within the grace period, with 10 s to spare.
    assert env["STATICSITE_DRAIN_TIMEOUT"] == str(pod["terminationGracePeriodSeconds"] - 10)
    # The selector is a subset of the pod's labels, and carries no version.
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert "app.kubernetes.io/version" not in spec["selector"]["matchLabels"]


def test_values_reach_the_deployment() -> None:
    docs = render("--set", "metrics.enabled=false", "--set", "logFormat=json", "--set", "workers=3",
                  "--set", "healthPort=8181", "--set", "podLabels.team=web",
                  "--set", "podLabels.app\\.kubernetes\\.io/name=hijack",
                  "--set", "resources.limits.memory=1Gi", "--set", "nodeSelector.disk=ssd")
    (deployment,) = only(docs, "Deployment")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STATICSITE_METRICS_PORT"] == "0"
    assert env["STATICSITE_LOG_FORMAT"] == "json"
    assert env["STATICSITE_WORKERS"] == "3"
    assert env["STATICSITE_HEALTH_PORT"] == "8181"
    assert [p["name"] for p in container["ports"]] == ["health"]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert pod["metadata"]["labels"]["team"] == "web"
    # A pod label can never break the selector.
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "staticsite-operator"
    (service,) = only(docs, "Service")
    assert [p["name"] for p in service["spec"]["ports"]] == ["health"]


def test_service_selects_the_operator_but_not_the_test_pod() -> None:
    docs = render()
    (service,) = only(docs, "Service")
    selector = service["spec"]["selector"].items()
    (deployment,) = only(docs, "Deployment")
    assert selector <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (test_pod,) = only(docs, "Pod")
    assert not selector <= test_pod["metadata"]["labels"].items()


def test_servicemonitor_only_when_enabled() -> None:
    assert not only(render(), "ServiceMonitor")
    docs = render("--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prom")
    (monitor,) = only(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    (service,) = only(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}


def test_helm_test_pod_checks_healthz_through_the_service() -> None:
    docs = render()
    (pod,) = only(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert_restricted(pod["spec"])
    assert pod["spec"]["restartPolicy"] == "Never"
    container = pod["spec"]["containers"][0]
    assert container["image"] == only(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    url = {e["name"]: e["value"] for e in container["env"]}["HEALTHZ_URL"]
    (service,) = only(docs, "Service")
    assert url == f"http://{service['metadata']['name']}.ops.svc:8080/healthz"
    # The inline script must at least be valid Python.
    compile(container["command"][2], "helm-test", "exec")


# --- against the API server ----------------------------------------------------------
@pytest.fixture
def restricted_namespace(cluster: Cluster, namespace: str) -> str:
    """The test namespace also *warns* on restricted violations: the only PSS signal for pod templates."""
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted",
                    "pod-security.kubernetes.io/warn-version=latest")
    return namespace


@pytest.fixture
def extra_namespaces(cluster: Cluster) -> Iterator[list[str]]:
    names = [f"t-chart-watch-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for name in names:
        cluster.kubectl("create", "namespace", name)
    yield names
    for name in names:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.cluster
@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_rendered_chart_passes_server_side_dry_run(cluster: Cluster, restricted_namespace: str,
                                                   extra_namespaces: list[str], mode: str) -> None:
    values = ["--set", "watchNamespaces={" + ",".join(extra_namespaces) + "}"] if mode == "namespaced" else []
    manifest = helm("template", f"dry-{uuid.uuid4().hex[:6]}", str(CHART), "-n", restricted_namespace,
                    *values, cluster=cluster).stdout
    # Every rendered object names its namespace (the Roles are in the watched ones): no -n.
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                             input=manifest, check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # e.g. "would violate PodSecurity"
    applied = result.stdout.splitlines()
    expected = {"serviceaccount/", "service/", "deployment.apps/", "pod/", "configmap/", "poddisruptionbudget.policy/",
                "validatingadmissionpolicy.admissionregistration",
                "validatingadmissionpolicybinding.admissionregistration"}
    expected |= {"role.rbac", "rolebinding.rbac"} if mode == "namespaced" else {"clusterrole.rbac",
                                                                               "clusterrolebinding.rbac"}
    for prefix in expected:
        assert any(line.startswith(prefix) and "(server dry run)" in line for line in applied), (prefix, applied)


def leftovers(cluster: Cluster, namespace: str, release: str) -> list[str]:
    selector = f"{INSTANCE}={release}"
    names = cluster.kubectl("get", NAMESPACED_KINDS, "-n", namespace, "-l", selector, "-o", "name").stdout.split()
    names += cluster.kubectl("get", RBAC_KINDS, "-A", "-l", selector, "-o", "name").stdout.split()
    names += cluster.kubectl("get", CLUSTER_KINDS, "-l", selector, "-o", "name").stdout.split()
    # helm's release records are labelled by helm, not by the chart.
    names += cluster.kubectl("get", "secrets", "-n", namespace, "-l", f"owner=helm,name={release}",
                             "-o", "name").stdout.split()
    return names


@pytest.mark.cluster
@pytest.mark.usefixtures("crd")
def test_install_upgrade_test_uninstall(cluster: Cluster, namespace: str) -> None:
    release = f"ssop-{uuid.uuid4().hex[:6]}"
    crd_before = cluster.kubectl_json("get", "crd", "staticsites.staticsite.dev")

    # The CRD already exists (the `crd` fixture applies it server-side). Helm 4 server-side
    # applies crds/ on install even then (Helm 3 skipped it): with identical content that
    # adds a `helm` field manager (a new resourceVersion) but changes nothing in the spec.
    helm("install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "90s", cluster=cluster)
    try:
        crd_after = cluster.kubectl_json("get", "crd", "staticsites.staticsite.dev")
        assert crd_after["metadata"]["generation"] == crd_before["metadata"]["generation"], \
            "helm changed the spec of an existing CRD"
        assert crd_after["spec"] == crd_before["spec"]
        manifest = helm("get", "manifest", release, "-n", namespace, cluster=cluster).stdout
        assert "CustomResourceDefinition" not in manifest  # CRDs are not release resources
        deployment = cluster.kubectl_json("-n", namespace, "get", "deployment", f"{release}-staticsite-operator")
        # The namespace enforces "restricted": the pod exists only because it complies.
        assert deployment["status"].get("availableReplicas") == 1
        assert cluster.kubectl("get", "clusterrolebinding", f"{release}-staticsite-operator").returncode == 0

        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(SITE))

        # Upgrade: a changed value reaches the pod, which a rolling update replaces.
        helm("upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--set", "logFormat=json",
             "--wait", "--timeout", "90s", cluster=cluster)
        status = json.loads(helm("status", release, "-n", namespace, "-o", "json", cluster=cluster).stdout)
        assert (status["version"], status["info"]["status"]) == (2, "deployed")
        deployment = cluster.kubectl_json("-n", namespace, "get", "deployment", f"{release}-staticsite-operator")
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["STATICSITE_LOG_FORMAT"] == "json"
        assert deployment["metadata"]["generation"] == 2

        def one_pod_of_the_new_revision() -> list[dict[str, Any]] | None:
            pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l",
                                        f"{INSTANCE}={release},app.kubernetes.io/component=operator")["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            envs = [{e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]} for p in live]
            return live if len(live) == 1 and envs[0]["STATICSITE_LOG_FORMAT"] == "json" else None

        wait_for(one_pod_of_the_new_revision, timeout=60, what="the upgraded operator pod to replace the old one")

        # helm test: helm creates the hook pod and admission accepts it. kwok keeps it
        # "Running" forever (it only completes Job-owned pods), so helm times out here.
        test_pod = f"{release}-staticsite-operator-test-healthz"
        result = helm("test", release, "-n", namespace, "--timeout", "5s", check=False, cluster=cluster)
        pod = cluster.kubectl_json("-n", namespace, "get", "pod", test_pod)
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        if result.returncode != 0:
            assert pod["status"]["phase"] in ("Pending", "Running"), result.stderr
            assert "not ready" in result.stderr or "deadline exceeded" in result.stderr, result.stderr
            # A failed test pod is kept for `kubectl logs` and not removed by uninstall; tidy it.
            cluster.kubectl("-n", namespace, "delete", "pod", test_pod, "--wait=false")
    finally:
        helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "90s", check=False, cluster=cluster)

    # Nothing of the release is left, in the namespace or cluster-wide (pods and
    # EndpointSlices are removed by controllers, so this is polled).
    remaining: list[str] = []

    def all_gone() -> bool:
        remaining[:] = leftovers(cluster, namespace, release)
        return not remaining

    try:
        wait_for(all_gone, timeout=60, what=f"every object of release {release} to be deleted")
    except pytest.fail.Exception:
        pytest.fail(f"helm uninstall left these behind: {remaining}")
    # ... while the CRD and the user's site survive.
    site = cluster.kubectl_json("-n", namespace, "get", "staticsite", "survivor")
    assert site["spec"] == SITE["spec"]
    crd = cluster.kubectl_json("get", "crd", "staticsites.staticsite.dev")
    assert not crd["metadata"].get("deletionTimestamp")


def test_tenant_roles_aggregate_staticsite_rights_into_the_built_in_roles() -> None:
    """Off by default; on, `edit`/`admin` holders may write StaticSites and `view` may read them,
    and nothing else is granted (no Secrets, no children)."""
    assert not [d for d in render() if d["metadata"]["name"].endswith(("-tenant-edit", "-tenant-view"))]
    docs = render("--set", "rbac.tenantRoles=true", "--set", "watchNamespaces={team-a}")
    roles = {d["metadata"]["name"]: d for d in only(docs, "ClusterRole")}
    edit, view = roles["rel-staticsite-operator-tenant-edit"], roles["rel-staticsite-operator-tenant-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-edit" not in view["metadata"]["labels"]
    for role in (edit, view):
        assert [(r["apiGroups"], r["resources"]) for r in role["rules"]] == [(["staticsite.dev"], ["staticsites"])]
    assert set(view["rules"][0]["verbs"]) == {"get", "list", "watch"}
    assert not only(docs, "ClusterRoleBinding")  # the built-in bindings carry them, nothing new is bound


@pytest.mark.cluster
@pytest.mark.usefixtures("crd")
def test_tenant_roles_let_an_editor_write_staticsites_in_their_namespace_only(cluster: Cluster,
                                                                              namespace: str) -> None:
    """The API server's aggregation controller folds the tenant roles into `edit`: a user bound
    to `edit` in one namespace may then create StaticSites there, and still nowhere else."""
    release = f"tr-{uuid.uuid4().hex[:6]}"
    docs = render("--set", "rbac.tenantRoles=true", release=release)
    roles = [d for d in only(docs, "ClusterRole") if d["metadata"]["name"].endswith(("-tenant-edit", "-tenant-view"))]
    user = f"tenant-{release}"
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": user, "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}

    def can(verb: str, ns: str, who: str = user) -> bool:
        out = cluster.kubectl("auth", "can-i", verb, "staticsites.staticsite.dev", "-n", ns, "--as", who, check=False)
        return out.stdout.strip() == "yes"

    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [binding]}))
    assert not can("create", namespace)  # edit alone knows nothing of StaticSites
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": roles}))
        wait_for(lambda: can("create", namespace), timeout=30, what="edit to aggregate the tenant role")
        assert can("delete", namespace) and can("patch", namespace)
        assert not can("create", "default") and not can("list", "kube-system")
    finally:
        cluster.kubectl("delete", "clusterrole", *[r["metadata"]["name"] for r in roles], "--ignore-not-found")
