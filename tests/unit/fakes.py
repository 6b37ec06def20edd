"""The fakes the core was designed for: a View made of dicts and a Client that records.

`Cluster` plays both parts the way the real pair behaves when the watches are up to
date: what the client writes becomes what the view sees (as core.snapshot snapshots),
with increasing resourceVersions. Objects nobody wrote through the client (a user's
namesake, a child edited by someone else) are put in with `Cluster.put`.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from staticsite_operator.api import models
from staticsite_operator.api.pool import POOL_KIND
from staticsite_operator.core import labels, pool
from staticsite_operator.core.domains import Claim
from staticsite_operator.core.ports import ApiError, Obj
from staticsite_operator.core.snapshot import fingerprint, snapshot

SITE_UID = "site-uid-1"


def site(name: str = "web", namespace: str = "ns", generation: int = 1, uid: str = SITE_UID,
         status: dict[str, Any] | None = None, created: str = "2026-01-01T00:00:00Z", **spec: Any) -> Obj:
    spec = spec or {"content": {"inline": {"files": [{"path": "index.html", "content": "<h1>hi</h1>"}]}}}
    obj: Obj = {"apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": models.KIND,
                "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": generation,
                             "resourceVersion": "1", "creationTimestamp": created},
                "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


@dataclass
class Call:
    verb: str
    kind: str
    name: str
    body: Any = None


@dataclass
class Cluster:
    """A View and a Client over one dict of objects keyed by (kind, namespace, name)."""

    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    failures: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fail: dict[tuple[str, str], ApiError] = field(default_factory=dict)  # (verb, kind) -> error to raise
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    # --- setting the scene ---------------------------------------------------------
    def put(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("namespace", "" if obj["kind"] == POOL_KIND else "ns")
        obj["metadata"].setdefault("uid", f"uid-{obj['kind']}-{obj['metadata']['name']}")
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]] = obj
        return obj

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.verb != "get"]

    def _check(self, verb: str, kind: str) -> None:
        if (error := self.fail.get((verb, kind))) is not None:
            raise error

    # --- View ------------------------------------------------------------------------
    def site(self, namespace: str, name: str) -> Obj | None:
        found = self.objects.get((models.KIND, namespace, name))
        return copy.deepcopy(found) if found else None

    def child(self, kind: str, namespace: str, site: str, name: str) -> Obj | None:
        found = self.objects.get((kind, namespace, name))
        if found is None or (found["metadata"].get("labels") or {}).get(labels.INSTANCE_KEY) != site:
            return None  # the watches only stream our labelled children
        return snapshot(found)

    def children(self, namespace: str, site: str) -> list[Obj]:
        return [snapshot(o) for (kind, ns, _), o in self.objects.items()
                if kind != models.KIND and ns == namespace
                and (o["metadata"].get("labels") or {}).get(labels.INSTANCE_KEY) == site]

    def fingerprints(self, namespace: str, site: str) -> dict[tuple[str, str], str]:
        return {(o["kind"], o["metadata"]["name"]): fingerprint(o) for o in self.children(namespace, site)}

    def fetch_failures(self, namespace: str, site: str) -> list[dict[str, Any]]:
        return list(self.failures.get((namespace, site), []))

    def claimants(self, domain: str) -> list[Claim]:
        return [Claim(o["metadata"].get("creationTimestamp", ""), ns, name)
                for (kind, ns, name), o in self.objects.items()
                if kind == models.KIND and domain in (o.get("spec") or {}).get("domains", [])
                and not o["metadata"].get("deletionTimestamp")]

    # --- View: the shared tier ---------------------------------------------------------
    def pool(self, name: str) -> Obj | None:
        found = self.objects.get((POOL_KIND, "", name))
        return copy.deepcopy(found) if found else None

    def pool_members(self, pool_name: str) -> list[Claim]:
        return sorted(Claim(o["metadata"].get("creationTimestamp", ""), ns, name)
                      for (kind, ns, name), o in self.objects.items()
                      if kind == models.KIND and not o["metadata"].get("deletionTimestamp")
                      and ((o.get("spec") or {}).get("serving") or {}).get("tier") == "shared"
                      and ((o.get("spec") or {}).get("serving") or {}).get("pool") == pool_name)

    def pool_objects(self, pool_name: str) -> list[Obj]:
        return [snapshot(o) for o in self.objects.values()
                if (o["metadata"].get("labels") or {}).get(pool.POOL_KEY) == pool_name]

    def pool_reports(self, pool_name: str) -> dict[str, dict[str, dict[str, Any]]]:
        return {o["metadata"]["name"]: {k: json.loads(v) for k, v in (o.get("data") or {}).items()}
                for o in self.objects.values()
                if (o["metadata"].get("labels") or {}).get(pool.POOL_KEY) == pool_name
                and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == pool.REPORT}

    def site_pool_objects(self, namespace: str, site_name: str) -> list[Obj]:
        return [snapshot(o) for o in self.objects.values()
                if (o["metadata"].get("annotations") or {}).get(pool.SITE_ANNOTATION) == f"{namespace}/{site_name}"
                and (o["metadata"].get("labels") or {}).get(pool.POOL_KEY)]

    def live(self, kind: str, namespace: str, name: str) -> Obj | None:
        found = self.objects.get((kind, namespace, name))
        return snapshot(found) if found else None

    def wrote(self, obj: Obj) -> None:
        pass  # writes land in `objects` at once: the watch is never behind here

    def writing_status(self, namespace: str, name: str, status: Obj) -> None:
        pass

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        pass

    # --- Client ----------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self.calls.append(Call("get", kind, name))
        self._check("get", kind)
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def apply(self, obj: Obj, *, if_absent: bool = False) -> Obj:
        meta = obj["metadata"]
        self.calls.append(Call("create" if if_absent else "apply", obj["kind"], meta["name"], copy.deepcopy(obj)))
        self._check("apply", obj["kind"])
        live = self.objects.get((obj["kind"], meta["namespace"], meta["name"]))
        if if_absent and live is not None:
            raise ApiError(409, "Conflict", "the object has been modified (resourceVersion precondition)")
        merged = copy.deepcopy(obj)
        merged["metadata"]["uid"] = live["metadata"]["uid"] if live else f"uid-{obj['kind']}-{meta['name']}"
        return self.put(merged)

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        self.calls.append(Call("delete", kind, name, {"uid": uid}))
        self._check("delete", kind)
        live = self.objects.get((kind, namespace, name))
        if live is not None and live["metadata"]["uid"] == uid:
            del self.objects[kind, namespace, name]

    def patch_status(self, namespace: str, name: str, status: Obj) -> Obj:
        self.calls.append(Call("patch-status", models.KIND, name, copy.deepcopy(status)))
        self._check("patch-status", models.KIND)
        live = self.objects[models.KIND, namespace, name]
        live["status"] = copy.deepcopy(status)
        return self.put(live)

    def patch_pool_status(self, name: str, status: Obj) -> Obj:
        self.calls.append(Call("patch-status", POOL_KIND, name, copy.deepcopy(status)))
        live = self.objects[POOL_KIND, "", name]
        live["status"] = copy.deepcopy(status)
        return self.put(live)

    def post_event(self, site: Obj, type_: str, reason: str, message: str) -> None:
        self.calls.append(Call("event", type_, reason, message))
        self._check("event", type_)

    # --- what a test reads -------------------------------------------------------------
    def events(self) -> list[str]:
        return [c.name for c in self.calls if c.verb == "event"]

    def status(self, name: str = "web", namespace: str = "ns") -> dict[str, Any]:
        return dict(self.objects[models.KIND, namespace, name].get("status") or {})

    def condition(self, type_: str, name: str = "web") -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_), {})

    def roll_out(self, name: str = "web", namespace: str = "ns") -> None:
        """What the Deployment controller and the kubelet do: every replica updated and available."""
        dep = self.objects["Deployment", namespace, name]
        replicas = dep["spec"]["replicas"]
        dep["metadata"]["generation"] = dep["metadata"].get("generation", 1)
        dep["status"] = {"observedGeneration": dep["metadata"]["generation"], "replicas": replicas,
                         "updatedReplicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}
        self.put(dep)
