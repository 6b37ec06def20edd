"""The observed-object format: what the cache keeps of each object, and how it is compared.

A snapshot is the part of an object the reconcile reads: metadata that decides
ownership and freshness, and spec and status. A ConfigMap's payload is kept as per-key
fingerprints instead of bytes, so the sites' content is not held in memory twice; the
comparison (`out_of_sync`) fingerprints the desired payload the same way. Both live
here so that the format and its reader cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api import models
from . import drift

Obj = dict[str, Any]

_KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "labels",
                  "annotations", "ownerReferences", "deletionTimestamp")


def data_hashes(data: dict[str, str] | None, binary_data: dict[str, str] | None) -> dict[str, str]:
    """Per-key fingerprints of a ConfigMap's payload.

    Per key, because server-side apply leaves keys that others added alone: only the
    keys we set can drift from what we want.
    """
    out = {f"d:{k}": hashlib.sha256(v.encode()).hexdigest()[:32] for k, v in (data or {}).items()}
    out |= {f"b:{k}": hashlib.sha256(v.encode()).hexdigest()[:32] for k, v in (binary_data or {}).items()}
    return out


def snapshot(body: Any) -> Obj:
    """The part of an object the reconcile compares, small enough to keep for every site."""
    meta = body["metadata"]
    out: Obj = {"kind": body.get("kind"), "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta}}
    if body.get("kind") == "ConfigMap":
        if body.get("immutable"):
            out["immutable"] = True  # its data cannot change: nothing to fingerprint
        else:
            out["dataHashes"] = data_hashes(body.get("data"), body.get("binaryData"))
    else:
        for part in ("spec", "status"):
            if part in body:
                out[part] = body[part]
    return out


def resource_version(obj: Obj | None) -> int:
    return version_number((obj or {}).get("metadata", {}).get("resourceVersion", 0))


def version_number(version: Any) -> int:
    """etcd-backed resourceVersions are increasing integers (KEP-5504 makes that official);
    anything else counts as 0."""
    try:
        return int(version)
    except (TypeError, ValueError):
        return 0


def controlled_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def stale_namesake(obj: Obj, site: str) -> bool:
    """Controlled by an earlier StaticSite of the same name: deleted and re-created."""
    return any(ref.get("kind") == models.KIND and ref.get("name") == site and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def out_of_sync(desired: Obj, live: Obj) -> str | None:
    """Why `live` (a snapshot) needs an apply to match `desired` (the first difference), or None."""
    meta_d, meta_l = desired["metadata"], live["metadata"]
    for part in ("labels", "annotations", "ownerReferences"):
        if (found := drift.difference(meta_l.get(part), meta_d.get(part), ("metadata", part))) is not None:
            return found
    if desired["kind"] == "ConfigMap":
        if live.get("immutable"):
            # Named by a hash of its data, which the API server keeps from changing.
            return None if desired.get("immutable") else "immutable"
        live_hashes = live.get("dataHashes") or {}
        wanted = data_hashes(desired.get("data"), desired.get("binaryData"))
        changed = sorted(k for k, v in wanted.items() if live_hashes.get(k) != v)
        return f"data {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}" if changed else None
    return drift.difference(live.get("spec"), desired.get("spec"), ("spec",))


def fingerprint(obj: Obj) -> str:
    """What a snapshot says that we write (not status, not versions): equal fingerprints,
    equal answers from out_of_sync."""
    meta = obj["metadata"]
    kept = {k: meta.get(k) for k in ("labels", "annotations", "ownerReferences")}
    kept |= {k: obj.get(k) for k in ("spec", "dataHashes", "immutable")}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode(),
                        usedforsecurity=False).hexdigest()
