"""The only module that talks to the Kubernetes API (kopf aside, which runs the watches).

The official client loads the configuration (in-cluster or kubeconfig) and builds the
TLS connection pool; requests then go straight to that pool with raw JSON in and out.
We never need the generated model classes, and skipping their (de)serialisation is most
of the CPU an operator like this spends. Nor its per-call layers: `param_serialize`,
`call_api` and the PoolManager cost about a third of each request's CPU, and the auth
refresh a kubeconfig asks for re-read it on every call (profile in bench/README.md).
Writes are server-side apply with one field manager, status merge-patches, deletes with
a UID precondition, and Events. Every write is counted, so tests and the benchmark can
check that idle means silent.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import urllib3

from .. import __version__
from ..api import models
from ..core import kinds
from ..core.labels import FIELD_MANAGER
from ..core.ports import ApiError

__all__ = ["ApiError", "Kube", "WriteCounter"]

USER_AGENT = f"staticsite-operator/{__version__}"
# How long an Authorization header is reused before the client's own refresh hook is asked
# again. In a pod the client re-reads the projected token once a minute, and the kubelet
# rotates it long before it expires, so a few seconds of reuse never sends a stale one.
AUTH_REUSE = 5.0


def _timeout(timeout: float | tuple[float, float]) -> urllib3.Timeout:
    """The client's timeout convention (seconds, or (connect, read)) in urllib3's terms."""
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(total=timeout)


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
    """A thin, typed client for the handful of calls we make, on the official client's
    configuration and connection pool."""

    def __init__(self, api_client: kubernetes.client.ApiClient,
                 on_write: Callable[[str, str], None] | None = None, *,
                 identity: str = "", fence: Callable[[], float] | None = None) -> None:
        self.api = api_client
        self._config: kubernetes.client.Configuration = api_client.configuration
        host = self._config.host.rstrip("/")
        # One host, one pool: asked for once (a PoolManager lookup per call is a URL parse).
        self._http = api_client.rest_client.pool_manager.connection_from_url(host)
        self._prefix = urllib.parse.urlsplit(host).path  # an API server behind a path prefix
        # The identity (a replica's) tells writers apart in the API server's audit log.
        self._user_agent = f"{USER_AGENT} ({identity})" if identity else USER_AGENT
        self._auth: tuple[float, dict[str, str]] = (0.0, {})
        self._auth_lock = threading.Lock()
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

    def _headers(self, content_type: str | None) -> dict[str, str]:
        now = time.monotonic()
        until, auth = self._auth
        if now >= until:
            with self._auth_lock:
                # The client's hook refreshes the token (a pod's, an exec plugin's) when due.
                token = self._config.auth_settings().get("BearerToken", {}).get("value")
                auth = {"Authorization": token} if token else {}
                self._auth = (now + AUTH_REUSE, auth)
        headers = {"Accept": "application/json", "User-Agent": self._user_agent, **auth}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    def _send(self, method: str, path: str, query: list[tuple[str, str]] | None, body: Any,
              content_type: str | None, timeout: float | tuple[float, float],
              stream: bool = False) -> urllib3.BaseHTTPResponse:
        url = self._prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")
        # JSON is valid YAML, so an apply's body is JSON too.
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            return self._http.urlopen(method, url, body=data, headers=self._headers(content_type),
                                      timeout=_timeout(timeout), preload_content=not stream, redirect=False)
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out: transient
            raise ApiError(0, type(exc).__name__, str(exc)) from None

    def _call(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json", timeout: float = 30,
              fenced: bool = True) -> dict[str, Any] | None:
        if fenced and self.fence is not None and method != "GET":
            timeout = min(timeout, self.fence())  # and a write never outwaits the lease it was sent under
        resp = self._send(method, path, query, body, content_type if body is not None else None, timeout)
        data = resp.data
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
        resp = self._send("GET", path, [*query, ("watch", "1"), ("timeoutSeconds", str(timeout))], None, None,
                          (10, timeout + 30), stream=True)
        try:
            if resp.status != 200:
                raise ApiError(resp.status, resp.reason or "", (resp.read() or b"").decode(errors="replace")[:500])
            buffer = b""
            for chunk in resp.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except urllib3.exceptions.HTTPError as exc:  # the stream broke: transient
            raise ApiError(0, type(exc).__name__, str(exc)) from None
        finally:
            resp.release_conn()

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
