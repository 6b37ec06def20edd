"""Rule paths (api/rules.py) as PCRE for nginx, and rule targets as nginx strings. Pure.

Two subjects, two encodings:
- the raw request ($request_uri: percent-encoded, as the client sent it, with its query)
  decides which redirect rule matches and supplies what a Location header copies. It is
  never decoded, so a capture cannot smuggle CR/LF into a header (see nginxconf.py).
- the decoded path ($uri) supplies what an internal rewrite copies into a file name, and
  what header rules and Content-Type locations match.

Captures are named (nginx scripts only know $1..$9) and never start with '/' or '\\' on
the raw side: a Location of '/' + '/evil.com' would leave the site.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..api import rules
from ..api.rules import Capture, Part, Text

# Raw captures: no '/', '?', '#', backslash, space or control character; and a splat may
# hold '/' but not start with one.
_RAW_FIRST = r"[^/?#\\\x00-\x20\x7f]"
_RAW_SEGMENT = rf"{_RAW_FIRST}[^/?#\x00-\x20\x7f]*"
_RAW_ANY = rf"(?:{_RAW_FIRST}[^?#\x00-\x20\x7f]*)?"
_RAW_LABEL = r"[^./?#\\\x00-\x20\x7f]+"
# Decoded captures: $uri is already normalised by nginx; control characters stay out.
_URI_SEGMENT = r"[^/\x00-\x1f\x7f]+"
_URI_ANY = r"[^\x00-\x1f\x7f]*"
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Compiled:
    regex: str                 # PCRE, anchored at the start
    captures: dict[str, str]   # placeholder name -> nginx variable (without '$')


class Namer:
    """Unique names for captures and map variables, under a site's prefix (shared nginx)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._n = 0

    def __call__(self, hint: str) -> str:
        self._n += 1
        return f"{self.prefix}{hint}{self._n}"


def percent_decode(text: str) -> bytes:
    """`text`'s percent-escapes decoded: the bytes nginx's $uri holds for it."""
    out, pos = bytearray(), 0
    for m in _PCT.finditer(text):
        out += text[pos:m.start()].encode()
        out.append(int(m.group(1), 16))
        pos = m.end()
    return bytes(out + text[pos:].encode())


def decoded_text(text: str) -> str:
    """A rule's text as nginx will see it after decoding; ValueError if that is not UTF-8
    (nginx.conf is written as text)."""
    try:
        return percent_decode(text).decode()
    except UnicodeDecodeError:
        raise ValueError(f"{text!r} decodes to bytes that are not UTF-8") from None


def _raw_literal(text: str) -> str:
    # Clients differ in the case of percent-escapes' hex digits: %c3 and %C3 are the same.
    out, pos = "", 0
    for m in _PCT.finditer(text):
        out += re.escape(text[pos:m.start()]) + "%" + "".join(
            f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in m.group(1))
        pos = m.end()
    return out + re.escape(text[pos:])


def _uri_literal(text: str) -> str:
    # PCRE in nginx matches bytes: a non-ASCII byte is written \xHH, so the regex holds
    # the exact bytes $uri will.
    return "".join(re.escape(chr(b)) if b < 0x80 else f"\\x{b:02x}" for b in percent_decode(text))


def _build(parts: tuple[Part, ...], namer: Namer | None, *, raw: bool, label_parts: bool = False) -> Compiled:
    regex, captures = "", {}
    for part in parts:
        if isinstance(part, Text):
            text = part.text.lower() if label_parts else part.text
            regex += _raw_literal(text) if raw else _uri_literal(text)
            continue
        body = {
            ("segment", True): _RAW_SEGMENT, ("segment", False): _URI_SEGMENT,
            ("any", True): _RAW_ANY, ("any", False): _URI_ANY,
            ("tail", True): _RAW_ANY, ("tail", False): _URI_ANY,
            ("label", True): _RAW_LABEL, ("label", False): _RAW_LABEL,
        }[(part.how, raw)]
        if part.name is not None and namer is not None:
            var = namer("c")
            captures[part.name] = var
            body = f"(?<{var}>{body})"
        regex += f"(?:/{body})?" if part.how == "tail" else body
    return Compiled(regex, captures)


def _netlify_end(parts: tuple[Part, ...]) -> tuple[tuple[Part, ...], str]:
    """Netlify matches paths with or without a trailing slash (`/a` and `/a/` alike)."""
    last = parts[-1] if parts else None
    if isinstance(last, Text) and last.text != "/":
        return (*parts[:-1], Text(last.text.removesuffix("/"))), "/?"
    if isinstance(last, Capture) and last.how == "segment":
        return parts, "/?"
    return parts, ""


def request_regex(pattern: rules.Pattern, semantics: rules.Semantics, query: dict[str, str],
                  namer: Namer) -> Compiled:
    """A redirect rule as a regex on $request_uri (path and query), with its captures."""
    parts, slash = _netlify_end(pattern.path) if semantics == "netlify" else (pattern.path, "")
    built = _build(parts, namer, raw=True)
    regex, captures = "^" + built.regex + slash, dict(built.captures)
    if not query:
        return Compiled(regex + r"(?:\?|$)", captures)
    regex += r"\?"
    for key, value in query.items():  # each a lookahead: the parameters may come in any order
        if value.startswith(":"):
            var = namer("q")
            captures[value[1:]] = var
            value_regex = rf"(?<{var}>(?:[^&#/\\\x00-\x20\x7f][^&#\x00-\x20\x7f]*)?)"
        else:
            value_regex = _raw_literal(value)
        regex += rf"(?=(?:.*&)?{_raw_literal(key)}={value_regex}(?:&|$))"
    return Compiled(regex, captures)


def uri_regex(pattern: rules.Pattern, semantics: rules.Semantics, namer: Namer | None = None, *,
              named: bool = True) -> Compiled:
    """A rule's path as a regex on the decoded $uri, anchored at both ends; without
    captures unless `named` (and a `namer` to name them)."""
    namer = namer if named else None
    parts, slash = _netlify_end(pattern.path) if semantics == "netlify" else (pattern.path, "")
    built = _build(parts, namer, raw=False)
    return Compiled("^" + built.regex + slash + "$", built.captures)


def host_path_regex(pattern: rules.Pattern, namer: Namer) -> Compiled:
    """A Cloudflare `_headers` rule as a regex on "$host$path" (the raw path; the host
    lower-case, as nginx keeps it). A rule without a host matches any host."""
    host = _build(pattern.host, namer, raw=True, label_parts=True) if pattern.host is not None else None
    path = _build(pattern.path, namer, raw=True)
    return Compiled((host.regex if host else "[^/]*") + path.regex + "$",
                    {**(host.captures if host else {}), **path.captures})


def interpolate(text: str, captures: dict[str, str], semantics: rules.Semantics,
                quote: Callable[[str], str], *, strict: bool = True) -> str:
    """`text` with its placeholders replaced by capture variables: each literal piece passed
    through `quote` (the inside of an nginx string), each capture as ${var}. Not strict
    (header values): an uncaptured `:word` is literal text, as Cloudflare leaves it."""
    names = list(captures)
    try:
        parts = rules.substitutions(text, names, semantics)
    except ValueError:
        if strict:
            raise
        parts = _lenient(text, names, semantics)
    return "".join(quote(p.text) if isinstance(p, Text) else "${" + captures[p.name or ""] + "}" for p in parts)


def _lenient(text: str, names: list[str], semantics: rules.Semantics) -> list[Part]:
    # Substitute the captured names only; any other ':word' stays as it is.
    pieces = re.split(r"(:[A-Za-z]\w*)", text)
    out: list[Part] = []
    for piece in pieces:
        name = piece[1:] if piece.startswith(":") else None
        out.append(Capture(name, "segment") if name in names else Text(piece))
    del semantics
    return out
