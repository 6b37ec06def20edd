"""The CLI's one module that talks to the Kubernetes API (the operator has its own,
clients/kube.py, tuned for a controller): load the kubeconfig as kubectl does, server-side
apply a StaticSite, read it, its Events, delete it. Every API failure becomes a `CliError`
whose message says what to do next.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from ..api import models

FIELD_MANAGER = "staticsite-cli"
TIMEOUT = (5, 30)  # connect, read (seconds): a dead cluster is reported, not waited on


class CliError(Exception):
    """What went wrong, and what to do about it; the CLI prints it and exits 1."""


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient
    namespace: str  # the context's namespace, as kubectl picks it
    server: str

    # --- StaticSites -------------------------------------------------------------------
    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with the CLI's field manager; forced, since `deploy` means "this
        folder is the site" (fields other managers own, such as a kubectl edit, are taken over)."""
        meta = manifest["metadata"]
        return self._call("PATCH", _site_path(meta["namespace"], meta["name"]), body=manifest,
                          query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                          content_type="application/apply-patch+yaml", what=f"apply StaticSite {meta['name']}")

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", _site_path(namespace, name), what=f"read StaticSite {name}")
        except _NotFound:
            return None

    def sites(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", selector)] if selector else []
        found = self._call("GET", _site_path(namespace, None), query=query, what="list StaticSites")
        return list(found.get("items") or [])

    def delete(self, namespace: str, name: str) -> bool:
        try:
            self._call("DELETE", _site_path(namespace, name), what=f"delete StaticSite {name}")
        except _NotFound:
            return False
        return True

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events about the StaticSite, oldest first."""
        selector = f"involvedObject.kind={models.KIND},involvedObject.name={name}"
        found = self._call("GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
                           query=[("fieldSelector", selector)], what="list Events")
        items = list(found.get("items") or [])
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    # --- plumbing ----------------------------------------------------------------------
    def _call(self, method: str, path: str, *, what: str, body: Any = None,
              query: list[tuple[str, str]] | None = None, content_type: str = "application/json") -> dict[str, Any]:
        # As clients/kube.py: raw JSON in and out through the official client's ApiClient
        # (the body is JSON-encoded for the apply content type too).
        _, url, headers, _, _ = self.api.param_serialize(
            method, path, query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=TIMEOUT)
            data = resp.read()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:  # connection-level failures
            raise CliError(f"cannot reach the Kubernetes API server at {self.server} ({_short(exc)}): is the "
                           "cluster running? Check with `kubectl cluster-info`, or pick another cluster with "
                           "--context / --kubeconfig") from None
        if not 200 <= resp.status < 300:
            raise _api_error(resp.status, data, what, self)
        return json.loads(data) if data else {}


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class _NotFound(CliError):
    pass


def _site_path(namespace: str, name: str | None) -> str:
    # Names from the command line are path segments, never more (a '/' or '..' stays in its segment).
    base = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{quote(namespace, safe='')}/{models.PLURAL}"
    return base if name is None else f"{base}/{quote(name, safe='')}"


def _api_error(code: int, data: bytes, what: str, cluster: Cluster) -> CliError:
    try:
        status = json.loads(data or b"{}")
    except ValueError:
        status = {}
    message = status.get("message") or ""
    details = status.get("details") or {}
    if code == 404:
        if details.get("kind") == "namespaces":
            return CliError(f"cannot {what}: namespace {details.get('name')!r} does not exist; create it "
                            f"(kubectl create namespace {details.get('name')}) or pick another with -n")
        if not details.get("name"):  # the resource type itself is unknown: no CRD
            return CliError(f"cannot {what}: the StaticSite CRD ({models.PLURAL}.{models.GROUP}) is not installed "
                            f"in the cluster at {cluster.server}. Install the operator "
                            "(helm install staticsite-operator charts/staticsite-operator) or its CRD "
                            "(kubectl apply --server-side -f crds/), or pick another cluster with --context")
        return _NotFound(f"cannot {what}: not found")
    if code in (401, 403):
        return CliError(f"cannot {what}: {message or 'forbidden'}. Ask for access, or check it with "
                        f"`kubectl auth can-i patch {models.PLURAL}.{models.GROUP} -n {cluster.namespace}`")
    if code == 422:
        causes = details.get("causes") or []
        lines = [f"  {c.get('field', '')}: {c.get('message', '')}" for c in causes] or [f"  {message}"]
        return CliError(f"the cluster refused the StaticSite ({what}):\n" + "\n".join(lines))
    return CliError(f"cannot {what}: {code} {message}".rstrip())


def connect(kubeconfig: str | None = None, context: str | None = None) -> Cluster:
    """A client for the cluster kubectl would use: $KUBECONFIG (or --kubeconfig), the current
    context (or --context) and its namespace; in a pod, its service account."""
    config = kubernetes.client.Configuration()
    namespace = "default"
    # No file given: the client reads $KUBECONFIG (several paths, merged) or ~/.kube/config.
    where = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        if kubeconfig or os.environ.get("KUBECONFIG") or os.path.exists(where):
            kubernetes.config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=config)
            contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                active = next(c for c in contexts if c["name"] == context)
            namespace = (active.get("context") or {}).get("namespace") or "default"
        else:
            kubernetes.config.load_incluster_config(client_configuration=config)
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                namespace = f.read().strip()
    except (kubernetes.config.ConfigException, OSError, StopIteration) as exc:
        raise CliError(f"no Kubernetes cluster configured (kubeconfig {where}: {exc}): set KUBECONFIG or pass "
                       "--kubeconfig and --context, as for kubectl (`kubectl config get-contexts` lists "
                       "them)") from None
    config.retries = 1
    api = kubernetes.client.ApiClient(config)
    api.user_agent = f"{FIELD_MANAGER}/{_version()}"
    return Cluster(api, namespace, config.host)


def _version() -> str:
    from .. import __version__  # noqa: PLC0415 - only here, to name the client
    return __version__
