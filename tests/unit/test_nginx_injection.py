"""Hostile input cannot change the nginx.conf it ends up in, nor the responses nginx sends.

- A hand-written corpus of injection attempts in every user string that can reach
  nginx.conf (header names and values, header paths, redirect from/to, file paths,
  notFoundPage) and in domains: each is either rejected by the models with an error
  naming the field, or valid, in which case it renders, passes `nginx -t`, leaves the
  config's structure unchanged, and comes back byte for byte from a real nginx.
- Hostile *requests*: percent-encoded CR/LF and backslashes must not split headers or
  produce a Location that leaves the site (//host, /\\host).
- Property-based (hypothesis): for generated specs, pydantic rejects them, or the config
  passes `nginx -t` and has exactly the structure of a "clean twin" spec with the same
  shape, so no user string created, ended or quoted away any directive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from staticsite_operator.api import models
from staticsite_operator.core.nginxconf import (
    BASELINE_HEADERS,
    SPA_INDEX_CACHE_CONTROL,
    _path_regex,
    _route_regex,
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
}

# What the API legitimately allows: visible ASCII in header values, RFC 9110 token
# characters (which include ' and #) in header names, and a #fragment in a target.
VALID = ({("header value", p) for p in PAYLOADS if all(0x20 <= ord(c) <= 0x7E for c in p)}
         | {("header name", "'"), ("header name", "#"), ("redirect to", "#")})


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
    assert shape(parse_conf(conf)) == shape(parse_conf(render_nginx_conf(clean_twin(spec))))


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

def clean_twin(spec: models.StaticSiteSpec) -> models.StaticSiteSpec:
    """A spec of the same shape with only tame strings: same flags, the same number of
    rules, header names grouped the same way (case-insensitively), same statuses."""
    r = spec.routing
    classes: dict[str, int] = {}

    def name(n: str) -> str:
        if n.lower() in BASELINE_LOWER:
            return n  # merges with the baseline map, as the original does
        k = classes.setdefault(n.lower(), len(classes))
        return f"X-T{k}-" + "".join("A" if c.isupper() else "a" for c in n if c.isalpha())

    files = ["index.html"] + (["404.html"] if "404.html" in spec.content.inline.paths() else [])  # type: ignore[union-attr]
    routing: dict[str, Any] = {
        "spa": r.spa, "cleanUrls": r.clean_urls, "trailingSlash": r.trailing_slash,
        "headers": [{"path": "/p*" if h.path.endswith("*") else "/p",
                     "set": {name(k): ("v" if v else "") for k, v in h.set.items()}} for h in r.headers],
        "redirects": [{"from": "/f", "to": "/t", "status": x.status} for x in r.redirects],
    }
    if r.not_found_page is not None:
        routing["notFoundPage"] = "nf.html"
        files.append("nf.html")
    return _validate(_doc(routing, files))


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
    st.sampled_from([*BASELINE_HEADERS, "cache-control", "X-FRAME-OPTIONS", "X-A", "x-a", "X-'", "X-#", "a|b`c"]),
)
HEADER_VALUES = st.one_of(
    st.just(""),
    st.lists(st.one_of(TRICKY_VALUES, st.text(PRINTABLE, max_size=6)), min_size=1, max_size=4).map("".join),
)
HEADER_PATHS = st.from_regex(r"/[A-Za-z0-9._~@+,=!/-]{0,10}\*?", fullmatch=True)
LITERAL = st.from_regex(r"[A-Za-z0-9._~@+,=!-]{1,8}", fullmatch=True)
PLACEHOLDER = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
FILE_PATHS = st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?\.html", fullmatch=True)
DOMAINS = st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True)


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


def _redirect(draw: st.DrawFn, text: Strings) -> dict[str, Any]:
    segments, names = [], []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            segments.append(text(LITERAL))
        else:
            names.append(draw(PLACEHOLDER))
            segments.append(":" + names[-1])
    splat = draw(st.booleans())
    if splat:
        names.append("splat")
    source = "/" + "/".join(segments) + ("/*" if splat and segments else "*" if splat else "")
    pieces = [draw(st.sampled_from(["/", "https://example.com/", "http://h.example:8080/"]))]
    for _ in range(draw(st.integers(0, 4))):
        use_name = draw(st.booleans())
        if names and use_name:
            pieces.append(":" + draw(st.sampled_from(names)) + draw(st.sampled_from(["/", "-", ".html"])))
        else:
            pieces.append(text(st.one_of(LITERAL, st.sampled_from(["/", "%20", "&", "?", "=", ":", "%24", "#"]))))
    if draw(st.booleans()):
        pieces.append("?q=" + draw(st.sampled_from([":" + n for n in names] or ["1"])))
    if draw(st.booleans()):
        pieces.append("#" + text(LITERAL))
    return {"from": text(st.just(source)), "to": text(st.just("".join(pieces))),
            "status": draw(st.sampled_from([200, 301, 302, 303, 307, 308]))}


@st.composite
def spec_docs(draw: st.DrawFn, *, headers: bool, redirects: bool) -> dict[str, Any]:
    text = Strings(draw)
    files = ["index.html"] + (["404.html"] if draw(st.booleans()) else [])
    extra = text(FILE_PATHS) if draw(st.booleans()) else None
    if extra is not None and extra not in files:
        files.append(extra)
    routing: dict[str, Any] = {
        "spa": draw(st.booleans()), "cleanUrls": draw(st.booleans()),
        "trailingSlash": draw(st.sampled_from(["ignore", "add", "remove"])),
    }
    if extra is not None and draw(st.booleans()):
        routing["notFoundPage"] = extra
    if headers:
        routing["headers"] = [
            {"path": text(HEADER_PATHS),
             "set": {text(HEADER_NAMES): text(HEADER_VALUES) for _ in range(draw(st.integers(1, 4)))}}
            for _ in range(draw(st.integers(0, 3)))
        ]
    if redirects:
        routing["redirects"] = [_redirect(draw, text) for _ in range(draw(st.integers(0, 4)))]
    domains = [text(DOMAINS) for _ in range(draw(st.integers(0, 2)))]
    return _doc(routing, files, domains)


def _check_rendered(spec: models.StaticSiteSpec) -> None:
    ok, output, conf = check_spec(spec)
    assert ok, f"nginx -t failed:\n{output}\n{conf}"
    tree = parse_conf(conf)
    assert shape(tree) == shape(parse_conf(render_nginx_conf(clean_twin(spec))))
    # Every header value reaches nginx exactly as written ('$' as ${dollar}).
    values = Counter(d.words[1].replace("${dollar}", "$") for path, d in walk(tree)
                     if path[-1:] == ["map"] and d.name.startswith("~") and _is_header_map(tree, d))
    wanted = Counter(v for h in spec.routing.headers for v in h.set.values())
    if spec.routing.spa:
        wanted[SPA_INDEX_CACHE_CONTROL] += 1
    assert values == wanted
    # Regexes reach PCRE exactly as built (quoting must not change a backslash).
    keys = Counter(d.name for path, d in walk(tree) if path[-1:] == ["map"] and _is_header_map(tree, d)
                   and d.name.startswith("~"))
    clean = spec.routing.clean_urls
    assert keys == Counter("~" + _path_regex(h.path, clean_urls=clean) for h in spec.routing.headers
                           for _ in h.set) + Counter({r"~^/index\.html$": 1} if spec.routing.spa else {})
    server = next(d for path, d in walk(tree) if d.name == "server")
    assert server.block is not None
    regexes = [d.words[3] if d.name == "if" else d.words[1] for d in server.block
               if d.name == "rewrite" or (d.name == "if" and d.words[1] == "($request_uri")]
    built = [_route_regex(r.from_, raw=r.status != 200)[0] for r in spec.routing.redirects]
    assert regexes[:len(built)] == built


def _is_header_map(tree: list[Any], entry: Any) -> bool:
    return any(d.name == "map" and d.words[2].startswith("$ss_hdr_") and d.block is not None
               and any(e is entry for e in d.block) for _, d in walk(tree))


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
