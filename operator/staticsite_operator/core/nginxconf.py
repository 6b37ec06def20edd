"""nginx.conf for one StaticSite, as a pure function of its spec and its content's
`_redirects`/`_headers` rules (no I/O).

Routing follows `spec.routing.semantics` (docs/compat.md lists each host's behaviour and
what becomes of it here). The rules are translated into a fixed skeleton (templates/); the
choices below each fix a concrete nginx pitfall:

- **Which rule matches** is one `map` on `$request_uri` (regex entries are tried in
  order: the first match wins, as on both hosts). Its named captures become variables, so
  each rule is then one `if ($route = "n")`. Netlify's shadowing needs the match early and
  the action late: a forced rule (and every Cloudflare rule) acts in the server's rewrite
  phase, before files; an unforced one acts in `@fallback`, which only `try_files` reaches
  when no file answers the path.
- **Locations come from the raw request.** nginx decodes `$uri`, and `return` copies
  captures verbatim: a capture of /x/a%0d%0aSet-Cookie:... from `$uri` would split the
  response header (checked with nginx 1.22). `rewrite ... permanent` re-escapes CR/LF but
  not a backslash ("Location: /\\evil.com", which browsers follow to another host). So a
  Location is built from `$request_uri` captures, which never start with '/' or '\\'.
- **Internal rewrites use the decoded path**: nginx does not decode a rewrite's result, so
  a 200 rule's captures come from `$uri` (a second, decoded regex of the same rule).
- **Routing runs once.** Internal redirects run the server's rewrite phase again; a flag
  set on the first pass stops that, so a /* rewrite never rewrites the 404 page.
- **try_files only ever resolves files** (never `$uri/`), so nginx's own directory
  redirect (/docs -> /docs/) cannot fire and fight trailingSlash; redirects that add or
  remove a slash first check (`-f`) that the page they point to exists.
- **Headers**: an add_header in a location silently drops every inherited one, so all of
  them are sent from the server level, with `always`, from map variables. netlify: one
  map per header name on `$uri` (the file served, so a 404 gets the 404 page's headers),
  the last matching rule winning. cloudflare: one variable per rule and name on the
  request's host and path (and status: a 404 gets `Cache-Control: no-store`), so that
  every matching rule adds its value, as Cloudflare joins them.
- **Content-Type** is set per path by a regex location with `types {}` and `default_type`:
  an add_header would send a second Content-Type.

`render_nginx_conf` gives a whole nginx.conf; `render_site` gives one site's http-level
maps (under a site-unique prefix) and its `server` block, for a shared nginx serving many
sites by Host, which then includes `HTTP_COMMON` once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..api import models, rules
from .routes import Compiled, Namer, decoded_text, host_path_regex, interpolate, request_regex, uri_regex
from .templating import ENV, nginx_str

HEALTHZ = "/healthz"

# Sent on every response unless a rule overrides it; an empty value removes a header
# (nginx skips add_header with an empty value). Cache-Control is Netlify's default:
# browsers may cache but must revalidate, so a new deployment shows up at once.
BASELINE_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "public, max-age=0, must-revalidate",
}
# Cloudflare Pages' documented defaults ("Headers always added"), and our X-Frame-Options.
CLOUDFLARE_HEADERS: dict[str, str] = {
    "Access-Control-Allow-Origin": "*",
    **BASELINE_HEADERS,
}
# Cloudflare removes a rule's Cache-Control from 404 responses and sends this instead.
CLOUDFLARE_404_CACHE_CONTROL = "no-store"

# The SPA fallback (and the index page) must not be cached: it names the current
# hashed assets, and a stale copy breaks the app after a deployment.
SPA_INDEX_CACHE_CONTROL = "no-cache"

# Files whose name says nothing of their type, and types nginx 1.22's mime.types lacks.
BUILTIN_TYPES: tuple[tuple[str, str], ...] = (
    (r"^/(?:\.well-known/)?apple-app-site-association$", "application/json"),
    (r"\.mjs$", "application/javascript"),
    (r"\.webmanifest$", "application/manifest+json"),
)
# How far up the tree Cloudflare's nearest 404.html is looked for, below the root.
NOT_FOUND_DEPTH = 8

# Operator-supplied arguments are not user input, but they are emitted unquoted.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_SAFE_LISTEN = re.compile(r"^[A-Za-z0-9.:\[\]]+$")
_SAFE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")


def _inner(text: str) -> str:
    """nginx_str's quoting without its quotes, so variables can go in between."""
    return nginx_str(text)[1:-1]


@dataclass(frozen=True)
class HostRules:
    """Rules from the content's `_redirects` and `_headers` (core.hostfiles), with where
    each came from: they follow the spec's own."""

    redirects: Sequence[tuple[str, models.Redirect]] = ()
    headers: Sequence[tuple[str, models.HeaderRule]] = ()


@dataclass(frozen=True)
class Route:
    n: str                # the route map's value for this rule
    origin: str           # "routing.redirects[3]" or "_redirects:12", as a comment
    match: str            # regex on $request_uri
    now: bool             # acts before files (forced, or Cloudflare); else in @fallback
    action: Literal["return", "rewrite", "error"]
    status: int
    target: str           # a complete nginx string: Location, rewrite target or error page
    uri_match: str = ""   # rewrite: regex on "$k" = "<n>:$uri", with the decoded captures


@dataclass(frozen=True)
class HeaderVar:
    var: str                          # the map variable, with '$'
    default: str                      # quoted nginx string
    entries: list[tuple[str, str]]    # (regex, quoted value); nginx takes the first match


@dataclass(frozen=True)
class AddHeader:
    name: str
    var: str


@dataclass(frozen=True)
class Headers:
    source: str                       # what the maps match: "$uri", or Cloudflare's composite
    maps: list[HeaderVar]
    sent: list[AddHeader]


@dataclass(frozen=True)
class TypeLocation:
    regex: str
    media_type: str
    origin: str


@dataclass(frozen=True)
class SiteConf:
    """One site's configuration for a shared nginx: http-level text (maps whose names carry
    the site's prefix) and a complete `server { }` block."""

    http: str
    server: str


@dataclass
class _Context:
    spec: models.StaticSiteSpec
    host: HostRules
    prefix: str
    namer: Namer = field(init=False)

    def __post_init__(self) -> None:
        self.namer = Namer(self.prefix)

    @property
    def semantics(self) -> rules.Semantics:
        return self.spec.routing.semantics


# --- redirects ---------------------------------------------------------------------

def _redirects(ctx: _Context) -> list[Route]:
    spec_rules = [(f"routing.redirects[{i}]", r) for i, r in enumerate(ctx.spec.routing.redirects)]
    out = []
    for n, (origin, rule) in enumerate([*spec_rules, *ctx.host.redirects], start=1):
        pattern = models.check_redirect(rule, ctx.semantics)
        matched = request_regex(pattern, ctx.semantics, rule.query, ctx.namer)
        now = ctx.semantics == "cloudflare" or rule.force
        to = rules.encode_nonascii(rule.to)
        if rule.status in models.REDIRECT_STATUSES:
            out.append(Route(str(n), origin, matched.regex, now, "return", rule.status,
                             _location(to, matched.captures, ctx.semantics, passthrough=not rule.query)))
        elif rule.status == 200:
            decoded = uri_regex(pattern, ctx.semantics, ctx.namer)
            # Query placeholders are only in the raw request: their values stay encoded.
            from_query = {v[1:] for v in rule.query.values() if v.startswith(":")}
            captures = {**{k: v for k, v in matched.captures.items() if k in from_query}, **decoded.captures}
            out.append(Route(str(n), origin, matched.regex, now, "rewrite", 200,
                             _rewrite_target(to, captures, ctx.semantics),
                             f"^{n}:" + decoded.regex.removeprefix("^")))
        else:  # 404, 410: the page `to` names, with that status (no placeholders: models)
            page = decoded_text(to.split("?", 1)[0].split("#", 1)[0])
            out.append(Route(str(n), origin, matched.regex, now, "error", rule.status, nginx_str(page)))
    return out


def _location(to: str, captures: dict[str, str], semantics: rules.Semantics, *, passthrough: bool) -> str:
    """A Location: the client's query string passes through unless `to` has its own, or the
    rule matched on query parameters (Netlify's example sends /store?id=x to /blog/x)."""
    scheme, sep, rest = to.partition("://")
    prefix, rest = (scheme + sep, rest) if sep else ("", to)
    host = ""
    if sep:
        host, slash, rest = rest.partition("/")
        host += slash
    path, hash_, fragment = rest.partition("#")
    query = "$is_args$args" if passthrough and "?" not in path else ""
    return ('"' + _inner(prefix + host) + interpolate(path, captures, semantics, _inner) + query
            + interpolate(hash_ + fragment, captures, semantics, _inner) + '"')


def _rewrite_target(to: str, captures: dict[str, str], semantics: rules.Semantics) -> str:
    """An internal rewrite's target, decoded (nginx does not decode it). A query in `to`
    replaces the client's (the trailing '?' stops nginx from appending the old one)."""
    path = to.split("#", 1)[0]
    path, q, query = path.partition("?")
    out = interpolate(decoded_text(path), captures, semantics, _inner)
    if q:
        out += "?" + interpolate(query, captures, semantics, _inner) + "?"
    return '"' + out + '"'


# --- headers -----------------------------------------------------------------------

def _path_regex(path: str, *, clean_urls: bool) -> str:
    """A Netlify-semantics header path as a regex on $uri, the file actually served. An
    exact page path also matches the files it is served from: / is /index.html, /about is
    /about/index.html, or /about.html with clean URLs."""
    pattern = rules.parse(path, "netlify", "header")
    if pattern.dynamic:
        return uri_regex(pattern, "netlify", named=False).regex
    files = [path]
    if "." not in path.rsplit("/", 1)[-1]:  # a page, not a file name
        stem = path.rstrip("/")
        files += [stem + "/index.html"] + ([stem + ".html"] if clean_urls and stem else [])
    literal = [uri_regex(rules.parse(f, "netlify", "header"), "netlify", named=False).regex for f in files]
    return "^(?:" + "|".join(dict.fromkeys(r[1:-1] for r in literal)) + ")$"


def _all_header_rules(ctx: _Context) -> list[tuple[str, models.HeaderRule]]:
    # The spec's rules come after the file's, so that they win ("last wins", or the last
    # say on a removal): the spec takes precedence, like netlify.toml over _headers.
    spec_rules = [(f"routing.headers[{i}]", h) for i, h in enumerate(ctx.spec.routing.headers)]
    return [*ctx.host.headers, *spec_rules]


def _netlify_headers(ctx: _Context, all_rules: list[tuple[str, models.HeaderRule]]) -> Headers:
    names: dict[str, str] = {}
    defaults: dict[str, str] = {}
    entries: dict[str, list[tuple[str, str]]] = {}
    for name, value in BASELINE_HEADERS.items():
        names[name.lower()] = name
        defaults[name.lower()] = value
    if ctx.spec.routing.spa:
        entries.setdefault("cache-control", []).append((r"^/index\.html$", nginx_str(SPA_INDEX_CACHE_CONTROL)))
    for _, rule in all_rules:
        regex = _path_regex(rule.path, clean_urls=ctx.spec.routing.clean_urls)
        for name, value in rule.set.items():
            if models._is_content_type(name):
                continue
            names.setdefault(name.lower(), name)
            entries.setdefault(name.lower(), []).append((regex, nginx_str(value)))
    # Rules are written in order and the last matching one wins; a map takes the first
    # matching regex, hence reversed. The health check gets no headers.
    maps, sent = [], []
    for key, name in names.items():
        var = "$" + ctx.namer("h")
        maps.append(HeaderVar(var, nginx_str(defaults.get(key, "")),
                              [("^" + re.escape(HEALTHZ) + "$", '""'), *reversed(entries.get(key, []))]))
        sent.append(AddHeader(name, var))
    return Headers("$uri", maps, sent)


def _cloudflare_headers(ctx: _Context, all_rules: list[tuple[str, models.HeaderRule]]) -> Headers:
    """Cloudflare's algorithm, for each matching rule in order: remove the names it
    detaches, then set each header, joining values when an earlier rule set it too. As
    variables: a rule's value is sent unless a later matching rule detaches the name; the
    default unless any matching rule names it."""
    status_any = "^[0-9]+ "
    compiled: list[tuple[models.HeaderRule, Compiled]] = []
    for _, rule in all_rules:
        pattern = models.check_header_rule(rule, "cloudflare")
        compiled.append((rule, host_path_regex(pattern, ctx.namer)))
    names: dict[str, str] = {n.lower(): n for n in CLOUDFLARE_HEADERS}
    for rule, _ in compiled:
        for name in rule.set:
            if not models._is_content_type(name):
                names.setdefault(name.lower(), name)
    maps, sent = [], []
    healthz = ("^[0-9]+ [^/]*" + re.escape(HEALTHZ) + "$", '""')
    for key, name in names.items():
        touching = [(r, c) for r, c in compiled if key in {n.lower() for n in r.set}]
        no_store = [("^404 ", '""')] if key == "cache-control" else []
        default = {n.lower(): v for n, v in CLOUDFLARE_HEADERS.items()}.get(key, "")
        default_entries = [("^404 ", nginx_str(CLOUDFLARE_404_CACHE_CONTROL))] if key == "cache-control" else []
        var = "$" + ctx.namer("h")
        maps.append(HeaderVar(var, nginx_str(default), [
            healthz, *default_entries, *[(status_any + c.regex, '""') for _, c in touching]]))
        sent.append(AddHeader(name, var))
        for i, (rule, comp) in enumerate(touching):
            value = _value(rule, key)
            if value == "":
                continue  # a detach only silences others
            later_detach = [(status_any + c.regex, '""') for r, c in touching[i + 1:] if _value(r, key) == ""]
            quoted = '"' + interpolate(value, comp.captures, "cloudflare", _inner, strict=False) + '"'
            var = "$" + ctx.namer("h")
            maps.append(HeaderVar(var, '""', [healthz, *no_store, *later_detach, (status_any + comp.regex, quoted)]))
            sent.append(AddHeader(name, var))
    return Headers('"$status ${host}${ss_rawpath}"', maps, sent)


def _value(rule: models.HeaderRule, key: str) -> str:
    """The rule's value for a header name; the last one written, if its case differs."""
    return [v for n, v in rule.set.items() if n.lower() == key][-1]


def _type_locations(ctx: _Context, all_rules: list[tuple[str, models.HeaderRule]]) -> list[TypeLocation]:
    out = []
    for origin, rule in all_rules:
        for name, value in rule.set.items():
            if models._is_content_type(name):
                pattern = models.check_header_rule(rule, ctx.semantics)
                out.append(TypeLocation(uri_regex(pattern, ctx.semantics, named=False).regex, value, origin))
    # The last matching rule wins, as for other headers; nginx takes the first regex location.
    return [*reversed(out), *(TypeLocation(r, t, "built-in") for r, t in BUILTIN_TYPES)]


# --- the pages of a miss -----------------------------------------------------------

def _root_not_found(spec: models.StaticSiteSpec) -> str:
    return "/" + (spec.routing.not_found_page or "404.html")


def _file_test(path: str) -> str:
    """An operand for `if (-f ...)`: the site's file at `path` (validated, then quoted)."""
    return '"${document_root}' + _inner(path) + '"'


# --- assembling ----------------------------------------------------------------------

def _context(spec: models.StaticSiteSpec, host: HostRules | None, prefix: str) -> dict[str, object]:
    if not _SAFE_PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix: unsupported value {prefix!r}")
    ctx = _Context(spec, host or HostRules(), prefix)
    routing = spec.routing
    routes = _redirects(ctx)
    all_headers = _all_header_rules(ctx)
    headers = (_cloudflare_headers if ctx.semantics == "cloudflare" else _netlify_headers)(ctx, all_headers)
    depth = NOT_FOUND_DEPTH if ctx.semantics == "cloudflare" else 0
    nearest = [f"$ss_nf_{k}" for k in range(depth, 0, -1)]
    root_page = _root_not_found(spec)
    return {
        "p": prefix,
        "semantics": ctx.semantics,
        "healthz": HEALTHZ,
        "routes": routes,
        "rules_now": [r for r in routes if r.now],
        "rules_fallback": [r for r in routes if not r.now],
        "needs_k": any(r.action == "rewrite" for r in routes),
        "hop": any(r.action == "rewrite" and not r.now for r in routes),
        "headers": headers,
        "type_locations": _type_locations(ctx, all_headers),
        "spa": routing.spa,
        "clean_urls": routing.clean_urls,
        "trailing_slash": routing.trailing_slash,
        "page_files": [*nearest, nginx_str(root_page)],
        "spa_blockers": [f'"${{document_root}}{v}"' for v in nearest] + [_file_test(root_page)],
        "try_files": ("$uri $ss_page" if ctx.semantics == "cloudflare"
                      else "$uri" + (" $ss_html" if routing.clean_urls else "") + " $ss_index"),
    }


def _check_args(**values: tuple[str, re.Pattern[str]]) -> None:
    for what, (value, pattern) in values.items():
        if not pattern.fullmatch(value):
            raise ValueError(f"{what}: unsupported value {value!r}")


def render_site(spec: models.StaticSiteSpec, *, root: str, listen: Sequence[str], default_server: bool = False,
                server_names: Sequence[str] = (), prefix: str = "ss_", host: HostRules | None = None) -> SiteConf:
    """One site for a shared nginx: `http` goes in the http block (after HTTP_COMMON, once
    for all sites), `server` is its server block. `prefix` makes its map variables unique
    (letters, digits and '_'); `server_names` are validated domains (models.DOMAIN_PATTERN)."""
    _check_args(root=(root, _SAFE_PATH), **{f"listen[{i}]": (v, _SAFE_LISTEN) for i, v in enumerate(listen)})
    for name in server_names:
        if not re.fullmatch(models.DOMAIN_PATTERN, name):
            raise ValueError(f"server_names: unsupported value {name!r}")
    context = _context(spec, host, prefix) | {
        "root": root.rstrip("/") or "/", "listen": list(listen), "default_server": default_server,
        "server_names": list(server_names)}
    return SiteConf(http=ENV.get_template("site-http.conf.j2").render(context),
                    server=ENV.get_template("site-server.conf.j2").render(context))


def http_common() -> str:
    """The http-level part every site's configuration relies on; once per nginx."""
    return ENV.get_template("common-http.conf.j2").render(depth=NOT_FOUND_DEPTH, healthz=HEALTHZ)


HTTP_COMMON = http_common()


def render_nginx_conf(spec: models.StaticSiteSpec, *, root: str = "/srv/site", listen: str = "8080",
                      tmp_dir: str = "/tmp",  # noqa: S108 - the pod's emptyDir, not a temp file
                      host: HostRules | None = None) -> str:
    """The complete nginx.conf (main context) that serves `spec` from `root`, with the
    rules of the content's `_redirects`/`_headers` (`host`) after the spec's own."""
    _check_args(tmp_dir=(tmp_dir, _SAFE_PATH), listen=(listen, _SAFE_LISTEN))
    site = render_site(spec, root=root, listen=[listen], default_server=True, prefix="ss_", host=host)
    return ENV.get_template("nginx.conf.j2").render(
        tmp_dir=tmp_dir.rstrip("/") or "/", common=HTTP_COMMON, site=site)

