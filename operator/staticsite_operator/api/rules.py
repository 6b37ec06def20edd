"""The grammar of rule paths under each host's semantics: a redirect's `from`, a header
rule's path, and the placeholders of a redirect's `to`.

Shared by validation (models.py, so the spec and `_redirects`/`_headers` files are
checked alike) and by rendering (core/routes.py builds the regexes from the same parse).
Each host documents its own grammar (docs/compat.md cites the sections):

- **netlify**: `*` in a redirect only at the very end; `/a/*` also matches `/a` and `/a/`.
  A placeholder is a whole segment, `:` up to the next `/`, so `:post-id` is one name.
  In `_headers` a `*` may stand anywhere in a segment and match across `/`.
- **cloudflare**: one `*` anywhere, greedy, across `/`; a placeholder is `:` and a
  letter, then letters, digits and `_` (`:[A-Za-z]\\w*`), anywhere, and stops at `/`
  (at `.` in a host). A `_headers` rule may name a host: `https://:project.example.com/*`.

Patterns are kept in the percent-encoded form rules are written in; non-ASCII text is
percent-encoded (UTF-8) first, so `/café` and `/caf%C3%A9` are the same rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Semantics = Literal["netlify", "cloudflare"]
Kind = Literal["redirect", "header"]
SEMANTICS: tuple[Semantics, ...] = ("netlify", "cloudflare")

_CF_NAME = re.compile(r"[A-Za-z]\w*", re.ASCII)


@dataclass(frozen=True)
class Text:
    """Literal text, percent-encoded as written."""

    text: str


@dataclass(frozen=True)
class Capture:
    """A placeholder or the splat.

    how: "segment" matches one path segment (no `/`), "label" one host label (no `.`),
    "any" any characters (across `/`), "tail" Netlify's trailing `/*`: nothing, `/`, or
    `/` and anything (the capture excludes the leading `/`).
    """

    name: str | None  # None: a Netlify `_headers` wildcard, which captures nothing usable
    how: Literal["segment", "label", "any", "tail"]


Part = Text | Capture


@dataclass(frozen=True)
class Pattern:
    host: tuple[Part, ...] | None  # a Cloudflare `_headers` rule for one host; None: any host
    path: tuple[Part, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in (*(self.host or ()), *self.path) if isinstance(p, Capture) and p.name]

    @property
    def dynamic(self) -> bool:
        return any(isinstance(p, Capture) for p in (*(self.host or ()), *self.path))


def encode_nonascii(text: str) -> str:
    """Non-ASCII characters as UTF-8 percent-escapes; everything else as it is."""
    return "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def parse(pattern: str, semantics: Semantics, kind: Kind) -> Pattern:
    """A rule path as literal text and captures; ValueError says what the host would not accept."""
    pattern = encode_nonascii(pattern)
    host: tuple[Part, ...] | None = None
    if pattern.startswith("https://"):
        if semantics != "cloudflare" or kind != "header":
            raise ValueError("only Cloudflare `_headers` rules may name a host (https://host/path)")
        authority, slash, rest = pattern[len("https://"):].partition("/")
        if not slash or not authority:
            raise ValueError("a rule with a host needs a path after it, e.g. https://example.com/*")
        host = tuple(_cloudflare(authority, label=True))
        pattern = "/" + rest
    if not pattern.startswith("/"):
        raise ValueError("must start with '/'")
    if semantics == "cloudflare":
        path = tuple(_cloudflare(pattern, label=False))
    elif kind == "redirect":
        path = tuple(_netlify_redirect(pattern))
    else:
        path = tuple(_netlify_header(pattern))
    parsed = Pattern(host, path)
    stars = sum(1 for p in (*(host or ()), *path) if isinstance(p, Capture) and p.name == "splat")
    if semantics == "cloudflare" and stars > 1:
        raise ValueError("only one '*' is allowed; use a named placeholder (:name) for the others")
    names = parsed.names
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"each placeholder may appear once: :{', :'.join(dup)}")
    return parsed


def _cloudflare(text: str, *, label: bool) -> list[Part]:
    out: list[Part] = []
    i, buf = 0, ""
    while i < len(text):
        c = text[i]
        if c == "*":
            out, buf = _flush(out, buf), ""
            out.append(Capture("splat", "any"))
            i += 1
        elif c == ":" and (m := _CF_NAME.match(text, i + 1)):
            if m.group() == "splat":
                raise ValueError("':splat' is the name of the '*'; give the placeholder another name")
            out, buf = _flush(out, buf), ""
            out.append(Capture(m.group(), "label" if label else "segment"))
            i = m.end()
        else:
            buf += c
            i += 1
    return _flush(out, buf)


def _netlify_redirect(text: str) -> list[Part]:
    if "*" in text[:-1]:
        raise ValueError("'*' is only allowed at the end (Netlify); semantics: cloudflare allows it anywhere")
    out: list[Part] = []
    body = text[:-1] if text.endswith("*") else text
    segments = body.split("/")[1:]
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        if last and text.endswith("/*") and seg == "":
            out.append(Capture("splat", "tail"))  # '/a/*': the '/' belongs to the splat
            return out
        out = _flush(out, "/")
        if seg.startswith(":"):
            if len(seg) == 1 or (last and text.endswith("*")):
                raise ValueError("a placeholder is a whole segment: ':name', without '*'")
            out.append(Capture(seg[1:], "segment"))
        else:
            out = _flush(out, seg)
    if text.endswith("*"):
        out.append(Capture("splat", "any"))
    return out


def _netlify_header(text: str) -> list[Part]:
    out: list[Part] = []
    segments = text.split("/")[1:]
    for seg in segments:
        if seg == "*":
            out.append(Capture(None, "tail"))  # '/a/*' also matches '/a' (Netlify's own matcher)
            continue
        out = _flush(out, "/")
        if seg.startswith(":"):
            if len(seg) == 1 or "*" in seg:
                raise ValueError("a placeholder is a whole segment: ':name', without '*'")
            out.append(Capture(seg[1:], "segment"))
            continue
        pieces = seg.split("*")
        for k, piece in enumerate(pieces):
            out = _flush(out, piece)
            if k < len(pieces) - 1:
                out.append(Capture(None, "any"))
    return out


def _flush(out: list[Part], buf: str) -> list[Part]:
    if not buf:
        return out
    if out and isinstance(out[-1], Text):
        return [*out[:-1], Text(out[-1].text + buf)]
    return [*out, Text(buf)]


def substitutions(text: str, names: list[str], semantics: Semantics) -> list[Part]:
    """`text` (a redirect target's path, query and fragment, or a header value) as literal
    text and references to the captured `names`. A `:name` that is not captured is an error:
    hosts keep it as literal text, but it is nearly always a typo (`:month:`)."""
    out: list[Part] = []
    i, buf = 0, ""
    by_length = sorted(names, key=len, reverse=True)
    while i < len(text):
        if text[i] == ":" and i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalpha():
            if semantics == "cloudflare":
                m = _CF_NAME.match(text, i + 1)
                assert m is not None
                name: str | None = m.group() if m.group() in names else None
                token = m.group()
            else:  # Netlify names may hold '-' or '.': the longest captured name that fits
                name = next((n for n in by_length if text.startswith(n, i + 1)), None)
                token = re.match(r"[A-Za-z][\w-]*", text[i + 1:], re.ASCII).group()  # type: ignore[union-attr]
            if name is None:
                raise ValueError(f"placeholder :{token} is not captured by the rule's path")
            out, buf = _flush(out, buf), ""
            out.append(Capture(name, "segment"))
            i += 1 + len(name)
        else:
            buf += text[i]
            i += 1
    return _flush(out, buf)
