"""Every inline example in examples/ is served by its own nginx pods on the real node.

The examples are applied as they are (only their namespace changes) while the chart's
operator runs; each becomes Ready with as many Ready nginx pods as it asks for, running
the local nginx image, and answers through a port-forward to its Service: the SPA
fallback, the custom 404 page with status 404, clean URLs, trailing slashes, redirects
with splats and placeholders, and header rules, as operator/.../nginxconf.py renders
them. The nginx processes meet the restricted Pod Security Standard, read from inside.
(The git and archive examples are in test_sources.py: they need a server to fetch from.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.e2e import kit
from tests.integration import sites

EXAMPLES = {"hello": "hello", "spa": "app", "docs-site": "docs"}  # file stem -> site name
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def served(cluster: Cluster, operator: kit.OperatorRelease, node: str) -> Iterator[str]:
    """A namespace holding every inline example, all Ready."""
    operator.ensure()
    with kit.namespace(cluster, "e2e-examples") as ns:
        for stem in EXAMPLES:
            sites.apply(cluster, sites.example(stem, ns))
        for name in EXAMPLES.values():
            kit.wait_site_ready(cluster, ns, name, timeout=120)
        yield ns


@pytest.mark.parametrize(("stem", "name"), EXAMPLES.items())
def test_each_example_has_its_own_ready_nginx_pods(cluster: Cluster, served: str, images: kit.Images,
                                                   stem: str, name: str) -> None:
    want = sites.example(stem, served)["spec"].get("replicas", 1)
    ready = kit.ready_pods(cluster, served, kit.site_selector(name))
    assert len(ready) == want, [p["metadata"]["name"] for p in ready]
    for pod in ready:
        assert pod["spec"]["nodeName"] == "staticsite-node"
        assert [c["image"] for c in pod["spec"]["containers"]] == [images.nginx]
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


@pytest.mark.parametrize("name", EXAMPLES.values())
def test_nginx_process_meets_restricted_pss(cluster: Cluster, served: str, name: str) -> None:
    pod = kit.ready_pods(cluster, served, kit.site_selector(name))[0]["metadata"]["name"]
    probe = kit.security_probe(cluster, served, pod, "nginx")
    kit.assert_restricted(probe, f"nginx of {name}")
    assert probe["uid"] == "101"


def fetch(cluster: Cluster, ns: str, site: str, paths: list[str]) -> dict[str, kit.Response]:
    with kit.port_forward(cluster, ns, f"service/{site}", 80) as port:
        return {path: kit.request("127.0.0.1", port, path) for path in paths}


def test_hello_serves_its_pages_and_its_404(cluster: Cluster, served: str) -> None:
    got = fetch(cluster, served, "hello", ["/", "/no-such-page"])
    assert got["/"].status == 200 and "Hello from staticsite-operator" in got["/"].body
    assert got["/"].headers["x-content-type-options"] == "nosniff"
    assert got["/"].headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert got["/no-such-page"].status == 404 and "Nothing here" in got["/no-such-page"].body


def test_spa_falls_back_to_index_uncached_and_caches_assets(cluster: Cluster, served: str) -> None:
    got = fetch(cluster, served, "app", ["/", "/dashboard/settings", "/assets/app.js"])
    for path in ("/", "/dashboard/settings"):
        assert got[path].status == 200 and '<div id="root"></div>' in got[path].body, path
        assert got[path].headers["cache-control"] == "no-cache", path
    asset = got["/assets/app.js"]
    assert asset.status == 200 and "route: " in asset.body
    assert asset.headers["cache-control"] == IMMUTABLE
    assert "javascript" in asset.headers["content-type"]


def test_docs_clean_urls_trailing_slash_redirects_and_headers(cluster: Cluster, served: str) -> None:
    paths = ["/", "/guide", "/guide.html", "/guide/", "/old/a/b", "/blog/2024/hello", "/home", "/missing",
             "/assets/app.css", "/favicon.png"]
    got = fetch(cluster, served, "docs", paths)
    assert got["/"].status == 200 and "<h1>Docs</h1>" in got["/"].body
    assert got["/"].headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert got["/guide"].status == 200 and "<h1>Guide</h1>" in got["/guide"].body  # clean URL
    redirects = {path: (got[path].status, got[path].headers.get("location")) for path in
                 ("/guide.html", "/guide/", "/old/a/b", "/blog/2024/hello", "/home")}
    assert redirects == {
        "/guide.html": (301, "/guide"),        # cleanUrls
        "/guide/": (301, "/guide"),            # trailingSlash: remove
        "/old/a/b": (301, "/new/a/b"),         # splat
        "/blog/2024/hello": (302, "/posts/2024-hello"),  # placeholders
        "/home": (308, "/"),
    }
    assert got["/missing"].status == 404 and "<h1>Not here</h1>" in got["/missing"].body
    css = got["/assets/app.css"]
    assert css.status == 200 and css.headers["cache-control"] == IMMUTABLE
    assert css.headers["content-type"].startswith("text/css")  # /etc/nginx/mime.types is in the image
    assert got["/favicon.png"].status == 200 and got["/favicon.png"].headers["content-type"] == "image/png"
    ingress = cluster.kubectl_json("-n", served, "get", "ingress", "docs")
    assert {r["host"] for r in ingress["spec"]["rules"]} == {"docs.example.com", "www.docs.example.com"}
