"""Reconcile a shared site: admission to its pool, its entry, routing, the move between tiers. Pure.

The order keeps the site served throughout a move (docs/shared-tier.md):

    dedicated -> shared: the entry is written; once a pool replica reports serving the
        site, routing switches to the pool (its Ingress in the pool's namespace, or the
        HTTPRoute's backend); `grace` seconds later (for ingress controllers to catch up)
        the dedicated Ingress goes, and `grace` seconds after that the rest of the
        dedicated objects.
    shared -> dedicated: the dedicated objects are created while routing still points at
        the pool (core.reconcile holds the routing children back); once the Deployment is
        rolled out, routing switches back; `grace` seconds later the pool's Ingress for
        the site goes, and `grace` seconds after that its entries.

A site's objects in the pool's namespace are owned by the pool (no ownerReference
crosses namespaces): the site deletes those it no longer needs, and the pool's
reconcile deletes those of sites that no longer exist.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from ..api import conditions as c
from ..api import models
from ..api import pool as api
from . import kinds, snapshot
from . import pool as pl
from .policy import matches_any
from .ports import Client, Obj, View
from .problems import Problem

log = logging.getLogger(__name__)

ROUTING_KINDS = frozenset({kinds.INGRESS.kind, kinds.HTTPROUTE.kind})


@dataclass(frozen=True)
class Admission:
    pool: Obj | None
    spec: api.StaticSitePoolSpec | None
    problem: Problem | None


def admit(view: View, namespace: str, name: str, created: str, pool_name: str) -> Admission:
    """May this site use the pool: it exists, takes this namespace, and has room (first come, first served)."""
    found = view.pool(pool_name)
    if found is None:
        return Admission(None, None, Problem(c.POOL_NOT_FOUND, f"spec.serving.pool: no StaticSitePool "
                                                                f"{pool_name!r}; ask the platform team which pools "
                                                                "exist (kubectl get staticsitepools)"))
    try:
        spec = pl.parse_pool(found)
    except pydantic.ValidationError:
        return Admission(None, None, Problem(c.POOL_NOT_FOUND, f"spec.serving.pool: StaticSitePool {pool_name!r} "
                                                                "is not valid; the platform team must fix it"))
    if not matches_any(tuple(spec.namespaces), namespace):
        return Admission(found, spec, Problem(c.POOL_NOT_ALLOWED, f"spec.serving.pool: StaticSitePool "
                                                                   f"{pool_name!r} does not serve namespace "
                                                                   f"{namespace!r} (its spec.namespaces)"))
    rank = rank_in(view, pool_name, spec, namespace, name, created)
    if rank is None or rank >= spec.max_sites:
        return Admission(found, spec, Problem(c.POOL_FULL, f"spec.serving.pool: StaticSitePool {pool_name!r} "
                                                            f"serves its maximum of {spec.max_sites} sites; the "
                                                            "site stays where it was until a place is free"))
    return Admission(found, spec, None)


def rank_in(view: View, pool_name: str, spec: api.StaticSitePoolSpec, namespace: str, name: str,
            created: str) -> int | None:
    """The site's place among the pool's admissible members, by creation time (None: not a member)."""
    members = sorted(m for m in view.pool_members(pool_name) if matches_any(tuple(spec.namespaces), m.namespace))
    for i, member in enumerate(members):
        if (member.namespace, member.name) == (namespace, name):
            return i
    return None


@dataclass(frozen=True)
class Serving:
    """What the pool's replicas report for one site."""

    replicas: int         # reports of live pool pods
    current: int          # of them, serving the current revision
    any_served: bool      # some replica serves some revision of the site: routing may point at the pool
    rejected: str | None  # why a replica refused the current revision


def serving(view: View, pool_name: str, key: str, revision: str) -> Serving:
    reports = view.pool_reports(pool_name)
    current, any_served, rejected = 0, False, None
    for pod, report in sorted(reports.items()):
        mine = report.get(key) or {}
        if mine.get("served"):
            any_served = True
        if mine.get("served") == revision:
            current += 1
        if mine.get("rejected") == revision and rejected is None:
            rejected = f"pool pod {pod}: {mine.get('error', 'nginx -t failed')}"[:1000]
    return Serving(len(reports), current, any_served, rejected)


def pool_replicas(view: View, pool_obj: Obj, spec: api.StaticSitePoolSpec) -> int:
    """How many pool pods should report: the Deployment's own count (an HPA's choice), else the spec's."""
    dep = view.live(kinds.DEPLOYMENT.kind, spec.namespace, pl.service_name(pool_obj["metadata"]["name"]))
    replicas = ((dep or {}).get("status") or {}).get("replicas")
    return int(replicas) if replicas else spec.replicas


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(previous: dict[str, Any] | None, generation: int, ready: tuple[bool, str, str],
               problem: Problem | None) -> list[dict[str, Any]]:
    """Ready, Progressing and Degraded, keeping lastTransitionTime unless a status flips."""
    is_ready, reason, message = ready
    if problem is not None and not is_ready:
        reason, message = problem.reason, problem.message
    rows = [(c.READY, is_ready, reason, message),
            (c.PROGRESSING, reason == c.ROLLING_OUT, c.ROLLING_OUT if reason == c.ROLLING_OUT
             else c.ROLLOUT_COMPLETE if is_ready else reason, message),
            (c.DEGRADED, problem is not None, problem.reason if problem else c.RECONCILED,
             problem.message if problem else "the desired state is applied")]
    old = {cond.get("type"): cond for cond in (previous or {}).get("conditions") or []}
    out = []
    for type_, flag, why, msg in rows:
        value = "True" if flag else "False"
        before = old.get(type_)
        since = before["lastTransitionTime"] if before and before.get("status") == value else _now()
        out.append({"type": type_, "status": value, "reason": why, "message": msg, "lastTransitionTime": since,
                    "observedGeneration": generation})
    return out


class Mover:
    """Remembers when a site's routing switched tiers, to remove the other tier `grace` seconds later.

    In memory: after a restart the grace starts again, which only delays a removal.
    """

    def __init__(self, grace: float, clock: Callable[[], float]) -> None:
        self.grace = grace
        self._clock = clock
        self._lock = threading.Lock()
        self._since: dict[tuple[str, str, str], float] = {}

    def wait(self, namespace: str, name: str, direction: str) -> float | None:
        """Seconds left before the old tier may go (None: now). Call while the old tier remains."""
        key = (namespace, name, direction)
        with self._lock:
            since = self._since.setdefault(key, self._clock())
        left = self.grace - (self._clock() - since)
        return left if left > 0 else None

    def done(self, namespace: str, name: str) -> None:
        with self._lock:
            for key in [k for k in self._since if k[:2] == (namespace, name)]:
                del self._since[key]


def delete(view: View, client: Client, obj: Obj) -> None:
    meta = obj["metadata"]
    client.delete(obj["kind"], meta["namespace"], meta["name"], meta["uid"])
    view.deleted(obj["kind"], meta["namespace"], meta["name"])


def site_json(obj: Obj) -> dict[str, Any]:
    return dict(json.loads((obj.get("data") or {}).get(pl.SITE_JSON, "{}")))


def hosts_of(spec: models.StaticSiteSpec, hosts: tuple[str, ...]) -> tuple[str, ...]:
    return hosts if spec.domains else ()


def owned_by_pool(obj: Obj, pool_obj: Obj) -> bool:
    return snapshot.controlled_by(obj, pool_obj["metadata"]["uid"])
