"""The committed CRD is exactly what models.py generates, and has the parts users rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from staticsite_operator.api import crd

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "staticsite.dev_staticsites.yaml"


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == crd.render_yaml(), "crds/ drifted from models.py: run `make crd`"


def test_crd_surface() -> None:
    doc = yaml.safe_load(CRD_FILE.read_text())
    assert doc["metadata"]["name"] == "staticsites.staticsite.dev"
    names = doc["spec"]["names"]
    assert names["kind"] == "StaticSite"
    assert names["shortNames"] == ["ss"]
    assert "staticsite" in names["categories"]
    (version,) = doc["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:3] == ["Ready", "URL", "Replicas"]
    assert columns[-1] == "Age"


def _walk(node: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_walk(value))
    return out


def test_schema_is_structural() -> None:
    """No constructs the API server refuses in a structural schema."""
    schema = yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]["schema"]
    forbidden = {"$ref", "$defs", "patternProperties", "propertyNames", "title", "default", "anyOf", "oneOf"}
    for node in _walk(schema):
        assert not forbidden & set(node), f"non-structural keys {forbidden & set(node)} in {node}"


def test_every_list_is_bounded() -> None:
    """CEL cost estimation needs maxLength/maxItems on what rules iterate over."""
    schema = yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]["schema"]
    spec = schema["openAPIV3Schema"]["properties"]["spec"]
    for node in _walk(spec):
        if node.get("type") == "array":
            assert "maxItems" in node, node
