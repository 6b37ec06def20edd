"""What the cache knows of the shared tier: pools, their members, and their objects.

- members: the sites that ask for each pool (spec.serving), as domain claims are kept,
  so admission is first come, first served by creation time;
- pool objects: everything labelled with a pool (its Deployment and Service, the sites'
  entries and Ingresses, ReferenceGrants, the agents' reports), by pool, and by the site
  an object serves (its `staticsite.dev/site` annotation, which only the operator writes);
- reports: the agents' per-pod ConfigMaps, parsed (the cache keeps only fingerprints of
  other ConfigMaps' data).

Every method returns the keys an event concerns: sites as (namespace, name), pools as
(POOL_SCOPE, name). The Cache calls it under its own lock.
"""

from __future__ import annotations

import json
from typing import Any

from ..core import pool as pl
from ..core.domains import Claim

Key = tuple[str, str]
ObjKey = tuple[str, str, str]
# A pool's queue key: ("", name). No namespace is called "", so it never names a site.
POOL_SCOPE = ""


def pool_key(name: str) -> Key:
    return (POOL_SCOPE, name)


def membership(body: dict[str, Any]) -> str | None:
    """The pool a site asks for, if it is shared and not being deleted."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    serving = (body.get("spec") or {}).get("serving") or {}
    return serving.get("pool") if serving.get("tier") == "shared" else None


class PoolIndex:
    def __init__(self) -> None:
        self._members: dict[str, set[Claim]] = {}           # pool -> sites asking for it
        self._member_of: dict[Key, tuple[str, Claim]] = {}
        self._objects: dict[str, set[ObjKey]] = {}          # pool -> its objects
        self._object_pool: dict[ObjKey, tuple[str, Key | None]] = {}
        self._by_site: dict[Key, set[ObjKey]] = {}          # site -> its objects in pools
        self._reports: dict[str, dict[str, dict[str, Any]]] = {}  # pool -> report object name -> site key -> state
        self.has_pools = False

    # --- sites --------------------------------------------------------------------------
    def site(self, namespace: str, name: str, body: dict[str, Any] | None) -> set[Key]:
        """A site was seen (body) or removed (None): the pools, and members, it concerns."""
        key: Key = (namespace, name)
        wanted = membership(body) if body is not None else None
        before = self._member_of.pop(key, None)
        affected: set[Key] = set()
        if before is not None:
            self._members.get(before[0], set()).discard(before[1])
            affected.add(pool_key(before[0]))
        if wanted is not None:
            claim = Claim(str((body or {}).get("metadata", {}).get("creationTimestamp", "")), namespace, name)
            self._members.setdefault(wanted, set()).add(claim)
            self._member_of[key] = (wanted, claim)
            affected.add(pool_key(wanted))
        if before is not None and (wanted is None or before[0] != wanted):
            # A place came free: the next in line may now be admitted.
            affected |= {(m.namespace, m.name) for m in self._members.get(before[0], ())}
        return affected

    def members(self, pool: str) -> list[Claim]:
        return sorted(self._members.get(pool, ()))

    # --- objects in pools ----------------------------------------------------------------
    def object(self, key: ObjKey, body: dict[str, Any] | None) -> set[Key]:
        """An object labelled with a pool was seen (body) or removed (None)."""
        affected: set[Key] = set()
        before = self._object_pool.pop(key, None)
        if before is not None:
            self._objects.get(before[0], set()).discard(key)
            affected.add(pool_key(before[0]))
            if before[1] is not None:
                self._by_site.get(before[1], set()).discard(key)
                affected.add(before[1])
        meta = (body or {}).get("metadata") or {}
        pool = str((meta.get("labels") or {}).get(pl.POOL_KEY) or "")
        if before is not None and before[0] != pool:
            affected |= self._report(before[0], key[2], None)  # gone, or moved to another pool
        if body is None or not pool:
            return affected
        site_of = str((meta.get("annotations") or {}).get(pl.SITE_ANNOTATION) or "")
        site_ns, _, site_name = site_of.partition("/")
        site: Key | None = (site_ns, site_name) if site_name else None
        self._object_pool[key] = (pool, site)
        self._objects.setdefault(pool, set()).add(key)
        affected.add(pool_key(pool))
        if site is not None:
            self._by_site.setdefault(site, set()).add(key)
            affected.add(site)
        if (meta.get("labels") or {}).get("app.kubernetes.io/component") == pl.REPORT:
            affected |= self._report(pool, key[2], body.get("data") or {})
        return affected

    def _report(self, pool: str, name: str, data: dict[str, str] | None) -> set[Key]:
        """The sites whose state in this report changed."""
        reports = self._reports.setdefault(pool, {})
        old = reports.pop(name, {})
        new: dict[str, Any] = {}
        for site_key, raw in (data or {}).items():
            try:
                new[site_key] = json.loads(raw)
            except ValueError:
                continue
        if data is not None:
            reports[name] = new
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        return {pl.parse_site_key(k) for k in changed}

    def objects(self, pool: str) -> set[ObjKey]:
        return set(self._objects.get(pool, ()))

    def of_site(self, namespace: str, name: str) -> set[ObjKey]:
        return set(self._by_site.get((namespace, name), ()))

    def reports(self, pool: str) -> dict[str, dict[str, dict[str, Any]]]:
        return {name: dict(states) for name, states in self._reports.get(pool, {}).items()}
