"""The representative sites: a StaticSite spec, the files it serves, and the requests of its load.

Every request carries what a correct answer looks like (status, and a body marker or a
Location), and the load is exactly these requests in a loop, so a config that answers
wrongly cannot post a number. Files are synthetic and deterministic: each holds the
marker `marker:<path>` (inside its gzip stream for precompressed files).
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass, field
from typing import Any

GZIP = {"Accept-Encoding": "gzip"}


@dataclass(frozen=True)
class Request:
    path: str
    status: int = 200
    marker: str | None = None              # must appear in the (decoded) body
    location: str | None = None            # the exact Location of a redirect
    headers: dict[str, str] = field(default_factory=dict)
    weight: int = 1                        # how many times it appears in the load's loop


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    spec: dict[str, Any]                   # a StaticSite spec (validated by the operator under test)
    files: dict[str, bytes]
    requests: list[Request]
    # Parameters of the hand-written baseline (bench/serve/baselines.py).
    baseline: dict[str, Any] = field(default_factory=dict)

    def load(self) -> list[Request]:
        """The load's loop: requests interleaved by weight, so each weight is a share."""
        left = [r.weight for r in self.requests]
        out: list[Request] = []
        while any(left):
            for i, r in enumerate(self.requests):
                if left[i]:
                    out.append(r)
                    left[i] -= 1
        return out


def marker(path: str) -> str:
    return f"marker:{path}"


def page(path: str, size: int = 6000) -> bytes:
    """An HTML page of about `size` bytes that names itself."""
    head = f"<!doctype html><title>{path}</title><!-- {marker(path)} -->\n<main>\n"
    filler = "<p>Static sites are served by nginx from a pod's own copy of the content.</p>\n"
    return (head + filler * max(1, (size - len(head)) // len(filler)) + "</main>\n").encode()


def text(path: str, size: int, line: str) -> bytes:
    head = f"/* {marker(path)} */\n"
    return (head + line * max(1, (size - len(head)) // len(line))).encode()


def binary(path: str, size: int, seed: int) -> bytes:
    """Incompressible bytes, with the marker up front."""
    rng = random.Random(seed)
    head = marker(path).encode() + b"\n"
    return head + rng.randbytes(size - len(head))


def common_files() -> dict[str, bytes]:
    """What most sites hold: pages, a stylesheet, a script, an image, a favicon."""
    files = {p: page(p) for p in ("index.html", "about/index.html", "docs/index.html", "docs/intro.html")}
    files["assets/app.css"] = text("assets/app.css", 30_000, ".card { margin: 0 auto; padding: 1rem 2rem; }\n")
    files["assets/app.js"] = text("assets/app.js", 120_000, "export const f = (a, b) => a.map((x) => x + b);\n")
    files["img/logo.png"] = binary("img/logo.png", 20_000, 1)
    files["favicon.ico"] = binary("favicon.ico", 4_000, 2)
    return files


def archive_spec(routing: dict[str, Any]) -> dict[str, Any]:
    """A spec whose content is fetched (the files are laid out by the bench); routing as given."""
    return {"content": {"archive": {"url": "https://artifacts.example.com/site.tar.gz", "sha256": "0" * 64}},
            "routing": routing}


def ok(path: str, file: str | None = None, weight: int = 1, headers: dict[str, str] | None = None) -> Request:
    return Request(path, 200, marker(file or path.lstrip("/") or "index.html"), headers=headers or {},
                   weight=weight)


def plain() -> Scenario:
    return Scenario(
        "plain", "no routing options: pages, directory indexes and assets",
        archive_spec({}), common_files(),
        [ok("/", "index.html", weight=4), ok("/docs/", "docs/index.html"), ok("/docs/intro.html"),
         ok("/assets/app.css"), ok("/assets/app.js"), ok("/img/logo.png"), ok("/favicon.ico")])


IMMUTABLE = "public, max-age=31536000, immutable"


def spa() -> Scenario:
    return Scenario(
        "spa", "single-page app: unknown paths get /index.html (no-cache), hashed assets immutable",
        archive_spec({"spa": True, "headers": [{"path": "/assets/*", "set": {"Cache-Control": IMMUTABLE}}]}),
        common_files(),
        [ok("/", "index.html", weight=2), ok("/dashboard", "index.html", weight=2),
         ok("/users/42/settings", "index.html"), ok("/assets/app.js", weight=2), ok("/assets/app.css"),
         ok("/img/logo.png")])


def clean_urls() -> Scenario:
    files = common_files() | {p: page(p) for p in ("about.html", "blog/post-1.html", "blog/post-2.html")}
    del files["about/index.html"]
    return Scenario(
        "clean-urls", "cleanUrls with trailingSlash: add; some requests take the canonical redirect",
        archive_spec({"cleanUrls": True, "trailingSlash": "add"}), files,
        [ok("/", "index.html", weight=2), ok("/about/", "about.html", weight=2), ok("/docs/", "docs/index.html"),
         ok("/docs/intro/", "docs/intro.html"), ok("/blog/post-1/", "blog/post-1.html"), ok("/assets/app.css"),
         ok("/assets/app.js"), Request("/about", 301, location="/about/"),
         Request("/blog/post-2.html", 301, location="/blog/post-2/"), Request("/docs", 301, location="/docs/")])


def _redirects(n: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[tuple[str, str]]]:
    """n rules, 5% of them splats: (the spec's rules, exact (from, to), splat (prefix, target prefix))."""
    splats = max(1, n // 20)
    exact = [(f"/old/page-{i}", f"/new/page-{i}") for i in range(n - splats)]
    prefixed = [(f"/legacy-{j}/", f"/archive/{j}/") for j in range(splats)]
    rules = [{"from": f, "to": t, "status": 301} for f, t in exact]
    rules += [{"from": f"{f}*", "to": f"{t}:splat", "status": 301} for f, t in prefixed]
    return rules, exact, prefixed


def redirects(n: int) -> Scenario:
    rules, exact, prefixed = _redirects(n)
    hits = [Request(exact[i][0], 301, location=exact[i][1]) for i in (0, len(exact) // 2, len(exact) - 1)]
    last = prefixed[-1]
    hits += [Request(f"{last[0]}2019/post.html?ref=feed", 301, location=f"{last[1]}2019/post.html?ref=feed"),
             Request(exact[1][0] + "/", 301, location=exact[1][1])]
    return Scenario(
        f"redirects-{n}", f"{n} redirect rules ({len(prefixed)} of them splats); 60% of requests are files",
        archive_spec({"redirects": rules}), common_files(),
        [ok("/", "index.html", weight=3), ok("/assets/app.css", weight=2), ok("/assets/app.js"),
         ok("/img/logo.png", weight=2), *hits],
        baseline={"exact": exact, "prefixed": prefixed})


CSP = "default-src 'self'; img-src 'self' data:"


def _header_rules() -> tuple[list[dict[str, Any]], list[str]]:
    """20 rules: one for every path, 4 prefixes, 15 single pages."""
    pages = [f"page-{k}.html" for k in range(15)]
    rules: list[dict[str, Any]] = [
        {"path": "/*", "set": {"Content-Security-Policy": CSP}},
        {"path": "/assets/*", "set": {"Cache-Control": IMMUTABLE}},
        {"path": "/img/*", "set": {"Cache-Control": "public, max-age=86400"}},
        {"path": "/fonts/*", "set": {"Cache-Control": IMMUTABLE, "Access-Control-Allow-Origin": "*"}},
        {"path": "/docs/*", "set": {"X-Robots-Tag": "noindex"}},
    ]
    rules += [{"path": f"/{p}", "set": {"Link": f"</assets/app.css>; rel=preload; as=style; n={k}"}}
              for k, p in enumerate(pages)]
    return rules, pages


def headers() -> Scenario:
    rules, pages = _header_rules()
    files = common_files() | {p: page(p) for p in pages} | {"fonts/inter.woff2": binary("fonts/inter.woff2", 30_000, 3)}
    return Scenario(
        "headers-20", "20 header rules: everything, 4 prefixes, 15 single pages",
        archive_spec({"headers": rules}), files,
        [ok("/", "index.html", weight=2), ok("/page-3.html"), ok("/page-14.html"), ok("/assets/app.js", weight=2),
         ok("/img/logo.png"), ok("/fonts/inter.woff2"), ok("/docs/intro.html")],
        baseline={"rules": rules})


def not_found() -> Scenario:
    files = common_files() | {"404.html": page("404.html", 2000)}
    probes = ["/wp-login.php", "/.env", "/admin/config.php", "/xmlrpc.php", "/.git/config", "/old-page"]
    missing = [Request(p, 404, marker("404.html"), weight=2) for p in probes]
    missing += [Request(f"/missing/{i}.html", 404, marker("404.html")) for i in range(30)]
    return Scenario(
        "not-found", "404-heavy: about 80% of requests miss and get the custom 404 page",
        archive_spec({"notFoundPage": "404.html"}), files,
        [*missing, ok("/", "index.html", weight=4), ok("/assets/app.css", weight=2), ok("/img/logo.png", weight=2)])


def large() -> Scenario:
    bundle = text("assets/bundle.js", 2 << 20, "function h(t){return t.split('').reverse().join('')}\n")
    data = text("assets/data.json", 256 << 10, '{"id": 1, "name": "static", "tags": ["a", "b"]},\n')
    files = {"index.html": page("index.html"), "assets/bundle.js": bundle,
             "assets/bundle.js.gz": gzip.compress(bundle, 9, mtime=0), "assets/data.json": data,
             "assets/app.wasm": binary("assets/app.wasm", 4 << 20, 4),
             "img/hero.jpg": binary("img/hero.jpg", 1 << 20, 5)}
    return Scenario(
        "large-assets", "large files with a browser's Accept-Encoding: a 2 MiB bundle (precompressed .gz), "
        "4 MiB wasm, a 1 MiB image, 256 KiB JSON (gzip on the fly)",
        archive_spec({"headers": [{"path": "/assets/*", "set": {"Cache-Control": IMMUTABLE}}]}), files,
        [ok("/assets/bundle.js", headers=GZIP, weight=2), ok("/assets/app.wasm", headers=GZIP),
         ok("/img/hero.jpg", headers=GZIP, weight=2), ok("/assets/data.json", headers=GZIP),
         ok("/", "index.html", headers=GZIP, weight=3)])


def all_scenarios() -> list[Scenario]:
    return [plain(), spa(), clean_urls(), redirects(50), headers(), redirects(1000), not_found(), large()]
