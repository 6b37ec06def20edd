"""Reconcile one StaticSitePool: its nginx Deployment, Service and autoscaler, the
objects of sites that are gone, and its status. Level-based and quiet, like a site's.

The pool's own objects are applied when they drift. What shared sites put in the pool's
namespace (entries, Ingresses, ReferenceGrants) is owned by the pool, since no
ownerReference crosses namespaces: a site deletes what it no longer needs itself
(core.sharedsite), and this pass deletes what a deleted site left behind, the
ReferenceGrants no namespace needs any more, and everything in a namespace the pool
left.
"""

from __future__ import annotations

import logging
from typing import Any

import pydantic

from ..api import conditions as c
from ..api import pool as api
from . import kinds, snapshot
from . import pool as pl
from .policy import matches_any
from .ports import ApiError, Client, Obj, View
from .shared import conditions, delete, rank_in

log = logging.getLogger(__name__)


class PoolReconciler:
    def __init__(self, view: View, client: Client, image: str, namespaces: tuple[str, ...] = ()) -> None:
        self.view = view
        self.client = client
        self.image = image
        # An operator serving some namespaces only runs the pools whose namespace is one of them.
        self.namespaces = namespaces

    def reconcile(self, name: str) -> None:
        pool_obj = self.view.pool(name)
        if pool_obj is None or pool_obj["metadata"].get("deletionTimestamp"):
            return  # the garbage collector removes what the pool owns
        previous: dict[str, Any] | None = pool_obj.get("status")
        generation = pool_obj["metadata"].get("generation", 0)
        try:
            spec = pl.parse_pool(pool_obj)
        except pydantic.ValidationError as exc:
            problem = f"spec: {exc.errors()[0]['msg']}"
            self._write(name, previous, {"observedGeneration": generation, "conditions": conditions(
                previous, generation, (False, c.INVALID_SPEC, problem), None)})
            return
        if self.namespaces and spec.namespace not in self.namespaces:
            return  # another operator's (or none): neither its objects nor its status are ours
        wanted = pl.render_pool(pool_obj, spec, self.image)
        failed = None
        for obj in wanted:
            failed = failed or self._apply(obj)
        self._prune(pool_obj, spec, {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in wanted})
        members = sum(1 for m in self.view.pool_members(name)
                      if (rank := rank_in(self.view, name, spec, m.namespace, m.name, m.created)) is not None
                      and rank < spec.max_sites)
        dep = self.view.live(kinds.DEPLOYMENT.kind, spec.namespace, pl.service_name(name))
        st = (dep or {}).get("status") or {}
        ready = bool(st.get("readyReplicas")) and failed is None
        message = failed or f"{st.get('readyReplicas', 0)}/{st.get('replicas', 0)} pool replicas ready"
        self._write(name, previous, {
            "observedGeneration": generation,
            "conditions": conditions(previous, generation, (ready, c.AVAILABLE if ready else c.WAITING_FOR_REPLICAS,
                                                            message), None),
            "sites": members, "replicas": st.get("replicas", 0), "readyReplicas": st.get("readyReplicas", 0),
        })

    def _apply(self, obj: Obj) -> str | None:
        meta = obj["metadata"]
        live = self.view.live(obj["kind"], meta["namespace"], meta["name"])
        why = "absent" if live is None else snapshot.out_of_sync(obj, live)
        if why is None:
            return None
        log.info("applying %s %s/%s: %s", obj["kind"], meta["namespace"], meta["name"], why)
        try:
            self.view.wrote(self.client.apply(obj))
        except ApiError as exc:
            if not exc.permanent:
                raise
            return f"the API server rejected {obj['kind']} {meta['name']!r}: {exc.message}"
        return None

    def _prune(self, pool_obj: Obj, spec: api.StaticSitePoolSpec, wanted: set[tuple[str, str, str]]) -> None:
        name, uid = pool_obj["metadata"]["name"], pool_obj["metadata"]["uid"]
        grants = {m.namespace for m in self.view.pool_members(name)
                  if matches_any(tuple(spec.namespaces), m.namespace)
                  and ((self.view.site(m.namespace, m.name) or {}).get("spec") or {}).get("gateway")}
        for obj in self.view.pool_objects(name):
            meta = obj["metadata"]
            if not snapshot.controlled_by(obj, uid):
                continue
            component = (meta.get("labels") or {}).get("app.kubernetes.io/component")
            if component == pl.REPORT:
                continue  # the agent's, owned by its pod
            site_of = (meta.get("annotations") or {}).get(pl.SITE_ANNOTATION)
            gone = meta["namespace"] != spec.namespace
            if site_of is not None:
                namespace, _, site_name = site_of.partition("/")
                site = self.view.site(namespace, site_name)
                expected_uid = (meta.get("annotations") or {}).get(pl.SITE_UID_ANNOTATION)
                gone = gone or site is None or bool(site["metadata"].get("deletionTimestamp")) or (
                    expected_uid is not None and site["metadata"].get("uid") != expected_uid)
            elif obj["kind"] == kinds.REFERENCEGRANT.kind:
                gone = gone or (meta.get("annotations") or {}).get(pl.FROM_NAMESPACE_ANNOTATION) not in grants
            elif component in ("server", "autoscaler"):
                gone = gone or (obj["kind"], meta["namespace"], meta["name"]) not in wanted
            if gone:
                log.info("pool %s: deleting %s %s/%s", name, obj["kind"], meta["namespace"], meta["name"])
                delete(self.view, self.client, obj)

    def _write(self, name: str, previous: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if (previous or {}) != new:
            self.view.wrote(self.client.patch_pool_status(name, new))
