"""A pool's nginx serves many sites by Host, each exactly as its own nginx would.

The server blocks come from core.poolconf.site_server_block, as the agent writes them;
one real nginx serves them all (pool_harness). Checked per site: the routing features
(redirects, headers, SPA, 404 page, clean URLs), that no site's rules or variables leak
into another's responses, the injection corpus's valid payloads coming back byte for
byte with hostile requests answered safely, and confinement: no request for one site
reaches the canary beside the sites, nor another site's files.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from staticsite_operator.api import models
from staticsite_operator.core import nginxconf, poolconf

from .pool_harness import PoolServer, serve_pool
from .test_confinement import TRAVERSALS
from .test_nginx_injection import CRLF_ATTACKS, OPEN_REDIRECT_ATTACKS, PAYLOADS, VALID

pytestmark = pytest.mark.nginx


def spec_of(files: dict[str, str], routing: dict[str, Any] | None = None) -> models.StaticSiteSpec:
    return models.StaticSiteSpec.model_validate({
        "content": {"inline": {"files": [{"path": p, "content": c} for p, c in files.items()]}},
        "routing": routing or {}})


SITES: dict[str, tuple[models.StaticSiteSpec, tuple[str, ...]]] = {
    "team-a.spa": (spec_of({"index.html": "SPA INDEX"}, {"spa": True}), ("spa.example.test",)),
    "team-a.clean": (spec_of({"index.html": "CLEAN", "about.html": "ABOUT", "404.html": "CUSTOM 404"},
                             {"cleanUrls": True}), ("clean.example.test", "www.clean.example.test")),
    "team-b.redirects": (spec_of({"index.html": "R"}, {"redirects": [{"from": "/old/*", "to": "/new/:splat",
                                                                      "status": 302}]}), ("r.example.test",)),
    "team-b.headers": (spec_of({"index.html": "H", "assets/app.js": "JS"}, {"headers": [
        {"path": "/assets/*", "set": {"Cache-Control": "public, max-age=31536000, immutable", "X-Site": "b"}}]}),
        ("*.wild.example.test",)),
    # main's routing semantics on the pool: the content's _redirects/_headers, rewrites with
    # captures (a route map no other site shares), Cloudflare's semantics.
    "team-c.files": (spec_of({"index.html": "FILES", "new/x.html": "NEW X", "app/index.html": "APP",
                              "_redirects": "/from/* /new/:splat 301\n/app/* /app/index.html 200\n",
                              "_headers": "/*\n  X-From-File: yes\n"}),
                     ("files.example.test",)),
    "team-c.cf": (spec_of({"index.html": "CF", "about.html": "CF ABOUT", "_headers": "/*\n  X-CF: 1\n"},
                          {"semantics": "cloudflare", "redirects": [{"from": "/go/:id", "to": "/p/:id",
                                                                     "status": 302}]}),
                  ("cf.example.test",)),
    # Many more plain sites: one Host each.
    **{f"bulk.s{i}": (spec_of({"index.html": f"BULK {i}"}), (f"s{i}.bulk.example.test",)) for i in range(40)},
    # Hosts that are map keywords: the sites that share a server block find their root by
    # Host in a map, where "default" and "include" mean something else unless escaped.
    "bulk.default": (spec_of({"index.html": "DEFAULT HOST"}), ("default",)),
    "bulk.include": (spec_of({"index.html": "INCLUDE HOST"}), ("include", "hostnames")),
    # Same clean-URL block as team-a.clean, other files: shares its server block.
    "team-d.clean": (spec_of({"index.html": "CLEAN D", "about.html": "ABOUT D", "404.html": "D 404"},
                             {"cleanUrls": True}), ("clean-d.example.test",)),
}


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolServer]:
    with serve_pool(SITES) as server:
        yield server


def test_every_site_is_served_by_its_host_and_no_other(pool: PoolServer) -> None:
    for i in range(40):
        response = pool.get(f"s{i}.bulk.example.test", "/")
        assert (response.status, response.body) == (200, f"BULK {i}".encode())
    assert pool.get("unknown.example.test", "/").status == 404
    assert pool.get("unknown.example.test", "/index.html").status == 404
    assert pool.get("default", "/").body == b"DEFAULT HOST"
    assert pool.get("include", "/").body == b"INCLUDE HOST"
    assert pool.get("hostnames", "/").body == b"INCLUDE HOST"


def test_alike_sites_share_a_server_block_and_each_keeps_its_own_files(pool: PoolServer) -> None:
    groups = sorted((pool.root / "conf").glob("_g*.conf"))
    assert 1 < len(groups) < 12, f"{len(SITES)} sites in {len(groups)} server blocks"
    bulk = [g for g in groups if '"s7.bulk.example.test"' in g.read_text()]
    assert len(bulk) == 1 and all(f'"s{i}.bulk.example.test"' in bulk[0].read_text() for i in range(40))
    assert pool.get("clean-d.example.test", "/about").body == b"ABOUT D"
    assert pool.get("clean.example.test", "/about").body == b"ABOUT"
    assert pool.get("clean-d.example.test", "/missing").body == b"D 404"
    assert pool.get("clean-d.example.test", "/about.html").header("Location") == "/about"


def test_a_host_two_sites_name_is_the_first_ones() -> None:
    spec = spec_of({"index.html": "x"})
    blocks = {key: poolconf.site_block(spec, key=key, root=f"/r/{key}", hosts=hosts, listen="1")
              for key, hosts in (("a.one", ("same.test", "a.test")), ("b.two", ("same.test", "b.test")))}
    (text,) = (t for name, t in poolconf.generation_files(blocks, fallback_root="/e").items() if name != "_maps.conf")
    assert text.count('"same.test"') == 1 and '"\\\\same.test" "/r/a.one"' in text, text
    assert '"\\\\b.test" "/r/b.two"' in text


def test_routing_features_hold_per_site(pool: PoolServer) -> None:
    assert pool.get("spa.example.test", "/deep/link").body == b"SPA INDEX"
    assert pool.get("clean.example.test", "/deep/link").status == 404
    assert pool.get("clean.example.test", "/deep/link").body == b"CUSTOM 404"
    assert pool.get("www.clean.example.test", "/about").body == b"ABOUT"
    assert pool.get("clean.example.test", "/about.html").header("Location") == "/about"
    assert pool.get("r.example.test", "/old/x?y=1").header("Location") == "/new/x?y=1"
    assert pool.get("spa.example.test", "/old/x").body == b"SPA INDEX", "another site's redirect does not apply"
    # A wildcard host, and header rules that stay on their own site.
    assets = pool.get("cdn.wild.example.test", "/assets/app.js")
    assert (assets.body, assets.header("X-Site")) == (b"JS", "b")
    assert assets.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert pool.get("s1.bulk.example.test", "/assets/app.js").header("X-Site") is None
    assert pool.get("s1.bulk.example.test", "/").header("Cache-Control") == "public, max-age=0, must-revalidate"
    assert pool.get("spa.example.test", "/").header("Cache-Control") == "no-cache"


def test_routing_semantics_and_routing_files_hold_per_site(pool: PoolServer) -> None:
    moved = pool.get("files.example.test", "/from/x")
    assert (moved.status, moved.header("Location")) == (301, "/new/x")
    assert pool.get("files.example.test", "/app/deep/link").body == b"APP", "a 200 rewrite from _redirects"
    assert pool.get("files.example.test", "/").header("X-From-File") == "yes"
    assert pool.get("files.example.test", "/_redirects").status == 404, "routing files are never served"
    assert pool.get("spa.example.test", "/from/x").body == b"SPA INDEX", "another site's _redirects does not apply"
    assert pool.get("spa.example.test", "/").header("X-From-File") is None
    # Cloudflare: /about serves about.html, /about.html redirects to /about; its own rules.
    assert pool.get("cf.example.test", "/about").body == b"CF ABOUT"
    assert pool.get("cf.example.test", "/about.html").header("Location") == "/about"
    assert pool.get("cf.example.test", "/go/7").header("Location") == "/p/7"
    assert pool.get("cf.example.test", "/").header("X-CF") == "1"
    assert pool.get("files.example.test", "/go/7").status == 404


def test_each_site_has_its_own_variables() -> None:
    a = poolconf.site_server_block(SITES["team-a.spa"][0], key="a.x", root="/r", hosts=("a.test",), listen="1")
    b = poolconf.site_server_block(SITES["team-a.spa"][0], key="b.x", root="/r", hosts=("b.test",), listen="1")
    prefix_a, prefix_b = poolconf.site_prefix("a.x"), poolconf.site_prefix("b.x")
    # What a site defines carries its prefix; only nginxconf's HTTP_COMMON is shared.
    defined = re.findall(r"^map \S+ \$(\w+) \{|\(\?<(\w+)>|\bset \$(\w+)", a, re.MULTILINE)
    names = {n for group in defined for n in group if n}
    assert names and f"{prefix_a}h2" in names, names
    assert all(n.startswith(prefix_a) or f"${n}" in nginxconf.HTTP_COMMON for n in names), names
    assert a.replace(prefix_a, prefix_b).replace("a.test", "b.test").replace("# a.x", "# b.x") == b


def test_alike_maps_are_defined_once_and_different_ones_stay_apart() -> None:
    blocks = {key: poolconf.site_server_block(SITES[key][0], key=key, root="/r", hosts=SITES[key][1], listen="1")
              for key in ("bulk.s1", "bulk.s2", "team-b.headers")}
    split = {key: poolconf.split_maps(block, key) for key, block in blocks.items()}
    assert split["bulk.s1"][0] == split["bulk.s2"][0], "two plain sites share every map"
    assert set(split["team-b.headers"][0]) != set(split["bulk.s1"][0]), "header rules make their own maps"
    assert set(split["team-b.headers"][0]) & set(split["bulk.s1"][0]), "the clean-URL helpers are shared"
    for key, (_maps, server) in split.items():
        assert "map $uri" not in server, "every map of these sites is shareable"
        assert poolconf.site_prefix(key) not in server
    assert pool_nginx_sizes(split) < sum(len(m) for m, _ in split.values())


def pool_nginx_sizes(split: dict[str, tuple[dict[str, str], str]]) -> int:
    union: dict[str, str] = {}
    for maps, _server in split.values():
        union |= maps
    return len(union)


# --- the injection corpus, per site -------------------------------------------------------

@pytest.fixture(scope="module")
def hostile_pool() -> Iterator[tuple[PoolServer, dict[str, str]]]:
    values = {f"X-P{i}-{j}": v for i, p in enumerate(PAYLOADS) if ("header value", p) in VALID
              for j, v in enumerate((p, f"a{p}b", f" {p} "))}
    headers = {**values, "X-'": "quote", "X-#": "hash"}
    sites = {
        "t.corpus": (spec_of({"index.html": "INDEX"}, {"headers": [{"path": "/*", "set": headers}]}),
                     ("corpus.example.test",)),
        "t.redirector": (spec_of({"index.html": "INDEX", "about.html": "ABOUT"}, {
            "cleanUrls": True, "trailingSlash": "add",
            "redirects": [{"from": "/p/:id", "to": "/:id", "status": 302}, {"from": "/s/*", "to": "/:splat",
                                                                            "status": 307},
                          {"from": "/x/*", "to": "https://example.com/:splat", "status": 301}]}),
            ("redirector.example.test",)),
        "t.neighbour": (spec_of({"index.html": "NEIGHBOUR"}), ("neighbour.example.test",)),
    }
    with serve_pool(sites) as server:
        yield server, headers


def test_valid_payloads_come_back_byte_for_byte_and_only_on_their_site(
        hostile_pool: tuple[PoolServer, dict[str, str]]) -> None:
    server, headers = hostile_pool
    head, body = server.raw("corpus.example.test", b"/")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"INDEX", head
    lines = head.split(b"\r\n")[1:]
    for name, value in headers.items():
        if value:
            assert f"{name}: {value}".encode() in lines, (name, value)
    neighbour, _ = server.raw("neighbour.example.test", b"/")
    assert not any(line.startswith(b"X-P") for line in neighbour.split(b"\r\n")), neighbour


@pytest.mark.parametrize("target", CRLF_ATTACKS, ids=repr)
def test_encoded_crlf_never_splits_headers_per_site(hostile_pool: tuple[PoolServer, dict[str, str]],
                                                    target: bytes) -> None:
    server, _ = hostile_pool
    head, _ = server.raw("redirector.example.test", target)
    assert not any(line.lower().startswith(b"set-cookie") for line in head.split(b"\r\n")[1:]), head


@pytest.mark.parametrize("target", OPEN_REDIRECT_ATTACKS, ids=repr)
def test_no_location_leaves_the_site_per_site(hostile_pool: tuple[PoolServer, dict[str, str]],
                                              target: bytes) -> None:
    server, _ = hostile_pool
    head, _ = server.raw("redirector.example.test", target)
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"location:"):
            value = line.split(b":", 1)[1].strip()
            assert value.startswith(b"/") and not value.startswith((b"//", b"/\\")) and b"\\" not in value, head


# --- confinement, per site ----------------------------------------------------------------

CANARY = f"canary-{secrets.token_hex(8)}".encode()


def test_no_request_for_a_site_reaches_the_canary_or_another_site() -> None:
    """The canary sits beside the sites and in a revision directory's parent; another
    site's secret file sits in its own root. No site's request returns either."""
    secret = f"secret-{secrets.token_hex(8)}".encode()
    sites = {"t.a": (spec_of({"index.html": "A", "404.html": "A404"}, {"spa": True, "cleanUrls": True}),
                     ("a.example.test",)),
             "t.b": (spec_of({"index.html": "B", "secret.html": secret.decode()}), ("b.example.test",))}

    def canaries(tmp: Path) -> None:
        for where in (tmp / "canary.txt", tmp / "sites" / "canary.txt", tmp / "sites" / "t.a" / "canary.txt"):
            where.write_bytes(CANARY)
            where.chmod(0o644)

    with serve_pool(sites, before=canaries) as server:
        paths = [*TRAVERSALS, "/../t.b/r1/secret.html", "/../../t.b/r1/secret.html", "/%2e%2e/t.b/r1/secret.html",
                 "/..%2f..%2ft.b/r1/secret.html", "/secret.html", "/../canary.txt"]
        for path in paths:
            head, body = server.raw("a.example.test", path.encode())
            assert CANARY not in body and secret not in body, (path, head)
        assert server.get("b.example.test", "/secret.html").body == secret  # where it belongs
