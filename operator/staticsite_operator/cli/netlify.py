"""`staticsite import-netlify`: a Netlify site's routing (`_redirects`, `_headers` and the
`[[redirects]]` and `[[headers]]` of `netlify.toml`) as `spec.routing`, and every rule that
cannot be translated, with the reason. Pure but for reading the files.

A `netlify.toml` rule is written as the `_redirects` or `_headers` line Netlify treats it as,
and read by the operator's own parser (core/hostfiles.py): one grammar, one set of reasons,
the same validation as the spec. The order is Netlify's: `_redirects` before the toml's
redirects; for headers the toml's come last, so they win (docs/compat.md).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..api import models
from ..core import hostfiles

TOML = "netlify.toml"


@dataclass
class Imported:
    redirects: list[models.Redirect] = field(default_factory=list)
    headers: list[models.HeaderRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "where: reason", one per rule left out
    sources: list[str] = field(default_factory=list)

    def routing(self) -> dict[str, Any]:
        """spec.routing as JSON: semantics netlify, the rules in order."""
        out: dict[str, Any] = {"semantics": "netlify"}
        if self.redirects:
            out["redirects"] = [_redirect_json(r) for r in self.redirects]
        if self.headers:
            out["headers"] = [h.model_dump(mode="json", by_alias=True) for h in self.headers]
        models.Routing.model_validate(out)  # what we print is a valid spec.routing
        return out

    def yaml(self) -> str:
        head = [f"# spec.routing from {', '.join(self.sources) or 'nothing'} (staticsite import-netlify)"]
        if self.problems:
            head.append(f"# {len(self.problems)} rule(s) not translated:")
            head += [f"#   {p}" for p in self.problems]
        body = yaml.safe_dump({"routing": self.routing()}, sort_keys=False, allow_unicode=True)
        return "\n".join(head) + "\n" + body


def _redirect_json(rule: models.Redirect) -> dict[str, Any]:
    out: dict[str, Any] = {"from": rule.from_, "to": rule.to, "status": rule.status}
    if rule.force:
        out["force"] = True
    if rule.query:
        out["query"] = dict(rule.query)
    return out


def _scalar(value: object) -> str | None:
    return str(value).lower() if isinstance(value, bool) else str(value) if isinstance(value, str | int) else None


def redirect_line(entry: dict[str, Any]) -> str:
    """A `[[redirects]]` table as the `_redirects` line it means; ValueError if it has no such
    line (the reason)."""
    unknown = sorted(set(entry) - {"from", "to", "status", "force", "query", "conditions", "headers", "signed"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}")
    if "headers" in entry:
        raise ValueError("headers on a redirect are sent to a proxied server: this platform does not proxy")
    if "signed" in entry:
        raise ValueError(hostfiles.NETLIFY_CONDITIONS["signed"])
    tokens: list[str] = []
    frm, to = entry.get("from"), entry.get("to")
    if not isinstance(frm, str) or not isinstance(to, str):
        raise ValueError("from and to are required strings")
    query = entry.get("query") or {}
    conditions = entry.get("conditions") or {}
    if not isinstance(query, dict) or not isinstance(conditions, dict):
        raise ValueError("query and conditions must be tables")
    status = entry.get("status", 301)
    if not isinstance(status, int) or isinstance(status, bool):
        raise ValueError(f"status {status!r} is not a number")
    tokens.append(frm)
    for key, value in query.items():
        if (text := _scalar(value)) is None:
            raise ValueError(f"query.{key}: not a string")
        tokens.append(f"{key}={text}")
    tokens += [to, f"{status}{'!' if entry.get('force') is True else ''}"]
    for key, value in conditions.items():
        values = value if isinstance(value, list) else [value]
        tokens.append(f"{key}={','.join(str(v) for v in values)}")
    if any(not t or any(c.isspace() for c in t) for t in tokens):
        raise ValueError("a value holds whitespace, which no rule path can hold (percent-encode it)")
    return " ".join(tokens)


def header_block(entry: dict[str, Any]) -> str:
    """A `[[headers]]` table as the `_headers` block it means; ValueError if it has none."""
    path, values = entry.get("for"), entry.get("values")
    if not isinstance(path, str) or not isinstance(values, dict) or not values:
        raise ValueError("for (a path) and values (a table of headers) are required")
    lines = [path]
    for name, value in values.items():
        items = value if isinstance(value, list) else str(value).splitlines()
        # Netlify joins the lines of a multi-line value, and the items of a list, with ", ".
        lines += [f"  {name}: {str(v).strip()}" for v in items if str(v).strip()]
    return "\n".join(lines) + "\n"


def _toml(path: Path, out: Imported) -> None:
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    for i, entry in enumerate(doc.get("redirects") or [], start=1):
        where = f"{path.name} [[redirects]] #{i} (from = {entry.get('from')!r})"
        try:
            parsed = hostfiles.parse_redirects(redirect_line(entry), "netlify", path.name)
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")
            continue
        out.problems += [f"{where}: {p.reason}" for p in parsed.problems]
        out.redirects += [rule for _, rule in parsed.rules]
    for i, entry in enumerate(doc.get("headers") or [], start=1):
        where = f"{path.name} [[headers]] #{i} (for = {entry.get('for')!r})"
        try:
            parsed_headers = hostfiles.parse_headers(header_block(entry), "netlify", path.name)
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")
            continue
        out.problems += [f"{where}: {p.reason}" for p in parsed_headers.problems]
        out.headers += [rule for _, rule in parsed_headers.rules]
    for key in ("edge_functions", "functions", "plugins"):
        if key in doc:
            out.problems.append(f"{path.name} [{key}]: Netlify's {key.replace('_', ' ')} run code; this platform "
                                "serves files only")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def import_netlify(target: Path) -> Imported:
    """The routing of a build folder (its `_redirects`, `_headers` and a `netlify.toml` in it)
    or of one `netlify.toml`; ValueError if there is nothing to read."""
    out = Imported()
    folder = target if target.is_dir() else None
    toml = target / TOML if folder else target
    if folder is not None:
        if (folder / hostfiles.REDIRECTS_FILE).is_file():
            redirects = hostfiles.parse_redirects(_text(folder / hostfiles.REDIRECTS_FILE), "netlify")
            out.sources.append(hostfiles.REDIRECTS_FILE)
            out.problems += [str(p) for p in redirects.problems]
            out.redirects += [r for _, r in redirects.rules]
        if (folder / hostfiles.HEADERS_FILE).is_file():
            headers = hostfiles.parse_headers(_text(folder / hostfiles.HEADERS_FILE), "netlify")
            out.sources.append(hostfiles.HEADERS_FILE)
            out.problems += [str(p) for p in headers.problems]
            out.headers += [r for _, r in headers.rules]
    if toml.is_file():
        out.sources.append(toml.name)
        _toml(toml, out)
    elif folder is None:
        raise ValueError(f"{target}: no such file: give a netlify.toml, or a folder holding _redirects, "
                         "_headers or netlify.toml")
    if not out.sources:
        raise ValueError(f"{target}: holds no _redirects, _headers or netlify.toml")
    return out
