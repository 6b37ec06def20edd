"""render() is a pure function of the spec: every example renders to valid, restricted,
owned, labelled manifests, and the pod-template checksum moves exactly when it should.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from staticsite_operator.api import models
from staticsite_operator.core import labels, render

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("**/*.yaml"))


def site(spec: dict[str, Any], name: str = "web") -> render.Site:
    return render.Site(name, "ns", "uid-1", models.StaticSiteSpec.model_validate(spec))


def files(**content: str) -> dict[str, Any]:
    return {"content": {"inline": {"files": [{"path": p.replace("_", "."), "content": c}
                                             for p, c in content.items()]}}}


def by_kind(rendered: render.Rendered) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in rendered.objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_renders(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    spec = models.StaticSiteSpec.model_validate(doc["spec"])
    revision = "0" * 40 if spec.content.git else None  # what the controller would resolve
    rendered = render.render(render.Site(doc["metadata"]["name"], "ns", "uid-1", spec, revision))
    assert rendered.problems == (), "an example's _redirects/_headers lines all apply"
    kinds = by_kind(rendered)
    assert len(kinds["ConfigMap"]) == 1, "one ConfigMap per revision"
    assert len(kinds["Deployment"]) == 1
    assert len(kinds["Service"]) == 1
    assert ("Ingress" in kinds) == bool(doc["spec"].get("domains"))
    for obj in rendered.objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "ns"
        assert meta["ownerReferences"] == [{
            "apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite", "name": doc["metadata"]["name"],
            "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}]
        assert meta["labels"][labels.MANAGED_BY_KEY] == labels.MANAGED_BY
        assert meta["labels"][labels.INSTANCE_KEY] == doc["metadata"]["name"]


def test_pod_meets_the_restricted_standard() -> None:
    dep = by_kind(render.render(site(files(index_html="x"))))["Deployment"][0]
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/tmp"]["name"] == "tmp"
    assert mounts[render.SITE_ROOT]["readOnly"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"] == "64Mi"


def test_selector_is_the_stable_subset() -> None:
    dep = by_kind(render.render(site(files(index_html="x"))))["Deployment"][0]
    assert dep["spec"]["selector"]["matchLabels"] == labels.selector("web")
    assert set(labels.selector("web").items()) <= set(dep["spec"]["template"]["metadata"]["labels"].items())


def _checksum(spec: dict[str, Any]) -> str:
    dep = by_kind(render.render(site(spec)))["Deployment"][0]
    value: str = dep["spec"]["template"]["metadata"]["annotations"][labels.CHECKSUM_ANNOTATION]
    return value


def test_checksum_changes_with_content_and_config_only() -> None:
    base = files(index_html="v1")
    assert _checksum(base) == _checksum(files(index_html="v1")), "rendering is deterministic"
    assert _checksum(base) != _checksum(files(index_html="v2"))
    assert _checksum(base) != _checksum(base | {"routing": {"spa": True}})
    assert _checksum(base) == _checksum(base | {"replicas": 3}), "scaling must not roll the pods"


def test_binary_files_go_to_binary_data_and_paths_to_items() -> None:
    png = base64.b64encode(b"\x89PNG\x00\xff").decode()
    spec = {"content": {"inline": {"files": [
        {"path": "index.html", "content": "<h1>😀 ü</h1>"},
        {"path": "img/logo.png", "binaryContent": png}]}}}
    kinds = by_kind(render.render(site(spec)))
    (content,) = kinds["ConfigMap"]
    files_only = {k: v for k, v in content["data"].items() if k != "nginx.conf"}
    assert list(files_only.values()) == ["<h1>😀 ü</h1>"], "non-BMP text survives the YAML round trip"
    assert list(content["binaryData"].values()) == [png]
    items = kinds["Deployment"][0]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    assert sorted(i["path"] for i in items) == ["img/logo.png", "index.html"]
    keys = {i["key"] for i in items}
    assert keys == set(files_only) | set(content["binaryData"])
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", k) for k in keys)


def test_config_keys_are_unique_for_similar_paths() -> None:
    paths = ["a/b.html", "a_b.html", "a-b.html", "A/b.html", "x/a/b.html"]
    assert len({render.config_key(p) for p in paths}) == len(paths)


def test_content_too_large() -> None:
    big = files(**{f"p{i}_html": "x" * 200_000 for i in range(6)})
    with pytest.raises(render.ContentTooLarge, match="git"):
        render.render(site(big))


def test_ingress_only_with_domains_and_tls_hosts() -> None:
    spec = files(index_html="x") | {"domains": ["a.example.com"], "ingress": {"tls": {"secretName": "a-tls"}}}
    ingress = by_kind(render.render(site(spec)))["Ingress"][0]
    assert ingress["spec"]["tls"] == [{"hosts": ["a.example.com"], "secretName": "a-tls"}]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "web", "port": {"name": "http"}}


def test_spread_only_with_several_replicas() -> None:
    one = by_kind(render.render(site(files(index_html="x"))))["Deployment"][0]
    three = by_kind(render.render(site(files(index_html="x") | {"replicas": 3})))["Deployment"][0]
    assert "topologySpreadConstraints" not in one["spec"]["template"]["spec"]
    assert three["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_only_pods_that_fetch_carry_the_fetch_label(path: Path) -> None:
    """The operator's pod watch selects on this label: inline sites' pods must never stream."""
    doc = yaml.safe_load(path.read_text())
    spec = models.StaticSiteSpec.model_validate(doc["spec"])
    rendered = render.render(render.Site("s", "ns", "uid-1", spec, "0" * 40 if spec.content.git else None))
    template = by_kind(rendered)["Deployment"][0]["spec"]["template"]
    source = "git" if spec.content.git else "archive" if spec.content.archive else None
    assert template["metadata"]["labels"].get(labels.FETCH_KEY) == source
    assert ("initContainers" in template["spec"]) == (source is not None)
    # The selector (immutable) never includes it: a site may move between sources.
    assert labels.FETCH_KEY not in by_kind(rendered)["Deployment"][0]["spec"]["selector"]["matchLabels"]


def test_site_images_come_from_the_platform_unless_the_spec_names_one() -> None:
    images = render.Images(nginx="staticsite.local/nginx:1", fetcher="staticsite.local/fetch:1")
    archive = {"content": {"archive": {"url": "https://example.com/a.tgz", "sha256": "a" * 64}}}
    spec = models.StaticSiteSpec.model_validate(archive)
    pod = by_kind(render.render(render.Site("web", "ns", "uid-1", spec, images=images)))["Deployment"][0]
    pod_spec = pod["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["image"] == "staticsite.local/nginx:1"
    assert pod_spec["initContainers"][0]["image"] == "staticsite.local/fetch:1"
    named = models.StaticSiteSpec.model_validate({**archive, "nginx": {"image": "registry.example/nginx:2"}})
    pod = by_kind(render.render(render.Site("web", "ns", "uid-1", named, images=images)))["Deployment"][0]
    assert pod["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/nginx:2"
    default = by_kind(render.render(render.Site("web", "ns", "uid-1", spec)))["Deployment"][0]
    assert default["spec"]["template"]["spec"]["containers"][0]["image"] == models.DEFAULT_NGINX_IMAGE


def test_one_immutable_configmap_per_revision_named_by_what_it_holds() -> None:
    def configmap(spec: dict[str, Any]) -> dict[str, Any]:
        (cm,) = by_kind(render.render(site(spec)))["ConfigMap"]
        return cm

    v1 = configmap(files(index_html="v1"))
    assert v1["immutable"] is True
    assert v1["metadata"]["name"] == configmap(files(index_html="v1"))["metadata"]["name"], "deterministic"
    assert v1["metadata"]["name"] != configmap(files(index_html="v2"))["metadata"]["name"], "new content, new name"
    routed = files(index_html="v1") | {"routing": {"spa": True}}
    assert v1["metadata"]["name"] != configmap(routed)["metadata"]["name"], "new nginx.conf, new name"
    assert set(v1["data"]) >= {"nginx.conf"}
    pod = by_kind(render.render(site(files(index_html="v1"))))["Deployment"][0]["spec"]["template"]["spec"]
    mounted = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    assert set(mounted.values()) == {v1["metadata"]["name"]}
    long_name = render.Names.of("a" * 253, "f" * 64).config
    assert len(long_name) <= 253 and long_name.endswith("-ffffffffff")


def test_nginx_keeps_listening_while_it_is_taken_out_of_rotation() -> None:
    """A terminating pod gets new connections for a moment (kube-proxy, ingress controllers):
    without a preStop delay a rollout refused them (tests/e2e/test_rollout.py proves it)."""
    pod = by_kind(render.render(site(files(index_html="x"))))["Deployment"][0]["spec"]["template"]["spec"]
    (nginx,) = pod["containers"]
    assert nginx["lifecycle"]["preStop"]["sleep"]["seconds"] >= 3
    assert pod.get("terminationGracePeriodSeconds", 30) > nginx["lifecycle"]["preStop"]["sleep"]["seconds"]
