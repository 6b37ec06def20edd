"""nginx.conf rendering (nginxconf.py): representative specs pass `nginx -t`, and the
structure holds the properties the design relies on (headers only at server level,
redirects built from $request_uri, everything nginx writes under tmp_dir, ...).

Behaviour over HTTP is in test_nginx_serving.py; hostile input in test_nginx_injection.py.
"""

from __future__ import annotations

import re

import pytest

from staticsite_operator.api import models
from staticsite_operator.core.nginxconf import BASELINE_HEADERS, _route_regex, render_nginx_conf

from .nginx_harness import check_spec, make_spec, parse_conf, walk

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
def test_largest_allowed_routing_passes_nginx_t_without_warnings() -> None:
    # 100 rules x 32 header names is one map variable each; 1000 redirects.
    spec = make_spec({"index.html": "x"}, {
        "headers": [{"path": f"/p{i}/*", "set": {f"X-H{i}-{j}": "v" for j in range(32)}} for i in range(100)],
        "redirects": [{"from": f"/r{i}/:a/*", "to": "/t/:a/:splat", "status": (301, 200)[i % 2]}
                      for i in range(1000)],
    })
    ok, output, _ = check_spec(spec)
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


@pytest.mark.parametrize("name", SPECS)
def test_redirect_targets_never_use_the_decoded_uri(name: str) -> None:
    # $uri is decoded: a capture from it in Location allows CRLF injection (%0d%0a).
    for path, words in _all(SPECS[name]):
        if words[0] == "return" and words[1] != "200":
            assert "$uri" not in " ".join(words), words
        if words[0] == "if" and "~" in words:
            assert words[1] == "($request_uri", words
        if words[0] == "rewrite":
            assert words[-1] == "last", words  # only internal rewrites; redirects use return
        del path


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
    ({"index.html": "x"}, {}, None),
    ({"index.html": "x", "404.html": "nf"}, {}, "/404.html"),
    ({"index.html": "x", "404.html": "nf", "e/nf.html": "nf"}, {"notFoundPage": "e/nf.html"}, "/e/nf.html"),
])
def test_not_found_page(files: dict[str, str], routing: dict[str, str], expected: str | None) -> None:
    pages = [w for _, w in _all(make_spec(files, routing)) if w[0] == "error_page"]
    assert pages == ([["error_page", "404", expected]] if expected else [])


def test_header_rules_are_emitted_last_first() -> None:
    spec = make_spec({"index.html": "x"}, {"headers": [
        {"path": "/*", "set": {"X-A": "1"}}, {"path": "/a", "set": {"x-a": "2"}}, {"path": "/a/*", "set": {"X-A": "3"}},
    ]})
    conf = render_nginx_conf(spec)
    (var,) = re.findall(r'add_header "X-A" (\$ss_hdr_\d+) always;', conf)
    entries = next(d.block for _, d in walk(parse_conf(conf)) if d.name == "map" and d.words[2] == var)
    assert entries is not None
    assert [d.words for d in entries if d.name.startswith("~")] == [
        ["~^/a/", "3"], [r"~^(?:/a|/a/index\.html)$", "2"], ["~^/", "1"]]


def _py(regex: str) -> re.Pattern[str]:
    return re.compile(regex.replace("(?<", "(?P<"))  # PCRE's named group syntax, in Python's


@pytest.mark.parametrize(("pattern", "path", "captures"), [
    ("/old", "/old", {}),
    ("/old", "/old/", {}),
    ("/old", "/old?x=1", {}),
    ("/old", "/older", None),
    ("/old/", "/old", {}),
    ("/", "/", {}),
    ("/", "/?q", {}),
    ("/", "/x", None),
    ("/old/*", "/old/a/b?x=1", {"splat": "a/b"}),
    ("/old/*", "/old/", {"splat": ""}),
    ("/old/*", "/old", None),
    ("/old/*", "/old//evil.com", None),     # a splat never starts with / or \ (Location //evil.com)
    ("/old/*", "/old/\\evil.com", None),
    ("/*", "/a%2Fb", {"splat": "a%2Fb"}),
    ("/b/:year/:slug", "/b/2024/hi", {"year": "2024", "slug": "hi"}),
    ("/b/:year/:slug", "/b/2024/hi/?x", {"year": "2024", "slug": "hi"}),
    ("/b/:year/:slug", "/b/2024", None),
    ("/b/:x", "/b/%0d%0a", {"x": "%0d%0a"}),
    ("/b/:x", "/b/\\evil.com", None),
    ("/a.b/:x", "/aXb/1", None),             # literal parts are escaped
    ("/:x/:x", "/1/2", {"x": "1"}),
])
def test_redirect_patterns_on_the_raw_request(pattern: str, path: str, captures: dict[str, str] | None) -> None:
    regex, names = _route_regex(pattern, raw=True)
    m = _py(regex).match(path)
    if captures is None:
        assert m is None, (regex, path)
    else:
        assert m is not None, (regex, path)
        assert {name: m.group(var) for name, var in names.items()} == captures


@pytest.mark.parametrize(("pattern", "path", "captures"), [
    ("/app/*", "/app/x/y", {"splat": "x/y"}),
    ("/p/:slug", "/p/a b", {"slug": "a b"}),
    ("/p/:slug", "/p/a/", {"slug": "a"}),
    ("/p", "/p/", {}),
    ("/p", "/px", None),
])
def test_rewrite_patterns_on_the_decoded_uri(pattern: str, path: str, captures: dict[str, str] | None) -> None:
    regex, names = _route_regex(pattern, raw=False)
    m = _py(regex).fullmatch(path) if captures is not None else _py(regex).match(path)
    if captures is None:
        assert m is None
    else:
        assert m is not None
        assert {name: m.group(var) for name, var in names.items()} == captures


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
