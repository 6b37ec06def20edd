"""`_redirects` and `_headers` in a site's content, against a real API server: a line that
cannot be honoured makes the site Degraded (RoutingFileInvalid) naming the file, the line
and the reason, while the site keeps serving; fixing it clears the condition. For git and
archive content, what the pod's `routes` and `check` init containers report reaches the
status the same way (the kubelet's report is written into the pod's status here, as the
fetch-failure test does).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cluster, wait_for
from tests.integration import sites

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kube_env", "crd")]

REDIRECTS = "# moved\n/old/*  /new/:splat  301\n/a /b 302 Country=us\n/c /d 301\n"


def test_a_bad_line_in_inline_redirects_is_degraded_naming_file_and_line(cluster: Cluster, namespace: str) -> None:
    with sites.running_operator(namespace):
        sites.apply(cluster, sites.site("web", namespace, {"index.html": "<h1>hi</h1>", "_redirects": REDIRECTS}))
        cond = sites.wait_condition(cluster, namespace, "web", "Degraded", "True", "RoutingFileInvalid")
        assert "_redirects:3: Country= conditions need a GeoIP lookup" in cond["message"], cond
        obj = sites.wait_ready(cluster, namespace, "web")  # the other rules apply: the site serves
        assert sites.condition(obj, "Ready")["reason"] == "Available"
        conf = (sites.config_of(cluster, namespace, "web") or {})["data"]["nginx.conf"]
        assert "# _redirects:2" in conf and "# _redirects:4" in conf and "# _redirects:3" not in conf
        wait_for(lambda: "RoutingFileInvalid" in [e["reason"] for e in sites.events(cluster, namespace, "web")],
                 what="a RoutingFileInvalid Event")

        sites.apply(cluster, sites.site("web", namespace, {"index.html": "<h1>hi</h1>",
                                                          "_redirects": REDIRECTS.replace(" Country=us", "")}))
        sites.wait_condition(cluster, namespace, "web", "Degraded", "False", "Reconciled")
        conf = (sites.config_of(cluster, namespace, "web") or {})["data"]["nginx.conf"]
        assert "# _redirects:3" in conf


def test_a_bad_header_block_names_its_line(cluster: Cluster, namespace: str) -> None:
    headers = "/*\n  X-Frame-Options: DENY\n/assets/*\n  Content-Length: 10\n"
    with sites.running_operator(namespace):
        sites.apply(cluster, sites.site("hd", namespace, {"index.html": "x", "_headers": headers},
                                        routing={"semantics": "cloudflare"}))
        cond = sites.wait_condition(cluster, namespace, "hd", "Degraded", "True", "RoutingFileInvalid")
        assert "_headers:3:" in cond["message"] and "Content-Length" in cond["message"], cond


def _report(cluster: Cluster, namespace: str, site: str, statuses: list[dict[str, Any]]) -> None:
    """Write init container statuses into the site's pod, as the kubelet would."""
    def pods() -> list[dict[str, Any]] | None:
        found = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={site}")
        return list(found["items"]) or None
    pod = wait_for(pods, what=f"a pod of {site}")[0]["metadata"]["name"]
    cluster.kubectl("-n", namespace, "patch", "pod", pod, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"initContainerStatuses": statuses}}))


def _terminated(name: str, code: int, message: str) -> dict[str, Any]:
    return {"name": name, "image": "x", "imageID": "", "ready": code == 0, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "message": message}}}


def test_a_fetched_sites_pod_renders_and_checks_its_routing(cluster: Cluster, namespace: str) -> None:
    archive = {"url": "https://downloads.example.com/site.tar.gz", "sha256": "c" * 64}
    manifest = sites.site("art", namespace)
    manifest["spec"]["content"] = {"archive": archive}
    with sites.running_operator(namespace):
        sites.apply(cluster, manifest)
        sites.wait_ready(cluster, namespace, "art")  # its pods were admitted: restricted PSS holds
        dep = sites.get(cluster, namespace, "deployment", "art")
        assert dep is not None
        pod = dep["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["initContainers"]] == ["fetch", "routes", "check"]
        routes = pod["initContainers"][1]
        assert routes["image"] == "staticsite-operator:dev"  # STATICSITE_ROUTES_IMAGE's default
        assert routes["command"][:3] == ["python", "-m", "staticsite_operator.siteconf"]
        config = sites.config_of(cluster, namespace, "art")
        assert config is not None and json.loads(config["data"]["site.json"])["root"] == "/srv/site"

        ok = [_terminated("fetch", 0, "")]
        _report(cluster, namespace, "art", [*ok, _terminated("routes", 0, "_redirects:7: invalid status code 'x'"),
                                            _terminated("check", 0, "")])
        cond = sites.wait_condition(cluster, namespace, "art", "Degraded", "True", "RoutingFileInvalid")
        assert "_redirects:7: invalid status code" in cond["message"]

        _report(cluster, namespace, "art", [*ok, _terminated("routes", 0, ""),
                                            _terminated("check", 1, 'nginx: [emerg] unknown directive "x"')])
        cond = sites.wait_condition(cluster, namespace, "art", "Degraded", "True", "RoutingFailed")
        assert "unknown directive" in cond["message"] and "previous pods keep serving" in cond["message"]
