"""nginx.conf rendering (nginxconf.py): representative specs pass `nginx -t`, and the
structure holds the properties the design relies on (headers only at server level,
redirects built from $request_uri, everything nginx writes under tmp_dir, ...).

Behaviour over HTTP is in test_nginx_serving.py; hostile input in test_nginx_injection.py.
"""

from __future__ import annotations

import re

import pytest

from staticsite_operator.api import models, rules
from staticsite_operator.core import hostfiles, routes
from staticsite_operator.core.nginxconf import BASELINE_HEADERS, HTTP_COMMON, HostRules, render_nginx_conf, render_site

from .nginx_harness import Directive, check_spec, make_spec, nginx_t, parse_conf, walk, workdir

PAGES = {"index.html": "<h1>home</h1>", "about.html": "<h1>about</h1>", "docs/index.html": "<h1>docs</h1>"}

SPECS: dict[str, models.StaticSiteSpec] = {
    "minimal": make_spec({"index.html": "hi"}),
    "spa": make_spec({**PAGES, "assets/app.js": "x"}, {
        "spa": True,
        "headers": [{"path": "/assets/*", "set": {"Cache-Control": "public, max-age=31536000, immutable"}}],
    }),
    "clean-add": make_spec({**PAGES, "404.html": "nf"}, {"cleanUrls": True, "trailingSlash": "add"}),
    "clean-remove": make_spec({**PAGES, "errors/nf.html": "nf"},
                              {"cleanUrls": True, "trailingSlash": "remove", "notFoundPage": "errors/nf.html"}),
    "trailing-remove": make_spec(PAGES, {"trailingSlash": "remove"}),
    "redirects": make_spec(PAGES, {"redirects": [
        {"from": "/old/*", "to": "/new/:splat", "status": 301},
        {"from": "/blog/:year/:slug", "to": "/posts/:year-:slug", "status": 302},
        {"from": "/see/:x", "to": "https://example.com:8443/:x?from=site#top", "status": 303},
        {"from": "/tmp/*", "to": "/t/:splat", "status": 307},
        {"from": "/home", "to": "/", "status": 308},
        {"from": "/app/*", "to": "/index.html", "status": 200},
        {"from": "/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/*", "to": "/m/:k/:j/:splat?a=:a", "status": 301},
        {"from": "/", "to": "/about", "status": 302},
    ]}),
    "headers": make_spec({**PAGES, "404.html": "nf"}, {"headers": [
        {"path": "/*", "set": {"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
                               "X-Frame-Options": ""}},
        {"path": "/about.html", "set": {"x-frame-options": "DENY", "Content-Security-Policy":
                                        "default-src 'self'; script-src 'self' \"x\" $y {z} # \\"}},
    ]}),
}


@pytest.mark.nginx
@pytest.mark.parametrize("name", SPECS)
def test_representative_specs_pass_nginx_t(name: str) -> None:
    ok, output, conf = check_spec(SPECS[name])
    assert ok, f"nginx -t failed for {name}:\n{output}\n--- config ---\n{conf}"


@pytest.mark.nginx
@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
def test_largest_allowed_routing_passes_nginx_t_without_warnings(semantics: str) -> None:
    # 100 rules x 32 header names: a map variable each (with Cloudflare's semantics two:
    # the default's and the rule's), each rule's captures; 1000 redirects in the spec and
    # 2100 more from a _redirects file.
    spec = make_spec({"index.html": "x"}, {
        "semantics": semantics,
        "headers": [{"path": f"/p{i}/:x/*", "set": {f"X-H{i}-{j}": "v:x" for j in range(32)}} for i in range(100)],
        "redirects": [{"from": f"/r{i}/:a/*", "to": "/t/:a/:splat", "status": (301, 200)[i % 2], "force": i % 3 == 0}
                      for i in range(1000)],
    })
    parsed = hostfiles.parse_redirects("\n".join(f"/f{i}/:a /g/:a" for i in range(2100)), semantics)  # type: ignore[arg-type]
    assert len(parsed.rules) == 2100 if semantics == "netlify" else 100  # Cloudflare: 100 dynamic rules
    host = HostRules(redirects=[(f"_redirects:{n}", r) for n, r in parsed.rules])
    ok, output, _ = check_spec(spec, host=host)
    assert ok, output
    assert "[warn]" not in output, output


def _all(spec: models.StaticSiteSpec) -> list[tuple[list[str], list[str]]]:
    return [(path, d.words) for path, d in walk(parse_conf(render_nginx_conf(spec)))]


@pytest.mark.parametrize("name", SPECS)
def test_add_header_only_at_server_level(name: str) -> None:
    # An add_header in a location (or an `if`, which is one) drops every inherited header.
    places = {tuple(path) for path, words in _all(SPECS[name]) if words[0] == "add_header"}
    assert places == {("http", "server")}


@pytest.mark.parametrize("name", SPECS)
def test_every_header_is_sent_always_and_once(name: str) -> None:
    sent = [words for _, words in _all(SPECS[name]) if words[0] == "add_header"]
    assert all(w[-1] == "always" for w in sent)
    names = [w[1].lower() for w in sent]
    assert len(names) == len(set(names)), names
    assert {n.lower() for n in BASELINE_HEADERS} <= set(names)


def _raw_captures(tree: list[Directive]) -> set[str]:
    """Capture variables taken from the raw request: the route map's, and $ss_p of the URL
    normalisation (its subject, $ss_f, is built from flags and $request_uri)."""
    names = {"$ss_p", "$is_args", "$args"}
    for path, d in walk(tree):
        if path[-1:] == ["map"] and d.name.startswith("~"):
            names |= {"$" + n for n in re.findall(r"\(\?<(\w+)>", d.name)}
    return names


@pytest.mark.parametrize("name", SPECS)
def test_redirect_targets_never_use_the_decoded_uri(name: str) -> None:
    # $uri is decoded: a capture from it in Location allows CRLF injection (%0d%0a).
    tree = parse_conf(render_nginx_conf(SPECS[name]))
    raw = _raw_captures([d for path, d in walk(tree) if d.name == "map" and d.words[1] == "$request_uri"])
    for _, d in walk(tree):
        if d.name == "return" and d.words[1] not in ("200", "404", "410"):
            used = set(re.findall(r"\$\{?(\w+)", " ".join(d.words[2:])))
            assert {"$" + u for u in used} <= raw | {"$dollar"}, d.words
        if d.name == "if" and "~" in d.words:
            assert d.words[1] in ("($request_uri", "($ss_k", "($ss_f"), d.words
            if d.words[1] == "($ss_k":  # the decoded path: only ever an internal rewrite
                assert d.block is not None
                assert {e.name for e in d.block} <= {"set", "rewrite"}, d.words
        if d.name == "rewrite":
            assert d.words[-1] == "last", d.words  # only internal rewrites; redirects use return


@pytest.mark.parametrize("name", SPECS)
def test_unprivileged_container_layout(name: str) -> None:
    conf = render_nginx_conf(SPECS[name], root="/srv/site", listen="8080", tmp_dir="/tmp")
    top = {d.name: d.words for d in parse_conf(conf)}
    assert "user" not in top
    assert top["daemon"] == ["daemon", "off"]
    assert top["pid"] == ["pid", "/tmp/nginx.pid"]
    assert top["error_log"] == ["error_log", "stderr", "warn"]
    http = {words[0]: words for path, words in _all(SPECS[name]) if path == ["http"]}
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert http[f"{kind}_temp_path"][1].startswith("/tmp/")
    assert http["absolute_redirect"] == ["absolute_redirect", "off"]
    assert http["include"] == ["include", "/etc/nginx/mime.types"]


def test_healthz_location_is_plain() -> None:
    locations = {tuple(d.words[1:]): d for _, d in walk(parse_conf(render_nginx_conf(SPECS["headers"])))
                 if d.name == "location"}
    healthz = locations[("=", "/healthz")]
    assert healthz.block is not None
    assert [d.words for d in healthz.block if d.name == "return"] == [["return", "200", "ok\n"]]


@pytest.mark.parametrize(("files", "routing", "expected"), [
    ({"index.html": "x"}, {}, ["/404.html"]),  # looked up when needed: git content has one too
    ({"index.html": "x", "404.html": "nf", "e/nf.html": "nf"}, {"notFoundPage": "e/nf.html"}, ["/e/nf.html"]),
    ({"index.html": "x", "e/nf.html": "nf"}, {"notFoundPage": "/e/nf.html"}, ["/e/nf.html"]),
    ({"index.html": "x"}, {"semantics": "cloudflare"},
     [f"$ss_nf_{k}" for k in range(8, 0, -1)] + ["/404.html"]),  # the nearest 404.html up the tree
])
def test_not_found_page(files: dict[str, str], routing: dict[str, str], expected: list[str]) -> None:
    locations = {d.words[1]: d for _, d in walk(parse_conf(render_nginx_conf(make_spec(files, routing))))
                 if d.name == "location"}
    for name, code in (("@ss_not_found", "=404"), ("@ss_gone", "=410")):
        assert locations[name].block is not None
        (tries,) = [d.words for d in locations[name].block if d.name == "try_files"]
        assert tries == ["try_files", "$ss_err_page", "$ss_err_html", "$ss_err_index", *expected, code]


def test_header_rules_are_emitted_last_first() -> None:
    spec = make_spec({"index.html": "x"}, {"headers": [
        {"path": "/*", "set": {"X-A": "1"}}, {"path": "/a", "set": {"x-a": "2"}}, {"path": "/a/*", "set": {"X-A": "3"}},
    ]})
    conf = render_nginx_conf(spec)
    (var,) = re.findall(r'add_header "X-A" (\$ss_h\d+) always;', conf)
    entries = next(d.block for _, d in walk(parse_conf(conf)) if d.name == "map" and d.words[2] == var)
    assert entries is not None
    any_ = r"[^\x00-\x1f\x7f]*"
    assert [d.words for d in entries if d.name.startswith("~")] == [
        ["~^/healthz$", ""], [f"~^/a(?:/{any_})?$", "3"], [r"~^(?:/a/?|/a/index\.html/?)$", "2"],
        [f"~^(?:/{any_})?$", "1"]]


def _py(regex: str) -> re.Pattern[str]:
    return re.compile(regex.replace("(?<", "(?P<"))  # PCRE's named group syntax, in Python's


def _match(regex: str, names: dict[str, str], path: str) -> dict[str, str] | None:
    m = _py(regex).match(path)
    return None if m is None else {name: m.group(var) or "" for name, var in names.items()}


@pytest.mark.parametrize(("semantics", "pattern", "path", "captures"), [
    ("netlify", "/old", "/old", {}),
    ("netlify", "/old", "/old/", {}),          # Netlify ignores a trailing slash
    ("netlify", "/old", "/old?x=1", {}),
    ("netlify", "/old", "/older", None),
    ("netlify", "/old", "/Old", None),          # paths are case-sensitive on both hosts
    ("netlify", "/old/", "/old", {}),
    ("netlify", "/", "/", {}),
    ("netlify", "/", "/?q", {}),
    ("netlify", "/", "/x", None),
    ("netlify", "/old/*", "/old/a/b?x=1", {"splat": "a/b"}),
    ("netlify", "/old/*", "/old/", {"splat": ""}),
    ("netlify", "/old/*", "/old", {"splat": ""}),   # Netlify: /a/* also matches /a
    ("netlify", "/old/*", "/older", None),
    ("netlify", "/old/*", "/old//evil.com", None),   # a splat never starts with / or \ (Location //evil.com)
    ("netlify", "/old/*", "/old/\\evil.com", None),
    ("netlify", "/*", "/a%2Fb", {"splat": "a%2Fb"}),
    ("netlify", "/b/:year/:slug", "/b/2024/hi", {"year": "2024", "slug": "hi"}),
    ("netlify", "/b/:year/:slug", "/b/2024/hi/?x", {"year": "2024", "slug": "hi"}),
    ("netlify", "/b/:year/:slug", "/b/2024", None),
    ("netlify", "/b/:x", "/b/%0d%0a", {"x": "%0d%0a"}),
    ("netlify", "/b/:x", "/b/\\evil.com", None),
    ("netlify", "/b/:post-id", "/b/7", {"post-id": "7"}),     # Netlify: the name runs to the next '/'
    ("netlify", "/a.b/:x", "/aXb/1", None),                  # literal parts are escaped
    ("netlify", "/c%C3%A9line", "/c%c3%a9line", {}),         # either case of hex digits
    ("netlify", "/café", "/caf%C3%A9", {}),                  # non-ASCII is matched encoded
    ("cloudflare", "/old", "/old/", None),     # Cloudflare: the trailing slash counts
    ("cloudflare", "/old/*", "/old", None),
    ("cloudflare", "/old/*", "/old/", {"splat": ""}),
    ("cloudflare", "/a/*.html", "/a/b/c.html", {"splat": "b/c"}),
    ("cloudflare", "/a/:slug.html", "/a/foo.html", {"slug": "foo"}),
    ("cloudflare", "/a/pre-:id", "/a/pre-5", {"id": "5"}),
    ("cloudflare", "/a/:my-slug", "/a/foo-slug", {"my": "foo"}),  # '-' ends a Cloudflare name
    ("cloudflare", "/a/:slug", "/a/b/c", None),
])
def test_redirect_patterns_on_the_raw_request(semantics: rules.Semantics, pattern: str, path: str,
                                              captures: dict[str, str] | None) -> None:
    built = routes.request_regex(rules.parse(pattern, semantics, "redirect"), semantics, {}, routes.Namer("ss_"))
    assert _match(built.regex, built.captures, path) == captures, built.regex


@pytest.mark.parametrize(("query", "path", "captures"), [
    ({"id": ":id"}, "/store?id=my-post", {"id": "my-post"}),
    ({"id": ":id"}, "/store?x=1&id=5&y=2", {"id": "5"}),       # other parameters may be there
    ({"id": ":id"}, "/store", None),
    ({"id": ":id"}, "/store?x=1", None),
    ({"id": ":id", "tag": ":tag"}, "/store?tag=t&id=1", {"id": "1", "tag": "t"}),  # in any order
    ({"id": ":id", "tag": ":tag"}, "/store?id=1", None),
    ({"page": "news"}, "/store?page=news", {}),
    ({"page": "news"}, "/store?page=newsy", None),
    ({"id": ":id"}, "/store?id=/evil.com", None),    # no value starting with / in a Location
])
def test_query_conditions(query: dict[str, str], path: str, captures: dict[str, str] | None) -> None:
    built = routes.request_regex(rules.parse("/store", "netlify", "redirect"), "netlify", query, routes.Namer("ss_"))
    assert _match(built.regex, built.captures, path) == captures, built.regex


@pytest.mark.parametrize(("pattern", "path", "captures"), [
    ("/app/*", "/app/x/y", {"splat": "x/y"}),
    ("/p/:slug", "/p/a b", {"slug": "a b"}),
    ("/p/:slug", "/p/a/", {"slug": "a"}),
    ("/p", "/p/", {}),
    ("/p", "/px", None),
    ("/p/:slug", "/p/a\nb", None),     # no control characters from the decoded path
])
def test_rewrite_patterns_on_the_decoded_uri(pattern: str, path: str, captures: dict[str, str] | None) -> None:
    built = routes.uri_regex(rules.parse(pattern, "netlify", "redirect"), "netlify", routes.Namer("ss_"))
    assert _match(built.regex, built.captures, path) == captures


def test_a_site_renders_as_a_server_block_for_a_shared_nginx() -> None:
    """render_site: the maps carry the prefix, the server block names its hosts, and two
    sites with the same rules fit in one nginx.conf."""
    spec = SPECS["redirects"]
    one = render_site(spec, root="/srv/a", listen=["8080"], server_names=["a.example.com"], prefix="ss_a_")
    two = render_site(spec, root="/srv/b", listen=["8080"], server_names=["b.example.com"], prefix="ss_b_")
    assert "$ss_a_route" in one.http and "$ss_a_route" not in two.http
    maps = [d.words[2] for _, d in walk(parse_conf(one.http + two.http)) if d.name == "map"]
    assert len(maps) == len(set(maps)), maps
    server = parse_conf(one.server)[0]
    assert server.block is not None
    assert ["server_name", "a.example.com"] in [d.words for d in server.block]


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"root": "/srv/my site"}, "root"),
    ({"root": "relative"}, "root"),
    ({"tmp_dir": "/tmp;x"}, "tmp_dir"),
    ({"listen": "8080; include /etc/passwd"}, "listen"),
])
def test_operator_arguments_are_checked(kwargs: dict[str, str], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        render_nginx_conf(SPECS["minimal"], **kwargs)


def test_render_is_deterministic() -> None:
    for spec in SPECS.values():
        assert render_nginx_conf(spec) == render_nginx_conf(spec.model_copy(deep=True))


@pytest.mark.nginx
def test_two_sites_share_one_nginx_by_host() -> None:
    """What a shared nginx tier would do: HTTP_COMMON once, each site's maps (under its
    prefix) and server block (with its server_name). nginx -t accepts two sites with the
    same rules."""
    a = make_spec({"index.html": "A"}, {"redirects": [{"from": "/x", "to": "/from-a", "status": 302}],
                                        "headers": [{"path": "/*", "set": {"X-Site": "a"}}]})
    b = make_spec({"index.html": "B"}, {"semantics": "cloudflare",
                                        "redirects": [{"from": "/x", "to": "/from-b", "status": 302}],
                                        "headers": [{"path": "/*", "set": {"X-Site": "b"}}]})
    with workdir() as tmp:
        sites = []
        for name, spec in (("a", a), ("b", b)):
            (tmp / name).mkdir(mode=0o755)
            sites.append(render_site(spec, root=str(tmp / name), listen=["127.0.0.1:8080"],
                                     server_names=[f"{name}.example.com"], prefix=f"ss_{name}_"))
        conf = tmp / "nginx.conf"
        conf.write_text(f"pid {tmp}/nginx.pid;\nevents {{}}\nhttp {{\n"
                        + "".join(f"{k}_temp_path {tmp}/{k};\n" for k in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
                        + HTTP_COMMON + "".join(s.http for s in sites) + "".join(s.server for s in sites) + "}\n")
        ok, output = nginx_t(conf)
        assert ok, output
        assert "[warn]" not in output, output
        # A shared nginx with no site yet: HTTP_COMMON stands on its own.
        conf.write_text(conf.read_text().split(HTTP_COMMON)[0] + HTTP_COMMON + "}\n")
        ok, output = nginx_t(conf)
        assert ok, output
