"""Large redirect sets: literal rules found by a hash lookup answer exactly as the plain scan.

The split (core/routeindex.py) is checked on its own, then the same specs are served by
real nginx twice, with the hash (the default) and with every rule in the scan, and every
request of a hostile list gets the same status, Location and body from both.
"""

from __future__ import annotations

from typing import Any

import pytest

from staticsite_operator.core import routeindex
from staticsite_operator.core.nginxconf import render_nginx_conf
from staticsite_operator.core.routeindex import Candidate, split

from .nginx_harness import make_spec, serve


def lit(n: int, path: str) -> Candidate:
    return Candidate(str(n), path, "^" + path.replace("-", "\\-") + "/?(?:\\?|$)")


def test_literal_rules_are_hashed_from_the_threshold_on() -> None:
    few = [lit(i, f"/old/{i}") for i in range(1, routeindex.HASH_FROM)]
    assert split(few, "netlify") == routeindex.Index([], {c.n for c in few})
    many = [*few, lit(99, "/old/99")]
    index = split(many, "netlify")
    assert index.hashed == [(c.exact, c.n) for c in many]
    assert index.scanned == set()


def test_a_literal_rule_an_earlier_scanned_rule_could_match_stays_in_the_scan() -> None:
    splat = Candidate("1", None, r"^/blog(?:/(?<c1>[^?]*))?(?:\?|$)")  # /blog/*, PCRE's named group
    rules = [splat, lit(2, "/blog/a"), lit(3, "/docs/a"), lit(4, "/Docs/a"), lit(5, "/docs/a"),
             Candidate("6", "/x%41", "^/x%41(?:\\?|$)"), lit(7, "/a/"),
             *[lit(10 + i, f"/p/{i}") for i in range(routeindex.HASH_FROM)]]
    index = split(rules, "netlify")
    hashed = {n: k for k, n in index.hashed}
    assert "2" not in hashed, "/blog/* comes first and matches /blog/a"
    assert hashed["3"] == "/docs/a"
    assert "4" in index.scanned and "5" in index.scanned, "same key but for case, or a duplicate: scanned"
    assert "6" in index.scanned, "a percent-escape: clients spell its hex digits in either case"
    assert "7" in index.scanned, "with Netlify, a literal rule never ends in '/'"
    assert "1" in index.scanned
    # An unreadable regex counts as one that matches everything after it.
    odd = split([Candidate("1", None, "^(?<bad"), *rules[1:]], "netlify")
    assert odd.hashed == []


def test_cloudflare_keys_keep_their_trailing_slash() -> None:
    rules = [Candidate(str(i), f"/c/{i}/", f"^/c/{i}/(?:\\?|$)") for i in range(routeindex.HASH_FROM)]
    assert [k for k, _ in split(rules, "cloudflare").hashed] == [f"/c/{i}/" for i in range(routeindex.HASH_FROM)]


def _routing(semantics: str) -> dict[str, Any]:
    slash = "/" if semantics == "cloudflare" else ""
    rules: list[dict[str, Any]] = [
        {"from": "/blog/*", "to": "/posts/:splat", "status": 301},            # shadows /blog/a below
        {"from": "/Docs/a", "to": "/upper", "status": 302},
        {"from": "/shop", "to": "/store", "status": 301, "query": {"id": ":id"}},
    ]
    rules += [{"from": f"/old/page-{i}{slash}", "to": f"/new/{i}", "status": 301} for i in range(40)]
    rules += [
        {"from": "/blog/a", "to": "/never", "status": 301},
        {"from": "/docs/a", "to": "/lower", "status": 301},
        {"from": "/docs/A", "to": "/lower-a", "status": 302},
        {"from": "/old/page-3", "to": "/duplicate", "status": 302},
        {"from": "/gone", "to": "/404.html", "status": 410},
        {"from": "/alias", "to": "/index.html", "status": 200},
        {"from": "/shop", "to": "/all", "status": 302},
        {"from": "/:lang/old/page-7", "to": "/lang/:lang", "status": 302},
    ]
    return {"semantics": semantics, "redirects": rules}


REQUESTS = ["/", "/old/page-0", "/old/page-0/", "/old/page-39", "/OLD/page-1", "/old/Page-1", "/old/page-1?x=1",
            "/old/page-1/?x=1", "/old/page-1//", "/old/page-3", "/old/page-40", "/blog/a", "/blog/a/", "/docs/a",
            "/Docs/a", "/DOCS/A", "/docs/A", "/shop?id=5", "/shop", "/shop/?y=2", "/gone", "/alias", "/alias/",
            "/fr/old/page-7", "/old/page-7", "//old/page-2", "/old/page-2%2F", "/old%2Fpage-2", "/index.html"]


@pytest.mark.nginx
@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
def test_the_hash_answers_as_the_scan(semantics: str, monkeypatch: pytest.MonkeyPatch) -> None:
    default = routeindex.HASH_FROM
    spec = make_spec({"index.html": "<h1>home</h1>", "404.html": "<h1>missing</h1>"}, _routing(semantics))
    hashed_conf = render_nginx_conf(spec)
    assert "route_key {" in hashed_conf
    monkeypatch.setattr(routeindex, "HASH_FROM", 10**6)
    assert "route_key {" not in render_nginx_conf(spec)
    answers: list[list[tuple[int, str | None, bytes]]] = []
    for threshold in (10**6, default):
        monkeypatch.setattr(routeindex, "HASH_FROM", threshold)
        with serve(spec) as server:
            answers.append([(r.status, r.header("Location"), r.body) for r in map(server.get, REQUESTS)])
    scan, hashed = answers
    for request, a, b in zip(REQUESTS, scan, hashed, strict=True):
        assert a == b, request
    statuses = {request: a[0] for request, a in zip(REQUESTS, scan, strict=True)}
    # The rules did act (a redirect, a 410, a rewrite), so the comparison meant something.
    assert statuses["/old/page-0/" if semantics == "cloudflare" else "/old/page-0"] == 301
    assert statuses["/gone"] == 410 and statuses["/alias"] == 200
    assert dict(zip(REQUESTS, (a[1] for a in scan), strict=True))["/docs/a"] == "/lower"
