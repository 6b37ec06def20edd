"""Generate the StaticSite and StaticSitePool CustomResourceDefinitions from the pydantic models.

The CRD in ``crds/`` is this module's output, committed; a unit test regenerates
it and fails on any difference (``make crd`` rewrites it).

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema:
no ``$ref``, no ``null`` branches, no ``patternProperties``/``propertyNames``,
and no defaults we do not mean to persist. ``_structural`` converts one into the
other, and attaches the CEL rules from ``models.CEL_RULES`` by model name.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from . import models, pool

# CEL rules by model name; the two APIs share some models (Resources, Condition).
_RULES = {**models.CEL_RULES, **pool.CEL_RULES}
_DROP = {"title", "default", "propertyNames", "patternProperties", "$defs"}


def _structural(node: dict[str, Any], defs: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = {**copy.deepcopy(defs[name]), **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs, name)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if node.get("x-kubernetes-int-or-string"):
            # int | str with a pattern on the string branch: a single int-or-string node.
            pattern = next((b["pattern"] for b in branches if "pattern" in b), None)
            node_out = {k: v for k, v in rest.items() if k not in _DROP}
            return node_out | ({"pattern": pattern} if pattern else {})
        if len(branches) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        return _structural({**branches[0], **rest}, defs, model)

    out: dict[str, Any] = {}
    if "patternProperties" in node and "additionalProperties" not in node:
        # Map keys with a pattern: the key check moves to CEL (models.CEL_RULES), the
        # value schema stays structural.
        (value_schema,) = node["patternProperties"].values()
        node = {**node, "additionalProperties": value_schema}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {p: _structural(v, defs) for p, v in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _structural(value, defs)
        elif key == "additionalProperties":
            continue  # false is the structural default: unknown fields are pruned
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out \
            and "x-kubernetes-preserve-unknown-fields" not in out:
        out["additionalProperties"] = {"type": "string"}
    if model and model in _RULES:
        out["x-kubernetes-validations"] = _RULES[model]
    return out


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}), model.__name__)


def build() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict."""
    spec = _schema_of(models.StaticSiteSpec)
    status = _schema_of(models.StaticSiteStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{models.PLURAL}.{models.GROUP}",
            "labels": {"app.kubernetes.io/name": "staticsite-operator",
                       "app.kubernetes.io/part-of": "staticsite-operator"},
        },
        "spec": {
            "group": models.GROUP,
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.KIND.lower(),
                "shortNames": ["ss"],
                "categories": ["staticsite", "all"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": models.VERSION,
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
                    {"name": "Replicas", "type": "string", "jsonPath": ".status.readyReplicas",
                     "description": "Ready replicas"},
                    {"name": "Reason", "type": "string", "priority": 1,
                     "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A static website served by nginx, managed by staticsite-operator.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    },
                }},
            }],
        },
    }


def build_pool() -> dict[str, Any]:
    """The StaticSitePool CustomResourceDefinition: cluster-scoped (see api/pool.py)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{pool.POOL_PLURAL}.{models.GROUP}",
            "labels": {"app.kubernetes.io/name": "staticsite-operator",
                       "app.kubernetes.io/part-of": "staticsite-operator"},
        },
        "spec": {
            "group": models.GROUP,
            "names": {"kind": pool.POOL_KIND, "listKind": f"{pool.POOL_KIND}List", "plural": pool.POOL_PLURAL,
                      # No category: "staticsite" is the StaticSite's singular, and a category of
                      # that name holding two kinds makes `kubectl get staticsite NAME` ambiguous.
                      "singular": pool.POOL_KIND.lower(), "shortNames": ["sspool"]},
            "scope": "Cluster",
            "versions": [{
                "name": models.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Namespace", "type": "string", "jsonPath": ".spec.namespace"},
                    {"name": "Sites", "type": "integer", "jsonPath": ".status.sites"},
                    {"name": "Max", "type": "integer", "jsonPath": ".spec.maxSites"},
                    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "An nginx pool, run by the platform, that serves many shared StaticSites.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": _schema_of(pool.StaticSitePoolSpec),
                        "status": _schema_of(pool.StaticSitePoolStatus),
                    },
                }},
            }],
        },
    }


def render_yaml(which: str = "site") -> str:
    """`which`: site (the StaticSite CRD) or pool (the StaticSitePool CRD)."""
    source = "models.py" if which == "site" else "api/pool.py"
    header = f"# Generated from operator/staticsite_operator/{source} by `make crd`. Do not edit.\n"
    return header + yaml.safe_dump(build() if which == "site" else build_pool(), sort_keys=False, width=120)


if __name__ == "__main__":
    import sys

    print(render_yaml(sys.argv[1] if len(sys.argv) > 1 else "site"), end="")
