"""pydantic mirrors what admission enforces: the operator never renders an invalid spec."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from staticsite_operator.api import models

FILES = {"files": [{"path": "index.html", "content": "x"}]}


def spec(**kw: Any) -> dict[str, Any]:
    return {"content": {"inline": FILES}, **kw}


def test_defaults() -> None:
    s = models.StaticSiteSpec.model_validate(spec())
    assert s.replicas == 1
    assert s.domains == []
    assert s.nginx.image is None  # the platform's default applies (render.Images)
    assert s.routing.trailing_slash == "ignore"
    assert s.routing.redirects == []


@pytest.mark.parametrize(("bad", "field"), [
    ({"content": {"inline": {"files": [{"path": "../x", "content": "a"}]}}}, "path"),
    ({"content": {"inline": {"files": [{"path": "a//b", "content": "a"}]}}}, "path"),
    ({"content": {"inline": {"files": [{"path": "a", "content": "a", "binaryContent": "eA=="}]}}}, "exactly one"),
    ({"content": {"inline": {"files": [{"path": "a", "binaryContent": "not base64!"}]}}}, "base64"),
    ({"content": {"inline": {"files": [{"path": "a", "content": "1"}, {"path": "a", "content": "2"}]}}},
     "duplicate"),
    ({"content": {}}, "exactly one source"),
    (spec(routing={"notFoundPage": "404.html"}), "notFoundPage"),
    (spec(ingress={"tls": {"secretName": "x"}}), "ingress.tls"),
    (spec(routing={"redirects": [{"from": "/a", "to": "/b/:slug"}]}), ":slug"),
    (spec(routing={"redirects": [{"from": "/a/*/b", "to": "/b"}]}), "from"),
    (spec(routing={"redirects": [{"from": "/a", "to": "https://x.example.com/", "status": 200}]}),
     "a 200 rule must target a path on this site"),
    (spec(routing={"redirects": [{"from": "/a", "to": "https://x.example.com/", "status": 404}]}),
     "a 404 rule must target a path on this site"),
    (spec(routing={"redirects": [{"from": "/a", "to": "/b", "status": 418}]}), "status"),
    (spec(routing={"redirects": [{"from": "/a/*", "to": "/b/:splat", "status": 410}]}), "placeholders"),
    (spec(routing={"redirects": [{"from": "/a", "to": "/b%0a", "status": 200}]}), "control character"),
    (spec(routing={"headers": [{"path": "/", "set": {"Content-Type": "text/html; x=$y"}}]}), "Content-Type"),
    (spec(routing={"headers": [{"path": "/", "set": {"Content-Length": "1"}}]}), "Content-Length"),
    (spec(routing={"headers": [{"path": "/", "set": {"X-A": "a\nb"}}]}), "X-A"),
    (spec(domains=["UPPER.example.com"]), "domains"),
    (spec(replicas=101), "replicas"),
    (spec(nginx={"resources": {"limits": {"memory": "lots"}}}), "memory"),
    (spec(unknown=1), "unknown"),
    (spec(routing={"redirects": [{"from": "/healthz", "to": "/x"}]}), "reserved"),
    (spec(routing={"redirects": [{"from": "/a//b", "to": "/x"}]}), "from"),
    (spec(routing={"redirects": [{"from": "/:a/:a", "to": "/x/:a"}]}), "once"),
    # The grammar of each host (api/rules.py; docs/compat.md).
    (spec(routing={"redirects": [{"from": "/a/*.html", "to": "/x"}]}), "only allowed at the end"),
    (spec(routing={"semantics": "cloudflare", "redirects": [{"from": "/*/*", "to": "/x"}]}), "only one '*'"),
    (spec(routing={"redirects": [{"from": "/a/:id", "to": "/x/:slug"}]}), ":slug is not captured"),
    (spec(routing={"semantics": "cloudflare", "redirects": [{"from": "/a/:id", "to": "/x/:idx"}]}),
     ":idx is not captured"),  # Cloudflare: a name is \w+, so :id does not prefix :idx
    (spec(routing={"redirects": [{"from": "/s", "to": "/x/:id", "query": {"id": "1"}}]}), ":id is not captured"),
    (spec(routing={"redirects": [{"from": "/s", "to": "/x", "query": {"a b": "1"}}]}), "query"),
    (spec(routing={"redirects": [{"from": "/s", "to": "/x", "query": {"a": "$x"}}]}), "query"),
    (spec(routing={"headers": [{"path": "https://example.com/*", "set": {"X-A": "b"}}]}), "host"),
    (spec(routing={"semantics": "cloudflare", "headers": [{"path": "https://a.example.com/*",
                                                           "set": {"Content-Type": "text/plain"}}]}), "host"),
    (spec(routing={"semantics": "cloudflare", "cleanUrls": True}), "cleanUrls"),
    (spec(routing={"semantics": "cloudflare", "trailingSlash": "add"}), "trailingSlash"),
    (spec(routing={"semantics": "vercel"}), "semantics"),
    ({"content": {"inline": {"files": [{"path": "healthz", "content": "x"}]}}}, "reserved"),
    ({"content": {"git": {"url": "https://user:pw@git.example.com/r.git"}}}, "url"),
    ({"content": {"git": {"url": "ssh://git.example.com/r.git"}}}, "url"),
    ({"content": {"git": {"url": "https://git.example.com/$(SECRET)"}}}, "url"),
    ({"content": {"git": {"url": "https://git.example.com/r", "interval": "9s"}}}, "interval"),
    ({"content": {"git": {"url": "https://git.example.com/r", "ref": "-upload-pack=x"}}}, "ref"),
    ({"content": {"archive": {"url": "https://x.example.com/a.tgz", "sha256": "ABC"}}}, "sha256"),
    ({"content": {"inline": FILES, "archive": {"url": "https://x.example.com/a.tgz", "sha256": "a" * 64}}},
     "exactly one source"),
])
def test_rejected_with_the_field_named(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        models.StaticSiteSpec.model_validate(bad)
    assert field in str(info.value)


def test_file_data() -> None:
    s = models.StaticSiteSpec.model_validate({"content": {"inline": {"files": [
        {"path": "a.txt", "content": "héllo"}, {"path": "b.bin", "binaryContent": "AAEC"}]}}})
    assert s.content.inline is not None
    assert [f.data() for f in s.content.inline.files] == ["héllo".encode(), b"\x00\x01\x02"]


# --- a tenant trying to reach past its own site (issue: tenant security) ------------------
def redirect(frm: str, to: str, status: int = 200) -> dict[str, Any]:
    return spec(routing={"redirects": [{"from": frm, "to": to, "status": status}]})


@pytest.mark.parametrize(("bad", "field"), [
    (redirect("/leak", "/../../etc/passwd"), "to"),
    (redirect("/f/*", "/../../:splat"), "to"),
    (redirect("/leak", "/../../etc/passwd", 301), "to"),       # whatever the status
    (redirect("/leak", "/a/./b"), "to"),
    (redirect("/leak", "/%2e%2e/%2E%2E/etc/passwd"), "to"),
    (redirect("/leak", "/a%2fb"), "to"),
    (redirect("/leak", "/a%5Cb"), "to"),
    (redirect("/leak", "/..data/index.html"), "to"),
    (redirect("/leak", "https://example.com/../x", 302), "to"),
    (redirect("/a/../b", "/c"), "from"),
    (redirect("/..data/*", "/c"), "from"),
    (spec(routing={"headers": [{"path": "/../*", "set": {"X-A": "b"}}]}), "path"),
    (spec(routing={"headers": [{"path": "/..2026_01_01/*", "set": {"X-A": "b"}}]}), "path"),
    ({"content": {"inline": {"files": [{"path": "..data/x", "content": "a"}]}}}, "path"),
    ({"content": {"inline": {"files": [{"path": "a/..b", "content": "a"}]}}}, "path"),
    (spec(routing={"notFoundPage": "..data/404.html"}), "notFoundPage"),
    (spec(ingress={"annotations": {"a\nb": "x"}}), "annotations"),
    (spec(ingress={"annotations": {"a\x00b": "x"}}), "annotations"),
    (spec(ingress={"annotations": {"k" * 1023: "x"}}), "annotations"),
    (spec(ingress={"annotations": {"example.com/" + "n" * 64: "x"}}), "annotations"),
    (spec(ingress={"annotations": {"-bad.example.com/x": "x"}}), "annotations"),
    (spec(domains=["127.0.0.1"]), "domains"),
    (spec(domains=["10.0.0.1"]), "domains"),
    (spec(domains=["::1"]), "domains"),
    (spec(domains=["a.*.example.com"]), "domains"),
])
def test_paths_cannot_leave_the_root_and_keys_are_qualified(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        models.StaticSiteSpec.model_validate(bad)
    assert field in str(info.value)


@pytest.mark.parametrize("good", [
    redirect("/a/*", "/b/:splat"),
    redirect("/a", "/b/c..d/e.html"),
    redirect("/a", "https://example.com/x?next=/../y", 302),  # a query is not a path
    spec(routing={"headers": [{"path": "/.well-known/*", "set": {"X-A": "b"}}]}),
    # What sites migrating from Netlify or Cloudflare Pages write (docs/compat.md).
    redirect("/blog/:post-id", "/posts/:post-id.html", 301),
    redirect("/authors/c%C3%A9line", "/authors/about-c%C3%A9line", 301),
    redirect("/café", "/cafe", 301),
    redirect("/en/*", "/en/404.html", 404),
    redirect("/old-page", "/gone.html", 410),
    spec(routing={"redirects": [{"from": "/store", "to": "/blog/:id", "query": {"id": ":id"}}]}),
    spec(routing={"redirects": [{"from": "/app/*", "to": "/app/index.html", "status": 200, "force": True}]}),
    spec(routing={"semantics": "cloudflare", "redirects": [{"from": "/a/:slug.html", "to": "/b/:slug"},
                                                           {"from": "/x/*.jpg", "to": "/img/:splat.jpg"}]}),
    spec(routing={"headers": [{"path": "/*.js", "set": {"Cache-Control": "immutable"}},
                              {"path": "/.well-known/apple-app-site-association",
                               "set": {"Content-Type": "application/json"}}]}),
    spec(routing={"semantics": "cloudflare", "headers": [{"path": "https://:project.pages.dev/*",
                                                          "set": {"X-Robots-Tag": "noindex"}}]}),
    spec(routing={"notFoundPage": "/index.html", "trailingSlash": "auto"}),
    {"content": {"inline": {"files": [{"path": p, "content": "x"} for p in [
        "index.html", ".well-known/security.txt", ".well-known/apple-app-site-association", "my file (1).pdf",
        "it's.html", "100%.html", "café/ünï.html", "_next/static/chunks/app/blog/[slug]/page-1a2b.js",
        "assets/js/runtime~main.3f2a.js", "assets/index-BXqd1.js", "page-data/app-data.json"]]}}},
    spec(ingress={"annotations": {"cert-manager.io/cluster-issuer": "letsencrypt", "simple": "v"}}),
    spec(domains=["docs.example.com", "*.team-a.example.com", "localhost", "1password.example.com"]),
])
def test_what_real_sites_use_is_still_accepted(good: dict[str, Any]) -> None:
    models.StaticSiteSpec.model_validate(good)
