"""A thin raw-JSON Kubernetes client for the bench driver and the floor.

It is the official client's ApiClient (urllib3, pooled keep-alive connections) with
JSON in and out, as the operator's kube.py does, but it is separate from it on purpose:
the bench must not depend on the code it measures, other than `render` for the floor.
Every call is bounded by a timeout. The user agent tells the bench's own writes apart
in the audit log (the admin certificate is shared with the control plane's components).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from staticsite_operator.core import kinds

# Only partly annotated; as Any, its calls type-check without a per-module mypy override.
k8s: Any = kubernetes

DRIVER_AGENT = "staticsite-bench/driver"
FLOOR_AGENT = "staticsite-bench/floor"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def collection(api_version: str, plural: str, namespace: str | None = None) -> str:
    """The URL path of a collection, namespaced when `namespace` is given."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def object_path(obj: dict[str, Any]) -> str:
    """The URL path of an object from its apiVersion, kind and metadata."""
    plural = PLURALS[obj["kind"]]
    return f"{collection(obj['apiVersion'], plural, obj['metadata'].get('namespace'))}/{obj['metadata']['name']}"


# The operator's one table of kinds (core.kinds), plus what only the bench creates.
PLURALS = {k.kind: k.plural for k in kinds.BY_NAME.values()} | {"Namespace": "namespaces"}


class Client:
    """Raw JSON requests over one pooled ApiClient; safe to share between threads."""

    def __init__(self, kubeconfig: str, user_agent: str, pool: int = 16) -> None:
        config = k8s.client.Configuration()
        k8s.config.load_kube_config(config_file=kubeconfig, client_configuration=config)
        # One keep-alive connection per thread that may use this client at the same time.
        config.connection_pool_maxsize = pool
        self.api: Any = k8s.client.ApiClient(config)
        self.api.user_agent = user_agent

    def _open(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json", timeout: float | tuple[float, float] = 60) -> Any:
        _, url, headers, _, _ = self.api.param_serialize(
            method, path, query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            return self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        except ApiException as exc:
            raise ApiError(exc.status or 0, str(exc.reason)) from None

    def request(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
                content_type: str = "application/json", timeout: float = 60) -> dict[str, Any]:
        resp = self._open(method, path, body=body, query=query, content_type=content_type, timeout=timeout)
        data = resp.read()
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, (data or b"").decode(errors="replace")[:500])
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    def apply(self, obj: dict[str, Any], manager: str, *, force: bool = False) -> dict[str, Any]:
        """Server-side apply: one PATCH that creates or updates."""
        query = [("fieldManager", manager)] + ([("force", "true")] if force else [])
        return self.request("PATCH", object_path(obj), body=obj, query=query,
                            content_type="application/apply-patch+yaml")

    def count(self, path: str, selector: str | None = None) -> int:
        """How many objects a collection holds, from a one-item page (cheap at any size)."""
        query = [("limit", "1")] + ([("labelSelector", selector)] if selector else [])
        page = self.request("GET", path, query=query)
        return len(page.get("items") or []) + int(page.get("metadata", {}).get("remainingItemCount") or 0)

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> WatchStream:
        """Open a watch from `resource_version`; the server ends it after timeout_seconds."""
        query = [("watch", "1"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", str(timeout_seconds))]
        # The read timeout outlives the server's own: a silent stream still ends in bounded time.
        resp = self._open("GET", path, query=query, timeout=(5, timeout_seconds + 10))
        if resp.status != 200:
            raise ApiError(resp.status, resp.read().decode(errors="replace")[:500])
        return WatchStream(resp.response)

    def close(self) -> None:
        self.api.close()


class WatchStream:
    """The events of one watch request; `shutdown` ends it from another thread."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw  # a urllib3 HTTPResponse opened with preload_content=False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buffer = b""
        try:
            for chunk in self.raw.stream(65536, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            self.raw.release_conn()

    def shutdown(self) -> None:
        self.raw.shutdown()  # unblocks a read in progress (urllib3 >= 2.3)
