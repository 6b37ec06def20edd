"""Two writers never at once, proved from the API server's audit log alone.

Each operator process sends its identity in its user agent
(`staticsite-operator/<version> (<identity>)`), and so does its Lease client. From the
log, in the order the API server received requests:

- a successful create/update of the Lease by X makes X the holder, until its lease
  duration has passed without another, or until X releases it (the release is an
  update whose fieldManager is staticsite-operator-release, runtime.leader);
- every other write by the operator's user must come from the holder, inside that
  window. One that does not is a double write.

Writes by the operator's user whose user agent names no identity are counted apart
(there should be none: kopf itself writes nothing with this operator's settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from staticsite_operator.runtime.leader import RELEASE_MANAGER

from ..audit import Request

IDENTITY = re.compile(r"^staticsite-operator/\S+ \(([^)]+)\)$")


def identity(user_agent: str) -> str | None:
    found = IDENTITY.match(user_agent)
    return found.group(1) if found else None


@dataclass
class Fencing:
    writes: int = 0                     # writes checked
    lease_writes: int = 0               # successful acquisitions, renewals and releases
    holders: list[str] = field(default_factory=list)   # identities that held the Lease, in order
    double_writes: list[str] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"writes_checked": self.writes, "lease_writes": self.lease_writes, "leaders": len(self.holders),
                "double_writes": len(self.double_writes), "double_write_examples": self.double_writes[:10],
                "unattributed_writes": len(self.unattributed), "unattributed_examples": self.unattributed[:10]}


def check(requests: list[Request], user: str, lease_name: str, lease_duration: float) -> Fencing:
    out = Fencing()
    holder: str | None = None
    renewed = 0.0
    for req in sorted((r for r in requests if r.user == user), key=lambda r: r.at):
        if not req.is_write:
            continue
        who = identity(req.user_agent)
        if req.resource == "leases":
            # This election's Lease: updates name it in the path; the operator creates no other Lease.
            ours = req.uri.split("?")[0].endswith(f"/leases/{lease_name}") or req.verb == "create"
            if ours and 200 <= req.code < 300:
                out.lease_writes += 1
                if RELEASE_MANAGER in req.uri:
                    holder = None if who == holder else holder
                else:
                    if who != holder:
                        out.holders.append(who or "?")
                    holder, renewed = who, req.at
            continue
        out.writes += 1
        what = f"{req.verb} {req.uri.split('?')[0]} by {who} at {req.at:.3f}"
        if who is None:
            out.unattributed.append(what)
        elif who != holder or req.at > renewed + lease_duration:
            out.double_writes.append(f"{what} (holder: {holder}, renewed {req.at - renewed:.2f}s before)")
    return out
