"""`_redirects` and `_headers` parsed as each host parses them (core/hostfiles.py).

Every documentation example the compatibility table (docs/compat.md) claims is here, with
what each line becomes: a rule of the spec's own models, or a skipped line with its number
and reason. The hosts' own parser tests supplied the edge cases: Netlify's
`netlify/build` packages/redirect-parser and headers-parser fixtures (NF-PARSE), and
Cloudflare's `workers-sdk` parseRedirects/parseHeaders tests (CF-PARSE).
Serving is tested in test_host_semantics.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from staticsite_operator.api import models
from staticsite_operator.core import hostfiles

R = dict[str, Any]


def redirects(text: str, semantics: str) -> tuple[list[R], list[tuple[int, str]]]:
    parsed = hostfiles.parse_redirects(text, semantics)  # type: ignore[arg-type]
    rules = [{"line": n, "from": r.from_, "to": r.to, "status": r.status}
             | ({"force": True} if r.force else {}) | ({"query": r.query} if r.query else {}) for n, r in parsed.rules]
    return rules, [(p.line, p.reason) for p in parsed.problems]


def headers(text: str, semantics: str) -> tuple[list[tuple[int, str, dict[str, str]]], list[tuple[int, str]]]:
    parsed = hostfiles.parse_headers(text, semantics)  # type: ignore[arg-type]
    return [(n, h.path, h.set) for n, h in parsed.rules], [(p.line, p.reason) for p in parsed.problems]


def only(text: str, semantics: str) -> R:
    rules, problems = redirects(text, semantics)
    assert not problems, problems
    (rule,) = rules
    rule.pop("line")
    return rule


def skipped(text: str, semantics: str) -> str:
    rules, problems = redirects(text, semantics)
    assert not rules, rules
    ((line, reason),) = problems
    assert line == 1
    return reason


# --- Netlify _redirects -----------------------------------------------------------------

def test_netlify_syntax_example() -> None:
    # NF-OV "Syntax for the _redirects file" (verbatim): no status means 301.
    text = ("# Redirects from what the browser requests to what we serve\n"
            "/home                /\n/blog/my-post.php    /blog/my-post\n/news                /blog\n"
            "/cuties              https://www.petsofnetlify.com\n/authors/c%C3%A9line /authors/about-c%C3%A9line\n")
    rules, problems = redirects(text, "netlify")
    assert problems == []
    assert rules == [
        {"line": 2, "from": "/home", "to": "/", "status": 301},
        {"line": 3, "from": "/blog/my-post.php", "to": "/blog/my-post", "status": 301},
        {"line": 4, "from": "/news", "to": "/blog", "status": 301},
        {"line": 5, "from": "/cuties", "to": "https://www.petsofnetlify.com", "status": 301},
        {"line": 6, "from": "/authors/c%C3%A9line", "to": "/authors/about-c%C3%A9line", "status": 301},
    ]


def test_netlify_status_codes_example() -> None:
    # NF-RO "HTTP status codes" (verbatim).
    text = ("# Redirect with a 301\n/home         /              301\n\n# Redirect with a 302\n"
            "/my-redirect  /              302\n\n# Show a custom 404 for this path\n"
            "/ecommerce    /store-closed  404\n\n"
            "# Rewrite a path\n/pass-through /index.html    200\n")
    rules, problems = redirects(text, "netlify")
    assert problems == []
    assert [(r["from"], r["to"], r["status"]) for r in rules] == [
        ("/home", "/", 301), ("/my-redirect", "/", 302), ("/ecommerce", "/store-closed", 404),
        ("/pass-through", "/index.html", 200)]


@pytest.mark.parametrize(("line", "rule"), [
    # NF-RO: custom 404 per path.
    ("/en/* /en/404.html 404", {"from": "/en/*", "to": "/en/404.html", "status": 404}),
    # NF-OLD: splats, placeholders (current form), query parameters, SPA, force.
    ("/news/*  /blog/:splat", {"from": "/news/*", "to": "/blog/:splat", "status": 301}),
    ("/news/:month/:date/:year/:slug  /blog/:year/:month/:date/:slug",
     {"from": "/news/:month/:date/:year/:slug", "to": "/blog/:year/:month/:date/:slug", "status": 301}),
    ("/store id=:id  /blog/:id  301", {"from": "/store", "to": "/blog/:id", "status": 301, "query": {"id": ":id"}}),
    ("/articles id=:id tag=:tag /posts/:tag/:id 301",
     {"from": "/articles", "to": "/posts/:tag/:id", "status": 301, "query": {"id": ":id", "tag": ":tag"}}),
    ("/*    /index.html   200", {"from": "/*", "to": "/index.html", "status": 200}),
    ("/app/*  /app/index.html  200!", {"from": "/app/*", "to": "/app/index.html", "status": 200, "force": True}),
    ("/best-pets/dogs /best-pets/cats.html 200!",
     {"from": "/best-pets/dogs", "to": "/best-pets/cats.html", "status": 200, "force": True}),
    # NF-PARSE fixtures.
    ("/blog/my-post.php  /blog/my-post # this is just an old leftover",
     {"from": "/blog/my-post.php", "to": "/blog/my-post", "status": 301}),
    ("/blog/my-post-ads.php  /blog/my-post#ads # this is a valid anchor with a comment",
     {"from": "/blog/my-post-ads.php", "to": "/blog/my-post#ads", "status": 301}),
    ("/      page=news      /news", {"from": "/", "to": "/news", "status": 301, "query": {"page": "news"}}),
    ("/      _escaped_fragment_=/about    /about",
     {"from": "/", "to": "/about", "status": 301, "query": {"_escaped_fragment_": "/about"}}),
    ("/admin/* 200", {"from": "/admin/*", "to": "/admin/:splat", "status": 200}),
    ("/admin/* 200!", {"from": "/admin/*", "to": "/admin/:splat", "status": 200, "force": True}),
    ("/*  https://www.bitballoon.com/:splat 301!",
     {"from": "/*", "to": "https://www.bitballoon.com/:splat", "status": 301, "force": True}),
    # Placeholder names run to the next '/' (Netlify's engine): hyphens and capitals.
    ("/posts/:post-id /p/:post-id", {"from": "/posts/:post-id", "to": "/p/:post-id", "status": 301}),
    ("/:Lang/about /about?lang=:Lang 302", {"from": "/:Lang/about", "to": "/about?lang=:Lang", "status": 302}),
    # A tab separates tokens as well as spaces do.
    ("/a\t/b\t302", {"from": "/a", "to": "/b", "status": 302}),
    ("/gone /gone.html 410", {"from": "/gone", "to": "/gone.html", "status": 410}),
    ("/temp /elsewhere 307", {"from": "/temp", "to": "/elsewhere", "status": 307}),
])
def test_netlify_lines(line: str, rule: R) -> None:
    assert only(line, "netlify") == rule


@pytest.mark.parametrize(("line", "reason"), [
    # NF-PARSE fixtures that are errors.
    ("/from /to not_a_status", "invalid status code"),
    ("/m/scge/legal", "missing destination"),
    ("/.netlify/from /to", "/.netlify"),
    # Documented features this platform cannot serve, each with its reason.
    ("/api/*  https://api.example.com/:splat  200", "proxying"),
    ("/api/*   https://api.example.com/:splat   200!  Sign=API_SECRET", "signed proxies"),
    ("/  /anz     302  Country=au,nz", "GeoIP"),
    ("/israel/*  /israel/he/:splat  302  Language=he", "Language="),
    ("/* /legacy/:splat 200 Cookie=is_legacy,my_other_cookie", "Cookie="),
    ("/admin/*  /admin/:splat 200 Role=admin", "Netlify Identity"),
    ("http://blog.yoursite.com/* https://www.yoursite.com/blog/:splat 301!", "domain-level"),
    # The old docs' typo: ':month:' captures a placeholder named 'month:', so ':month' is not captured.
    ("/news/:year/:month:/:date/:slug  /blog/:year/:month/:date/:slug", ":month is not captured"),
    ("/a/*.html /b", "only allowed at the end"),  # Netlify: a '*' ends the path
    ("/a /b 418", "status 418"),
    ("/a /b; 301", "character"),
    ("/a/../../etc /b 200", "'..'"),
    ("/leak /../../etc/passwd 200", "'..'"),
])
def test_netlify_lines_skipped(line: str, reason: str) -> None:
    assert reason in skipped(line, "netlify")


# --- Cloudflare _redirects --------------------------------------------------------------

def test_cloudflare_complete_example() -> None:
    # CF-R "Complete example" (verbatim): the default is 302.
    text = ("/home301 / 301\n/home302 / 302\n/querystrings /?query=string 301\n/twitch https://twitch.tv\n"
            "/trailing /trailing/ 301\n/notrailing/ /nottrailing 301\n/page/ /page2/#fragment 301\n"
            "/blog/* https://blog.my.domain/:splat # Blog migration\n"
            "/products/:code/:name /products?code=:code&name=:name\n")
    rules, problems = redirects(text, "cloudflare")
    assert problems == []
    assert [(r["from"], r["to"], r["status"]) for r in rules] == [
        ("/home301", "/", 301), ("/home302", "/", 302), ("/querystrings", "/?query=string", 301),
        ("/twitch", "https://twitch.tv", 302), ("/trailing", "/trailing/", 301),
        ("/notrailing/", "/nottrailing", 301), ("/page/", "/page2/#fragment", 301),
        ("/blog/*", "https://blog.my.domain/:splat", 302),
        ("/products/:code/:name", "/products?code=:code&name=:name", 302)]


def test_cloudflare_inline_comments_example() -> None:
    # CF-R inline comments (verbatim).
    text = ("# Full-line comment explaining the next group of redirects\n"
            "/old-page /new-page 301 # Moved during site redesign\n/blog/* /articles/:splat # Blog URL migration\n"
            "/page /page2#section 301 # URL fragment is preserved\n")
    rules, problems = redirects(text, "cloudflare")
    assert problems == []
    assert [(r["line"], r["to"], r["status"]) for r in rules] == [
        (2, "/new-page", 301), (3, "/articles/:splat", 302), (4, "/page2#section", 301)]


@pytest.mark.parametrize(("line", "rule"), [
    # CF-R "Advanced redirects" rows marked supported, and placeholders.
    ("/home / 301", {"from": "/home", "to": "/", "status": 301}),
    ("/blog/* /posts/:splat", {"from": "/blog/*", "to": "/posts/:splat", "status": 302}),
    ("/blog/:year/:month/:date/:slug /news/:year/:month/:date/:slug",
     {"from": "/blog/:year/:month/:date/:slug", "to": "/news/:year/:month/:date/:slug", "status": 302}),
    ("/blog/* /news/:splat 200", {"from": "/blog/*", "to": "/news/:splat", "status": 200}),
    ("/movies/:title /media/:title", {"from": "/movies/:title", "to": "/media/:title", "status": 302}),
    ("/a /b 200", {"from": "/a", "to": "/b", "status": 200}),
    ("/about/faq/* /about/faqs 200", {"from": "/about/faq/*", "to": "/about/faqs", "status": 200}),
    # CF-PARSE cases.
    ("/a /b 301 # redirect a to b", {"from": "/a", "to": "/b", "status": 301}),
    ("/a /b##blah-1 302", {"from": "/a", "to": "/b##blah-1", "status": 302}),
    ("/a /b #", {"from": "/a", "to": "/b", "status": 302}),
    ("/some%20page /somewhere%20else", {"from": "/some%20page", "to": "/somewhere%20else", "status": 302}),
    ("/c?this=rejected /d 301", {"from": "/c", "to": "/d", "status": 301}),
    ("/cat https://cat.com:12345 302", {"from": "/cat", "to": "https://cat.com:12345", "status": 302}),
    ("yeah.com /x", {"from": "/yeah.com", "to": "/x", "status": 302}),  # a '/' is prepended
    # Placeholders anywhere in a segment, and a splat anywhere (CF-PH, impl).
    ("/a/:slug.html /b/:slug", {"from": "/a/:slug.html", "to": "/b/:slug", "status": 302}),
    ("/a/pre-:id /b/:id 301", {"from": "/a/pre-:id", "to": "/b/:id", "status": 301}),
    ("/img/*.jpg /images/:splat.jpg 308", {"from": "/img/*.jpg", "to": "/images/:splat.jpg", "status": 308}),
    ("/a/:my-slug /b/:my", {"from": "/a/:my-slug", "to": "/b/:my", "status": 302}),  # '-' ends the name
])
def test_cloudflare_lines(line: str, rule: R) -> None:
    assert only(line, "cloudflare") == rule


@pytest.mark.parametrize(("line", "reason"), [
    # CF-R rows marked unsupported, and CF-PARSE's refusals.
    ("/blog/* /blog/404.html 404", "valid status codes"),
    ("/shop id=:id /blog/:id 301", "exactly 2 or 3"),
    ("workers.example.com/* workers.example.com/blog/:splat 301", "destination must be relative"),
    ("/ /us 302 Country=us", "exactly 2 or 3"),
    ("/* /preview/:splat 302 Cookie=preview", "exactly 2 or 3"),
    ("/c /d 418", "valid status codes"),
    ("/d /e 302 !important", "exactly 2 or 3"),
    ("/some page /somewhere else", "exactly 2 or 3"),
    ("https://yeah.com https://nah.com", "only relative"),
    ("/a https://example.com/b 200", "proxy (200)"),
    ("/* /index.html 200", "infinite loop"),
    ("/* /index 200", "infinite loop"),
    ("/a http://example.com/b 301", "https://"),
    ("/a /b 301!", "valid status codes"),  # Netlify's force is not Cloudflare's
    ("/a/*/*.html /b", "only one '*'"),
])
def test_cloudflare_lines_skipped(line: str, reason: str) -> None:
    assert reason in skipped(line, "cloudflare")


def test_cloudflare_first_rule_for_a_path_wins() -> None:
    # CF-R: "If there are multiple redirects for the same source path, the top-most redirect is applied."
    rules, problems = redirects("/a /b\n/a /c\n", "cloudflare")
    assert [(r["line"], r["to"]) for r in rules] == [(1, "/b")]
    assert problems == [(2, "a rule for /a is already defined above: Cloudflare keeps the first")]


def test_cloudflare_limits() -> None:
    # CF-R: "limited to 2,000 static redirects and 100 dynamic redirects"; (impl) past the
    # dynamic limit the rest of the file is skipped.
    lines = [f"/s{i} /t{i}" for i in range(2001)] + [f"/d{i}/* /e/:splat" for i in range(101)] + ["/late /x"]
    rules, problems = redirects("\n".join(lines), "cloudflare")
    assert len(rules) == 2100
    assert problems[0] == (2001, "Cloudflare allows 2000 static rules")
    assert problems[1][0] == 2102 and "and the 1 rule line(s) after it are skipped" in problems[1][1]
    assert redirects("/a " + "b" * 2001, "cloudflare")[1] == [(1, "longer than 2000 characters")]


def test_netlify_skips_a_bad_line_and_keeps_the_rest() -> None:
    rules, problems = redirects("/a /b\n/c /d 999\n\n/e /f 302\n", "netlify")
    assert [r["line"] for r in rules] == [1, 4]
    assert problems == [(2, "status 999: not supported (200, 301, 302, 303, 307, 308, 404, 410)")]


# --- _headers ---------------------------------------------------------------------------

CF_MAIN = ("# This is a comment\n/secure/page\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n"
           "  Referrer-Policy: no-referrer\n\n/static/*\n  Access-Control-Allow-Origin: *\n"
           "  X-Robots-Tag: nosnippet\n\n"
           "https://myproject.pages.dev/*\n  X-Robots-Tag: noindex\n")


def test_cloudflare_headers_main_example() -> None:
    # CF-H (verbatim; the partial indents with tabs, the older page with two spaces).
    for text in (CF_MAIN, CF_MAIN.replace("  ", "\t")):
        rules, problems = headers(text, "cloudflare")
        assert problems == []
        assert rules == [
            (2, "/secure/page", {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer"}),
            (7, "/static/*", {"Access-Control-Allow-Origin": "*", "X-Robots-Tag": "nosnippet"}),
            (11, "https://myproject.pages.dev/*", {"X-Robots-Tag": "noindex"})]


@pytest.mark.parametrize(("text", "rules"), [
    # CF-H: detach, a placeholder in a value, CORS, pages.dev, caching, hardening.
    ("/*\n  Content-Security-Policy: default-src 'self';\n\n/*.jpg\n  ! Content-Security-Policy\n",
     [(1, "/*", {"Content-Security-Policy": "default-src 'self';"}), (4, "/*.jpg", {"Content-Security-Policy": ""})]),
    ('/movies/:title\n  x-movie-name: You are watching ":title"\n',
     [(1, "/movies/:title", {"x-movie-name": 'You are watching ":title"'})]),
    ("https://:project.pages.dev/*\n  Access-Control-Allow-Origin: https://staging.:project.pages.dev/\n",
     [(1, "https://:project.pages.dev/*", {"Access-Control-Allow-Origin": "https://staging.:project.pages.dev/"})]),
    ("https://:project.pages.dev/*\n  X-Robots-Tag: noindex\n\nhttps://:version.:project.pages.dev/*\n"
     "  X-Robots-Tag: noindex\n",
     [(1, "https://:project.pages.dev/*", {"X-Robots-Tag": "noindex"}),
      (4, "https://:version.:project.pages.dev/*", {"X-Robots-Tag": "noindex"})]),
    ("/static/*\n  Cache-Control: public, max-age=31556952, immutable\n",
     [(1, "/static/*", {"Cache-Control": "public, max-age=31556952, immutable"})]),
    ("/app/*\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n  Referrer-Policy: no-referrer\n"
     "  Permissions-Policy: document-domain=()\n"
     "  Content-Security-Policy: script-src 'self'; frame-ancestors 'none';\n",
     [(1, "/app/*", {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                     "Permissions-Policy": "document-domain=()",
                     "Content-Security-Policy": "script-src 'self'; frame-ancestors 'none';"})]),
    ("/about/faq/*\n  Link: </about/faqs>; rel=\"canonical\"\n",
     [(1, "/about/faq/*", {"Link": '</about/faqs>; rel="canonical"'})]),
    ("/.well-known/apple-app-site-association\n  Content-Type: application/json\n",
     [(1, "/.well-known/apple-app-site-association", {"Content-Type": "application/json"})]),
])
def test_cloudflare_headers_examples(text: str, rules: list[tuple[int, str, dict[str, str]]]) -> None:
    assert headers(text, "cloudflare") == (rules, [])


@pytest.mark.parametrize(("text", "rules"), [
    # NF-H / NF-SKILL basic example; the older docs' example with indented comments.
    ("/*\n  X-Frame-Options: DENY\n/templates/index2.html\n  X-Frame-Options: SAMEORIGIN\n",
     [(1, "/*", {"X-Frame-Options": "DENY"}), (3, "/templates/index2.html", {"X-Frame-Options": "SAMEORIGIN"})]),
    ("# a path:\n/templates/index.html\n  # headers for that path:\n  X-Frame-Options: DENY\n"
     "  X-XSS-Protection: 1; mode=block\n# another path:\n/templates/index2.html\n  # headers for that path:\n"
     "  X-Frame-Options: SAMEORIGIN\n",
     [(2, "/templates/index.html", {"X-Frame-Options": "DENY", "X-XSS-Protection": "1; mode=block"}),
      (7, "/templates/index2.html", {"X-Frame-Options": "SAMEORIGIN"})]),
    # NF-H multi-value headers: one header, joined.
    ("/*\n  cache-control: max-age=0\n  cache-control: no-cache\n  cache-control: no-store\n"
     "  cache-control: must-revalidate\n",
     [(1, "/*", {"cache-control": "max-age=0, no-cache, no-store, must-revalidate"})]),
    # NF-PARSE: indentation is not required; globs anywhere in a segment (NF-H).
    ("/assets/*.css\ntest: one\n", [(1, "/assets/*.css", {"test": "one"})]),
    ("/*/payload.json\n  Cache-Control: no-cache\n", [(1, "/*/payload.json", {"Cache-Control": "no-cache"})]),
])
def test_netlify_headers_examples(text: str, rules: list[tuple[int, str, dict[str, str]]]) -> None:
    assert headers(text, "netlify") == (rules, [])


@pytest.mark.parametrize(("semantics", "text", "reason"), [
    ("netlify", "X-A: b\n/a\n  X-B: c\n", "needs a path line"),
    ("netlify", "/a\n  no colon here\n", "neither a path"),
    ("netlify", "/a\n  X-A:\n", "missing value"),
    ("netlify", "/a\n  : v\n", "missing header name"),
    ("netlify", "/a\n  ! X-A\n", "Cloudflare's"),
    ("netlify", CF_MAIN, "only Cloudflare"),
    ("netlify", "/a\n  Basic-Auth: someuser:somepassword\n", "Basic-Auth"),
    ("cloudflare", "/a\n  Content-Length: 1\n", "Content-Length"),
    ("cloudflare", "/a\n  X Y: b\n", "cannot include spaces"),
    ("cloudflare", "/a/*/*\n  X-A: b\n", "only one '*'"),
    ("cloudflare", "/a/:splat/*\n  X-A: b\n", ":splat"),
    ("cloudflare", "/a\n\n/b\n  X-A: c\n", "no headers"),
    ("cloudflare", "http://example.com/*\n  X-A: b\n", "https://"),
    ("cloudflare", "https://:p.example.com/*\n  Content-Type: text/plain\n", "host"),
    ("cloudflare", "/a\n  Content-Type: nope\n", "media type"),
    ("cloudflare", "/a\n  X-A: é\n", "X-A"),
    ("cloudflare", "/../*\n  X-A: b\n", "'..'"),
])
def test_header_lines_skipped(semantics: str, text: str, reason: str) -> None:
    _, problems = headers(text, semantics)
    assert problems and any(reason in r for _, r in problems), problems


def test_cloudflare_same_path_twice_keeps_the_last() -> None:
    # (impl) Cloudflare keys header rules by path: the later block replaces the earlier.
    rules, problems = headers("/a\n  X-A: 1\n/b\n  X-B: 2\n/a\n  X-A: 3\n", "cloudflare")
    assert rules == [(5, "/a", {"X-A": "3"}), (3, "/b", {"X-B": "2"})]
    assert problems == [(1, "the block at line 5 has the same path: Cloudflare keeps only the last")]


def test_cloudflare_header_rule_limit() -> None:
    # CF-H: "You may define up to 100 header rules."
    rules, problems = headers("".join(f"/p{i}\n  X-A: {i}\n" for i in range(101)), "cloudflare")
    assert len(rules) == 100
    assert problems == [(201, "more than 100 header rules")]


# --- the API the CLI builds on -------------------------------------------------------------

def test_parse_site_reads_the_root_files_and_names_their_lines() -> None:
    site = hostfiles.parse_site({"_redirects": b"/a /b 302\n/c\n", "_headers": "/*\n  X-A: b\n"}, "netlify")
    assert [(n, r.to) for n, r in site.redirects.rules] == [(1, "/b")]
    assert [str(p) for p in site.problems] == ["_redirects:2: missing destination: it must start with '/', "
                                               "'http://' or 'https://'"]
    host = site.host_rules()
    assert [o for o, _ in host.redirects] == ["_redirects:1"]
    assert [o for o, _ in host.headers] == ["_headers:1"]
    assert isinstance(host.redirects[0][1], models.Redirect)
    assert hostfiles.parse_site({}, "netlify").problems == ()


def test_files_that_are_not_text() -> None:
    site = hostfiles.parse_site({"_redirects": b"\xff\xfe/a /b", "_headers": b"x" * (hostfiles.MAX_FILE_BYTES + 1)},
                                "cloudflare")
    assert [str(p) for p in site.problems] == ["_redirects:0: not UTF-8 text: not read",
                                               f"_headers:0: larger than {hostfiles.MAX_FILE_BYTES} bytes: not read"]


def test_summary_names_file_line_and_reason() -> None:
    problems = [hostfiles.LineProblem("_redirects", n, "x", "why") for n in range(1, 8)]
    assert hostfiles.summary(problems) == ("_redirects:1: why; _redirects:2: why; _redirects:3: why; "
                                           "_redirects:4: why; _redirects:5: why; and 2 more")


def test_a_bom_and_windows_line_endings() -> None:
    rules, problems = redirects("\ufeff/a /b 302\r\n/c /d 302\r\n", "netlify")
    assert problems == [] and [r["from"] for r in rules] == ["/a", "/c"]
