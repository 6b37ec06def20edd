"""nginx.conf for one StaticSite, as a pure function of its spec (no I/O).

The routing features (redirects, clean URLs, trailing slashes, SPA fallback, 404 page)
and header rules are translated into a fixed skeleton (templates/nginx.conf.j2). The
choices below each fix a concrete nginx pitfall:

- Redirects are matched on `$request_uri` (the path as the client sent it, still
  percent-encoded) and never build a Location from `$uri`. nginx decodes `$uri`, and
  `return` copies captures verbatim: with `if ($uri ~ "^/x/([^/]+)$") { return 302
  /y/$1; }` a request for /x/a%0d%0aSet-Cookie:... splits the response header (checked
  with nginx 1.22). `rewrite ... permanent` re-escapes CR/LF but not a backslash, so
  /%5Cevil.com/ would become "Location: /\\evil.com", which browsers follow to another
  host. Captures also may not start with '/' or '\\' for the same reason.
- Rewrites with status 200 stay internal, so they match the decoded `$uri` and need the
  file name, not its encoding.
- Internal redirects (error_page; the index module and a try_files fallback URI, which
  this config avoids) run the server-level rewrite phase again. The template sets a flag
  on the first pass so routing rules only apply to what the client asked for: otherwise
  a 200 rewrite of /* would also rewrite the 404 page's URI, and the custom page is lost.
- try_files only ever resolves to files (never `$uri/`), so nginx's own directory
  redirect (/docs -> /docs/) cannot fire and fight trailingSlash: remove.
- Response headers use one `map $uri` per header name and a single server-level
  `add_header ... always`, because an add_header in a location silently drops every
  inherited one. Matching `$uri` means the rules see the file actually served (after
  try_files and error_page): a 404 gets the headers of the 404 page, not of the
  missing asset, and the SPA fallback gets those of /index.html. So that this does not
  surprise, an exact path also matches the files it is served from (/ is /index.html;
  /about is /about/index.html, or /about.html with clean URLs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..api import models
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

# The SPA fallback (and the index page) must not be cached: it names the current
# hashed assets, and a stale copy breaks the app after a deployment.
SPA_INDEX_CACHE_CONTROL = "no-cache"

_PLACEHOLDER = re.compile(r":([a-z][a-z0-9_]*)")
# Operator-supplied arguments are not user input, but they are emitted unquoted.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_SAFE_LISTEN = re.compile(r"^[A-Za-z0-9.:\[\]]+$")


@dataclass(frozen=True)
class Redirect:
    status: int
    regex: str   # PCRE: on $request_uri for 3xx, on $uri for a 200 rewrite
    target: str  # a complete nginx string literal (already quoted), with capture variables


@dataclass(frozen=True)
class HeaderMap:
    name: str
    var: str                      # the map variable, e.g. $ss_hdr_0
    default: str
    rules: list[tuple[str, str]]  # (regex on $uri, value); nginx takes the first match


def _route_regex(pattern: str, *, raw: bool) -> tuple[str, dict[str, str]]:
    """A `from` pattern as an anchored regex, and the capture variable of each name.

    raw: match $request_uri (encoded, followed by an optional query string), for
    redirects; else $uri, for rewrites. Captures are named (ss_cap_N), not numbered,
    because nginx scripts only know $1..$9 and a pattern may hold more placeholders.
    """
    if raw:  # a capture that starts with / or \ would make Location //host or /\host
        segment, splat, stop = r"[^/?\\][^/?]*", r"(?:[^/?\\][^?]*)?", r"(?:\?|$)"
    else:
        segment, splat, stop = r"[^/]+", r".*", r"$"
    has_splat = pattern.endswith("*")
    body = pattern[:-1] if has_splat else pattern
    if not has_splat and len(body) > 1:
        body = body.removesuffix("/")  # /old/ and /old both match either way
    captures: dict[str, str] = {}  # placeholder name -> capture; the first one of a name wins
    regex, n = "^", 0
    for part in body.split("/")[1:]:
        regex += "/"
        if m := _PLACEHOLDER.fullmatch(part):
            n += 1
            var = f"ss_cap_{n}"
            regex += f"(?<{var}>{segment})"
            captures.setdefault(m.group(1), var)
        elif "*" in part:
            raise ValueError(f"'*' must end the pattern: {pattern!r}")
        else:
            regex += re.escape(part)
    if has_splat:
        var = f"ss_cap_{n + 1}"
        regex += f"(?<{var}>{splat}){stop}"
        captures["splat"] = var  # :splat is always the '*', even if a placeholder has that name
    else:
        regex += ("/?" if body != "/" else "") + stop
    return regex, captures


def _target(to: str, captures: dict[str, str], *, redirect: bool) -> str:
    """`to` as a quoted nginx string: literal text via nginx_str, placeholders as captures."""
    scheme, sep, rest = to.partition("://")
    prefix, rest = (scheme + sep, rest) if sep else ("", to)
    path, hash_, fragment = rest.partition("#")
    if not redirect:
        # An internal rewrite keeps the query string by itself, and has no use for a fragment.
        return '"' + _interpolate(path, captures) + '"'
    # The client's query string passes through (before any #fragment), as on Netlify.
    query = "$is_args$args" if "?" not in to else ""
    return ('"' + _interpolate(prefix, {}) + _interpolate(path, captures) + query
            + _interpolate(hash_ + fragment, captures) + '"')


def _interpolate(text: str, captures: dict[str, str]) -> str:
    # nginx_str's quoting without its quotes, so capture variables can go in between.
    out, pos = "", 0
    for m in _PLACEHOLDER.finditer(text) if captures else ():
        if m.group(1) not in captures:
            raise ValueError(f"to: placeholder :{m.group(1)} is not captured by from")
        out += nginx_str(text[pos:m.start()])[1:-1] + "${" + captures[m.group(1)] + "}"
        pos = m.end()
    return out + nginx_str(text[pos:])[1:-1]


def _redirects(routing: models.Routing) -> list[Redirect]:
    out = []
    for r in routing.redirects:
        # 3xx: match the raw request; 200: the decoded path (see the module docstring).
        redirect = r.status != 200
        regex, captures = _route_regex(r.from_, raw=redirect)
        out.append(Redirect(status=r.status, regex=regex, target=_target(r.to, captures, redirect=redirect)))
    return out


def _path_regex(path: str, *, clean_urls: bool) -> str:
    """A header rule's path as a regex on $uri: a prefix when it ends in '*' (/assets/*
    is /assets/ and below), else exact. As $uri is the file served, an exact path also
    matches the files it is served from, so a rule for / applies to /index.html."""
    if path.endswith("*"):
        return "^" + re.escape(path[:-1])
    files = [path]
    if "." not in path.rsplit("/", 1)[-1]:  # a page, not a file name
        stem = path.rstrip("/")
        files += [stem + "/index.html"] + ([stem + ".html"] if clean_urls and stem else [])
    return "^(?:" + "|".join(re.escape(f) for f in dict.fromkeys(files)) + ")$"


def _header_maps(routing: models.Routing) -> list[HeaderMap]:
    # Header names are case-insensitive: one map per name, spelled as first seen.
    names: dict[str, str] = {}
    defaults: dict[str, str] = {}
    rules: dict[str, list[tuple[str, str]]] = {}
    for name, value in BASELINE_HEADERS.items():
        names[name.lower()] = name
        defaults[name.lower()] = value
    if routing.spa:
        rules.setdefault("cache-control", []).append((r"^/index\.html$", SPA_INDEX_CACHE_CONTROL))
    for rule in routing.headers:
        for name, value in rule.set.items():
            names.setdefault(name.lower(), name)
            rules.setdefault(name.lower(), []).append((_path_regex(rule.path, clean_urls=routing.clean_urls), value))
    # Rules are written in order and the last matching one wins; a map takes the first
    # matching regex, hence reversed.
    return [
        HeaderMap(name=name, var=f"$ss_hdr_{i}", default=defaults.get(key, ""),
                  rules=list(reversed(rules.get(key, []))))
        for i, (key, name) in enumerate(names.items())
    ]


def _not_found_page(spec: models.StaticSiteSpec) -> str | None:
    if spec.routing.not_found_page is not None:
        return spec.routing.not_found_page
    inline = spec.content.inline
    return "404.html" if inline is not None and "404.html" in inline.paths() else None


def render_nginx_conf(spec: models.StaticSiteSpec, *, root: str = "/srv/site", listen: str = "8080",
                      tmp_dir: str = "/tmp") -> str:  # noqa: S108 - the pod's emptyDir, not a temp file
    """The complete nginx.conf (main context) that serves `spec` from `root`."""
    for what, value, pattern in (("root", root, _SAFE_PATH), ("tmp_dir", tmp_dir, _SAFE_PATH),
                                 ("listen", listen, _SAFE_LISTEN)):
        if not pattern.fullmatch(value):
            raise ValueError(f"{what}: unsupported value {value!r}")
    routing = spec.routing
    return ENV.get_template("nginx.conf.j2").render(
        root=root.rstrip("/") or "/",
        listen=listen,
        tmp_dir=tmp_dir.rstrip("/") or "/",
        healthz=HEALTHZ,
        headers=_header_maps(routing),
        redirects=_redirects(routing),
        spa=routing.spa,
        clean_urls=routing.clean_urls,
        trailing_slash=routing.trailing_slash,
        not_found_page=_not_found_page(spec),
    )
