"""What the watches saw, and what we wrote since: the reconcile's `View` of the cluster.

kopf's indexes hold one compact snapshot (core.snapshot, as JSON) per site and per
child, keyed by (namespace, site). They lag our own writes by one watch event, so the
cache also remembers the objects our writes returned, and answers with whichever copy
has the newer resourceVersion: watch lag is never mistaken for drift, and a child we
just created is not created twice.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..api import models
from ..core import kinds, snapshot
from ..core import labels as lbl
from ..core.domains import Claim
from ..core.ports import Obj

SITES_INDEX = "staticsites_idx"
DOMAINS_INDEX = "domains_idx"
PODS_INDEX = "fetchfailures_idx"
ObjKey = tuple[str, str, str]  # kind, namespace, name


def index_id(kind: kinds.Kind) -> str:
    """kopf passes every index to every handler as a keyword argument named by its id."""
    return f"{kind.plural}_idx"


def pack(body: Any) -> str:
    """An index entry: the snapshot as compact JSON, and kopf's copy of the body emptied.

    The indexes hold one entry per site and child, for the life of the process. As a
    compact string a snapshot takes several times less memory than as nested dicts, and
    decoding the one or two entries a reconcile reads costs microseconds.

    kopf keeps each event's body until the object's event handlers have run, and after
    a restart those wait until every kind is listed: every body of every child, held
    at once. The handlers read only metadata, so the parts that are now in the
    snapshot are released here. This relies on kopf reading nothing else of a body
    that only indexes and on.event handlers see.
    """
    packed = json.dumps(snapshot.snapshot(body), separators=(",", ":"))
    body["metadata"].pop("managedFields", None)
    for part in ("spec", "status", "data", "binaryData"):
        if isinstance(held := body.get(part), dict):
            held.clear()
    return packed


class Cache:
    """core.ports.View over kopf's indexes, plus the read-your-writes memory."""

    def __init__(self) -> None:
        self.indexes: dict[str, Any] = {}
        self._written: dict[ObjKey, Obj] = {}
        self._lock = threading.Lock()
        self._domains: dict[tuple[str, str], frozenset[str]] = {}  # the domains each site claimed last

    def bind(self, handler_kwargs: dict[str, Any]) -> None:
        """Take kopf's index objects from any handler's keyword arguments (they never change)."""
        if not self.indexes:
            self.indexes = {k: v for k, v in handler_kwargs.items() if k.endswith("_idx")}

    # --- read-your-writes --------------------------------------------------------
    def wrote(self, obj: Obj) -> None:
        snap = snapshot.snapshot(obj)
        meta = snap["metadata"]
        with self._lock:
            self._written[snap["kind"], meta["namespace"], meta["name"]] = snap

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        """The object is gone (we deleted it, or the watch saw it go): forget our copy."""
        with self._lock:
            self._written.pop((kind, namespace, name), None)

    def _fresh(self, key: ObjKey, indexed: Obj | None) -> Obj | None:
        with self._lock:
            mine = self._written.get(key)
            if mine is not None and indexed is not None and \
                    snapshot.resource_version(indexed) >= snapshot.resource_version(mine):
                del self._written[key]  # the watch has caught up
                return indexed
        return mine if mine is not None else indexed

    # --- the View ----------------------------------------------------------------
    def _entries(self, index: str, key: tuple[str, str]) -> list[Obj]:
        store = self.indexes.get(index)
        return [json.loads(packed) for packed in (store.get(key) or ())] if store is not None else []

    def site(self, namespace: str, name: str) -> Obj | None:
        found = next((o for o in self._entries(SITES_INDEX, (namespace, name))
                      if o["metadata"]["name"] == name), None)
        return self._fresh((models.KIND, namespace, name), found)

    def child(self, kind: str, namespace: str, site: str, name: str) -> Obj | None:
        found = next((o for o in self._entries(index_id(kinds.BY_NAME[kind]), (namespace, site))
                      if o["metadata"]["name"] == name), None)
        return self._fresh((kind, namespace, name), found)

    def children(self, namespace: str, site: str) -> list[Obj]:
        """Every child labelled for `site`, of every child kind, freshest copies."""
        seen: dict[ObjKey, Obj | None] = {}
        for kind in kinds.CHILD_KINDS:
            for obj in self._entries(index_id(kind), (namespace, site)):
                seen[kind.kind, namespace, obj["metadata"]["name"]] = obj
        with self._lock:
            mine = [key for key, obj in self._written.items() if key[1] == namespace and key[0] != models.KIND
                    and (obj["metadata"].get("labels") or {}).get(lbl.INSTANCE_KEY) == site]
        for key in mine:
            seen.setdefault(key, None)
        fresh = (self._fresh(key, indexed) for key, indexed in seen.items())
        return [obj for obj in fresh if obj is not None]

    def claimants(self, domain: str) -> list[Claim]:
        store = self.indexes.get(DOMAINS_INDEX)
        return [Claim(*claim) for claim in (store.get(domain) or ())] if store is not None else []

    def domains_changed(self, key: tuple[str, str], claimed: frozenset[str]) -> frozenset[str]:
        """Record the domains a site now claims; return those whose ownership may have
        moved (added or dropped), whose other claimants must be looked at again."""
        before = self._domains.get(key, frozenset())
        if claimed:
            self._domains[key] = claimed
        else:
            self._domains.pop(key, None)
        return before ^ claimed

    def fetch_failures(self, namespace: str, site: str) -> list[dict[str, Any]]:
        store = self.indexes.get(PODS_INDEX)
        return [dict(f) for f in (store.get((namespace, site)) or ())] if store is not None else []
