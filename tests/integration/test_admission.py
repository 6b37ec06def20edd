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
                                 "routing": {"redirects": [{"from": "/a", "to": "/b", "status": 404}]}},
     "spec.routing.redirects[0].status"),
    ("injection in redirect target", {"content": {"inline": FILES},
                                      "routing": {"redirects": [{"from": "/a", "to": "/b; return 200 x"}]}},
     "spec.routing.redirects[0].to"),
    ("splat in the middle", {"content": {"inline": FILES},
                             "routing": {"redirects": [{"from": "/a/*/b", "to": "/c"}]}},
     "spec.routing.redirects[0].from"),
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
                         "routing": {"headers": [{"path": "/", "set": {"Content-Type": "text/evil"}}]}},
     "spec.routing.headers[0].set"),
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


def test_every_example_is_accepted(cluster: Cluster, namespace: str) -> None:
    for path in sorted(sites.EXAMPLES.glob("**/*.yaml")):
        cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                        input=json.dumps(sites.example(str(path.relative_to(sites.EXAMPLES).with_suffix("")),
                                                       namespace)))
