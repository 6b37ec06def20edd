"""The operator against a real API server: create, update, scale, Ingress lifecycle,
drift repair, garbage collection, and the errors admission cannot catch.

The operator runs in this process (kopf.testing.KopfRunner) and watches only the
test's namespace, which enforces the restricted Pod Security Standard: if the
rendered pod template broke it, the ReplicaSet could create no pods and Ready
would never come.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster, wait_for
from tests.integration import sites

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kube_env", "crd")]


@pytest.fixture
def operator(namespace: str) -> Iterator[None]:
    with sites.running_operator(namespace):
        yield


@pytest.mark.usefixtures("operator")
def test_create_makes_children_and_becomes_ready(cluster: Cluster, namespace: str) -> None:
    sites.apply(cluster, sites.example("hello", namespace))
    obj = sites.wait_ready(cluster, namespace, "hello")

    uid = obj["metadata"]["uid"]
    config = sites.config_of(cluster, namespace, "hello")
    assert config is not None and config["immutable"] is True and "nginx.conf" in config["data"]
    assert sites.configmaps_of(cluster, namespace, "hello") == [config["metadata"]["name"]]
    for kind, name in [("deployment", "hello"), ("service", "hello"), ("configmap", config["metadata"]["name"])]:
        child = sites.get(cluster, namespace, kind, name)
        assert child is not None, f"{kind}/{name} missing"
        refs = child["metadata"]["ownerReferences"]
        assert refs == [{"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite", "name": "hello",
                         "uid": uid, "controller": True, "blockOwnerDeletion": True}]
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "staticsite-operator"
    assert sites.get(cluster, namespace, "ingress", "hello") is None, "no domains: no Ingress"

    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["url"] == f"http://hello.{namespace}.svc"
    assert status["contentHash"].startswith("sha256:")
    assert status["readyReplicas"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "Progressing": "False", "Degraded": "False"}
    reasons = [e["reason"] for e in sites.events(cluster, namespace, "hello")]
    assert "Created" in reasons and "Ready" in reasons

    printed = cluster.kubectl("-n", namespace, "get", "staticsites").stdout
    assert "READY" in printed and "URL" in printed and "True" in printed


@pytest.mark.usefixtures("operator")
def test_content_update_rolls_out(cluster: Cluster, namespace: str) -> None:
    sites.apply(cluster, sites.site("web", namespace, {"index.html": "v1"}))
    before = sites.wait_ready(cluster, namespace, "web")
    dep = sites.get(cluster, namespace, "deployment", "web")
    assert dep is not None
    checksum = dep["spec"]["template"]["metadata"]["annotations"]["staticsite.dev/checksum"]

    sites.apply(cluster, sites.site("web", namespace, {"index.html": "v2"}))
    after = sites.wait_ready(cluster, namespace, "web")
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["status"]["contentHash"] != before["status"]["contentHash"]
    dep = sites.get(cluster, namespace, "deployment", "web")
    assert dep is not None
    assert dep["spec"]["template"]["metadata"]["annotations"]["staticsite.dev/checksum"] != checksum
    cm = sites.config_of(cluster, namespace, "web")
    assert cm is not None and "v2" in cm["data"].values()
    assert "RollingOut" in [e["reason"] for e in sites.events(cluster, namespace, "web")]
    # The superseded revision goes once the new one is rolled out.
    wait_for(lambda: sites.configmaps_of(cluster, namespace, "web") == [cm["metadata"]["name"]],
             what="the old revision's ConfigMap to be deleted")


@pytest.mark.usefixtures("operator")
def test_scale_subresource(cluster: Cluster, namespace: str) -> None:
    sites.apply(cluster, sites.site("scaled", namespace))
    sites.wait_ready(cluster, namespace, "scaled")
    cluster.kubectl("-n", namespace, "scale", "staticsite", "scaled", "--replicas=3")
    obj = sites.wait_ready(cluster, namespace, "scaled")
    assert obj["spec"]["replicas"] == 3
    wait_for(lambda: (sites.get(cluster, namespace, "staticsite", "scaled") or {}).get("status", {})
             .get("readyReplicas") == 3, what="3 ready replicas in status")
    dep = sites.get(cluster, namespace, "deployment", "scaled")
    assert dep is not None and dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    scale = json.loads(cluster.kubectl("get", "--raw",
                                       f"/apis/staticsite.dev/v1alpha1/namespaces/{namespace}/staticsites/scaled/scale")
                       .stdout)
    assert scale["status"]["replicas"] == 3
    assert "app.kubernetes.io/instance=scaled" in scale["status"]["selector"]


@pytest.mark.usefixtures("operator")
def test_domains_create_and_remove_the_ingress(cluster: Cluster, namespace: str) -> None:
    manifest = sites.site("shop", namespace, domains=["shop.example.com", "www.shop.example.com"],
                          ingress={"className": "nginx", "annotations": {"cert-manager.io/cluster-issuer": "le"},
                                   "tls": {"secretName": "shop-tls"}})
    sites.apply(cluster, manifest)
    obj = sites.wait_ready(cluster, namespace, "shop")
    assert obj["status"]["url"] == "https://shop.example.com"
    ingress = sites.get(cluster, namespace, "ingress", "shop")
    assert ingress is not None
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["shop.example.com", "www.shop.example.com"]
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com", "www.shop.example.com"],
                                       "secretName": "shop-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "le"

    sites.apply(cluster, sites.site("shop", namespace))  # no domains any more
    wait_for(lambda: sites.get(cluster, namespace, "ingress", "shop") is None, what="the Ingress to be deleted")
    obj = sites.wait_ready(cluster, namespace, "shop")
    assert obj["status"]["url"] == f"http://shop.{namespace}.svc"


@pytest.mark.usefixtures("operator")
def test_deleted_or_edited_children_are_restored(cluster: Cluster, namespace: str) -> None:
    sites.apply(cluster, sites.site("drift", namespace))
    sites.wait_ready(cluster, namespace, "drift")
    service = sites.get(cluster, namespace, "service", "drift")
    assert service is not None

    cluster.kubectl("-n", namespace, "delete", "service", "drift")
    restored = wait_for(lambda: (s := sites.get(cluster, namespace, "service", "drift"))
                        and s["metadata"]["uid"] != service["metadata"]["uid"] and s, what="Service re-created")
    assert restored["spec"]["ports"][0]["targetPort"] == "http"

    cluster.kubectl("-n", namespace, "patch", "deployment", "drift", "--type=json", "-p",
                    json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                                 "value": "evil.example.com/nginx:latest"}]))
    wait_for(lambda: "evil" not in (sites.get(cluster, namespace, "deployment", "drift") or {})
             ["spec"]["template"]["spec"]["containers"][0]["image"], what="image restored")

    content = sites.config_of(cluster, namespace, "drift")
    assert content is not None
    name = content["metadata"]["name"]
    # An immutable ConfigMap cannot be defaced, only deleted: then it is re-created.
    defaced = cluster.kubectl("-n", namespace, "patch", "configmap", name, "--type=merge",
                              "-p", json.dumps({"data": {"nginx.conf": "defaced"}}), check=False)
    assert defaced.returncode != 0 and "immutable" in defaced.stderr
    cluster.kubectl("-n", namespace, "delete", "configmap", name)
    wait_for(lambda: (cm := sites.get(cluster, namespace, "configmap", name))
             and cm["metadata"]["uid"] != content["metadata"]["uid"], what="content ConfigMap re-created")


@pytest.mark.usefixtures("operator")
def test_deleting_the_site_removes_its_children(cluster: Cluster, namespace: str) -> None:
    sites.apply(cluster, sites.site("gone", namespace, domains=["gone.example.com"]))
    sites.wait_ready(cluster, namespace, "gone")
    assert sites.get(cluster, namespace, "ingress", "gone") is not None
    cluster.kubectl("-n", namespace, "delete", "staticsite", "gone")

    def all_gone() -> bool:
        kinds = [("deployment", "gone"), ("service", "gone"), ("ingress", "gone")]
        return all(sites.get(cluster, namespace, k, n) is None for k, n in kinds) \
            and sites.configmaps_of(cluster, namespace, "gone") == []

    wait_for(all_gone, timeout=60, what="garbage collection of every child")


@pytest.mark.usefixtures("operator")
def test_content_too_large_is_degraded_and_keeps_serving(cluster: Cluster, namespace: str) -> None:
    sites.apply(cluster, sites.site("big", namespace, {"index.html": "small"}))
    sites.wait_ready(cluster, namespace, "big")
    big = {f"page{i}.html": "x" * 100_000 for i in range(11)}  # 1.1 MB: over a ConfigMap's limit
    sites.apply(cluster, sites.site("big", namespace, {"index.html": "small", **big}))
    cond = sites.wait_condition(cluster, namespace, "big", "Degraded", "True", "ContentTooLarge")
    assert "git" in cond["message"] and "archive" in cond["message"]
    ready = sites.condition(sites.get(cluster, namespace, "staticsite", "big"), "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContentTooLarge"
    cm = sites.config_of(cluster, namespace, "big")
    assert cm is not None and "small" in cm["data"].values(), "the previous content keeps serving"
    assert "ContentTooLarge" in [e["reason"] for e in sites.events(cluster, namespace, "big")]


@pytest.mark.usefixtures("operator")
def test_name_taken_by_a_user_object_is_left_alone(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "service", "clusterip", "mine", "--tcp=81:81")
    sites.apply(cluster, sites.site("mine", namespace))
    cond = sites.wait_condition(cluster, namespace, "mine", "Degraded", "True", "NameConflict")
    assert "Service 'mine'" in cond["message"]
    svc = sites.get(cluster, namespace, "service", "mine")
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 81 and "ownerReferences" not in svc["metadata"]


@pytest.mark.usefixtures("operator")
def test_rejected_child_is_degraded_not_a_crash(cluster: Cluster, namespace: str) -> None:
    """A child the API server refuses (here the platform's own admission policy refuses the
    Ingress's host) makes the site Degraded, not a retry loop; the rest is still applied."""
    name = f"refuse-ingress-{namespace}"
    rule = {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["ingresses"]}
    refuse = [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name},
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [rule]},
                  "validations": [{"expression": "!object.spec.rules.exists(r, r.host == 'odd.example.com')",
                                   "message": "odd.example.com is reserved"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": namespace}}}}},
    ]
    probe = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "probe",
             "namespace": namespace}, "spec": {"rules": [{"host": "odd.example.com"}]}}
    try:
        for obj in refuse:
            sites.apply(cluster, obj)
        wait_for(lambda: cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe),
                                         check=False).returncode != 0, what="the admission policy to take effect")
        sites.apply(cluster, sites.site("odd", namespace, domains=["odd.example.com"]))
        cond = sites.wait_condition(cluster, namespace, "odd", "Degraded", "True", "ApplyFailed")
        assert "Ingress" in cond["message"] and "odd.example.com is reserved" in cond["message"]
        assert sites.get(cluster, namespace, "deployment", "odd") is not None, "the rest was still applied"
        sites.apply(cluster, sites.site("odd", namespace, domains=["even.example.com"]))
        sites.wait_ready(cluster, namespace, "odd")
        assert sites.condition(sites.get(cluster, namespace, "staticsite", "odd"), "Degraded")["status"] == "False"
    finally:
        for obj in reversed(refuse):
            cluster.kubectl("delete", obj["kind"].lower(), name, "--ignore-not-found", check=False)
