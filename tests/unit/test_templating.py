"""render_yaml: a template's parsed shape is reused, its values are never read as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from staticsite_operator.api import models
from staticsite_operator.core import render, templating
from staticsite_operator.core.templating import ENV, render_yaml, to_json

# Strings YAML would read as something else if they were written into the text bare, and one
# that looks like render_yaml's own placeholder.
HOSTILE = ["- a", "{x: 1}", "&anchor", "*alias", "null", "yes", "1e3", "a: b", "#", "'", '"', "\\",
           "\ue0000", "\ue000", "emoji \U0001f600", "line\nbreak", "", "~", "!!python/object:os.system"]


@pytest.fixture
def template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    text = ("kind: Test\n"
            "metadata: {name: {{ name | to_json }}, labels: {{ labels | to_json }}}\n"
            "{{ key | to_json }}: {{ value | to_json }}\n"
            "{% if extra %}\nextra: [{{ extra | to_json }}, 2]\n{% endif %}\n"
            "count: {{ count | to_json }}\n")
    monkeypatch.setattr(ENV, "loader", jinja2.DictLoader({"t.yaml.j2": text}))
    monkeypatch.setattr(ENV, "cache", {})
    return "t.yaml.j2"


def plain_load(template: str, context: dict[str, Any]) -> Any:
    """What rendering was before render_yaml: every value a JSON literal in the text."""
    return yaml.load(ENV.get_template(template).render(context), Loader=yaml.SafeLoader)


@pytest.mark.parametrize("value", HOSTILE)
def test_the_same_object_as_loading_the_text(template: str, value: str) -> None:
    context = {"name": value, "labels": {value: value, "b": [1, (2, 3)]}, "key": f"k{value}",
               "value": {"nested": value}, "extra": value, "count": 3}
    loaded = render_yaml(template, context)
    assert loaded == plain_load(template, context)
    assert loaded["metadata"] == {"name": value, "labels": {value: value, "b": [1, [2, 3]]}}
    assert loaded[f"k{value}"] == {"nested": value}
    assert loaded.get("extra") == ([value, 2] if value else None)  # "" is false: no branch


def test_values_outside_the_basic_plane_survive(template: str) -> None:
    """The JSON-literal route needed YAML escapes for them; values that never enter the text need none."""
    context: dict[str, Any] = {"name": "\U0001f600", "labels": {}, "key": "k", "value": "\U0001f600",
                               "extra": None, "count": 1}
    assert render_yaml(template, context)["k"] == "\U0001f600"
    assert to_json("\U0001f600") == '"\\U0001f600"'  # outside render_yaml: still a literal PyYAML reads back


def test_each_render_is_its_own_copy(template: str) -> None:
    labels = {"a": "1"}
    first = render_yaml(template, {"name": "x", "labels": labels, "key": "k", "value": [1], "extra": "e",
                                   "count": 1})
    first["metadata"]["labels"]["a"] = "changed"
    first["k"].append(2)
    first["extra"].append("more")
    second = render_yaml(template, {"name": "y", "labels": labels, "key": "k", "value": [1], "extra": "e",
                                    "count": 1})
    assert labels == {"a": "1"}
    assert second == {"kind": "Test", "metadata": {"name": "y", "labels": {"a": "1"}}, "k": [1],
                      "extra": ["e", 2], "count": 1}


def test_branches_are_shapes_of_their_own(template: str) -> None:
    base = {"name": "x", "labels": {}, "key": "k", "value": 1, "count": 2}
    assert "extra" not in render_yaml(template, base | {"extra": ""})
    assert render_yaml(template, base | {"extra": "yes"})["extra"] == ["yes", 2]


def test_the_kept_shapes_are_bounded(template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "_SHAPES", {})
    monkeypatch.setattr(templating, "_SHAPES_MAX", 1)
    base = {"name": "x", "labels": {}, "key": "k", "value": 1, "count": 2}
    render_yaml(template, base | {"extra": ""})
    assert render_yaml(template, base | {"extra": "e"})["extra"] == ["e", 2]  # parsed, not kept
    assert len(templating._SHAPES) == 1


def test_a_site_renders_as_its_text_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every child of a real site, against the plain route (values written into the text)."""
    spec = models.StaticSiteSpec.model_validate({
        "replicas": 2, "domains": ["a.example"],
        "content": {"inline": {"files": [{"path": "index.html", "content": "<h1>- a: {b} \U0001f600</h1>\n"},
                                         {"path": "x.bin", "binaryContent": "AAEC"}]}}})
    site = render.Site("s", "ns", "uid", spec, None, render.Images(), ("a.example",))
    ours = render.render(site).objects
    monkeypatch.setattr(render, "render_yaml", plain_load)
    plain = render.render(site).objects
    assert [o["kind"] for o in ours] == ["ConfigMap", "Service", "Deployment", "Ingress"]
    assert ours == plain
    assert ours[2]["spec"]["replicas"] == 2
