"""The only module that talks to the Kubernetes API (kopf aside, which runs the watches).

Calls go through the official client's ApiClient with raw JSON in and out: we never
need the generated model classes, and skipping their (de)serialisation is most of
the CPU an operator like this spends. Writes are server-side apply with one field
manager, status merge-patches, deletes with a UID precondition, and Events.
Every write is counted, so tests and the benchmark can check that idle means silent.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from .. import __version__
from ..api import models
from ..core import kinds
from ..core.labels import FIELD_MANAGER
from ..core.ports import ApiError

__all__ = ["ApiError", "Kube", "WriteCounter"]

USER_AGENT = f"staticsite-operator/{__version__}"


class WriteCounter:
    """Counts this process's write requests by (verb, kind); thread-safe. `on_write` is
    told of each one (the runtime's staticsite_api_writes_total)."""

    def __init__(self, on_write: Callable[[str, str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._on_write = on_write
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, verb: str, kind: str) -> None:
        with self._lock:
            self.counts[verb, kind] = self.counts.get((verb, kind), 0) + 1
        if self._on_write is not None:
            self._on_write(verb, kind)

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


class Kube:
    """A thin, typed wrapper over ApiClient.call_api for the handful of calls we make."""

    def __init__(self, api_client: kubernetes.client.ApiClient,
                 on_write: Callable[[str, str], None] | None = None, *,
                 identity: str = "", fence: Callable[[], float] | None = None) -> None:
        self.api = api_client
        # The identity (a replica's) tells writers apart in the API server's audit log.
        self.api.user_agent = f"{USER_AGENT} ({identity})" if identity else USER_AGENT
        self.writes = WriteCounter(on_write)
        # Called before every write: raises when this replica may not write, else the seconds it may
        # still write for (runtime.leader). None: always allowed.
        self.fence = fence

    @classmethod
    def from_environment(cls, pool_size: int = 16, on_write: Callable[[str, str], None] | None = None, *,
                         identity: str = "", fence: Callable[[], float] | None = None) -> Kube:
        """In-cluster config when running in a pod, else $KUBECONFIG / ~/.kube/config."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            # The client reads $KUBECONFIG when it is imported; read it now instead.
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"),
                                               client_configuration=config)
        # One pooled connection per worker thread: no reconnects under load.
        config.connection_pool_maxsize = pool_size
        return cls(kubernetes.client.ApiClient(config), on_write, identity=identity, fence=fence)

    def request(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
                content_type: str = "application/json", timeout: float = 30) -> dict[str, Any] | None:
        """Any other call (runtime.leader's Lease), unfenced and uncounted."""
        return self._call(method, path, body=body, query=query, content_type=content_type, timeout=timeout,
                          fenced=False)

    def _call(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json", timeout: float = 30,
              fenced: bool = True) -> dict[str, Any] | None:
        if fenced and self.fence is not None and method != "GET":
            timeout = min(timeout, self.fence())  # and a write never outwaits the lease it was sent under
        # The client JSON-encodes the body for both JSON and structured-YAML (apply) content
        # types; only json-patch+json would be rewritten, and we never send that.
        _, url, headers, _, _ = self.api.param_serialize(
            method, path, query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
            data = resp.read()
        except ApiException as exc:  # connection-level failures
            raise ApiError(exc.status or 0, exc.reason or "ConnectionError", str(exc)) from None
        except urllib3.exceptions.HTTPError as exc:  # a timeout or reset while reading the body: transient too
            raise ApiError(0, type(exc).__name__, str(exc)) from None
        if not 200 <= resp.status < 300:
            try:
                detail = json.loads(data or b"{}")
            except ValueError:
                detail = {}
            raise ApiError(resp.status, detail.get("reason", resp.reason or ""),
                           detail.get("message", (data or b"").decode(errors="replace")[:500]))
        return json.loads(data) if data else None

    def get_json(self, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """A GET of any path (a list, say), as JSON."""
        return self._call("GET", path, query=query) or {}

    def watch(self, path: str, query: list[tuple[str, str]], timeout: int) -> Iterator[dict[str, Any]]:
        """The events of a watch (`?watch=1` added), as they arrive, until the server ends it."""
        _, url, headers, _, _ = self.api.param_serialize(
            "GET", path, query_params=[*query, ("watch", "1"), ("timeoutSeconds", str(timeout))],
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api("GET", url, header_params=headers, _request_timeout=(10, timeout + 30))
        except ApiException as exc:
            raise ApiError(exc.status or 0, exc.reason or "ConnectionError", str(exc)) from None
        if resp.status != 200:
            raise ApiError(resp.status, resp.reason or "", (resp.read() or b"").decode(errors="replace")[:500])
        try:
            buffer = b""
            for chunk in resp.response.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.response.release_conn()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", kinds.BY_NAME[kind].path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def served(self, kind: kinds.Kind) -> bool:
        """Whether the API server serves `kind` (API discovery, open to every authenticated user)
        and, for a cluster-scoped kind, lets us list it."""
        base = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
        try:
            found = self._call("GET", base) or {}
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        if not any(r.get("name") == kind.plural for r in found.get("resources") or []):
            return False
        if kind.namespaced:
            return True
        # A cluster-scoped kind also needs the right to list it (the chart grants the
        # StaticSitePools only with pools.enabled): a watch refused with 403 would hold the
        # operator's start, waiting for a listing that never comes. Asked, not tried: a
        # SelfSubjectAccessReview (open to every authenticated user) leaves no refused
        # request in the audit log.
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"group": kind.group, "resource": kind.plural, "verb": "list"}}}
        # Unfenced: a review stores nothing, and a standby must know what to watch before it leads.
        answer = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review,
                            fenced=False) or {}
        return bool((answer.get("status") or {}).get("allowed"))

    def apply(self, obj: dict[str, Any], *, if_absent: bool = False) -> dict[str, Any]:
        """Server-side apply `obj` as our field manager, taking over conflicting fields.

        force=True is right for fields we own by design (a user who edits our Deployment's
        image gets it put back); what the user owns is never sent, so it is never touched.

        if_absent: create it, but answer 409 if an object of that name exists, so that
        someone else's namesake is never overwritten, and without a GET first. An apply
        with a resourceVersion is a precondition on an existing object, and is ignored
        when the apply creates one; no object ever has resourceVersion 1 (etcd's first
        revision goes to the cluster's bootstrap), so an existing one always conflicts.
        """
        kind, meta = obj["kind"], obj["metadata"]
        if if_absent:
            obj = {**obj, "metadata": {**meta, "resourceVersion": "1"}}
        self.writes.add("apply", kind)
        result = self._call("PATCH", kinds.BY_NAME[kind].path(meta["namespace"], meta["name"]), body=obj,
                            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                            content_type="application/apply-patch+yaml")
        assert result is not None
        return result

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete, but only the exact object we saw (UID precondition): never a newer namesake."""
        self.writes.add("delete", kind)
        try:
            self._call("DELETE", kinds.BY_NAME[kind].path(namespace, name),
                       body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.writes.add("patch-status", models.KIND)
        result = self._call("PATCH", kinds.STATICSITE.path(namespace, name) + "/status",
                            body={"status": status}, content_type="application/merge-patch+json")
        assert result is not None
        return result

    def patch_pool_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.writes.add("patch-status", kinds.STATICSITEPOOL.kind)
        result = self._call("PATCH", kinds.STATICSITEPOOL.path(None, name) + "/status",
                            body={"status": status}, content_type="application/merge-patch+json")
        assert result is not None
        return result

    def post_event(self, site: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the StaticSite: what `kubectl describe` shows."""
        meta = site["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": models.KIND,
                "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": f"{models.GROUP}/{FIELD_MANAGER}",
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": now,
            "action": "Reconcile",
            "count": 1,
        }
        self.writes.add("create", "Event")
        self._call("POST", kinds.EVENT.path(meta["namespace"]), body=event)
