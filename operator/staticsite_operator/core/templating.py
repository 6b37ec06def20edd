"""The one Jinja environment, and the filters that make user input safe to render.

Templates never splice user text into YAML or nginx.conf by hand:
- `to_json` renders any value as a JSON literal, which is valid YAML, so nested
  structures (labels, annotations, resources) need no indentation tricks;
- `nginx_str` and `nginx_regex` render a *validated* value as a double-quoted nginx
  string. Validation (models.py) is the first line; quoting is the second.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2

# Everything that is not printable ASCII: written as a YAML escape instead.
_NON_ASCII = re.compile(r"[^\x00-\x7e]")


def _escape_char(match: re.Match[str]) -> str:
    c = match.group()
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def to_json(value: Any) -> str:
    """A JSON literal that PyYAML reads back exactly.

    JSON escapes characters outside the BMP as surrogate pairs, which PyYAML (YAML 1.1)
    decodes into lone surrogates, so emoji in a page would be corrupted. Non-ASCII
    characters are written as YAML's \\uXXXX / \\UXXXXXXXX escapes instead (one regex
    pass: render's hottest path, as content and nginx.conf go through here whole).
    """
    return _NON_ASCII.sub(_escape_char, json.dumps(value, sort_keys=True, ensure_ascii=False))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _nginx_escape(text: str) -> str:
    # Inside "..." nginx's parser unescapes \" and \\ (and \t \r \n), nothing else.
    # Control characters never get here (rejected by the models); refuse them anyway.
    if _CONTROL.search(text):
        raise ValueError(f"control character in nginx string: {text!r}")
    return text.replace("\\", "\\\\").replace('"', '\\"')


def nginx_str(value: str) -> str:
    """A literal string in a directive that interpolates variables (return, add_header, map values).

    nginx has no escape for '$', so a literal dollar is written as ${dollar}, a
    variable the config defines as "$" (see nginx.conf.j2).
    """
    return '"' + _nginx_escape(value).replace("$", "${dollar}") + '"'


def nginx_regex(value: str) -> str:
    """A regular expression (location ~, if ~, map ~, rewrite): regexes are not interpolated."""
    return '"' + _nginx_escape(value) + '"'


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("staticsite_operator.core", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - we render YAML and nginx.conf, not HTML; the filters above quote
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # Templates ship inside the package and never change at run time: without this,
    # every render stats each template file to see if it should be reloaded.
    auto_reload=False,
)
ENV.filters["to_json"] = to_json
ENV.filters["nginx_str"] = nginx_str
ENV.filters["nginx_regex"] = nginx_regex
