"""Invalid StaticSites are rejected by the API server itself (structural schema and CEL),
with a message that names the offending field. No operator runs in these tests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.integration import sites

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crd")]

FILES = {"files": [{"path": "index.html", "content": "x"}]}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("path traversal", {"content": {"inline": {"files": [{"path": "../etc/passwd", "content": "x"}]}}},
     "spec.content.inline.files[0].path"),
    ("absolute path", {"content": {"inline": {"files": [{"path": "/etc/passwd", "content": "x"}]}}},
     "spec.content.inline.files[0].path"),
    ("both bodies", {"content": {"inline": {"files": [{"path": "a", "content": "x", "binaryContent": "eA=="}]}}},
     "spec.content.inline.files[0]"),
    ("no source", {"content": {}}, "spec.content"),
    ("bad domain", {"content": {"inline": FILES}, "domains": ["Not_A_Domain"]}, "spec.domains[0]"),
    ("negative replicas", {"content": {"inline": FILES}, "replicas": -1}, "spec.replicas"),
    ("unknown redirect status", {"content": {"inline": FILES},
                                 "routing": {"redirects": [{"from": "/a", "to": "/b", "status": 418}]}},
     "spec.routing.redirects[0].status"),
    ("injection in redirect target", {"content": {"inline": FILES},
                                      "routing": {"redirects": [{"from": "/a", "to": "/b; return 200 x"}]}},
     "spec.routing.redirects[0].to"),
    ("splat in the middle (netlify)", {"content": {"inline": FILES},
                                       "routing": {"redirects": [{"from": "/a/*/b", "to": "/c"}]}},
     "spec.routing.redirects"),
    ("rewrite to a URL", {"content": {"inline": FILES},
                          "routing": {"redirects": [{"from": "/a", "to": "https://evil.example.com/", "status": 200}]}},
     "spec.routing.redirects[0].to"),
    ("newline in header value", {"content": {"inline": FILES},
                                 "routing": {"headers": [{"path": "/", "set": {"X-A": "a\nadd_header B c"}}]}},
     "spec.routing.headers[0].set.X-A"),
    ("bad header name", {"content": {"inline": FILES},
                         "routing": {"headers": [{"path": "/", "set": {"X A;": "v"}}]}},
     "spec.routing.headers[0].set"),
    ("reserved header", {"content": {"inline": FILES},
                         "routing": {"headers": [{"path": "/", "set": {"Content-Length": "1"}}]}},
     "spec.routing.headers[0].set"),
    # spec.routing.semantics and what comes with it (docs/compat.md).
    ("unknown semantics", {"content": {"inline": FILES}, "routing": {"semantics": "vercel"}},
     "spec.routing.semantics"),
    ("cloudflare with cleanUrls", {"content": {"inline": FILES},
                                   "routing": {"semantics": "cloudflare", "cleanUrls": True}},
     "spec.routing.semantics"),
    ("cloudflare with trailingSlash", {"content": {"inline": FILES},
                                       "routing": {"semantics": "cloudflare", "trailingSlash": "add"}},
     "spec.routing.semantics"),
    ("two splats (cloudflare)", {"content": {"inline": FILES}, "routing": {"semantics": "cloudflare", "redirects": [
        {"from": "/a/*/*.html", "to": "/c"}]}}, "spec.routing.redirects"),
    ("a host in a header rule (netlify)", {"content": {"inline": FILES}, "routing": {"headers": [
        {"path": "https://example.com/*", "set": {"X-A": "b"}}]}}, "spec.routing.headers"),
    ("two splats in a header rule (cloudflare)", {"content": {"inline": FILES}, "routing": {
        "semantics": "cloudflare", "headers": [{"path": "/a/*/*", "set": {"X-A": "b"}}]}}, "spec.routing.headers"),
    ("a Content-Type with a newline", {"content": {"inline": FILES}, "routing": {"headers": [
        {"path": "/*.json", "set": {"Content-Type": "text/plain\ndefault_type x"}}]}},
     "spec.routing.headers[0].set.Content-Type"),
    ("a 404 page on another site", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a", "to": "https://evil.example.com/404", "status": 404}]}}, "spec.routing.redirects[0].to"),
    ("a 410 page with a placeholder", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a/*", "to": "/gone/:splat", "status": 410}]}}, "spec.routing.redirects[0].to"),
    ("an escaped control character in a rewrite", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a", "to": "/b%0d%0a", "status": 200}]}}, "spec.routing.redirects[0].to"),
    ("a query name with a space", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a", "to": "/b", "query": {"a b": "1"}}]}}, "spec.routing.redirects[0].query"),
    ("a query value with a quote", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a", "to": "/b", "query": {"a": '"x'}}]}}, "spec.routing.redirects[0].query"),
    ("a non-boolean force", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a", "to": "/b", "force": "yes"}]}}, "spec.routing.redirects[0].force"),
    ("a file name with a control character", {"content": {"inline": {"files": [
        {"path": "a\tb.html", "content": "x"}]}}}, "spec.content.inline.files[0].path"),
    ("a file name with an encoded dot", {"content": {"inline": {"files": [
        {"path": "a/%2e%2e/b.html", "content": "x"}]}}}, "spec.content.inline.files[0].path"),
    ("a 404 page with a query", {"content": {"inline": {"files": [{"path": "a?b.html", "content": "x"}]}},
                                 "routing": {"notFoundPage": "a?b.html"}}, "spec.routing.notFoundPage"),
    ("404 page not in content", {"content": {"inline": FILES}, "routing": {"notFoundPage": "missing.html"}},
     "spec.routing.notFoundPage"),
    ("tls without domains", {"content": {"inline": FILES}, "ingress": {"tls": {"secretName": "x"}}},
     "spec.ingress.tls"),
    ("unknown field", {"content": {"inline": FILES}, "routing": {"spaa": True}}, "spaa"),
    # A tenant trying to read outside its site (tenant security): each was admitted before.
    ("rewrite out of the root", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/leak", "to": "/../../etc/passwd", "status": 200}]}}, "spec.routing.redirects[0].to"),
    ("splat out of the root", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/f/*", "to": "/../../:splat", "status": 200}]}}, "spec.routing.redirects[0].to"),
    ("encoded dots", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/leak", "to": "/%2e%2e/%2e%2e/etc/passwd", "status": 200}]}}, "spec.routing.redirects[0].to"),
    ("dots in from", {"content": {"inline": FILES}, "routing": {"redirects": [
        {"from": "/a/../b", "to": "/c", "status": 301}]}}, "spec.routing.redirects[0].from"),
    ("dots in a header path", {"content": {"inline": FILES}, "routing": {"headers": [
        {"path": "/..data/*", "set": {"X-A": "b"}}]}}, "spec.routing.headers[0].path"),
    ("newline in an annotation key", {"content": {"inline": FILES},
                                      "ingress": {"annotations": {"a\nb": "x"}}}, "spec.ingress.annotations"),
    ("over-long annotation key", {"content": {"inline": FILES},
                                  "ingress": {"annotations": {"k" * 1023: "x"}}}, "spec.ingress.annotations"),
    ("an IP address as a domain", {"content": {"inline": FILES}, "domains": ["127.0.0.1"]}, "spec.domains[0]"),
]


@pytest.mark.parametrize(("spec", "field"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_spec_is_rejected_naming_the_field(cluster: Cluster, namespace: str,
                                                    spec: dict[str, Any], field: str) -> None:
    obj = {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
           "metadata": {"name": "bad", "namespace": namespace}, "spec": spec}
    # --validate=strict makes unknown fields an error rather than silently pruned.
    result = cluster.kubectl("apply", "--validate=strict", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0, f"accepted: {spec}"
    assert field in result.stderr, result.stderr
    assert sites.get(cluster, namespace, "staticsite", "bad") is None


# What sites migrating from Netlify or Cloudflare Pages write: each is admitted.
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("file names real sites have", {"content": {"inline": {"files": [{"path": p, "content": "x"} for p in [
        "index.html", ".well-known/security.txt", ".well-known/apple-app-site-association", "my file (1).pdf",
        "it's.html", "100%.html", "café/ünï.html", "_next/static/chunks/app/blog/[slug]/page-1a2b.js",
        "assets/js/runtime~main.3f2a.js"]]}}}),
    ("notFoundPage with a leading slash", {"content": {"inline": {"files": [{"path": "404.html", "content": "x"}]}},
                                           "routing": {"notFoundPage": "/404.html"}}),
    ("netlify rules", {"content": {"inline": FILES}, "routing": {"trailingSlash": "auto", "redirects": [
        {"from": "/blog/:post-id", "to": "/posts/:post-id", "status": 301},
        {"from": "/store", "to": "/blog/:id", "query": {"id": ":id"}},
        {"from": "/app/*", "to": "/app/index.html", "status": 200, "force": True},
        {"from": "/en/*", "to": "/en/404.html", "status": 404},
        {"from": "/old", "to": "/gone.html", "status": 410},
        {"from": "/authors/c%C3%A9line", "to": "/authors/about-c%C3%A9line"}],
        "headers": [{"path": "/*.js", "set": {"Cache-Control": "immutable"}},
                    {"path": "/.well-known/apple-app-site-association",
                     "set": {"Content-Type": "application/json"}}]}}),
    ("cloudflare rules", {"content": {"inline": FILES}, "routing": {"semantics": "cloudflare", "redirects": [
        {"from": "/a/:slug.html", "to": "/b/:slug", "status": 302},
        {"from": "/img/*.jpg", "to": "/images/:splat.jpg", "status": 308}],
        "headers": [{"path": "https://:project.pages.dev/*", "set": {"X-Robots-Tag": "noindex"}},
                    {"path": "/*.jpg", "set": {"Content-Security-Policy": ""}}]}}),
]


@pytest.mark.parametrize("spec", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_what_real_sites_write_is_admitted(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> None:
    obj = {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
           "metadata": {"name": "ok", "namespace": namespace}, "spec": spec}
    cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(obj))


@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
def test_the_largest_routing_fits_the_cel_budget(cluster: Cluster, namespace: str, semantics: str) -> None:
    """1000 redirects and 100 header rules with long strings: admitted, so the CEL rules
    that walk them stay within the API server's cost budget."""
    long_from = "/" + "/".join(["a" * 60] * 8)
    spec = {"content": {"inline": FILES}, "routing": {
        "semantics": semantics,
        "redirects": [{"from": f"{long_from[:-4]}{i:04d}", "to": "/" + "b" * 200, "status": 301}
                      for i in range(1000)],
        "headers": [{"path": f"/{'p' * 500}{i:03d}", "set": {f"X-H{j}": "v" * 100 for j in range(32)}}
                    for i in range(100)]}}
    obj = {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite",
           "metadata": {"name": "big", "namespace": namespace}, "spec": spec}
    cluster.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(obj))


def test_every_example_is_accepted(cluster: Cluster, namespace: str) -> None:
    for path in sorted(sites.EXAMPLES.glob("**/*.yaml")):
        cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                        input=json.dumps(sites.example(str(path.relative_to(sites.EXAMPLES).with_suffix("")),
                                                       namespace)))
