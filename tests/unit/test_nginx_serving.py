"""Every routing feature, proven over HTTP against a real nginx running the rendered config:
SPA fallback, the 404 page, clean URLs, trailing slashes, redirects (every status, splats,
placeholders, query strings), 200 rewrites, header rules and the baseline headers,
relative Location headers, gzip, and /healthz. Also: no combination of options loops.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator

import pytest

from staticsite_operator.core.nginxconf import BASELINE_HEADERS

from .nginx_harness import Response, Server, make_spec, serve

pytestmark = pytest.mark.nginx

CSS = "body { margin: 0 auto; max-width: 40rem; font-family: system-ui, sans-serif; }\n" * 10  # > 256 bytes
PAGES = {
    "index.html": "INDEX",
    "about.html": "ABOUT",
    "docs/index.html": "DOCS",
    "docs/intro.html": "INTRO",
    "LICENSE": "MIT",
    "style.css": CSS,
}


def location(server: Server, path: str, status: int) -> str:
    """The Location of a redirect, checked to be relative: no host, no port."""
    r = server.get(path)
    assert r.status == status, f"GET {path}: {r.status} {r.headers}"
    loc = r.header("Location")
    assert loc is not None, f"GET {path}: no Location"
    assert str(server.port) not in loc, f"GET {path}: port in Location {loc!r}"
    assert loc.startswith(("/", "https://example.com/")), f"GET {path}: Location {loc!r}"
    assert not loc.startswith(("//", "/\\")), f"GET {path}: Location {loc!r} leaves the site"
    return loc


def ok(server: Server, path: str, body: str, status: int = 200) -> Response:
    r = server.get(path)
    assert (r.status, r.body.decode()) == (status, body), f"GET {path}: {r.status} {r.headers}"
    return r


# --- SPA ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spa() -> Iterator[Server]:
    spec = make_spec({"index.html": "APP", "assets/app.css": CSS}, {
        "spa": True,
        "headers": [{"path": "/assets/*", "set": {"Cache-Control": "public, max-age=31536000, immutable"}}],
    })
    with serve(spec) as server:
        yield server


@pytest.mark.parametrize("path", ["/", "/dashboard", "/users/42/edit", "/deep/link/", "/index.html", "/x?y=1"])
def test_spa_fallback_serves_index_uncached(spa: Server, path: str) -> None:
    r = ok(spa, path, "APP")
    assert r.header("Cache-Control") == "no-cache"


def test_spa_assets_keep_their_rules(spa: Server) -> None:
    r = ok(spa, "/assets/app.css", CSS)
    assert r.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert r.header("Content-Type") == "text/css"


def test_gzip(spa: Server) -> None:
    r = spa.get("/assets/app.css", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert r.header("Vary") == "Accept-Encoding"
    assert gzip.decompress(r.body).decode() == CSS
    assert spa.get("/assets/app.css").header("Content-Encoding") is None


def test_healthz(spa: Server) -> None:
    r = ok(spa, "/healthz", "ok\n")
    for name in BASELINE_HEADERS:
        assert r.header(name) is None, name


# --- Redirects, rewrites, headers, 404 ------------------------------------------------

ROUTES = make_spec({
    **PAGES,
    "404.html": "NOT FOUND",
    "forced.html": "FORCED FILE",
    "posts/2024-hello.html": "HELLO POST",
    "app/index.html": "SUBAPP",
}, {
    "redirects": [
        {"from": "/old/*", "to": "/new/:splat", "status": 301},
        {"from": "/blog/:year/:slug", "to": "/posts/:year-:slug", "status": 302},
        {"from": "/see-other", "to": "/about.html", "status": 303},
        {"from": "/item/:id", "to": "/items?id=:id", "status": 307},
        {"from": "/away/*", "to": "https://example.com/:splat#top", "status": 308},
        {"from": "/forced.html", "to": "/about.html", "status": 302, "force": True},  # forced: beats the file
        {"from": "/docs/intro.html", "to": "/elsewhere", "status": 302},  # unforced: the file shadows it
        {"from": "/first/*", "to": "/one", "status": 302},
        {"from": "/first/x", "to": "/two", "status": 302},  # never reached: the first match wins
        {"from": "/app/*", "to": "/app/index.html", "status": 200},
        {"from": "/pretty/:slug", "to": "/posts/:slug.html", "status": 200},
        {"from": "/fragment", "to": "/about.html#team", "status": 200},  # a fragment means nothing inside
        {"from": "/m/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k", "to": "/k/:k/:j/:a", "status": 301},
    ],
    "headers": [
        {"path": "/*", "set": {"X-Rule": "all", "X-Frame-Options": ""}},
        {"path": "/about.html", "set": {"X-Rule": "about"}},
        {"path": "/docs/*", "set": {"x-rule": "docs", "Cache-Control": "public, max-age=60"}},
        {"path": "/404.html", "set": {"X-Not-Found": "yes"}},
    ],
})


@pytest.fixture(scope="module")
def routes() -> Iterator[Server]:
    with serve(ROUTES) as server:
        yield server


@pytest.mark.parametrize(("path", "status", "target"), [
    ("/old/a/b.html", 301, "/new/a/b.html"),
    ("/old/", 301, "/new/"),
    ("/blog/2024/hello", 302, "/posts/2024-hello"),
    ("/blog/2024/hello/", 302, "/posts/2024-hello"),
    ("/see-other", 303, "/about.html"),
    ("/item/42", 307, "/items?id=42"),
    ("/item/42?ignored=1", 307, "/items?id=42"),  # the target has a query: it replaces the client's
    ("/away/x/y", 308, "https://example.com/x/y#top"),
    ("/away/x?q=1", 308, "https://example.com/x?q=1#top"),
    ("/forced.html", 302, "/about.html"),
    ("/first/x", 302, "/one"),
    ("/m/1/2/3/4/5/6/7/8/9/10/11", 301, "/k/11/10/1"),  # more captures than nginx's $1..$9
])
def test_redirects(routes: Server, path: str, status: int, target: str) -> None:
    assert location(routes, path, status) == target


@pytest.mark.parametrize(("path", "target"), [
    ("/old/a?x=1&y=%20", "/new/a?x=1&y=%20"),
    ("/blog/2024/hello?utm=x", "/posts/2024-hello?utm=x"),
    ("/old/caf%C3%A9?q", "/new/caf%C3%A9?q"),  # passed through as sent, still encoded
])
def test_redirects_keep_the_query_string(routes: Server, path: str, target: str) -> None:
    assert location(routes, path, 301 if path.startswith("/old") else 302) == target


def test_redirects_carry_the_baseline_headers(routes: Server) -> None:
    r = routes.get("/old/x")
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("X-Rule") == "all"


@pytest.mark.parametrize(("path", "body"), [
    ("/app/", "SUBAPP"),
    ("/app/settings/profile", "SUBAPP"),
    ("/pretty/2024-hello", "HELLO POST"),
    ("/pretty/2024-hello?x=1", "HELLO POST"),
    ("/fragment", "ABOUT"),
])
def test_rewrites_serve_the_target_with_200(routes: Server, path: str, body: str) -> None:
    r = ok(routes, path, body)
    assert r.header("Location") is None


def test_healthz_ignores_user_redirects_and_headers(routes: Server) -> None:
    r = ok(routes, "/healthz", "ok\n")
    assert r.header("X-Rule") is None


@pytest.mark.parametrize(("path", "body"), [
    ("/", "INDEX"), ("/index.html", "INDEX"), ("/about.html", "ABOUT"),
    ("/docs", "DOCS"), ("/docs/", "DOCS"), ("/docs/intro.html", "INTRO"), ("/LICENSE", "MIT"),
])
def test_files_are_served_without_nginx_directory_redirects(routes: Server, path: str, body: str) -> None:
    ok(routes, path, body)


def test_not_found_page(routes: Server) -> None:
    for path in ("/nope", "/nope/", "/docs/nope.html", "/about"):  # no cleanUrls here
        r = ok(routes, path, "NOT FOUND", status=404)
        assert r.header("X-Not-Found") == "yes"  # `always`: headers on error responses too


def test_header_rules_last_match_wins(routes: Server) -> None:
    assert routes.get("/index.html").header("X-Rule") == "all"
    assert routes.get("/about.html").header("X-Rule") == "about"
    r = routes.get("/docs/")  # served as /docs/index.html: rules match the file served
    assert (r.header("X-Rule"), r.header("Cache-Control")) == ("docs", "public, max-age=60")
    assert routes.get("/about.html").header("Cache-Control") == BASELINE_HEADERS["Cache-Control"]


def test_exact_header_rules_follow_the_page_to_its_file() -> None:
    # $uri is the file served: a rule for / must still reach /index.html, /about about.html.
    spec = make_spec({**PAGES, "style.css": CSS}, {"cleanUrls": True, "headers": [
        {"path": "/", "set": {"X-Page": "home"}},
        {"path": "/about", "set": {"X-Page": "about"}},
        {"path": "/docs/", "set": {"X-Page": "docs"}},
        {"path": "/style.css", "set": {"X-Page": "css"}},
    ]})
    with serve(spec) as server:
        for path, page in (("/", "home"), ("/about", "about"), ("/about/", "about"), ("/docs", "docs"),
                           ("/docs/", "docs"), ("/style.css", "css"), ("/docs/intro", None)):
            assert server.get(path).header("X-Page") == page, path


def test_empty_value_removes_a_baseline_header(routes: Server) -> None:
    r = routes.get("/about.html")
    assert r.header("X-Frame-Options") is None
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Referrer-Policy") == "strict-origin-when-cross-origin"


def test_baseline_headers() -> None:
    with serve(make_spec({"index.html": "x"})) as server:
        for path, status in (("/", 200), ("/missing", 404)):
            r = server.get(path)
            assert r.status == status
            for name, value in BASELINE_HEADERS.items():
                assert r.header(name) == value, (path, name)
            assert r.header("Server") == "nginx"  # server_tokens off: no version


# --- Clean URLs and trailing slashes ---------------------------------------------------

def _site(clean: bool, trailing: str, spa: bool = False) -> Iterator[Server]:
    with serve(make_spec({**PAGES, "404.html": "NOT FOUND"},
                         {"cleanUrls": clean, "trailingSlash": trailing, "spa": spa})) as server:
        yield server


@pytest.fixture(scope="module")
def clean() -> Iterator[Server]:
    yield from _site(True, "ignore")


@pytest.fixture(scope="module")
def clean_add() -> Iterator[Server]:
    yield from _site(True, "add")


@pytest.fixture(scope="module")
def clean_remove() -> Iterator[Server]:
    yield from _site(True, "remove")


@pytest.fixture(scope="module")
def remove() -> Iterator[Server]:
    yield from _site(False, "remove")


def test_clean_urls(clean: Server) -> None:
    ok(clean, "/about", "ABOUT")
    ok(clean, "/about/", "ABOUT")
    ok(clean, "/docs", "DOCS")
    ok(clean, "/docs/intro", "INTRO")
    ok(clean, "/style.css", CSS)
    assert location(clean, "/about.html", 301) == "/about"
    assert location(clean, "/about.html?x=1", 301) == "/about?x=1"
    assert location(clean, "/docs/intro.html", 301) == "/docs/intro"
    assert location(clean, "/docs/index.html", 301) == "/docs/"
    assert location(clean, "/index.html", 301) == "/"
    ok(clean, "/nope", "NOT FOUND", status=404)  # the 404 page is served, not redirected


def test_clean_urls_with_trailing_slash_add(clean_add: Server) -> None:
    assert location(clean_add, "/about", 301) == "/about/"
    assert location(clean_add, "/about?x=1", 301) == "/about/?x=1"
    ok(clean_add, "/about/", "ABOUT")
    assert location(clean_add, "/about.html", 301) == "/about/"  # one hop, not two
    assert location(clean_add, "/docs", 301) == "/docs/"
    ok(clean_add, "/docs/", "DOCS")
    assert location(clean_add, "/docs/index.html", 301) == "/docs/"
    ok(clean_add, "/", "INDEX")
    ok(clean_add, "/style.css", CSS)  # a dot in the last segment: a file, no slash
    ok(clean_add, "/LICENSE", "MIT")  # an existing file is never redirected


def test_clean_urls_with_trailing_slash_remove(clean_remove: Server) -> None:
    assert location(clean_remove, "/about/", 301) == "/about"
    assert location(clean_remove, "/about/?x=1", 301) == "/about?x=1"
    ok(clean_remove, "/about", "ABOUT")
    assert location(clean_remove, "/about.html", 301) == "/about"
    assert location(clean_remove, "/docs/", 301) == "/docs"
    assert location(clean_remove, "/docs/index.html", 301) == "/docs"  # one hop, not two
    ok(clean_remove, "/docs", "DOCS")
    ok(clean_remove, "/", "INDEX")  # never / -> ""
    ok(clean_remove, "/?x=1", "INDEX")


def test_trailing_slash_remove_without_clean_urls(remove: Server) -> None:
    ok(remove, "/docs", "DOCS")  # docs/index.html, and no nginx redirect back to /docs/
    assert location(remove, "/docs/", 301) == "/docs"
    ok(remove, "/about.html", "ABOUT")
    ok(remove, "/", "INDEX")


PROBES = ["/", "/index.html", "/about", "/about/", "/about.html", "/about.html/", "/docs", "/docs/",
          "/docs/index.html", "/docs/intro", "/docs/intro/", "/docs/intro.html", "/LICENSE", "/LICENSE/",
          "/style.css", "/nope", "/nope/", "/nope.html", "/a/b/c", "/a/b/c/", "/?q=1", "/about?q=1"]


@pytest.mark.parametrize(("clean_urls", "trailing", "spa_mode"),
                         list(itertools.product([False, True], ["ignore", "add", "remove"], [False, True])))
def test_no_redirect_chains_or_loops(clean_urls: bool, trailing: str, spa_mode: bool) -> None:
    with serve(make_spec({**PAGES, "404.html": "NOT FOUND"},
                         {"cleanUrls": clean_urls, "trailingSlash": trailing, "spa": spa_mode})) as server:
        for path in PROBES:
            r = server.get(path)
            if r.status == 301:
                target = location(server, path, 301)
                final = server.get(target)
                assert final.status in (200, 404), f"{path} -> {target} -> {final.status} (a second hop)"
            else:
                assert r.status in (200, 404), f"{path}: {r.status}"


# --- Custom 404 page and internal redirects ---------------------------------------------

def test_custom_not_found_page_survives_rewrites() -> None:
    # error_page is an internal redirect: the /* rewrite must not apply to it again.
    spec = make_spec({"index.html": "INDEX", "404.html": "DEFAULT 404", "errors/missing.html": "CUSTOM 404",
                      "pages/a.html": "A"},
                     {"notFoundPage": "errors/missing.html",
                      "redirects": [{"from": "/*", "to": "/pages/:splat", "status": 200}]})
    with serve(spec) as server:
        ok(server, "/a.html", "A")
        ok(server, "/nope", "CUSTOM 404", status=404)


def test_gzip_static_serves_precompressed_files() -> None:
    spec = make_spec({"index.html": "x", "big.txt": "plain " * 100, "big.txt.gz": gzip.compress(b"precompressed")})
    with serve(spec) as server:
        r = server.get("/big.txt", headers={"Accept-Encoding": "gzip"})
        assert r.header("Content-Encoding") == "gzip"
        assert gzip.decompress(r.body) == b"precompressed"
        assert server.get("/big.txt").body == b"plain " * 100
