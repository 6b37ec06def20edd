"""Hostile input cannot change the nginx.conf it ends up in, nor the responses nginx sends.

- A hand-written corpus of injection attempts in every user string that can reach
  nginx.conf (header names and values, header paths, redirect from/to and query, file
  paths, notFoundPage, Content-Type, both semantics) and in domains: each is either
  rejected by the models with an error naming the field, or valid, in which case it
  renders, passes `nginx -t`, leaves the config's structure unchanged, and comes back
  byte for byte from a real nginx. The same corpus in `_redirects` and `_headers` lines:
  each line is skipped with a problem, or renders like a clean line.
- Hostile *requests*: percent-encoded CR/LF and backslashes must not split headers or
  produce a Location that leaves the site (//host, /\\host).
- Property-based (hypothesis): for generated specs, pydantic rejects them, or the config
  passes `nginx -t` and has exactly the structure of a "clean twin" spec with the same
  shape, so no user string created, ended or quoted away any directive.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from staticsite_operator.api import models, rules
from staticsite_operator.core import hostfiles, routes
from staticsite_operator.core.nginxconf import (
    BASELINE_HEADERS,
    CLOUDFLARE_404_CACHE_CONTROL,
    CLOUDFLARE_HEADERS,
    SPA_INDEX_CACHE_CONTROL,
    HostRules,
    _path_regex,
    render_nginx_conf,
)

from .nginx_harness import Server, check_spec, make_spec, parse_conf, serve, shape, walk

pytestmark = pytest.mark.nginx

PAYLOADS = [
    ";", "}", "{", "\n", "\r", "\r\n", "$var", "${x}", '"', "'", "#", "\\", "\0", "\t", "\u202e", "ｆｕｌｌ", "é",
    '"; add_header X-Evil 1; #', "}\n}\nserver { listen 9999; }", '\\"; return 200 pwned; #', "$uri$request_uri",
    "${dollar}", "' '", "a\\", "\\\\", "\\n",
]
BASELINE_LOWER = {n.lower() for n in BASELINE_HEADERS}
CLOUDFLARE_LOWER = {n.lower() for n in CLOUDFLARE_HEADERS}


def _doc(routing: dict[str, Any] | None = None, files: list[str] | None = None,
         domains: list[str] | None = None) -> dict[str, Any]:
    return {"content": {"inline": {"files": [{"path": p, "content": p} for p in files or ["index.html"]]}},
            "routing": routing or {}, "domains": domains or []}


# field -> (spec for a payload, the field's location as pydantic reports it)
FIELDS: dict[str, tuple[Any, str]] = {
    "header name": (lambda p: _doc({"headers": [{"path": "/*", "set": {f"X-{p}": "v"}}]}), "routing.headers.0.set"),
    "header value": (lambda p: _doc({"headers": [{"path": "/*", "set": {"X-Test": f"a{p}b"}}]}),
                     "routing.headers.0.set.X-Test"),
    "header path": (lambda p: _doc({"headers": [{"path": f"/a{p}", "set": {"X-Test": "v"}}]}),
                    "routing.headers.0.path"),
    "redirect from": (lambda p: _doc({"redirects": [{"from": f"/a{p}", "to": "/b"}]}), "routing.redirects.0.from"),
    "redirect to": (lambda p: _doc({"redirects": [{"from": "/a", "to": f"/b{p}"}]}), "routing.redirects.0.to"),
    "file path": (lambda p: _doc(files=["index.html", f"a{p}.html"]), "content.inline.files.1.path"),
    "notFoundPage": (lambda p: _doc({"notFoundPage": f"a{p}.html"}, files=["index.html", f"a{p}.html"]),
                     "routing.notFoundPage"),
    "domain": (lambda p: _doc(domains=[f"a{p}.example.com"]), "domains.0"),
    "query name": (lambda p: _doc({"redirects": [{"from": "/a", "to": "/b", "query": {f"k{p}": "v"}}]}),
                   "routing.redirects.0.query"),
    "query value": (lambda p: _doc({"redirects": [{"from": "/a", "to": "/b", "query": {"k": f"v{p}"}}]}),
                    "routing.redirects.0.query.k"),
    "content type": (lambda p: _doc({"headers": [{"path": "/*", "set": {"Content-Type": f"text/x{p}"}}]}),
                     "routing.headers.0.set"),
    "cloudflare header path": (lambda p: _doc({"semantics": "cloudflare", "headers": [
        {"path": f"https://a{p}.example.com/*", "set": {"X-Test": "v"}}]}), "routing.headers.0.path"),
    "cloudflare header value": (lambda p: _doc({"semantics": "cloudflare", "headers": [
        {"path": "/m/:title", "set": {"X-Test": f":title{p}"}}]}), "routing.headers.0.set.X-Test"),
    "cloudflare redirect from": (lambda p: _doc({"semantics": "cloudflare", "redirects": [
        {"from": f"/a/:x{p}*", "to": "/b/:x/:splat", "status": 302}]}), "routing.redirects.0.from"),
    "rewrite to": (lambda p: _doc({"redirects": [{"from": "/a/:x", "to": f"/b/:x{p}", "status": 200}]}),
                   "routing.redirects.0.to"),
    "404 page": (lambda p: _doc({"redirects": [{"from": "/a", "to": f"/b{p}", "status": 404}]}),
                 "routing.redirects.0.to"),
}

_VISIBLE = {p for p in PAYLOADS if all(0x20 <= ord(c) <= 0x7E for c in p)}
# A site's file may be named almost anything (real sites have spaces, quotes, '%' and
# non-ASCII names); no control character, backslash, or segment starting with '..'.
_FILE_NAMES = {p for p in PAYLOADS if not any(ord(c) < 0x20 or c == "\\" for c in p)}
# Rule paths and targets may hold "'" and non-ASCII text (percent-encoded when rendered).
_RULE_TEXT = {"'", *(p for p in PAYLOADS if all(ord(c) > 0x7F for c in p))}
# What the API legitimately allows: visible ASCII in header values, RFC 9110 token
# characters (which include ' and #) in header names and media types, a #fragment in a
# target, and file names (the 404 page's cannot hold '?' or '#': it is also a URI).
VALID = ({("header value", p) for p in _VISIBLE} | {("cloudflare header value", p) for p in _VISIBLE}
         | {("header name", "'"), ("header name", "#"), ("redirect to", "#"), ("rewrite to", "#"),
            ("404 page", "#"), ("query value", "'"), ("query name", "'"), ("content type", "#")}
         | {(f, p) for f in ("header path", "redirect from", "cloudflare redirect from", "redirect to",
                             "rewrite to", "404 page") for p in _RULE_TEXT}
         | {("file path", p) for p in _FILE_NAMES}
         | {("notFoundPage", p) for p in _FILE_NAMES if "#" not in p})


def _validate(doc: dict[str, Any]) -> models.StaticSiteSpec:
    return models.StaticSiteSpec.model_validate(doc)


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
@pytest.mark.parametrize("field", FIELDS)
def test_corpus_is_rejected_or_harmless(field: str, payload: str) -> None:
    build, loc = FIELDS[field]
    doc = build(payload)
    if (field, payload) not in VALID:
        with pytest.raises(ValidationError) as excinfo:
            _validate(doc)
        assert loc in str(excinfo.value), str(excinfo.value)
        return
    spec = _validate(doc)
    ok, output, conf = check_spec(spec)
    assert ok, f"{output}\n{conf}"
    # Shapes ignore values, so the twin may use the default paths.
    _same_shape(spec, conf)


@pytest.fixture(scope="module")
def valid_corpus() -> Iterator[tuple[Server, dict[str, str]]]:
    """One nginx whose headers carry every valid payload (alone and inside text)."""
    values = {f"X-P{i}-{j}": v for i, p in enumerate(PAYLOADS) if ("header value", p) in VALID
              for j, v in enumerate((p, f"a{p}b", f" {p} "))}
    headers = {**values, "X-'": "quote", "X-#": "hash"}
    spec = make_spec({"index.html": "INDEX"}, {
        "headers": [{"path": "/*", "set": headers}],
        "redirects": [{"from": "/frag", "to": "/a#b"}],
    })
    with serve(spec) as server:
        yield server, headers


def _head_lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")[1:]


def test_valid_payloads_come_back_byte_for_byte(valid_corpus: tuple[Server, dict[str, str]]) -> None:
    server, headers = valid_corpus
    head, body = server.raw(b"/")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"INDEX"
    lines = _head_lines(head)
    for name, value in headers.items():
        if value:
            assert f"{name}: {value}".encode() in lines, (name, value, lines)
    sent = {line.split(b":", 1)[0].decode().lower() for line in lines}
    expected = {n.lower() for n in headers} | BASELINE_LOWER | {
        "server", "date", "content-type", "content-length", "last-modified", "connection", "etag", "accept-ranges"}
    assert sent == expected  # nothing added (X-Evil), nothing lost


def test_fragment_target(valid_corpus: tuple[Server, dict[str, str]]) -> None:
    server, _ = valid_corpus
    assert server.get("/frag?x=1").header("Location") == "/a?x=1#b"


# --- Hostile requests ---------------------------------------------------------------

@pytest.fixture(scope="module")
def redirector() -> Iterator[Server]:
    spec = make_spec({"index.html": "INDEX", "about.html": "ABOUT"}, {
        "cleanUrls": True, "trailingSlash": "add",
        "redirects": [
            {"from": "/p/:id", "to": "/:id", "status": 302},
            {"from": "/s/*", "to": "/:splat", "status": 307},
            {"from": "/x/*", "to": "https://example.com/:splat", "status": 301},
        ],
    })
    with serve(spec) as server:
        yield server


CRLF_ATTACKS = [b"/p/a%0d%0aSet-Cookie:%20x=1", b"/s/a%0d%0aSet-Cookie:%20x=1", b"/x/%0d%0aSet-Cookie:x=1",
                b"/a%0d%0aSet-Cookie:%20x=1", b"/a%0d%0aSet-Cookie:%20x=1.html", b"/%0aSet-Cookie:x=1"]
OPEN_REDIRECT_ATTACKS = [b"//evil.com", b"//evil.com/", b"/\\evil.com", b"/\\evil.com/", b"/%5Cevil.com",
                         b"/%5Cevil.com.html", b"/%2F%2Fevil.com", b"/%2Fevil.com", b"/p/\\evil.com",
                         b"/p/%5Cevil.com", b"/s//evil.com", b"/s/\\evil.com", b"/s/%2F%2Fevil.com",
                         b"/s/%5C%5Cevil.com", b"/\\\\evil.com.html", b"/%09/evil.com"]


@pytest.mark.parametrize("target", CRLF_ATTACKS, ids=repr)
def test_encoded_crlf_never_splits_headers(redirector: Server, target: bytes) -> None:
    head, _ = redirector.raw(target)
    lines = _head_lines(head)
    assert not any(line.lower().startswith(b"set-cookie") for line in lines), head
    for line in lines:
        assert b"\r" not in line
        assert b"\n" not in line


@pytest.mark.parametrize("target", OPEN_REDIRECT_ATTACKS, ids=repr)
def test_no_location_leaves_the_site(redirector: Server, target: bytes) -> None:
    head, _ = redirector.raw(target)
    for line in _head_lines(head):
        if line.lower().startswith(b"location:"):
            value = line.split(b":", 1)[1].strip()
            assert value.startswith(b"/"), head
            assert not value.startswith((b"//", b"/\\")), head
            assert b"\\" not in value, head


# --- Property-based ------------------------------------------------------------------

def _twin_name(classes: dict[str, int], n: str) -> str:
    if n.lower() in BASELINE_LOWER | CLOUDFLARE_LOWER | {"content-type"}:
        return n  # merges with a default header, or becomes a location, as the original does
    k = classes.setdefault(n.lower(), len(classes))
    return f"X-T{k}-" + "".join("A" if c.isupper() else "a" for c in n if c.isalpha())


def _twin_header(h: models.HeaderRule, classes: dict[str, int]) -> dict[str, Any]:
    values = {_twin_name(classes, k): ("text/plain" if k.lower() == "content-type" else "v" if v else "")
              for k, v in h.set.items()}
    return {"path": "/p*" if "*" in h.path or ":" in h.path else "/p", "set": values}


def _twin_redirect(x: models.Redirect) -> dict[str, Any]:
    return {"from": "/f", "to": "/t" + ("?q=1" if "?" in x.to else ""), "status": x.status, "force": x.force,
            "query": {f"k{i}": "v" for i in range(len(x.query))}}


def clean_twin(spec: models.StaticSiteSpec, host: HostRules | None = None) -> tuple[models.StaticSiteSpec,
                                                                                      HostRules]:
    """A spec (and file rules) of the same shape with only tame strings: same flags and
    semantics, the same number of rules, header names grouped the same way
    (case-insensitively), same statuses, forces, removals and Content-Types."""
    r = spec.routing
    classes: dict[str, int] = {}
    host = host or HostRules()
    files = ["index.html"] + (["404.html"] if "404.html" in spec.content.inline.paths() else [])  # type: ignore[union-attr]
    routing: dict[str, Any] = {
        "semantics": r.semantics, "spa": r.spa, "cleanUrls": r.clean_urls, "trailingSlash": r.trailing_slash,
        "headers": [_twin_header(h, classes) for h in r.headers],
        "redirects": [_twin_redirect(x) for x in r.redirects],
    }
    if r.not_found_page is not None:
        routing["notFoundPage"] = "nf.html"
        files.append("nf.html")
    twin = _validate(_doc(routing, files))
    twin_host = HostRules(
        redirects=[("_redirects:1", models.Redirect.model_validate(_twin_redirect(x))) for _, x in host.redirects],
        headers=[("_headers:1", models.HeaderRule.model_validate(_twin_header(h, classes))) for _, h in host.headers])
    return twin, twin_host


def _same_shape(spec: models.StaticSiteSpec, conf: str, host: HostRules | None = None) -> None:
    twin, twin_host = clean_twin(spec, host)
    assert shape(parse_conf(conf)) == shape(parse_conf(render_nginx_conf(twin, host=twin_host)))


NASTY = st.sampled_from([*PAYLOADS, " ", "*", ":", "/", "?", "%", "~", "&", "=", ".."])
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# Hostile pieces in text, or any text at all.
HOSTILE = st.one_of(
    st.lists(st.one_of(NASTY, st.text(PRINTABLE, max_size=4)), min_size=1, max_size=6).map("".join),
    st.text(max_size=10),
)

# Valid, yet meaningful to nginx's parser: these must be quoted, not interpreted.
TRICKY_VALUES = st.sampled_from([p for p in PAYLOADS if all(0x20 <= ord(c) <= 0x7E for c in p)])

HEADER_NAMES = st.one_of(
    st.from_regex(r"[A-Za-z0-9!#%&'*+.^_`|~-]{1,12}", fullmatch=True),
    st.sampled_from([*CLOUDFLARE_HEADERS, "cache-control", "X-FRAME-OPTIONS", "X-A", "x-a", "X-'", "X-#", "a|b`c"]),
)
HEADER_VALUES = st.one_of(
    st.just(""),
    st.sampled_from([":title", "watching \":title\" :splat", "https://staging.:project.example.com/", ":nope"]),
    st.lists(st.one_of(TRICKY_VALUES, st.text(PRINTABLE, max_size=6)), min_size=1, max_size=4).map("".join),
)
HEADER_PATHS = st.one_of(
    st.from_regex(r"/[A-Za-z0-9._~@+,=!/-]{0,10}\*?", fullmatch=True),
    st.sampled_from(["/*.js", "/assets/*", "/movies/:title", "/:lang/*", "/a/*.css", "/.well-known/*",
                     "https://:project.example.com/*", "https://www.example.com/x/:p"]),
)
LITERAL = st.from_regex(r"[A-Za-z0-9._~@+,=!-]{1,8}", fullmatch=True)
PLACEHOLDER = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
FILE_PATHS = st.one_of(st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?\.html", fullmatch=True),
                       st.sampled_from(["my page (1).html", "it's.html", "100%.html", "café.html", "$x.html",
                                        "a;b{c}.html", '"q".html']))
DOMAINS = st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True)
MEDIA_TYPES = st.sampled_from(["application/json", "text/plain; charset=utf-8", 'text/x; a="b c"', "image/svg+xml"])
STATUSES = st.sampled_from([200, 301, 302, 303, 307, 308, 404, 410])


class Strings:
    """Draws plausible strings, and hostile ones for a few (at most `budget`) of them:
    a spec is valid only if all of its strings are, so most examples must be tame."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.budget = draw(st.integers(0, 2))

    def __call__(self, base: st.SearchStrategy[str]) -> str:
        if self.budget and self.draw(st.integers(0, 3)) == 0:
            self.budget -= 1
            return self.draw(HOSTILE)
        return self.draw(base)


def _redirect(draw: st.DrawFn, text: Strings, semantics: str) -> dict[str, Any]:
    segments, names = [], []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["literal", "placeholder", "mixed"] if semantics == "cloudflare"
                                    else ["literal", "placeholder"]))
        if kind == "literal":
            segments.append(text(LITERAL))
        else:
            names.append(draw(PLACEHOLDER))
            segments.append(":" + names[-1] + (".html" if kind == "mixed" else ""))
    splat = draw(st.booleans())
    if splat:
        names.append("splat")
    source = "/" + "/".join(segments) + ("/*" if splat and segments else "*" if splat else "")
    if splat and semantics == "cloudflare" and draw(st.booleans()):
        source = "/" + "/".join(segments) + "/*.jpg"  # a splat before the end: Cloudflare's
    query = {}
    for _ in range(draw(st.integers(0, 2))):
        key = text(LITERAL)
        if draw(st.booleans()):
            names.append("q" + draw(PLACEHOLDER))
            query[key] = ":" + names[-1]
        else:
            query[key] = text(LITERAL)
    status = draw(STATUSES)
    local = status in (200, 404, 410)
    pieces = [draw(st.sampled_from(["/"] if local else ["/", "https://example.com/", "http://h.example:8080/"]))]
    for _ in range(draw(st.integers(0, 4))):
        use_name = draw(st.booleans())
        if names and use_name and status not in (404, 410):
            pieces.append(":" + draw(st.sampled_from(names)) + draw(st.sampled_from(["/", "-", ".html"])))
        else:
            pieces.append(text(st.one_of(LITERAL, st.sampled_from(["/", "%20", "&", "?", "=", ":", "%24", "#",
                                                                   "'", "(", "é"]))))
    if draw(st.booleans()):
        pieces.append("?q=" + draw(st.sampled_from([":" + n for n in names] or ["1"])))
    if draw(st.booleans()):
        pieces.append("#" + text(LITERAL))
    return {"from": text(st.just(source)), "to": text(st.just("".join(pieces))), "status": status,
            "force": draw(st.booleans()), "query": query}


@st.composite
def spec_docs(draw: st.DrawFn, *, headers: bool, redirects: bool) -> dict[str, Any]:
    text = Strings(draw)
    semantics = draw(st.sampled_from(["netlify", "cloudflare"]))
    files = ["index.html"] + (["404.html"] if draw(st.booleans()) else [])
    extra = text(FILE_PATHS) if draw(st.booleans()) else None
    if extra is not None and extra not in files:
        files.append(extra)
    routing: dict[str, Any] = {"semantics": semantics, "spa": draw(st.booleans())}
    if semantics == "netlify":
        routing |= {"cleanUrls": draw(st.booleans()),
                    "trailingSlash": draw(st.sampled_from(["ignore", "add", "remove", "auto"]))}
    if extra is not None and draw(st.booleans()):
        routing["notFoundPage"] = draw(st.sampled_from([extra, "/" + extra]))
    if headers:
        routing["headers"] = [
            {"path": text(HEADER_PATHS),
             "set": {text(HEADER_NAMES): text(HEADER_VALUES) for _ in range(draw(st.integers(1, 4)))}
             | ({"Content-Type": text(MEDIA_TYPES)} if draw(st.integers(0, 4)) == 0 else {})}
            for _ in range(draw(st.integers(0, 3)))
        ]
    if redirects:
        routing["redirects"] = [_redirect(draw, text, semantics) for _ in range(draw(st.integers(0, 4)))]
    domains = [text(DOMAINS) for _ in range(draw(st.integers(0, 2)))]
    return _doc(routing, files, domains)


def _unnamed(regex: str) -> str:
    return re.sub(r"\(\?<\w+>", "(?<>", regex)


def _check_rendered(spec: models.StaticSiteSpec, host: HostRules | None = None) -> None:
    ok, output, conf = check_spec(spec, host=host)
    assert ok, f"nginx -t failed:\n{output}\n{conf}"
    tree = parse_conf(conf)
    _same_shape(spec, conf, host)
    semantics = spec.routing.semantics
    host = host or HostRules()
    header_rules = [*(h for _, h in host.headers), *spec.routing.headers]
    # Every header value reaches nginx exactly as written ('$' as ${dollar}, a Cloudflare
    # placeholder as its capture).
    maps = [d for _, d in walk(tree) if d.name == "map" and re.fullmatch(r"\$ss_h\d+", d.words[2])]
    values = Counter(re.sub(r"\$\{ss_c\d+\}", "${M}", e.words[1]).replace("${dollar}", "$")
                     for m in maps for e in m.block or [] if e.name.startswith("~") and e.words[1])
    wanted: Counter[str] = Counter()
    for h in header_rules:
        names = rules.parse(h.path, semantics, "header").names
        last = {k.lower(): (k, v) for k, v in h.set.items()}  # a name twice (in two cases): the last one
        for k, v in (last.values() if semantics == "cloudflare" else h.set.items()):
            if v and k.lower() != "content-type":
                wanted[v if semantics == "netlify" else
                       routes.interpolate(v, dict.fromkeys(names, "M"), semantics, lambda t: t, strict=False)] += 1
    wanted.update({SPA_INDEX_CACHE_CONTROL: 1} if spec.routing.spa and semantics == "netlify" else {})
    wanted.update({CLOUDFLARE_404_CACHE_CONTROL: 1} if semantics == "cloudflare" else {})
    assert values == wanted
    # Regexes reach PCRE exactly as built (quoting must not change a backslash).
    if semantics == "netlify":
        keys = Counter(e.name for m in maps for e in m.block or [] if e.name.startswith("~") and e.words[1]
                       and e.name != "~^/healthz$")
        clean = spec.routing.clean_urls
        assert keys == Counter("~" + _path_regex(h.path, clean_urls=clean) for h in header_rules
                               for k, v in h.set.items() if v and k.lower() != "content-type") + Counter(
            {r"~^/index\.html$": 1} if spec.routing.spa else {})
    route_map = next((d for _, d in walk(tree) if d.name == "map" and d.words[2] == "$ss_route"), None)
    redirects = [*spec.routing.redirects, *(r for _, r in host.redirects)]
    found = [_unnamed(e.name[1:]) for e in (route_map.block or []) if e.name.startswith("~")] if route_map else []
    built = [_unnamed(routes.request_regex(models.check_redirect(r, semantics), semantics, r.query,
                                           routes.Namer("x_")).regex) for r in redirects]
    assert found == built


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _rejected_or_safe(doc: dict[str, Any]) -> None:
    """Either pydantic rejects the spec, or its rendered config is safe (_check_rendered)."""
    try:
        spec = _validate(doc)
    except ValidationError:
        event("rejected")
        return
    event("valid")
    _check_rendered(spec)


@PROPERTY_SETTINGS
@given(doc=spec_docs(headers=True, redirects=False))
def test_any_header_spec_is_rejected_or_safe(doc: dict[str, Any]) -> None:
    _rejected_or_safe(doc)


@PROPERTY_SETTINGS
@given(doc=spec_docs(headers=False, redirects=True))
def test_any_redirect_spec_is_rejected_or_safe(doc: dict[str, Any]) -> None:
    _rejected_or_safe(doc)


# --- _redirects and _headers in the content ----------------------------------------------
# The same corpus, in the lines of the files a tenant's content carries: each line is
# skipped with a problem naming its line, or it renders like a clean rule.
FILE_LINES: dict[str, Any] = {
    "_redirects from": lambda p: f"/a{p} /b 301",
    "_redirects to": lambda p: f"/a /b{p} 301",
    "_redirects rewrite": lambda p: f"/a/* /b/:splat{p} 200",
    "_redirects query": lambda p: f"/a k={p} /b 301",
    "_headers path": lambda p: f"/a{p}\n  X-Test: v",
    "_headers name": lambda p: f"/*\n  X-{p}: v",
    "_headers value": lambda p: f"/*\n  X-Test: a{p}b",
    "_headers content type": lambda p: f"/*\n  Content-Type: text/x{p}",
}


def _parse_file(kind: str, text: str, semantics: str) -> hostfiles.SiteRules:
    name = hostfiles.REDIRECTS_FILE if kind.startswith("_redirects") else hostfiles.HEADERS_FILE
    return hostfiles.parse_site({name: text}, semantics)  # type: ignore[arg-type]


@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
@pytest.mark.parametrize("kind", FILE_LINES)
def test_file_lines_are_skipped_or_harmless(kind: str, semantics: str) -> None:
    """One file with a line (or block) per payload: one nginx -t for the lot."""
    chunks = [FILE_LINES[kind](p) for p in PAYLOADS]
    text = "\n".join(chunk.replace("\n", " ") if "\n" in chunk and kind.startswith("_redirects") else chunk
                     for chunk in chunks)
    parsed = _parse_file(kind, text, semantics)
    found = parsed.redirects if kind.startswith("_redirects") else parsed.headers
    # Each line that starts a rule is honoured or named: nothing is silently lost.
    firsts = {n for n, line in enumerate(text.splitlines(), start=1)
              if line.strip() and (kind.startswith("_redirects") or line.startswith("/"))}
    named = {n for n, _ in found.rules} | {p.line for p in found.problems}
    assert firsts <= named, sorted(firsts - named)
    for problem in found.problems:
        assert problem.file == found.file and problem.line >= 1 and problem.reason
    spec = _validate(_doc({"semantics": semantics}))
    host = parsed.host_rules()
    ok, output, conf = check_spec(spec, host=host)
    assert ok, f"{output}\n{conf}"
    _same_shape(spec, conf, host)


HOSTILE_LINE = st.lists(st.one_of(NASTY, st.text(PRINTABLE, max_size=6), st.sampled_from(
    ["/a", "/*", "/:x", "200", "301!", "404", "https://e.example/", "k=:v", "Country=us", "#", "!", "  ", "\t",
     "X-A:", ": v", "Content-Type:", "https://:p.example.com/*"])), max_size=8).map(" ".join)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(semantics=st.sampled_from(["netlify", "cloudflare"]),
       redirects=st.lists(HOSTILE_LINE, max_size=5).map("\n".join),
       headers=st.lists(HOSTILE_LINE, max_size=6).map("\n".join))
def test_any_host_files_are_skipped_or_safe(semantics: str, redirects: str, headers: str) -> None:
    parsed = hostfiles.parse_site({"_redirects": redirects, "_headers": headers}, semantics)  # type: ignore[arg-type]
    event(f"{len(parsed.redirects.rules) + len(parsed.headers.rules)} rules")
    _check_rendered(_validate(_doc({"semantics": semantics})), parsed.host_rules())


@pytest.fixture(scope="module")
def cloudflare_corpus() -> Iterator[tuple[Server, dict[str, str]]]:
    """Cloudflare semantics, the payloads in _headers values: placeholders fill in, the rest
    comes back as written."""
    values = {f"X-P{i}": f"a{p}b" for i, p in enumerate(PAYLOADS) if ("header value", p) in VALID}
    headers = "/movies/:title\n" + "\n".join(f"  {k}: {v}" for k, v in values.items()) + "\n  X-Movie: :title!"
    spec = make_spec({"index.html": "INDEX", "movies/dune.html": "DUNE", "_headers": headers},
                     {"semantics": "cloudflare"})
    with serve(spec) as server:
        yield server, values


def test_cloudflare_values_come_back_byte_for_byte(cloudflare_corpus: tuple[Server, dict[str, str]]) -> None:
    server, values = cloudflare_corpus
    head, body = server.raw(b"/movies/dune")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"DUNE"
    lines = _head_lines(head)
    for name, value in values.items():
        assert f"{name}: {value}".encode() in lines, (name, value, lines)
    assert b"X-Movie: dune!" in lines


@pytest.mark.parametrize("target", [b"/movies/a%0d%0aSet-Cookie:%20x=1", b"/movies/%0aX:1", b"/movies/a\\b"],
                         ids=repr)
def test_placeholders_in_header_values_never_split_headers(cloudflare_corpus: tuple[Server, dict[str, str]],
                                                           target: bytes) -> None:
    head, _ = cloudflare_corpus[0].raw(target)
    for line in _head_lines(head):
        assert not line.lower().startswith((b"set-cookie", b"x:")), head
        assert b"\r" not in line and b"\n" not in line


def test_odd_file_names_are_served_and_quoted() -> None:
    """File names real sites have, one of them the 404 page: nginx.conf quotes it, nginx
    serves it."""
    names = {"my page (1).html": "SPACES", "it's.html": "QUOTE", "100%.html": "PERCENT", "café.html": "CAFE",
             ".well-known/security.txt": "Contact: x", "$x;{y}.html": "NGINX CHARS", '"q".html': "DQ"}
    spec = make_spec({"index.html": "INDEX", **names}, {"notFoundPage": "$x;{y}.html"})
    with serve(spec) as server:
        for path, url in [("my page (1).html", "/my%20page%20(1).html"), ("it's.html", "/it's.html"),
                          ("100%.html", "/100%25.html"), ("café.html", "/caf%C3%A9.html"),
                          (".well-known/security.txt", "/.well-known/security.txt"), ('"q".html', "/%22q%22.html")]:
            r = server.get(url)
            assert (r.status, r.body.decode()) == (200, names[path]), url
        r = server.get("/nope")
        assert (r.status, r.body) == (404, b"NGINX CHARS")


@pytest.fixture(scope="module")
def query_redirector() -> Iterator[Server]:
    spec = make_spec({"index.html": "INDEX"}, {"semantics": "cloudflare", "redirects": [
        {"from": "/q", "to": "/:id", "status": 302, "query": {"id": ":id"}},
        {"from": "/c/:slug.html", "to": "/:slug", "status": 302},
    ]})
    with serve(spec) as server:
        yield server


@pytest.mark.parametrize("target", [b"/q?id=%0d%0aSet-Cookie:x=1", b"/q?id=/evil.com", b"/q?id=%2F%2Fevil.com",
                                    b"/q?id=\\evil.com", b"/q?id=%5Cevil.com", b"/c/%0d%0aSet-Cookie:x.html",
                                    b"/c/\\evil.com.html", b"/c//evil.com.html"], ids=repr)
def test_query_and_mid_segment_captures_never_leave_the_site(query_redirector: Server, target: bytes) -> None:
    head, _ = query_redirector.raw(target)
    for line in _head_lines(head):
        assert not line.lower().startswith(b"set-cookie"), head
        if line.lower().startswith(b"location:"):
            value = line.split(b":", 1)[1].strip()
            assert value.startswith(b"/") and not value.startswith((b"//", b"/\\")), head
            assert b"\\" not in value, head
