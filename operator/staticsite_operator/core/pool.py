"""The shared tier, rendered: a pool's own objects, and what a shared site puts in it. Pure.

A StaticSitePool runs one nginx Deployment (with the agent, `staticsite_operator.agent`)
in the platform's namespace. A shared site reaches it through objects in that namespace,
owned by the cluster-scoped pool (an ownerReference cannot cross namespaces, and the
pool's reconcile prunes what a deleted site left):

- one immutable entry ConfigMap per site revision: the files, the validated spec and the
  hosts (`site.json`). The agent validates the spec again and renders the server block
  itself, since the revision's root directory is on its own disk;
- an Ingress for the site's hosts (an Ingress backend cannot be another namespace's
  Service), or, with `spec.gateway`, the site's HTTPRoute points at the pool's Service
  and a ReferenceGrant per tenant namespace allows it.

The agent reports what each pool pod serves in one ConfigMap per pod (`report_name`):
key `site_key(namespace, name)`, value JSON {"served": revision, "rejected": revision,
"error": text}.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..api import models
from ..api import pool as api
from . import kinds
from . import labels as lbl
from .render import Site, _check_size, _split_files, content_hash
from .templating import render_yaml

POOL_KEY = "staticsite.dev/pool"
SITE_ANNOTATION = "staticsite.dev/site"          # namespace/name of the site an object serves
REVISION_ANNOTATION = "staticsite.dev/revision"  # the entry's revision
SITE_UID_ANNOTATION = "staticsite.dev/site-uid"
FROM_NAMESPACE_ANNOTATION = "staticsite.dev/from-namespace"
ENTRY = "pool-entry"
REPORT = "pool-report"
SITE_JSON = "site.json"
POOL_PORT = 80


def site_key(namespace: str, name: str) -> str:
    """A site's key in the pool (ConfigMap keys, directory names): namespaces hold no '.'."""
    return f"{namespace}.{name}"


def parse_site_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition(".")
    return namespace, name


def _dns_label(text: str) -> str:
    """A DNS-1035 label from a pool name (which may hold dots)."""
    label = re.sub(r"[^a-z0-9-]", "-", text.lower())[:58].strip("-")
    return f"pool-{label}"


def service_name(pool: str) -> str:
    return _dns_label(pool)


def _object_name(prefix: str, suffix: str = "") -> str:
    """A name of at most 253 characters: long ones keep a readable head and a hash."""
    name = f"{prefix}{suffix}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:16]
    return f"{prefix[:253 - len(suffix) - 17]}-{digest}{suffix}"


def entry_name(namespace: str, name: str, revision: str) -> str:
    return _object_name(site_key(namespace, name), f".{revision[:12]}")


def route_name(namespace: str, name: str) -> str:
    return _object_name(site_key(namespace, name))


def grant_name(pool: str, namespace: str) -> str:
    return _object_name(f"{service_name(pool)}.{namespace}")


def report_name(pool: str, pod: str) -> str:
    return _object_name(f"{service_name(pool)}.report.{pod}")


def pool_selector(pool: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "staticsite-pool", POOL_KEY: pool}


def pool_labels(pool: str, component: str) -> dict[str, str]:
    return {**pool_selector(pool), "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "staticsite", lbl.MANAGED_BY_KEY: lbl.MANAGED_BY}


def owner(pool_obj: dict[str, Any]) -> dict[str, Any]:
    """The pool as the controller of an object in its namespace (cluster-scoped owner: allowed)."""
    meta = pool_obj["metadata"]
    return {"apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": api.POOL_KIND, "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def parse_pool(pool_obj: dict[str, Any]) -> api.StaticSitePoolSpec:
    return api.StaticSitePoolSpec.model_validate(pool_obj.get("spec") or {})


def _load(template: str, context: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = render_yaml(f"{template}.yaml.j2", context)
    return loaded


# --- a pool's own objects -------------------------------------------------------------
def render_pool(pool_obj: dict[str, Any], spec: api.StaticSitePoolSpec, image: str) -> list[dict[str, Any]]:
    """The pool's Service, Deployment and (with autoscaling) HorizontalPodAutoscaler."""
    name = pool_obj["metadata"]["name"]
    context = {
        "pool": name, "spec": spec, "namespace": spec.namespace, "name": service_name(name),
        "labels": lambda component: pool_labels(name, component), "selector": pool_selector(name),
        "owner": owner(pool_obj), "image": spec.image or image, "port": POOL_PORT,
        "resources": {k: v for k, v in (("requests", spec.resources.requests), ("limits", spec.resources.limits))
                      if v},
    }
    templates = [c.template for c in kinds.POOL_CHILDREN if c.per == "pool"]
    return [_load(t, context) for t in templates if t != "pool-hpa" or spec.autoscaling is not None]


# --- what a shared site puts in its pool -----------------------------------------------
@dataclass(frozen=True)
class Entry:
    obj: dict[str, Any]
    revision: str   # the hash of everything the pool serves for the site
    content_hash: str


def render_entry(pool_obj: dict[str, Any], pool_spec: api.StaticSitePoolSpec, namespace: str, name: str,
                 uid: str, spec: models.StaticSiteSpec, hosts: tuple[str, ...]) -> Entry:
    """One revision of a shared site: its files, the validated spec (without the file
    bodies, which are the entry's other keys) and its hosts. Immutable, named by revision."""
    inline = spec.content.inline
    assert inline is not None, "the models allow only inline content on the shared tier"
    text, binary, items = _split_files(inline)
    bare = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    bare["content"] = {"inline": {"files": [{"path": f.path, "content": ""} for f in inline.files]}}
    chash = content_hash(Site(name, namespace, uid, spec))
    described = {"site": f"{namespace}/{name}", "hosts": list(hosts), "spec": bare,
                 "files": {i["key"]: i["path"] for i in items}, "contentHash": chash}
    revision = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    data = {**text, SITE_JSON: json.dumps({**described, "revision": revision}, sort_keys=True)}
    _check_size(data, binary, inline=True)
    obj = _load("pool-entry", {
        "name": entry_name(namespace, name, revision), "namespace": pool_spec.namespace,
        "labels": pool_labels(pool_obj["metadata"]["name"], ENTRY),
        "annotations": {SITE_ANNOTATION: f"{namespace}/{name}", REVISION_ANNOTATION: revision,
                        SITE_UID_ANNOTATION: uid},
        "owner": owner(pool_obj), "data": data, "binary": binary,
    })
    return Entry(obj, revision, chash)


def render_pool_ingress(pool_obj: dict[str, Any], pool_spec: api.StaticSitePoolSpec, namespace: str, name: str,
                        spec: models.StaticSiteSpec, hosts: tuple[str, ...]) -> dict[str, Any]:
    """A shared site's Ingress, in the pool's namespace, to the pool's Service."""
    pool = pool_obj["metadata"]["name"]
    return _load("pool-ingress", {
        "name": route_name(namespace, name), "namespace": pool_spec.namespace,
        "labels": pool_labels(pool, "ingress"), "owner": owner(pool_obj),
        # Ours last: a tenant's annotation cannot pose as another site's.
        "annotations": {**spec.ingress.annotations, SITE_ANNOTATION: f"{namespace}/{name}"},
        "class_name": spec.ingress.class_name, "hosts": list(hosts), "service": service_name(pool),
        "port": POOL_PORT,
    })


def render_grant(pool_obj: dict[str, Any], pool_spec: api.StaticSitePoolSpec, namespace: str) -> dict[str, Any]:
    """Lets HTTPRoutes in `namespace` send traffic to the pool's Service, and to nothing else."""
    pool = pool_obj["metadata"]["name"]
    return _load("pool-referencegrant", {
        "name": grant_name(pool, namespace), "namespace": pool_spec.namespace, "from_namespace": namespace,
        "labels": pool_labels(pool, "grant"), "owner": owner(pool_obj), "service": service_name(pool),
        "annotation": FROM_NAMESPACE_ANNOTATION,
    })


def route_backend(spec: models.StaticSiteSpec, site_service: str, pool_spec: api.StaticSitePoolSpec | None,
                  pool: str | None) -> dict[str, Any]:
    """Where a site's HTTPRoute sends traffic: its own Service, or its pool's."""
    if pool_spec is None or pool is None:
        return {"name": site_service, "port": POOL_PORT}
    return {"name": service_name(pool), "namespace": pool_spec.namespace, "port": POOL_PORT}

