"""What the watches saw, and what we wrote since: the reconcile's `View` of the cluster.

The reflectors (runtime.reflector) hand every watch event to `observe`, on the event
loop; the reconcile reads from worker threads, so every access holds one lock. Each
object is kept as one compact JSON string of its snapshot (core.snapshot): a few KB for
a Deployment instead of tens as nested dicts, decoded in microseconds when a reconcile
reads it. Secondary indexes answer the reconcile's questions directly: the children of a
site, the claims on a domain, the pods of a site that failed to fetch.

The watches lag our own writes by one event, so the cache also remembers the objects our
writes returned and answers with whichever copy has the newer resourceVersion: watch lag
is never mistaken for drift, and a child we just created is not created twice.

`observe` and `sweep` return the sites that an event may concern, for the controller to
queue: the site itself, the site a child belongs to, and, when a site's domains change,
every other site claiming one of those domains (ownership may have moved).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..core import kinds, snapshot, status
from ..core import labels as lbl
from ..core import pool as pool_labels
from ..core.domains import Claim
from ..core.ports import Obj
from .poolindex import PoolIndex, pool_key

Key = tuple[str, str]          # namespace, name
ObjKey = tuple[str, str, str]  # kind, namespace, name
SITE = kinds.STATICSITE.kind
POD = kinds.POD.kind
DEPLOYMENT = kinds.DEPLOYMENT.kind
POOL = kinds.STATICSITEPOOL.kind


def pack(body: Any) -> str:
    return _compact(snapshot.snapshot(body))


def _compact(snap: Obj) -> str:
    return json.dumps(snap, separators=(",", ":"))


def _caught_up(mine: Obj, version: str | None) -> bool:
    """Whether the watch's copy (at `version`; None: none yet) is at least as new as our write."""
    return version is not None and snapshot.resource_version(mine) <= snapshot.version_number(version)


_TIMESTAMPS = ("lastUpdateTime", "lastTransitionTime", "lastProbeTime", "lastHeartbeatTime")


def _untimed(snap: Any) -> Any:
    """A snapshot without its resourceVersion and its conditions' timestamps."""
    out = {**snap, "metadata": {k: v for k, v in snap["metadata"].items() if k != "resourceVersion"}}
    status = out.get("status")
    if isinstance(status, dict) and isinstance(status.get("conditions"), list):
        out["status"] = {**status, "conditions": [{k: v for k, v in cond.items() if k not in _TIMESTAMPS}
                                                  for cond in status["conditions"] if isinstance(cond, dict)]}
    return out


def _same_but_timestamps(before: Any, after: Any) -> bool:
    """Only a condition's timestamps (or nothing) changed: the controllers that own a child
    touch its conditions' times while nothing the reconcile reads moves."""
    return bool(_untimed(before) == _untimed(after))


# What the Deployment controller writes on the Deployment's metadata (its revision number,
# at every rollout); the reconcile never reads it, and drift is only what we set.
_DEPLOYMENT_CONTROLLER = "deployment.kubernetes.io/"


def _rollout_free(snap: Any) -> Any:
    out = {**_untimed(snap), "status": None}
    meta = out["metadata"] = dict(out["metadata"])
    kept = {k: v for k, v in (meta.pop("annotations", None) or {}).items() if not k.startswith(_DEPLOYMENT_CONTROLLER)}
    if kept:
        meta["annotations"] = kept
    return out


def _same_rollout(before: Any, after: Any) -> bool:
    """A Deployment whose spec and metadata stayed (but for its controller's revision), and whose
    status moved only within what decides nothing for its site (status.rollout_signal): a
    rollout's counts, mostly."""
    if status.rollout_signal(before) != status.rollout_signal(after):
        return False
    return bool(_rollout_free(before) == _rollout_free(after))


def claimed_domains(body: Any) -> frozenset[str]:
    """A site being deleted has let go of its domains."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return frozenset()
    return frozenset((body.get("spec") or {}).get("domains") or ())


class Cache:
    """core.ports.View over the reflectors' events, plus the read-your-writes memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[ObjKey, tuple[str, str]] = {}       # -> (resourceVersion, packed snapshot)
        self._site_of: dict[ObjKey, Key] = {}                    # a child -> its site
        self._children: dict[Key, set[ObjKey]] = {}             # a site -> its children
        self._claims: dict[str, set[Claim]] = {}                # a domain -> the sites claiming it
        self._claimed: dict[Key, tuple[Claim, frozenset[str]]] = {}
        self._failures: dict[Key, dict[str, dict[str, Any]]] = {}  # a site -> pod -> failed fetch
        self._written: dict[ObjKey, Obj] = {}
        self._prints: dict[ObjKey, tuple[str, str]] = {}  # -> (resourceVersion, fingerprint), filled when asked
        self._status_pending: dict[Key, Obj] = {}  # a site -> the status a pass is writing (writing_status)
        self._pools = PoolIndex()  # the shared tier: pools, their members and objects (runtime.poolindex)

    # --- fed by the reflectors (event loop) ------------------------------------------
    def observe(self, kind: kinds.Kind, event: str | None, body: dict[str, Any]) -> set[Key]:
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if event == "DELETED":
            return self.remove(kind.kind, namespace, name)
        if kind.kind == POD:
            return self._observe_pod(namespace, name, meta, body)
        key: ObjKey = (kind.kind, namespace, name)
        rv = str(meta.get("resourceVersion", ""))
        with self._lock:
            known = self._objects.get(key)
            mine = self._written.get(key)
        if known is not None and known[0] == rv:
            return set()  # a re-listing of what we have: nothing new
        snap = snapshot.snapshot(body)
        packed = _compact(snap)
        quiet = self._no_news(kind.kind, event, key, rv, body, snap, known, mine)
        with self._lock:
            self._objects[key] = (rv, packed)
            if mine is not None and self._written.get(key) is mine and _caught_up(mine, rv):
                del self._written[key]  # the watch has caught up with our write
            if kind.kind == SITE:
                others = self._claim(namespace, name, meta, claimed_domains(body)) | self._pools.site(
                    namespace, name, body)
                return (others - {(namespace, name)}) if quiet else {(namespace, name)} | others
            if kind.kind == POOL:
                return {pool_key(name)} | {(m.namespace, m.name) for m in self._pools.members(name)}
            if (meta.get("labels") or {}).get(pool_labels.POOL_KEY):
                return self._pools.object(key, body)
            site = (meta.get("labels") or {}).get(lbl.INSTANCE_KEY)
            self._link(key, (namespace, site) if site else None)
            return {(namespace, site)} if site and not quiet else set()

    def _no_news(self, kind: str, event: str | None, key: ObjKey, rv: str, body: Any, snap: Obj,
                 known: tuple[str, str] | None, mine: Obj | None) -> bool:
        """Whether an event tells the site's reconcile nothing it has not seen: its own write
        coming back (the pass that wrote it has the response), or a change of nothing it reads.

        The watch often brings a write back before the writing pass has recorded the
        response, so an echo is also recognised by what it is: a child created by us alone
        (the pass that created it has the response, or failed and is retried), or a site
        whose only change is the status that a pass is writing.
        """
        if mine is not None and str(mine["metadata"].get("resourceVersion")) == rv:
            return True
        if kind == POOL or event is None:  # a listing is never an echo
            return False
        if kind == SITE:
            with self._lock:
                pending = self._status_pending.get(key[1:])
            if pending is None or known is None or body.get("status") != pending:
                return False
            before, after = _untimed(json.loads(known[1])), _untimed(snap)
            before.pop("status", None)
            after.pop("status", None)
            return bool(before == after)
        if known is None:
            managers = {entry.get("manager") for entry in (body.get("metadata") or {}).get("managedFields") or ()}
            return event == "ADDED" and managers == {lbl.FIELD_MANAGER}
        before = json.loads(known[1])
        return _same_rollout(before, snap) if kind == DEPLOYMENT else _same_but_timestamps(before, snap)

    def writing_status(self, namespace: str, name: str, status: Obj) -> None:
        """A pass is about to store this status: its echo is not news (see _no_news)."""
        with self._lock:
            self._status_pending[namespace, name] = status

    def sweep(self, kind: kinds.Kind, namespace: str | None, listed: set[Key], version: int) -> set[Key]:
        """After a (re-)listing at `version`: drop what it no longer holds (deleted meanwhile).

        Only what is older than the listing: an object created (or written by us) after
        the listing's snapshot is not in it, yet exists; the watch that follows brings it.
        """
        with self._lock:
            if kind.kind == POD:
                gone = [(POD, ns, pod) for (ns, _site), pods in self._failures.items() for pod in pods
                        if (namespace is None or ns == namespace) and (ns, pod) not in listed]
            else:
                gone = [key for key, (rv, _) in self._objects.items() if key[0] == kind.kind
                        and (namespace is None or key[1] == namespace) and (key[1], key[2]) not in listed
                        and snapshot.version_number(rv) <= version]
        affected: set[Key] = set()
        for k, ns, name in gone:
            affected |= self.remove(k, ns, name)
        return affected

    def remove(self, kind: str, namespace: str, name: str) -> set[Key]:
        key: ObjKey = (kind, namespace, name)
        with self._lock:
            self._written.pop(key, None)
            if kind == POD:
                for site, pods in list(self._failures.items()):
                    if site[0] == namespace and pods.pop(name, None) is not None:
                        if not pods:
                            del self._failures[site]
                        return {site}
                return set()
            self._objects.pop(key, None)
            self._prints.pop(key, None)
            if kind == SITE:
                self._status_pending.pop((namespace, name), None)
                return ({(namespace, name)} | self._claim(namespace, name, {}, frozenset())
                        | self._pools.site(namespace, name, None))
            if kind == POOL:
                return {pool_key(name)} | {(m.namespace, m.name) for m in self._pools.members(name)}
            if in_pool := self._pools.object(key, None):
                return in_pool
            owner = self._site_of.get(key)
            self._link(key, None)
            return {owner} if owner else set()

    def _link(self, key: ObjKey, site: Key | None) -> None:
        before = self._site_of.pop(key, None)
        if before is not None:
            children = self._children.get(before)
            if children is not None:
                children.discard(key)
                if not children:
                    del self._children[before]
        if site is not None:
            self._site_of[key] = site
            self._children.setdefault(site, set()).add(key)

    def _claim(self, namespace: str, name: str, meta: dict[str, Any], domains: frozenset[str]) -> set[Key]:
        """Record the domains a site claims; the other claimants of every domain it
        took or let go must be looked at again."""
        site: Key = (namespace, name)
        before: frozenset[str] = frozenset()
        if (previous := self._claimed.pop(site, None)) is not None:
            before_claim, before = previous
            for domain in before:
                holders = self._claims.get(domain, set())
                holders.discard(before_claim)
                if not holders:
                    self._claims.pop(domain, None)
        claim = Claim(str(meta.get("creationTimestamp", "")), namespace, name)
        for domain in domains:
            self._claims.setdefault(domain, set()).add(claim)
        if domains:
            self._claimed[site] = (claim, domains)
        moved = before ^ domains
        return {(c.namespace, c.name) for domain in moved for c in self._claims.get(domain, ())} - {site}

    def _observe_pod(self, namespace: str, name: str, meta: dict[str, Any], body: dict[str, Any]) -> set[Key]:
        """Pods are kept only as what they say about a failed fetch of the content."""
        site = (meta.get("labels") or {}).get(lbl.INSTANCE_KEY)
        if not site:
            return set()
        failure = status.fetch_failure(body.get("status") or {})
        with self._lock:
            pods = self._failures.get((namespace, site), {})
            entry = None if failure is None else {
                "name": name, "checksum": (meta.get("annotations") or {}).get(lbl.CHECKSUM_ANNOTATION), **failure}
            if pods.get(name) == entry:
                return set()
            if entry is None:
                pods.pop(name, None)
            else:
                pods[name] = entry
            if pods:
                self._failures[namespace, site] = pods
            else:
                self._failures.pop((namespace, site), None)
        return {(namespace, site)} if failure is not None else set()

    # --- read-your-writes (worker threads) ----------------------------------------------
    def wrote(self, obj: Obj) -> None:
        snap = snapshot.snapshot(obj)
        meta = snap["metadata"]
        with self._lock:
            self._written[snap["kind"], meta.get("namespace", ""), meta["name"]] = snap
            if snap["kind"] == SITE:  # from now on its echo is known by its resourceVersion
                self._status_pending.pop((meta.get("namespace", ""), meta["name"]), None)

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        """We deleted it: it is gone, whatever the watch has not told yet."""
        self.remove(kind, namespace, name)

    def _fresh(self, key: ObjKey) -> Obj | None:
        with self._lock:
            mine = self._written.get(key)
            known = self._objects.get(key)
        if mine is not None:
            if not _caught_up(mine, known[0] if known else None):
                return mine
            with self._lock:
                if self._written.get(key) is mine:
                    del self._written[key]  # the watch has caught up
        return json.loads(known[1]) if known is not None else None

    # --- the View (worker threads) -------------------------------------------------------
    def site(self, namespace: str, name: str) -> Obj | None:
        return self._fresh((SITE, namespace, name))

    def child(self, kind: str, namespace: str, site: str, name: str) -> Obj | None:
        found = self._fresh((kind, namespace, name))
        if found is None or (found["metadata"].get("labels") or {}).get(lbl.INSTANCE_KEY) != site:
            return None
        return found

    def _child_keys(self, namespace: str, site: str) -> list[ObjKey]:
        with self._lock:
            keys = set(self._children.get((namespace, site), ()))
            keys |= {key for key, obj in self._written.items() if key[1] == namespace and key[0] != SITE
                     and (obj["metadata"].get("labels") or {}).get(lbl.INSTANCE_KEY) == site}
        return sorted(keys)

    def children(self, namespace: str, site: str) -> list[Obj]:
        """Every child labelled for `site`, of every child kind, freshest copies."""
        fresh = (self._fresh(key) for key in self._child_keys(namespace, site))
        return [obj for obj in fresh if obj is not None]

    def fingerprints(self, namespace: str, site: str) -> dict[tuple[str, str], str]:
        """snapshot.fingerprint of each child, kept per resourceVersion: the reconcile's
        "still in sync?" check asks for them on every pass, and most passes find the same
        versions, so most answers need no decoding and no hashing."""
        out: dict[tuple[str, str], str] = {}
        for key in self._child_keys(namespace, site):
            with self._lock:
                mine, known, kept = self._written.get(key), self._objects.get(key), self._prints.get(key)
            if mine is not None and not _caught_up(mine, known[0] if known else None):
                out[key[0], key[2]] = snapshot.fingerprint(mine)  # our write, newer than the watch's copy
            elif known is not None:
                if kept is None or kept[0] != known[0]:
                    kept = (known[0], snapshot.fingerprint(json.loads(known[1])))
                    with self._lock:
                        if self._objects.get(key) is known:
                            self._prints[key] = kept
                out[key[0], key[2]] = kept[1]
        return out

    def claimants(self, domain: str) -> list[Claim]:
        with self._lock:
            return sorted(self._claims.get(domain, ()))

    def fetch_failures(self, namespace: str, site: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._failures.get((namespace, site), {}).values()]

    # --- the shared tier (worker threads) -------------------------------------------------
    def pool(self, name: str) -> Obj | None:
        return self._fresh((POOL, "", name))

    def pool_members(self, pool: str) -> list[Claim]:
        with self._lock:
            return self._pools.members(pool)

    def pool_objects(self, pool: str) -> list[Obj]:
        with self._lock:
            keys = self._pools.objects(pool)
        return [obj for obj in (self._fresh(key) for key in sorted(keys)) if obj is not None]

    def pool_reports(self, pool: str) -> dict[str, dict[str, dict[str, Any]]]:
        with self._lock:
            return self._pools.reports(pool)

    def site_pool_objects(self, namespace: str, site: str) -> list[Obj]:
        with self._lock:
            keys = self._pools.of_site(namespace, site)
        return [obj for obj in (self._fresh(key) for key in sorted(keys)) if obj is not None]

    def live(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._fresh((kind, namespace, name))

    # --- figures ------------------------------------------------------------------------
    def size(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for kind, _, _ in self._objects:
                counts[kind] = counts.get(kind, 0) + 1
            return counts

