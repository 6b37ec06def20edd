"""Does a live object already hold everything we would apply? Pure, no I/O.

Server-side apply of an unchanged object is still a PATCH request: a write, an audit
record, and load on the API server. So the controller applies only when the live
object differs from the desired one in a field *we* set. Fields others set (defaults,
other controllers, a user's extra labels) are not ours and are ignored, just as
server-side apply leaves them alone.

ConfigMap payloads are compared by per-key fingerprints (snapshot.data_hashes), which is what the
cache keeps, so the sites' content is not held in memory twice.
"""

from __future__ import annotations

from typing import Any

from . import quantity


def _empty(value: Any) -> bool:
    return value is None or value in ({}, [])


def difference(live: Any, desired: Any, path: tuple[str, ...] = ()) -> str | None:
    """The first field of `desired` that `live` lacks or holds differently, as a path; None if none.

    Returned rather than a bool so the controller can log *why* it applies.
    """
    where = ".".join(path) or "<root>"
    if desired is None:  # we do not set this field at all
        return None
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return None if _empty(desired) and _empty(live) else where
        for k, v in desired.items():
            if k not in live:
                if not _empty(v):
                    return f"{where}.{k}" if path else k
                continue
            if (found := difference(live[k], v, (*path, k))) is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list):
            return None if _empty(desired) and _empty(live) else where
        if desired and all(isinstance(d, dict) and "name" in d for d in desired):
            # Lists of named items (containers, ports, volumes) merge by name under
            # server-side apply: others may add their own items.
            by_name = {item.get("name"): item for item in live if isinstance(item, dict)}
            for d in desired:
                if d["name"] not in by_name:
                    return f"{where}[{d['name']}]"
                if (found := difference(by_name[d["name"]], d, (*path, f"[{d['name']}]"))) is not None:
                    return found
            return None
        if len(live) != len(desired):
            return f"{where} (length {len(live)} != {len(desired)})"
        for i, (lv, dv) in enumerate(zip(live, desired, strict=True)):
            if (found := difference(lv, dv, (*path, f"[{i}]"))) is not None:
                return found
        return None
    if live == desired:
        return None
    if "resources" in path and quantity.same(live, desired):
        return None
    return f"{where} ({live!r} != {desired!r})"


def contains(live: Any, desired: Any, path: tuple[str, ...] = ()) -> bool:
    """True when every field of `desired` is present in `live` with an equal value."""
    return difference(live, desired, path) is None
