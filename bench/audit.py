"""Count API requests from the API server's audit log: the honest source.

The operator's own counters see only the calls its code makes; the audit log also
sees kopf's (discovery, lists, watches, re-connects) and anything we did not think
of. Records are taken once per request (a watch is logged when it starts and again
when it ends: one auditID), attributed to a scenario window by the time the server
received them, and grouped by verb and resource[/subresource].
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READS = frozenset({"get", "list", "watch"})
# Reviews are `create`s that the API server answers without storing anything (the
# operator asks, at start, whether it may list a cluster-scoped kind): not writes.
STORES_NOTHING = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews",
                            "localsubjectaccessreviews", "tokenreviews", "selfsubjectreviews"})


@dataclass(frozen=True)
class Request:
    at: float        # epoch seconds, when the server received it
    verb: str
    resource: str    # resource[/subresource], or the path of a non-resource URL
    user: str
    user_agent: str
    code: int
    uri: str = ""        # the request URI, query included
    group: str = ""      # API group of the object ("" for the core group)
    namespace: str = ""

    @property
    def is_write(self) -> bool:
        """Whether the request changed what the API server stores."""
        return self.verb not in READS and self.resource not in STORES_NOTHING


@dataclass
class Counts:
    requests: int = 0
    writes: int = 0
    by_verb: dict[str, int] = field(default_factory=dict)  # "verb resource" -> count

    def add(self, req: Request) -> None:
        self.requests += 1
        self.writes += req.is_write
        key = f"{req.verb} {req.resource}"
        self.by_verb[key] = self.by_verb.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "writes": self.writes,
                "by_verb_resource": dict(sorted(self.by_verb.items(), key=lambda kv: (-kv[1], kv[0])))}


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _resource(record: dict[str, Any]) -> str:
    ref = record.get("objectRef")
    if not ref:
        return str(record.get("requestURI", "?")).split("?", 1)[0]
    resource = str(ref.get("resource", "?"))
    return f"{resource}/{ref['subresource']}" if ref.get("subresource") else resource


@dataclass(frozen=True)
class Mark:
    """A position in the log that survives rotation: the file's inode, an offset in it, when."""

    inode: int
    offset: int
    at: float


class AuditLog:
    """The API server's audit log, rotated files included.

    kube-apiserver rotates its audit log at 100 MB (lumberjack's default when
    --audit-log-maxsize is not set): the current file is renamed to audit-<time>.log
    and a new one started. A size of 1000 sites writes several of them, so a mark is
    an inode and an offset, and a read follows the marked file under its new name
    and every file started after it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> Mark:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return Mark(0, 0, time.time())
        return Mark(st.st_ino, st.st_size, time.time())

    def _files(self, mark: Mark) -> list[tuple[Path, int]]:
        """(file, offset to start at), oldest first."""
        out = []
        for path in sorted(self.path.parent.glob("audit*.log"), key=lambda p: p.stat().st_mtime):
            st = path.stat()
            if st.st_ino == mark.inode:
                out.append((path, mark.offset))
            elif st.st_mtime >= mark.at:
                out.append((path, 0))
        return out

    def read(self, mark: Mark, keep: tuple[bytes, ...]) -> list[Request]:
        """Every request logged since `mark` whose record contains one of `keep`, once each.

        The substring test comes before the JSON parse: at 1000 sites the log holds
        millions of the control plane's own records, which are not ours to count.
        """
        seen: set[str] = set()
        out: list[Request] = []
        for path, offset in self._files(mark):
            with path.open("rb") as f:
                f.seek(offset)
                for line in f:
                    if not line.endswith(b"\n"):
                        break  # a record still being written; it belongs to a later read
                    if not any(k in line for k in keep):
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    audit_id = rec.get("auditID", "")
                    if audit_id in seen:
                        continue
                    seen.add(audit_id)
                    out.append(Request(
                        at=_epoch(rec["requestReceivedTimestamp"]), verb=rec.get("verb", "?"),
                        resource=_resource(rec), user=rec.get("user", {}).get("username", ""),
                        user_agent=rec.get("userAgent", ""),
                        code=int((rec.get("responseStatus") or {}).get("code", 0)),
                        uri=str(rec.get("requestURI", "")),
                        group=str((rec.get("objectRef") or {}).get("apiGroup", "")),
                        namespace=str((rec.get("objectRef") or {}).get("namespace", "")),
                    ))
        return out


def tally(requests: list[Request], start: float, end: float, *, user: str | None = None,
          agent_prefix: str | None = None) -> Counts:
    """Requests received in [start, end) by `user` and/or with a user agent starting with `agent_prefix`."""
    counts = Counts()
    for req in requests:
        if not start <= req.at < end:
            continue
        if user is not None and req.user != user:
            continue
        if agent_prefix is not None and not req.user_agent.startswith(agent_prefix):
            continue
        counts.add(req)
    return counts
