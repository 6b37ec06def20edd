"""Real-world-shaped sites, served by real nginx, behave as their host documents.

Four sites, each as a static-site generator emits it and with the `_redirects`/`_headers`
its users write: a Hugo-like blog (pretty URLs), a Vite SPA (hashed assets), a docs site
with redirects, rewrites and clean URLs, and a site with `.well-known` files. Every
expectation cites the host's documentation (docs/compat.md has the full quotes):

- NF-RO   https://docs.netlify.com/routing/redirects/redirect-options/
- NF-RC   https://docs.netlify.com/platform/request-chain (shadowing)
- NF-H    https://docs.netlify.com/routing/headers/
- NF-OLD  Netlify's "Redirects and Rewrite Rules" page (SPA, splats, force)
- CF-R    https://developers.cloudflare.com/pages/configuration/redirects/
- CF-H    https://developers.cloudflare.com/pages/configuration/headers/
- CF-S    https://developers.cloudflare.com/pages/configuration/serving-pages/
- TSG     slorber/trailing-slash-guide, observed behaviour of both hosts
Where a host's documentation is silent and its own code decides, the test says "(impl)".
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from staticsite_operator.api import models

from .nginx_harness import Response, Server, make_spec, serve

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.nginx

CSS = "body{margin:0}" * 40
JS = "console.log('app');" * 40


def page(server: Server, path: str, body: str, status: int = 200, host: str | None = None) -> Response:
    r = server.get(path, headers={"Host": host} if host else None)
    assert (r.status, r.body.decode(errors="replace")) == (status, body), f"GET {path}: {r.status} {r.headers}"
    return r


def redirect(server: Server, path: str, status: int, location: str) -> None:
    r = server.get(path)
    assert (r.status, r.header("Location")) == (status, location), f"GET {path}: {r.status} {r.headers}"


# --- A Hugo blog on Netlify: pretty URLs are directories --------------------------------

HUGO = {
    "index.html": "HOME",
    "404.html": "HUGO 404",
    "posts/index.html": "POSTS",
    "posts/hello-world/index.html": "HELLO",
    "posts/hello-world/cover.jpg": b"\xff\xd8\xff\xe0jpeg",
    "tags/go/index.html": "TAG GO",
    "css/style.min.4f2a.css": CSS,
    "index.xml": "<rss/>",
    "sitemap.xml": "<urlset/>",
    "robots.txt": "User-agent: *",
    "_redirects": "# moved from WordPress\n"
                  "/blog/*            /posts/:splat        301\n"
                  "/?p=:id            /posts/              301\n"
                  "/posts/hello-world/  /elsewhere/        302\n"
                  "/feed              /index.xml           301\n",
}


def _served(files: dict[str, Any], routing: dict[str, Any] | None = None) -> Iterator[Server]:
    with serve(make_spec(files, routing)) as server:
        yield server


@pytest.fixture(scope="module")
def hugo() -> Iterator[Server]:
    # Netlify's Pretty URLs (on by default) for a site of directories: trailingSlash: auto.
    yield from _served(HUGO, {"trailingSlash": "auto"})


def test_hugo_pages_and_their_directories(hugo: Server) -> None:
    page(hugo, "/", "HOME")
    page(hugo, "/posts/hello-world/", "HELLO")
    page(hugo, "/posts/hello-world/index.html", "HELLO")  # TSG: /folder/index.html is 200 on Netlify
    # TSG (Netlify, pretty URLs on): /folder -> /folder/ when only folder/index.html exists.
    redirect(hugo, "/posts/hello-world", 301, "/posts/hello-world/")
    redirect(hugo, "/tags/go?page=2", 301, "/tags/go/?page=2")
    assert hugo.get("/posts/hello-world/cover.jpg").header("Content-Type") == "image/jpeg"
    assert hugo.get("/index.xml").header("Content-Type") == "text/xml; charset=utf-8"


def test_hugo_404_page(hugo: Server) -> None:
    # NF-RO: "If you add a 404.html page to your site, it will be picked up and displayed
    # automatically for any failed paths." And no slash is added to what does not exist.
    page(hugo, "/nope", "HUGO 404", 404)
    page(hugo, "/posts/nope/", "HUGO 404", 404)


def test_hugo_redirects(hugo: Server) -> None:
    # NF-OLD: "/news/* /blog/:splat ... redirects paths like /news/2004/01/10/my-story".
    redirect(hugo, "/blog/hello-world/", 301, "/posts/hello-world/")
    # (impl, NF-CLI) the query string passes through when `to` has none.
    redirect(hugo, "/blog/2019/x?utm=1", 301, "/posts/2019/x?utm=1")
    # NF-RO: rules match "regardless of whether or not they contain a trailing slash".
    redirect(hugo, "/feed/", 301, "/index.xml")


def test_hugo_file_shadows_an_unforced_rule(hugo: Server) -> None:
    # NF-RC: "redirects behave as fallbacks ... serve /bar if /foo doesn't match anything".
    page(hugo, "/posts/hello-world/", "HELLO")


# --- A Vite SPA: hashed assets, client-side routes -------------------------------------

VITE = {
    "index.html": '<!doctype html><script type="module" src="/assets/index-BXqd1a2b.js"></script>',
    "assets/index-BXqd1a2b.js": JS,
    "assets/index-BXqd1a2b.js.gz": gzip.compress(JS.encode()),
    "assets/index-C3x9Kq.css": CSS,
    "assets/logo-7f3e.svg": "<svg/>",
    "favicon.ico": b"\x00\x00\x01\x00",
    "manifest.webmanifest": '{"name": "app"}',
}
VITE_HEADERS = "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n"


@pytest.fixture(scope="module")
def vite_netlify() -> Iterator[Server]:
    yield from _served({**VITE, "_redirects": "/*    /index.html   200\n", "_headers": VITE_HEADERS})


@pytest.fixture(scope="module")
def vite_cloudflare() -> Iterator[Server]:
    # CF-S: no top-level 404.html, so Pages treats the project as a SPA: no _redirects needed.
    yield from _served({**VITE, "_headers": VITE_HEADERS}, {"semantics": "cloudflare"})


@pytest.mark.parametrize("which", ["vite_netlify", "vite_cloudflare"])
def test_vite_deep_links_serve_the_app(which: str, request: pytest.FixtureRequest) -> None:
    # NF-OLD: "/* /index.html 200 ... serve the index.html instead of giving a 404";
    # CF-S: "Pages' default single-page application behavior matches all incoming paths to the root".
    server: Server = request.getfixturevalue(which)
    for path in ("/", "/dashboard/settings", "/users/42/edit", "/dashboard/settings?tab=2"):
        page(server, path, VITE["index.html"])  # type: ignore[arg-type]


@pytest.mark.parametrize("which", ["vite_netlify", "vite_cloudflare"])
def test_vite_assets_are_files_with_their_headers(which: str, request: pytest.FixtureRequest) -> None:
    # NF-RC shadowing: the SPA rule does not apply where a file exists. NF-H/CF-H: /assets/*.
    server: Server = request.getfixturevalue(which)
    r = page(server, "/assets/index-BXqd1a2b.js", JS)
    assert r.header("Content-Type") == "application/javascript; charset=utf-8"
    assert r.header("Cache-Control") == "public, max-age=31536000, immutable"
    r = page(server, "/assets/index-C3x9Kq.css", CSS)
    assert r.header("Content-Type") == "text/css"
    assert server.get("/manifest.webmanifest").header("Content-Type") == "application/manifest+json"
    assert server.get("/").header("Cache-Control") != "public, max-age=31536000, immutable"


def test_vite_precompressed_assets(vite_netlify: Server) -> None:
    """A build's .gz files are sent as they are to clients that accept gzip (gzip_static)."""
    r = vite_netlify.get("/assets/index-BXqd1a2b.js", headers={"Accept-Encoding": "gzip"})
    assert r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body).decode() == JS
    assert vite_netlify.get("/assets/index-BXqd1a2b.js").body.decode() == JS


def test_vite_missing_asset(vite_netlify: Server, vite_cloudflare: Server) -> None:
    # Both hosts answer a missing asset with the app (the SPA rule / default matches any
    # path, NF-OLD: "no matter what URL the browser requests"; CF impl: any path, any extension).
    page(vite_netlify, "/assets/index-OLD.js", VITE["index.html"])  # type: ignore[arg-type]
    page(vite_cloudflare, "/assets/index-OLD.js", VITE["index.html"])  # type: ignore[arg-type]


def test_vite_cloudflare_headers_on_404_and_defaults(vite_cloudflare: Server) -> None:
    # CF-S "Headers always added": Access-Control-Allow-Origin: *, Referrer-Policy,
    # X-Content-Type-Options: nosniff; cacheable assets: Cache-Control: public, max-age=0, must-revalidate.
    r = vite_cloudflare.get("/favicon.ico")
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Cache-Control") == "public, max-age=0, must-revalidate"


# --- A docs site: redirects, rewrites, clean URLs ---------------------------------------

DOCS = {
    "index.html": "DOCS HOME",
    "404.html": "DOCS 404",
    "getting-started.html": "GETTING STARTED",
    "legacy.html": "LEGACY FILE",
    "api-reference.html": "API REFERENCE",
    "guide/index.html": "GUIDE",
    "guide/install.html": "INSTALL",
    "guide/404.html": "GUIDE 404",
    "assets/js/runtime~main.3f2a.js": JS,
    "_redirects": "# Cloudflare: source destination [code]\n"
                  "/old-docs/*          /guide/:splat        301\n"
                  "/guide/v1/:page      /guide/:page\n"
                  "/api/*               /api-reference       200\n"
                  "/legacy.html         /getting-started     301   # a file exists, the rule still applies\n"
                  "/releases/:version.html /guide/install?v=:version 301\n",
    "_headers": "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n"
                "/*\n  X-Robots-Tag: noindex\n"
                "/guide/*\n  ! X-Robots-Tag\n",
}


@pytest.fixture(scope="module")
def docs() -> Iterator[Server]:
    yield from _served(DOCS, {"semantics": "cloudflare"})


def test_docs_html_pages_lose_their_extension(docs: Server) -> None:
    # CF-S: "/contact.html will be redirected to /contact, and /about/index.html will be
    # redirected to /about/". (impl) 308, query string kept.
    redirect(docs, "/getting-started.html", 308, "/getting-started")
    redirect(docs, "/getting-started.html?x=1", 308, "/getting-started?x=1")
    redirect(docs, "/guide/index.html", 308, "/guide/")
    page(docs, "/getting-started", "GETTING STARTED")


def test_docs_trailing_slashes_follow_the_files(docs: Server) -> None:
    # TSG, Cloudflare: /folder -> /folder/, /file/ -> /file (impl: 308).
    redirect(docs, "/guide", 308, "/guide/")
    page(docs, "/guide/", "GUIDE")
    redirect(docs, "/guide/install/", 308, "/guide/install")
    page(docs, "/guide/install", "INSTALL")


def test_docs_nearest_404(docs: Server) -> None:
    # CF-S: "Pages will then attempt to find the closest 404 page ... ending in /404.html".
    page(docs, "/guide/nope", "GUIDE 404", 404)
    page(docs, "/guide/deeper/still/nope", "GUIDE 404", 404)
    r = page(docs, "/nope", "DOCS 404", 404)
    assert r.header("Cache-Control") == "no-store"  # (impl) every 404


def test_docs_redirects_and_rewrites(docs: Server) -> None:
    # CF-R: splat, default 302, and the query string kept (impl).
    redirect(docs, "/old-docs/install?x=1", 301, "/guide/install?x=1")
    # (impl) "301 doesn't skip headers": a redirect carries the _headers rules too.
    assert docs.get("/old-docs/install").header("X-Robots-Tag") == "noindex"
    redirect(docs, "/guide/v1/install", 302, "/guide/install")
    # CF-R: "Proxying ✅ /blog/* /news/:splat 200": the target's content, the URL unchanged.
    page(docs, "/api/users/list", "API REFERENCE")
    # CF-R: "Redirects are always followed, regardless of whether or not an asset matches".
    redirect(docs, "/legacy.html", 301, "/getting-started")
    # CF-PH: a placeholder anywhere in a segment; `to` with a query replaces the client's (impl).
    redirect(docs, "/releases/2.1.html?utm=x", 301, "/guide/install?v=2.1")


def test_docs_headers_join_and_detach(docs: Server) -> None:
    # CF-H: "An incoming request which matches multiple rules' URL patterns will inherit all
    # rules' headers"; "prepending the header name with an exclamation mark and space (! )".
    r = docs.get("/assets/js/runtime~main.3f2a.js")
    assert r.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert r.header("X-Robots-Tag") == "noindex"
    assert docs.get("/guide/").header("X-Robots-Tag") is None
    assert docs.get("/getting-started").header("X-Robots-Tag") == "noindex"


@pytest.fixture(scope="module")
def docs_netlify() -> Iterator[Server]:
    files = {k: v for k, v in DOCS.items() if not k.startswith("_")}
    files["_redirects"] = ("/old-docs/*   /guide/:splat   301\n"
                           "/api/*        /api-reference.html   200\n"
                           "/legacy.html  /getting-started      301\n"
                           "/guide/*      /guide/404.html       404\n")
    yield from _served(files, {"cleanUrls": True, "trailingSlash": "auto"})


def test_docs_on_netlify(docs_netlify: Server) -> None:
    # NF-RO: default status 301; NF-RC: legacy.html exists, so its (unforced) rule does not apply.
    redirect(docs_netlify, "/old-docs/install", 301, "/guide/install")
    page(docs_netlify, "/api/v2", "API REFERENCE")
    page(docs_netlify, "/getting-started", "GETTING STARTED")
    redirect(docs_netlify, "/legacy.html", 301, "/legacy")  # cleanUrls, then the file is served
    page(docs_netlify, "/legacy", "LEGACY FILE")
    # NF-RO: "/en/* /en/404.html 404": a custom 404 per path; existing pages still win.
    page(docs_netlify, "/guide/nope", "GUIDE 404", 404)
    page(docs_netlify, "/guide/install", "INSTALL")
    page(docs_netlify, "/nope", "DOCS 404", 404)


# --- .well-known, and the file names generators emit ----------------------------------

AASA = '{"applinks": {"details": []}}'
WELL_KNOWN = {
    "index.html": "HOME",
    ".well-known/security.txt": "Contact: mailto:security@example.com\n",
    ".well-known/apple-app-site-association": AASA,
    ".well-known/assetlinks.json": "[]",
    ".well-known/openid-configuration": '{"issuer": "x"}',
    "_next/static/chunks/app/blog/[slug]/page-1a2b.js": JS,
    "assets/js/runtime~main.3f2a.js": JS,
    "files/Annual Report (2024).pdf": b"%PDF-1.7",
    "files/café.txt": "café",
    "files/NOTICE": "no extension",
    "_headers": "/.well-known/openid-configuration\n  Content-Type: application/json\n",
}


@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
def test_well_known_files(semantics: str) -> None:
    with serve(make_spec(WELL_KNOWN, {"semantics": semantics})) as server:
        r = page(server, "/.well-known/security.txt", WELL_KNOWN[".well-known/security.txt"])  # type: ignore[arg-type]
        assert r.header("Content-Type") == "text/plain; charset=utf-8"
        # Apple requires JSON; the file has no extension. A built-in type (hosts need _headers).
        r = page(server, "/.well-known/apple-app-site-association", AASA)
        assert r.header("Content-Type") == "application/json"
        assert server.get("/.well-known/assetlinks.json").header("Content-Type") == "application/json"
        # NF-H / CF-H: a _headers Content-Type overrides the default type.
        assert server.get("/.well-known/openid-configuration").header("Content-Type") == "application/json"
        assert server.get("/_next/static/chunks/app/blog/%5Bslug%5D/page-1a2b.js").status == 200
        assert server.get("/_next/static/chunks/app/blog/[slug]/page-1a2b.js").status == 200
        assert server.get("/assets/js/runtime~main.3f2a.js").status == 200
        assert server.get("/files/Annual%20Report%20(2024).pdf").body == b"%PDF-1.7"
        assert server.get("/files/caf%C3%A9.txt").body == "café".encode()
        # CF-UP (impl): a name without a known extension is application/octet-stream.
        assert server.get("/files/NOTICE").header("Content-Type") == "application/octet-stream"
        # CF-R: "This file will not itself be served as a static asset".
        assert server.get("/_headers").status == 404
        # No page there: Netlify's 404; Cloudflare's SPA default (no 404.html in this site).
        assert server.get("/.well-known/").status == (404 if semantics == "netlify" else 200)


# --- The documentation's own examples -----------------------------------------------------

def _site(semantics: str, redirects: str = "", headers: str = "", files: dict[str, Any] | None = None,
          routing: dict[str, Any] | None = None) -> Iterator[Server]:
    content: dict[str, Any] = {"index.html": "INDEX", **(files or {})}
    if redirects:
        content["_redirects"] = redirects
    if headers:
        content["_headers"] = headers
    yield from _served(content, {"semantics": semantics, **(routing or {})})


@pytest.fixture(scope="module")
def netlify_statuses() -> Iterator[Server]:
    # NF-RO, "HTTP status codes" (verbatim).
    yield from _site("netlify", "# Redirect with a 301\n/home         /              301\n\n"
                                "# Redirect with a 302\n/my-redirect  /              302\n\n"
                                "# Show a custom 404 for this path\n/ecommerce    /store-closed  404\n\n"
                                "# Rewrite a path\n/pass-through /index.html    200\n",
                     files={"store-closed.html": "STORE CLOSED"}, routing={"cleanUrls": True})


def test_netlify_status_codes(netlify_statuses: Server) -> None:
    redirect(netlify_statuses, "/home", 301, "/")
    redirect(netlify_statuses, "/my-redirect", 302, "/")
    # NF-RO: 404 "the page content will change, but the URL in the browser address bar will not".
    page(netlify_statuses, "/ecommerce", "STORE CLOSED", 404)
    # NF-RO: 200 "will change the server response without changing the URL".
    page(netlify_statuses, "/pass-through", "INDEX")


def test_netlify_splats_placeholders_and_query() -> None:
    # NF-OLD splats and placeholders; NF-OLD/NF-RO query parameters.
    rules = ("/news/*  /blog/:splat\n"
             "/news2/:month/:date/:year/:slug  /blog/:year/:month/:date/:slug\n"
             "/store id=:id  /blog/:id  301\n"
             "/articles id=:id tag=:tag /posts/:tag/:id 301\n"
             "/movies/:post-id  /media/:post-id\n")
    for server in _site("netlify", rules):
        redirect(server, "/news/2004/01/10/my-story", 301, "/blog/2004/01/10/my-story")
        redirect(server, "/news", 301, "/blog/")  # (impl) /news/* also matches /news
        redirect(server, "/news2/02/12/2004/my-story", 301, "/blog/2004/02/12/my-story")
        # NF-OLD: "/store?id=my-blog-post to /blog/my-blog-post": the matched query is not passed on.
        redirect(server, "/store?id=my-blog-post", 301, "/blog/my-blog-post")
        assert server.get("/store").status == 404  # the rule needs its parameter
        redirect(server, "/articles?tag=t&id=1", 301, "/posts/t/1")  # any order
        assert server.get("/articles?id=1").status == 404
        redirect(server, "/movies/42", 301, "/media/42")


def test_netlify_force() -> None:
    # NF-OLD: "/app/* /app/index.html 200! ... even if a file matches the URL."
    for server in _site("netlify", "/app/*  /app/index.html  200!\n/best-pets/dogs /best-pets/cats.html 200!\n",
                        files={"app/index.html": "APP", "app/chat.html": "CHAT FILE",
                               "best-pets/dogs/index.html": "DOGS", "best-pets/cats.html": "CATS"}):
        page(server, "/app/chat.html", "APP")
        page(server, "/app/anything/deep", "APP")
        page(server, "/best-pets/dogs", "CATS")


def test_netlify_headers_last_rule_wins_and_multi_values() -> None:
    # NF-H: values on several lines are one header, joined; (impl, NF-CLI) for one name
    # the later matching rule replaces the earlier.
    headers = ("/*\n  X-Frame-Options: DENY\n"
               "/templates/index2.html\n  X-Frame-Options: SAMEORIGIN\n"
               "/*\n  cache-control: max-age=0\n  cache-control: no-cache\n  cache-control: no-store\n"
               "  cache-control: must-revalidate\n")
    for server in _site("netlify", headers=headers, files={"templates/index2.html": "T2", "a.html": "A"}):
        assert server.get("/a.html").header("X-Frame-Options") == "DENY"
        assert server.get("/templates/index2.html").header("X-Frame-Options") == "SAMEORIGIN"
        assert server.get("/a.html").header("Cache-Control") == "max-age=0, no-cache, no-store, must-revalidate"


def test_cloudflare_complete_redirects_example() -> None:
    # CF-R, "Complete example" (verbatim).
    rules = ("/home301 / 301\n/home302 / 302\n/querystrings /?query=string 301\n/twitch https://twitch.tv\n"
             "/trailing /trailing/ 301\n/notrailing/ /nottrailing 301\n/page/ /page2/#fragment 301\n"
             "/blog/* https://blog.my.domain/:splat # Blog migration\n"
             "/products/:code/:name /products?code=:code&name=:name\n")
    for server in _site("cloudflare", rules):
        redirect(server, "/home301", 301, "/")
        redirect(server, "/home301?a=1", 301, "/?a=1")
        redirect(server, "/home302", 302, "/")
        redirect(server, "/querystrings?x=1", 301, "/?query=string")
        redirect(server, "/twitch", 302, "https://twitch.tv")
        redirect(server, "/trailing", 301, "/trailing/")
        redirect(server, "/notrailing/", 301, "/nottrailing")
        assert server.get("/notrailing").status == 200  # the trailing slash counts: the SPA default answers
        redirect(server, "/page/", 301, "/page2/#fragment")
        redirect(server, "/blog/anything", 302, "https://blog.my.domain/anything")
        redirect(server, "/products/1/hat", 302, "/products?code=1&name=hat")


def test_cloudflare_inline_comments_and_single_hop() -> None:
    # CF-R: inline comments; "a request to /a will render /b ... but /a will not render /c".
    rules = ("# Full-line comment\n/old-page /new-page 301 # Moved during site redesign\n"
             "/blog/* /articles/:splat # Blog URL migration\n/page /page2#section 301 # URL fragment is preserved\n"
             "/a /b 200\n/b /c 200\n")
    for server in _site("cloudflare", rules, files={"b.html": "B", "c.html": "C"}):
        redirect(server, "/old-page", 301, "/new-page")
        redirect(server, "/blog/a/b", 302, "/articles/a/b")
        assert server.get("/blog").status != 302  # /blog/* needs the '/'
        redirect(server, "/page", 301, "/page2#section")
        page(server, "/a", "B")
        page(server, "/b", "C")


def test_cloudflare_headers_example_and_result_table() -> None:
    # CF-H: the main example, and each row of its result table.
    headers = ("# This is a comment\n/secure/page\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n"
               "  Referrer-Policy: no-referrer\n\n/static/*\n  Access-Control-Allow-Origin: *\n"
               "  X-Robots-Tag: nosnippet\n\nhttps://myproject.pages.dev/*\n  X-Robots-Tag: noindex\n")
    files = {"secure/page.html": "SECURE", "static/image.jpg": b"jpg", "static/styles.css": CSS, "home.html": "H"}
    for server in _site("cloudflare", headers=headers, files=files):
        r = page(server, "/secure/page", "SECURE", host="custom.domain")
        assert (r.header("X-Frame-Options"), r.header("X-Content-Type-Options"), r.header("Referrer-Policy")) == (
            "DENY", "nosniff", "no-referrer")
        r = server.get("/static/image.jpg", headers={"Host": "custom.domain"})
        assert (r.header("Access-Control-Allow-Origin"), r.all("X-Robots-Tag")) == ("*", ["nosnippet"])
        assert server.get("/home", headers={"Host": "myproject.pages.dev"}).all("X-Robots-Tag") == ["noindex"]
        r = server.get("/secure/page", headers={"Host": "myproject.pages.dev"})
        assert (r.header("X-Frame-Options"), r.all("X-Robots-Tag")) == ("DENY", ["noindex"])
        # "X-Robots-Tag: nosnippet, noindex": two fields of one header are one list (RFC 9110 5.3).
        r = server.get("/static/styles.css", headers={"Host": "myproject.pages.dev"})
        assert ", ".join(r.all("X-Robots-Tag")) == "nosnippet, noindex"


def test_cloudflare_header_placeholders_detach_and_hosts() -> None:
    # CF-H: detach, ":title" in a value, CORS for a host placeholder (CF-PH: stops at '.').
    headers = ("/*\n  Content-Security-Policy: default-src 'self';\n/*.jpg\n  ! Content-Security-Policy\n"
               '/movies/:title\n  x-movie-name: You are watching ":title"\n'
               "https://:project.pages.dev/*\n  Access-Control-Allow-Origin: https://staging.:project.pages.dev/\n")
    files = {"a.jpg": b"a", "img/b.jpg": b"b", "x.html": "X", "movies/Dune.html": "DUNE"}
    for server in _site("cloudflare", headers=headers, files=files):
        assert server.get("/a.jpg").header("Content-Security-Policy") is None
        assert server.get("/img/b.jpg").header("Content-Security-Policy") is None
        assert server.get("/x").header("Content-Security-Policy") == "default-src 'self';"
        assert server.get("/movies/Dune").header("x-movie-name") == 'You are watching "Dune"'
        r = server.get("/x", headers={"Host": "myproj.pages.dev"})
        assert r.header("Access-Control-Allow-Origin") == "https://staging.myproj.pages.dev/"
        r = server.get("/x", headers={"Host": "a.b.pages.dev"})
        assert r.header("Access-Control-Allow-Origin") == "*"  # the default: the rule did not match


def test_cloudflare_spa_default_needs_no_404() -> None:
    # CF-S: the SPA default holds only "if your project does not include a top-level 404.html".
    for server in _site("cloudflare", files={"404.html": "NF", "blog/404.html": "BLOG NF"}):
        page(server, "/app/route", "NF", 404)
        page(server, "/blog/x", "BLOG NF", 404)
    for server in _site("cloudflare", files={"blog/404.html": "BLOG NF"}):
        page(server, "/app/route", "INDEX")     # no 404.html above /app: the SPA default
        page(server, "/blog/x", "BLOG NF", 404)  # (impl) a nested 404.html still wins below it


def test_the_cloudflare_example_does_what_its_comment_says() -> None:
    doc = yaml.safe_load((EXAMPLES / "from-cloudflare-pages.yaml").read_text())
    with serve(models.StaticSiteSpec.model_validate(doc["spec"])) as server:
        redirect(server, "/guide/install.html", 308, "/guide/install")
        redirect(server, "/docs/install", 301, "/guide/install")
        redirect(server, "/releases/2.1.html", 302, "/guide/install?v=2.1")
        assert server.get("/guide/nope").body.startswith(b"<!doctype html><title>Not in the guide")
        assert server.get("/").header("X-Robots-Tag") == "noindex"
        assert server.get("/guide/").header("X-Robots-Tag") is None
        assert server.get("/.well-known/security.txt").status == 200
