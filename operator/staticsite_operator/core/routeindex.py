"""Large redirect sets: the rules that match one literal path are found by a hash lookup.

The route map is a list of regexes that nginx tries in order, about 0.15 µs each (nginx
1.22, PCRE2): a request that only the 1000th rule matches, or none, tries them all
(bench/README.md, "Serving"). Most rules of a large set are literal paths (`/old/page`),
so from HASH_FROM such rules on they move to a hash `map` keyed by the request's path,
and only the others are still scanned. The first matching rule must still win, so a
literal rule goes to the hash only when no rule before it that stays in the scan could
match the same request: that is decided here, with Python's `re` on each earlier rule's
path regex (queries ignored: a superset), on every path the literal rule matches. Any
doubt (a regex Python cannot read, a character outside the plain set) keeps the rule in
the scan, which is always correct.

nginx compares a map's strings without regard to case; routing is case-sensitive. The
hash value therefore carries the key, and a second map checks it against the request's
path with a back-reference, so `/OLD` never takes the rule of `/old`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

HASH_FROM = 16  # fewer literal rules: the plain scan, and a config as small as before

# Keys are written into nginx.conf unquoted by design (no '$', quote, space, '%' whose
# hex digits clients spell in either case, or backslash); they start with '/'.
_KEY = re.compile(r"/[A-Za-z0-9._~/-]*")


@dataclass(frozen=True)
class Candidate:
    n: str                 # the route map's value for the rule
    exact: str | None      # the literal raw path it matches (routes.exact_path); None: placeholders, or a query
    path_regex: str        # its regex on $request_uri without query conditions (PCRE)


@dataclass(frozen=True)
class Index:
    hashed: list[tuple[str, str]]   # (path key, n), in rule order
    scanned: set[str]               # the n of the rules left in the regex map


def _python(regex: str) -> re.Pattern[str] | None:
    try:
        return re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", regex))
    except re.error:
        return None


def _requests(key: str, semantics: str) -> list[str]:
    """What a literal rule matches, as far as an earlier rule's path regex can tell them apart."""
    paths = [key, key + "/"] if semantics == "netlify" else [key]
    return [p + q for p in paths for q in ("", "?")]


def split(candidates: Sequence[Candidate], semantics: str) -> Index:
    hashed: list[tuple[str, str]] = []
    keys: set[str] = set()
    scan: list[re.Pattern[str] | None] = []
    scanned: set[str] = set()
    for c in candidates:
        key = c.exact
        ok = (key is not None and _KEY.fullmatch(key) is not None and len(key) > 1
              and key.lower() not in keys and (semantics != "netlify" or not key.endswith("/")))
        if ok and key is not None:
            probes = _requests(key, semantics)
            ok = all(r is not None and not any(r.match(p) for p in probes) for r in scan)
        if ok and key is not None:
            hashed.append((key, c.n))
            keys.add(key.lower())
        else:
            scanned.add(c.n)
            scan.append(_python(c.path_regex))
    if len(hashed) < HASH_FROM:
        return Index([], {c.n for c in candidates})
    return Index(hashed, scanned)
