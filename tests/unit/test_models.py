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
    (spec(routing={"redirects": [{"from": "/a", "to": "https://x.example.com/", "status": 200}]}), "200 rewrite"),
    (spec(routing={"redirects": [{"from": "/a", "to": "/b", "status": 404}]}), "status"),
    (spec(routing={"headers": [{"path": "/", "set": {"Content-Type": "text/html"}}]}), "Content-Type"),
    (spec(routing={"headers": [{"path": "/", "set": {"X-A": "a\nb"}}]}), "X-A"),
    (spec(domains=["UPPER.example.com"]), "domains"),
    (spec(replicas=101), "replicas"),
    (spec(nginx={"resources": {"limits": {"memory": "lots"}}}), "memory"),
    (spec(unknown=1), "unknown"),
    (spec(routing={"redirects": [{"from": "/healthz", "to": "/x"}]}), "reserved"),
    (spec(routing={"redirects": [{"from": "/a//b", "to": "/x"}]}), "from"),
    (spec(routing={"redirects": [{"from": "/:a/:a", "to": "/x/:a"}]}), "once"),
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
    spec(ingress={"annotations": {"cert-manager.io/cluster-issuer": "letsencrypt", "simple": "v"}}),
    spec(domains=["docs.example.com", "*.team-a.example.com", "localhost", "1password.example.com"]),
])
def test_what_real_sites_use_is_still_accepted(good: dict[str, Any]) -> None:
    models.StaticSiteSpec.model_validate(good)
