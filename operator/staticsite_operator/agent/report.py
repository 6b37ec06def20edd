"""This pod's report: per site, the revision it serves, or the one it refused and why.

One ConfigMap per pool pod, in the pool's namespace, owned by the pod (it goes with
it), server-side applied only when its content changes: a quiet pool writes nothing.
The operator reads every report of a pool to set each site's Ready and PoolRejected.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..clients.kube import Kube
from ..core import pool as pl

log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, kube: Kube, pool: str, namespace: str, pod: str, pod_uid: str) -> None:
        self.kube = kube
        self.pool, self.namespace, self.pod, self.pod_uid = pool, namespace, pod, pod_uid
        self.sent: dict[str, str] | None = None

    def body(self, states: dict[str, dict[str, str]]) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": pl.report_name(self.pool, self.pod), "namespace": self.namespace,
                                "labels": pl.pool_labels(self.pool, pl.REPORT)}
        if self.pod_uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": self.pod, "uid": self.pod_uid}]
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {site: json.dumps(state, sort_keys=True, separators=(",", ":"))
                         for site, state in sorted(states.items())}}

    def send(self, states: dict[str, dict[str, str]]) -> bool:
        """Write the report if it changed; True when it was written."""
        body = self.body(states)
        if body["data"] == self.sent:
            return False
        self.kube.apply(body)
        self.sent = body["data"]
        return True

    def withdraw(self) -> None:
        """A pod that stops cleanly takes its report with it (without an owner, nothing else would)."""
        name = pl.report_name(self.pool, self.pod)
        found = self.kube.get("ConfigMap", self.namespace, name)
        if found is not None:
            self.kube.delete("ConfigMap", self.namespace, name, found["metadata"]["uid"])
