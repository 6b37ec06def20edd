"""Objects that look like the operator's but are someone else's; it must never touch them.

Created in a chaos namespace before the faults, read back byte for byte after (the
whole object, resourceVersion and managedFields included: any write would change it):

- children of a site that does not exist ("ghost"), with our labels and names, owned
  by someone else (a plain ConfigMap is their owner);
- an extra ConfigMap and Ingress carrying a real site's instance label, owned by
  someone else, with names the site does not render (a prune must leave them);
- a ConfigMap carrying a real site's labels and no owner at all (a user's).

Ingress and ConfigMap are the kinds the operator may delete; a Service of the ghost
covers a kind it only applies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from staticsite_operator.core import labels as lbl

from ..kclient import Client, object_path

MANAGER = "someone-else"


def _labels(site: str) -> dict[str, str]:
    return lbl.labels(site, "decoy")


@dataclass
class Decoys:
    client: Client
    namespace: str
    created: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Kind/name" -> the object as created

    def owns(self, obj: dict[str, Any]) -> bool:
        return f"{obj.get('kind')}/{obj['metadata']['name']}" in self.created

    def create(self, real_site: str) -> None:
        ns = self.namespace
        owner = self.client.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "decoy-owner", "namespace": ns}, "data": {"a": "b"}},
                                  MANAGER)
        ref = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "decoy-owner", "uid": owner["metadata"]["uid"],
                "controller": True}]

        def meta(name: str, site: str, owned: bool = True) -> dict[str, Any]:
            out: dict[str, Any] = {"name": name, "namespace": ns, "labels": _labels(site)}
            if owned:
                out["ownerReferences"] = ref
            return out

        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("ghost-content", "ghost"),
             "data": {"index.html": "not yours"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("ghost-nginx", "ghost"),
             "data": {"nginx.conf": "events {}"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": meta("ghost", "ghost"),
             "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "ghost"}}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"{real_site}-extra", real_site),
             "data": {"x": "y"}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(f"{real_site}-other", real_site),
             "spec": {"rules": [{"host": "decoy.example", "http": {"paths": [{
                 "path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "ghost", "port": {"number": 80}}}}]}}]}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"{real_site}-user", real_site, owned=False),
             "data": {"note": "a user's, no owner"}},
        ]
        for obj in objects:
            self.client.apply(obj, MANAGER)
        for obj in objects:
            self.created[f"{obj['kind']}/{obj['metadata']['name']}"] = self._read(obj)

    def _read(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("GET", object_path(obj))

    def touched(self) -> list[str]:
        """The decoys that differ from their creation in any byte (or are gone)."""
        out = []
        for key, before in self.created.items():
            try:
                now = self._read(before)
            except Exception as exc:
                out.append(f"{key}: {exc}")
                continue
            if json.dumps(now, sort_keys=True) != json.dumps(before, sort_keys=True):
                out.append(key)
        return out
