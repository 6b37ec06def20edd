"""`_redirects` and `_headers` files, read as Netlify or Cloudflare Pages read them. Pure.

The public API (stable; the operator, the pod's render step and the `staticsite` CLI call it):

    parse_redirects(text, semantics, file="_redirects") -> Parsed[models.Redirect]
    parse_headers(text, semantics, file="_headers") -> Parsed[models.HeaderRule]
    parse_site(files, semantics) -> SiteRules          # the two files of a site's root, if any

Each rule becomes the spec's own model (`models.Redirect`, `models.HeaderRule`), validated by
the same code as the spec (patterns, confinement, the host's grammar), so a file can express
nothing the spec could not, and is quoted alike when rendered. A line the host would drop,
or that this platform cannot honour, is skipped and reported as a `LineProblem` (file, line,
reason); the other lines still apply, as on both hosts. The grammar of each host is quoted,
with its sources, in docs/compat.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pydantic

from ..api import models, rules
from .nginxconf import HostRules

REDIRECTS_FILE = "_redirects"
HEADERS_FILE = "_headers"
# Cloudflare's limits (CF-L, and its parser's constants); Netlify documents none, so it gets
# the spec's own bound on header rules and room for a large site's redirects.
MAX_LINE = 2000
CLOUDFLARE_STATIC, CLOUDFLARE_DYNAMIC, CLOUDFLARE_HEADER_RULES = 2000, 100, 100
NETLIFY_REDIRECTS, NETLIFY_HEADER_RULES = 2100, 100
MAX_FILE_BYTES = 1_000_000
CLOUDFLARE_STATUSES = (200, 301, 302, 303, 307, 308)
NETLIFY_CONDITIONS = {
    "country": "Country= conditions need a GeoIP lookup, which this platform does not do",
    "language": "Language= conditions are not supported (they follow Accept-Language and the nf_lang cookie)",
    "role": "Role= conditions need Netlify Identity (a signed JWT), which this platform does not have",
    "cookie": "Cookie= conditions are not supported",
    "sign": "signed proxies (Sign=) are not supported: this platform does not proxy",
    "signed": "signed proxies (signed=) are not supported: this platform does not proxy",
}

T = TypeVar("T")


@dataclass(frozen=True)
class LineProblem:
    """A line that is skipped, and why."""

    file: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """The rules a file gives, in order, each with its line number; and the lines skipped."""

    file: str
    rules: tuple[tuple[int, T], ...] = ()
    problems: tuple[LineProblem, ...] = ()


@dataclass(frozen=True)
class SiteRules:
    redirects: Parsed[models.Redirect]
    headers: Parsed[models.HeaderRule]

    @property
    def problems(self) -> tuple[LineProblem, ...]:
        return (*self.redirects.problems, *self.headers.problems)

    def host_rules(self) -> HostRules:
        """The rules as nginxconf takes them, each named by file and line."""
        return HostRules(redirects=[(f"{self.redirects.file}:{n}", r) for n, r in self.redirects.rules],
                         headers=[(f"{self.headers.file}:{n}", h) for n, h in self.headers.rules])


class _Skip(Exception):
    """This line is not honoured: the message says why."""


@dataclass
class _Collector(Generic[T]):
    file: str
    rules: list[tuple[int, T]] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)

    def skip(self, n: int, text: str, reason: str) -> None:
        self.problems.append(LineProblem(self.file, n, text[:200], reason))

    def done(self) -> Parsed[T]:
        return Parsed(self.file, tuple(self.rules), tuple(self.problems))


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1)]


def _explain(exc: pydantic.ValidationError | ValueError) -> str:
    """A validation error in a line's terms, without the schema's regexes."""
    if not isinstance(exc, pydantic.ValidationError):
        return str(exc)
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "string_pattern_mismatch":
        if where in ("from", "to", "path"):
            what = "the destination" if where == "to" else "the path"
            return (f"{what} holds a character a rule cannot use here: quotes, '$', ';', braces, spaces, "
                    "backslashes and control characters are refused (percent-encode them)")
        return f"{where}: {str(err['msg']).split(' pattern ')[0]}"
    if err["type"] == "literal_error" and where == "status":
        return f"status {err['input']}: not supported (200, 301, 302, 303, 307, 308, 404, 410)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where and not msg.startswith(where) else msg


def _redirect(semantics: rules.Semantics, **fields: object) -> models.Redirect:
    try:
        rule = models.Redirect.model_validate(fields)
        models.check_redirect(rule, semantics)
    except (pydantic.ValidationError, ValueError) as exc:
        raise _Skip(_explain(exc)) from None
    return rule


# --- _redirects ------------------------------------------------------------------------

def parse_redirects(text: str, semantics: rules.Semantics, file: str = REDIRECTS_FILE) -> Parsed[models.Redirect]:
    """A `_redirects` file as the host reads it: one rule per line, `#` comments."""
    out: _Collector[models.Redirect] = _Collector(file)
    parse_line = _netlify_redirect if semantics == "netlify" else _cloudflare_redirect
    seen: set[str] = set()
    static = dynamic = 0
    numbered = _lines(text)
    for i, (n, line) in enumerate(numbered):
        if not line or line.startswith("#"):
            continue
        try:
            if len(line) > MAX_LINE:
                raise _Skip(f"longer than {MAX_LINE} characters")
            rule = parse_line(line, semantics)
            if semantics == "cloudflare":
                if rule.from_ in seen:
                    raise _Skip(f"a rule for {rule.from_} is already defined above: Cloudflare keeps the first")
                is_dynamic = dynamic > 0 or rules.parse(rule.from_, semantics, "redirect").dynamic
                if is_dynamic and dynamic == CLOUDFLARE_DYNAMIC:
                    rest = sum(1 for _, x in numbered[i:] if x and not x.startswith("#"))
                    out.skip(n, line, f"Cloudflare allows {CLOUDFLARE_DYNAMIC} dynamic rules: this line and "
                                      f"the {rest - 1} rule line(s) after it are skipped")
                    break
                if not is_dynamic and static == CLOUDFLARE_STATIC:
                    raise _Skip(f"Cloudflare allows {CLOUDFLARE_STATIC} static rules")
                dynamic, static = dynamic + is_dynamic, static + (not is_dynamic)
                seen.add(rule.from_)
            elif len(out.rules) == NETLIFY_REDIRECTS:
                raise _Skip(f"more than {NETLIFY_REDIRECTS} rules: use placeholders and splats")
        except _Skip as exc:
            out.skip(n, line, str(exc))
            continue
        out.rules.append((n, rule))
    return out.done()


def _netlify_redirect(line: str, semantics: rules.Semantics) -> models.Redirect:
    """`from [key=value ...] [to] [status[!]] [Condition=value ...] [# comment]` (Netlify's
    own parser: the destination is the first token starting with '/' or http(s)://)."""
    tokens = line.split()
    if (cut := next((k for k, t in enumerate(tokens) if t.startswith("#")), None)) is not None:
        tokens = tokens[:cut]  # a token starting with '#' starts a comment; /a#b is a fragment
    source, rest = tokens[0], tokens[1:]
    if re.match(r"^https?://", source):
        raise _Skip("domain-level rules (a host in the path) are not supported: give the site the domain and "
                    "redirect with a rule on the path")
    if source.startswith("/.netlify"):
        raise _Skip("paths under /.netlify are Netlify's own")
    if not source.startswith("/"):
        raise _Skip("the path must start with '/'")
    k = next((k for k, t in enumerate(rest) if re.match(r"^(/|https?://)", t)), None)
    query_tokens = rest if k is None else rest[:k]
    if k is None:
        # "/admin/* 200": a forward, to the same path (Netlify's normalize step).
        if source.endswith("/*") and query_tokens and re.fullmatch(r"2[0-9][0-9]!?", query_tokens[0]):
            destination, after = source[:-1] + ":splat", query_tokens
            query_tokens = []
        else:
            raise _Skip("missing destination: it must start with '/', 'http://' or 'https://'")
    else:
        destination, after = rest[k], rest[k + 1:]
    query: dict[str, str] = {}
    for token in query_tokens:
        key, eq, value = token.partition("=")
        if not eq or not key:
            raise _Skip(f"{token!r} before the destination: expected a query parameter, key=value")
        query[key] = value
    status, force = 301, False
    if after and re.fullmatch(r"[0-9]+!?", after[0]):
        status, force = int(after[0].rstrip("!")), after[0].endswith("!")
        after = after[1:]
    elif after and "=" not in after[0]:
        raise _Skip(f"invalid status code {after[0]!r}")
    for condition in after:
        key, eq, _ = condition.partition("=")
        if not eq:
            raise _Skip(f"{condition!r}: expected Key=value after the status")
        raise _Skip(NETLIFY_CONDITIONS.get(key.lower(), f"unknown condition {key!r}"))
    if status == 200 and not destination.startswith("/"):
        raise _Skip("proxying to another server (200 to a URL) is not supported: this platform serves files "
                    "only, and does not reach other hosts")
    return _redirect(semantics, **{"from": source, "to": destination, "status": status, "force": force,
                                   "query": query})


def _cloudflare_redirect(line: str, semantics: rules.Semantics) -> models.Redirect:
    """`source destination [code]` and nothing else (Cloudflare's parser)."""
    tokens = re.sub(r"\s+#.*$", "", line).split()
    if len(tokens) not in (2, 3):
        raise _Skip(f"expected exactly 2 or 3 whitespace-separated tokens (Cloudflare), got {len(tokens)}")
    source, destination = tokens[0], tokens[1]
    status = 302
    if len(tokens) == 3:
        if not re.fullmatch(r"[0-9]+", tokens[2]) or int(tokens[2]) not in CLOUDFLARE_STATUSES:
            raise _Skip(f"valid status codes are 200, 301, 302 (default), 303, 307 or 308; got {tokens[2]}")
        status = int(tokens[2])
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
        raise _Skip("only relative paths are allowed as the source (Cloudflare)")
    source = "/" + source.split("?", 1)[0].lstrip("/") if not source.startswith("/") else source.split("?", 1)[0]
    if not (destination.startswith("/") or destination.startswith("https://")):
        raise _Skip("the destination must be relative (start with '/') or use https:// (Cloudflare)")
    if status == 200 and not destination.startswith("/"):
        raise _Skip("a proxy (200) rule can only point to a path of this site (Cloudflare)")
    target = destination.split("?", 1)[0].split("#", 1)[0]
    if destination.startswith("/") and re.search(r"/index(\.html)?$", target) and (
            source.endswith("/*") or source.endswith("/")):
        raise _Skip("infinite loop: Cloudflare ignores this rule (without a 404.html, unknown paths already "
                    "serve /index.html)")
    return _redirect(semantics, **{"from": source, "to": destination, "status": status})


# --- _headers --------------------------------------------------------------------------

@dataclass
class _Block:
    line: int
    text: str
    path: str
    values: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)   # lower-case -> as first written


def parse_headers(text: str, semantics: rules.Semantics, file: str = HEADERS_FILE) -> Parsed[models.HeaderRule]:
    """A `_headers` file: a path line, then indented `Name: value` lines (Cloudflare also
    `! Name`, to remove a header)."""
    out: _Collector[models.HeaderRule] = _Collector(file)
    blocks: list[_Block] = []
    for n, line in _lines(text):
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE:
            out.skip(n, line, f"longer than {MAX_LINE} characters")
            continue
        if line.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", line):
            blocks.append(_Block(n, line, line))
            continue
        if not blocks:
            out.skip(n, line, "a header needs a path line (/...) above it")
            continue
        try:
            _header_line(blocks[-1], line, semantics)
        except _Skip as exc:
            out.skip(n, line, str(exc))
    if semantics == "cloudflare":
        # Cloudflare keys its rules by path: a later block with the same path replaces the
        # earlier one, in the earlier one's place.
        by_path: dict[str, _Block] = {}
        for block in blocks:
            if (earlier := by_path.get(block.path)) is not None:
                out.skip(earlier.line, earlier.text,
                         f"the block at line {block.line} has the same path: Cloudflare keeps only the last")
            by_path[block.path] = block
        blocks = list(by_path.values())
    limit = CLOUDFLARE_HEADER_RULES if semantics == "cloudflare" else NETLIFY_HEADER_RULES
    for block in blocks:
        if len(out.rules) == limit:
            out.skip(block.line, block.text, f"more than {limit} header rules")
        elif (rule := _header_rule(block, semantics, out)) is not None:
            out.rules.append((block.line, rule))
    out.problems.sort(key=lambda p: p.line)
    return out.done()


def _header_line(block: _Block, line: str, semantics: rules.Semantics) -> None:
    if line.startswith("!"):
        if semantics != "cloudflare":
            raise _Skip("'! Name' (remove a header) is Cloudflare's; with semantics: netlify, give the header "
                        "an empty value in spec.routing.headers instead")
        name = line[1:].strip()
        if not name or " " in name:
            raise _Skip("expected '! Name': one header name")
        key = name.lower()
        if block.values.get(key):
            raise _Skip(f"{name} is both set and removed in this block")
        block.names.setdefault(key, name)
        block.values[key] = ""
        return
    name, colon, value = line.partition(":")
    if not colon:
        raise _Skip("neither a path (/...) nor a 'Name: value' header")
    name, value = name.strip(), value.strip()
    if not name:
        raise _Skip("missing header name")
    if " " in name:
        raise _Skip(f"header name {name!r} cannot include spaces")
    if not value:
        raise _Skip(f"missing value for {name}")
    if name.lower() == "basic-auth":
        raise _Skip("Basic-Auth is a Netlify feature (password protection) that this platform does not provide")
    key = name.lower()
    if block.values.get(key) == "" and key in block.values:
        raise _Skip(f"{name} is both set and removed in this block")
    block.names.setdefault(key, name)
    # The same header twice in a block: one header, values joined (both hosts).
    block.values[key] = f"{block.values[key]}, {value}" if block.values.get(key) else value


def _header_rule(block: _Block, semantics: rules.Semantics,
                 out: _Collector[models.HeaderRule]) -> models.HeaderRule | None:
    if not block.values:
        out.skip(block.line, block.text, "no headers for this path")
        return None
    if block.path.startswith("http://"):
        out.skip(block.line, block.text, "a rule with a host must use https:// (Cloudflare)")
        return None
    values = {block.names[k]: v for k, v in block.values.items()}
    try:
        rule = models.HeaderRule.model_validate({"path": block.path, "set": values})
        models.check_header_rule(rule, semantics)
    except (pydantic.ValidationError, ValueError) as exc:
        out.skip(block.line, block.text, _explain(exc))
        return None
    return rule


# --- a site's files ---------------------------------------------------------------------

def _text(data: str | bytes, file: str) -> tuple[str, list[LineProblem]]:
    if isinstance(data, str):
        return data, []
    if len(data) > MAX_FILE_BYTES:
        return "", [LineProblem(file, 0, "", f"larger than {MAX_FILE_BYTES} bytes: not read")]
    try:
        return data.decode(), []
    except UnicodeDecodeError:
        return "", [LineProblem(file, 0, "", "not UTF-8 text: not read")]


def parse_site(files: Mapping[str, str | bytes], semantics: rules.Semantics) -> SiteRules:
    """The rules of a site's `_redirects` and `_headers` (keys of `files`, at the root)."""
    def parsed(name: str, parse: Callable[[str, rules.Semantics, str], Parsed[T]]) -> Parsed[T]:
        if name not in files:
            return Parsed(name)
        text, problems = _text(files[name], name)
        result = parse(text, semantics, name)
        return Parsed(name, result.rules, (*problems, *result.problems))
    return SiteRules(parsed(REDIRECTS_FILE, parse_redirects), parsed(HEADERS_FILE, parse_headers))


def summary(problems: tuple[LineProblem, ...] | list[LineProblem], limit: int = 5) -> str:
    """The problems for a status message: the first few, and how many more."""
    shown = "; ".join(str(p) for p in problems[:limit])
    more = len(problems) - limit
    return shown + (f"; and {more} more" if more > 0 else "")
