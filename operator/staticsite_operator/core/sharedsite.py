"""The shared tier's branch of the reconcile, and the dedicated tier's way back from it.

`reconcile_shared` runs instead of the dedicated pipeline when `spec.serving.tier` is
shared (core.reconcile calls it); `Return` guards the move back to dedicated. The order
of each move is in core.shared's docstring.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..api import conditions as c
from ..api import models
from . import events, hostfiles, kinds, render, snapshot, status
from . import labels as lbl
from . import pool as pl
from .events import Changes
from .ports import ApiError, Obj
from .problems import Problem, most_severe, routing_file_problem
from .shared import ROUTING_KINDS, admit, conditions, delete, pool_replicas, serving

if TYPE_CHECKING:
    from .reconcile import Reconciler

# What the reconcile tells the runtime (core.reconcile.Outcome's fields): Ready's status
# and the seconds until the site should be looked at again.
Result = tuple[str, float | None]

log = logging.getLogger(__name__)


def reconcile_shared(r: Reconciler, site: Obj, spec: models.StaticSiteSpec,
                     previous: dict[str, Any] | None) -> Result:
    meta = site["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    assert spec.serving.pool is not None
    changes = Changes()
    grant = r._grant(site, spec)
    adm = admit(r.view, namespace, name, meta.get("creationTimestamp", ""), spec.serving.pool)
    problem = adm.problem
    if problem is None and spec.gateway is not None and not r.gateway_api:
        problem = Problem(c.GATEWAY_API_UNAVAILABLE, "spec.gateway: this cluster serves no Gateway API "
                                                     "(gateway.networking.k8s.io/v1 HTTPRoute); use an Ingress")
    entry = None
    if problem is None and adm.pool is not None and adm.spec is not None:
        try:
            entry = pl.render_entry(adm.pool, adm.spec, namespace, name, uid, spec, grant.hosts)
        except render.ContentTooLarge as exc:
            problem = Problem(c.CONTENT_TOO_LARGE, str(exc))
    if entry is None or adm.pool is None or adm.spec is None:
        # Refused: nothing is applied, and whatever served the site before goes on serving it.
        new = _status(name, namespace, meta.get("generation", 0), spec, grant.hosts, previous,
                      (False, problem.reason if problem else c.INVALID_SPEC, ""), problem, None, None, None)
        return _finish(r, site, previous, new, changes, None)

    pool_obj, pspec, pool_name = adm.pool, adm.spec, spec.serving.pool
    key = pl.site_key(namespace, name)
    sync_problem = _ensure(r, entry.obj, pool_obj, changes, created=False)
    srv = serving(r.view, pool_name, key, entry.revision)
    want = pool_replicas(r.view, pool_obj, pspec)
    pool_ready = srv.replicas >= want and srv.current == srv.replicas and srv.current > 0

    # Routing moves to the pool once a pool replica serves the site (any revision of it).
    routed, wanted_children, wanted_pool = False, set(), {(entry.obj["kind"], entry.obj["metadata"]["name"])}
    if sync_problem is None and srv.any_served and grant.hosts:
        objects: list[Obj] = []
        if spec.gateway is not None:
            if namespace != pspec.namespace:
                objects.append(pl.render_grant(pool_obj, pspec, namespace))
            rendered = render.render(render.Site(name, namespace, uid, spec, None, r.images, grant.hosts,
                                                 backend=pl.route_backend(spec, name, pspec, pool_name)))
            objects += [o for o in rendered.objects if o["kind"] == kinds.HTTPROUTE.kind]
        else:
            objects.append(pl.render_pool_ingress(pool_obj, pspec, namespace, name, spec, grant.hosts))
        for obj in objects:
            if obj["metadata"]["namespace"] == namespace and obj["kind"] == kinds.HTTPROUTE.kind:
                sync_problem = sync_problem or r._sync(site, render.Rendered([obj], "", ""), changes)
                wanted_children.add((obj["kind"], obj["metadata"]["name"]))
            else:
                sync_problem = sync_problem or _ensure(r, obj, pool_obj, changes, created=True)
                wanted_pool.add((obj["kind"], obj["metadata"]["name"]))
        routed = sync_problem is None

    recheck = None
    if routed:
        recheck = _leave(r, namespace, name, uid, "to-shared",
                         [ch for ch in r.view.children(namespace, name)
                          if (ch["kind"], ch["metadata"]["name"]) not in wanted_children
                          and ch["kind"] in {k.kind for k in kinds.PRUNABLE} and snapshot.controlled_by(ch, uid)]
                         + [o for o in r.view.site_pool_objects(namespace, name)
                            if (o["metadata"].get("labels") or {}).get(pl.POOL_KEY) != pool_name
                            or (o["kind"] != kinds.CONFIGMAP.kind and (o["kind"], o["metadata"]["name"])
                                not in wanted_pool)])
    if pool_ready:  # superseded revisions: no replica serves them any more
        for obj in r.view.site_pool_objects(namespace, name):
            if obj["kind"] == kinds.CONFIGMAP.kind and (obj["kind"], obj["metadata"]["name"]) not in wanted_pool \
                    and (obj["metadata"].get("labels") or {}).get(pl.POOL_KEY) == pool_name:
                delete(r.view, r.client, obj)

    ready = pool_ready and routed
    message = (f"{srv.current}/{want} pool replicas serve revision {entry.revision[:12]}" if ready or srv.any_served
               else f"waiting for pool {pool_name!r} to serve the site")
    problem = most_severe([sync_problem, grant.problem, _file_problem(spec),
                           Problem(c.POOL_REJECTED, srv.rejected + "; the pool keeps serving the site's last "
                                                   "good revision") if srv.rejected else None])
    new = _status(name, namespace, meta.get("generation", 0), spec, grant.hosts, previous,
                  (ready, c.AVAILABLE if ready else c.ROLLING_OUT, message), problem, entry,
                  srv, entry.revision if pool_ready else (previous or {}).get("poolRevision"))
    return _finish(r, site, previous, new, changes, recheck)


def _file_problem(spec: models.StaticSiteSpec) -> Problem | None:
    """Lines of the content's _redirects/_headers the agent skips: it parses them as
    nginxconf does for a dedicated pod, so the lines are the ones named here."""
    parsed = hostfiles.parse_site(render.host_files(spec.content.inline), spec.routing.semantics)
    return routing_file_problem(parsed.problems) if parsed.problems else None


def _ensure(r: Reconciler, obj: Obj, pool_obj: Obj, changes: Changes, *, created: bool) -> Problem | None:
    """Apply an object of the pool's namespace unless the cache holds it as wanted; only the pool's own."""
    meta = obj["metadata"]
    live = r.view.live(obj["kind"], meta["namespace"], meta["name"])
    if live is not None and not snapshot.controlled_by(live, pool_obj["metadata"]["uid"]):
        return Problem(c.NAME_CONFLICT, f"{obj['kind']} {meta['name']!r} in namespace {meta['namespace']!r} "
                                        "exists and is not the pool's; the platform team must remove it")
    why = "absent" if live is None else snapshot.out_of_sync(obj, live)
    if why is None:
        return None
    log.info("applying %s %s/%s: %s", obj["kind"], meta["namespace"], meta["name"], why)
    try:
        r.view.wrote(r.client.apply(obj))
    except ApiError as exc:
        if not exc.permanent:
            raise
        return Problem(c.APPLY_FAILED, f"the API server rejected {obj['kind']} {meta['name']!r}: {exc.message}")
    if created and live is None:
        changes.created.append(f"{obj['kind']}/{meta['name']}")
    return None


def _leave(r: Reconciler, namespace: str, name: str, uid: str, direction: str, leftovers: list[Obj]) -> float | None:
    """Remove the other tier in two steps, each `grace` seconds after the one before: its
    routing objects once the new routing exists (an ingress controller may prefer the
    older of two Ingresses for a host), then what served the site once no controller
    routes to it any more. Returns the seconds until the next step, if any."""
    del uid
    if not leftovers:
        r.mover.done(namespace, name)
        return None
    routing = [o for o in leftovers if o["kind"] in ROUTING_KINDS]
    if routing:
        if (wait := r.mover.wait(namespace, name, f"{direction}/routing")) is not None:
            return wait
        _delete_all(r, namespace, name, direction, routing)
    if (wait := r.mover.wait(namespace, name, f"{direction}/serving")) is not None:
        return wait
    _delete_all(r, namespace, name, direction, [o for o in leftovers if o["kind"] not in ROUTING_KINDS])
    r.mover.done(namespace, name)
    return None


def _delete_all(r: Reconciler, namespace: str, name: str, direction: str, objs: list[Obj]) -> None:
    for obj in objs:
        log.info("moved %s %s/%s: deleting %s %s/%s", direction, namespace, name, obj["kind"],
                 obj["metadata"]["namespace"], obj["metadata"]["name"])
        delete(r.view, r.client, obj)


def _status(name: str, namespace: str, generation: int, spec: models.StaticSiteSpec, hosts: tuple[str, ...],
            previous: dict[str, Any] | None, ready: tuple[bool, str, str], problem: Problem | None,
            entry: pl.Entry | None, srv: Any, pool_revision: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions(previous, generation, ready, problem),
        "url": status.url_of(name, namespace, spec, hosts),
        "replicas": srv.replicas if srv else 0,
        "readyReplicas": srv.current if srv else 0,
    }
    chash = entry.content_hash if entry else (previous or {}).get("contentHash")
    if chash:
        out["contentHash"] = chash
    if pool_revision:
        out["poolRevision"] = pool_revision
    return out


def _finish(r: Reconciler, site: Obj, previous: dict[str, Any] | None, new: dict[str, Any], changes: Changes,
            recheck: float | None) -> Result:
    meta = site["metadata"]
    wait = r._quiet_rollout(meta["namespace"], meta["name"], new)
    if wait is None and not status.same(previous, new):
        r.view.writing_status(meta["namespace"], meta["name"], new)
        r.view.wrote(r.client.patch_status(meta["namespace"], meta["name"], new))
    r._post(site, events.transitions(previous, new, changes))
    ready = (status.condition(new, c.READY) or {}).get("status", "Unknown")
    return ready, min([t for t in (wait, recheck) if t is not None], default=None)


class Return:
    """The dedicated tier's side of a move back from a pool: routing waits for the Deployment."""

    def __init__(self, r: Reconciler, site: Obj, spec: models.StaticSiteSpec, rendered: render.Rendered) -> None:
        meta = site["metadata"]
        self.r, self.namespace, self.name, self.uid = r, meta["namespace"], meta["name"], meta["uid"]
        self.left = r.view.site_pool_objects(self.namespace, self.name)
        dep = r.view.child(kinds.DEPLOYMENT.kind, self.namespace, self.name, self.name)
        self.deployed = _rolled_out(dep, rendered.checksum, spec.replicas)

    def to_sync(self, rendered: render.Rendered) -> render.Rendered:
        """While the pool still serves the site and the Deployment is not rolled out, routing stays."""
        if not self.left or self.deployed:
            return rendered
        return render.Rendered([o for o in rendered.objects if o["kind"] not in ROUTING_KINDS],
                               rendered.content_hash, rendered.checksum)

    def after_sync(self, synced: bool) -> float | None:
        if not self.left or not self.deployed or not synced:
            return None
        return _leave(self.r, self.namespace, self.name, self.uid, "to-dedicated", self.left)


def _rolled_out(dep: Obj | None, checksum: str, replicas: int) -> bool:
    if dep is None:
        return False
    annotations = ((dep.get("spec") or {}).get("template", {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(lbl.CHECKSUM_ANNOTATION) == checksum and status.all_updated(dep, replicas)

