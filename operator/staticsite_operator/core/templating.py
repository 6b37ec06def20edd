"""The one Jinja environment, and the filters that make user input safe to render.

Templates never splice user text into YAML or nginx.conf by hand:
- `to_json` renders any value as a JSON literal, which is valid YAML, so nested
  structures (labels, annotations, resources) need no indentation tricks. Inside
  `render_yaml` it goes further: the value is not written into the text at all (below);
- `nginx_str` and `nginx_regex` render a *validated* value as a double-quoted nginx
  string. Validation (models.py) is the first line; quoting is the second.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from typing import Any

import jinja2
import yaml

# Everything that is not printable ASCII: written as a YAML escape instead.
_NON_ASCII = re.compile(r"[^\x00-\x7e]")


def _escape_char(match: re.Match[str]) -> str:
    c = match.group()
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def to_json(value: Any) -> str:
    """A JSON literal that PyYAML reads back exactly (inside `render_yaml`: a placeholder for it).

    JSON escapes characters outside the BMP as surrogate pairs, which PyYAML (YAML 1.1)
    decodes into lone surrogates, so emoji in a page would be corrupted. Non-ASCII
    characters are written as YAML's \\uXXXX / \\UXXXXXXXX escapes instead (one regex
    pass: render's hottest path, as content and nginx.conf go through here whole).
    """
    values = _CAPTURED.get()
    if values is not None:
        values.append(value)
        return f'"{_MARK}{len(values) - 1}"'
    return _NON_ASCII.sub(_escape_char, json.dumps(value, sort_keys=True, ensure_ascii=False))


# --- YAML templates: parse the shape once, fill in the values -----------------------------
# Parsing the YAML a template renders was two thirds of the CPU of rendering a site (a
# Deployment is ~400 YAML nodes, each built by PyYAML's Python constructor), and most of
# it parsed the same text again and again: sites differ in their values, not their
# shape. So inside render_yaml, `to_json` writes a numbered placeholder instead of the
# value; the text then depends only on the template's branches, its parse (the
# shape) is kept, and each render copies the shape with the values put back.
# Values never pass through YAML at all, so no user text can be read as YAML syntax.
_MARK = "\\ue000"  # a private-use character, escaped; our templates never write it
_MARK_CHAR = "\ue000"
_CAPTURED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("captured", default=None)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SHAPES: dict[str, _Shape] = {}
_SHAPES_MAX = 256  # a few shapes per template in practice; bounded whatever happens
_SHAPES_LOCK = threading.Lock()
_PLAIN = (str, int, float, bool, type(None))


def _value(value: Any) -> Any:
    """A value as the JSON literal would have read back: a fresh copy, tuples as lists."""
    return value if isinstance(value, _PLAIN) else json.loads(json.dumps(value, sort_keys=True))


_Path = tuple[Any, ...]  # keys and indexes from a shape's root


class _Shape:
    """A parsed template, ready to copy: as JSON text (json.loads is the quickest deep copy
    there is), and where its placeholders sit, values first, then keys, deepest first (a
    key's path uses the keys above it as they were parsed)."""

    def __init__(self, skeleton: Any) -> None:
        self.text = json.dumps(skeleton)
        self.values: list[tuple[_Path, int]] = []
        self.keys: list[tuple[_Path, str, int]] = []
        self._find(skeleton, ())
        self.keys.sort(key=lambda slot: -len(slot[0]))

    def _find(self, node: Any, path: _Path) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if _is_mark(key):
                    self.keys.append((path, key, int(key[1:])))
                self._find(item, (*path, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self._find(item, (*path, i))
        elif _is_mark(node):
            self.values.append((path, int(node[1:])))

    def fill(self, values: list[Any]) -> Any:
        out = json.loads(self.text)
        for path, i in self.values:
            _at(out, path[:-1])[path[-1]] = _value(values[i])
        for path, key, i in self.keys:
            container = _at(out, path)
            container[_value(values[i])] = container.pop(key)
        return out


def _is_mark(node: Any) -> bool:
    return isinstance(node, str) and node[:1] == _MARK_CHAR


def _at(node: Any, path: _Path) -> Any:
    for step in path:
        node = node[step]
    return node


def render_yaml(template: str, context: dict[str, Any]) -> Any:
    """Render a YAML template and load it: the same object as `yaml.load` of its text."""
    values: list[Any] = []
    token = _CAPTURED.set(values)
    try:
        text = ENV.get_template(template).render(context)
    finally:
        _CAPTURED.reset(token)
    shape = _SHAPES.get(text)
    if shape is None:
        shape = _Shape(yaml.load(text, Loader=_YAML_LOADER))  # noqa: S506 - a safe loader (C or Python)
        with _SHAPES_LOCK:
            if len(_SHAPES) < _SHAPES_MAX:
                _SHAPES[text] = shape
    return shape.fill(values)


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
