"""Operator-wide settings, applied at start-up. Each one is a decision; the comment says why."""

from __future__ import annotations

import logging
import os
from typing import Any

from . import labels, models, render

# The child kinds we watch: (group, version, plural). Only objects with our managed-by
# label are streamed (a server-side selector), never every Deployment in the cluster.
CHILD_RESOURCES: dict[str, tuple[str, str, str]] = {
    "ConfigMap": ("", "v1", "configmaps"),
    "Service": ("", "v1", "services"),
    "Deployment": ("apps", "v1", "deployments"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
}


def site_images() -> render.Images:
    """The images of site pods: STATICSITE_NGINX_IMAGE and STATICSITE_FETCHER_IMAGE override."""
    return render.Images(nginx=os.environ.get("STATICSITE_NGINX_IMAGE") or models.DEFAULT_NGINX_IMAGE,
                         fetcher=os.environ.get("STATICSITE_FETCHER_IMAGE") or models.DEFAULT_FETCHER_IMAGE)


def workers() -> int:
    """Concurrent reconciles (threads doing API calls). STATICSITE_WORKERS overrides."""
    return int(os.environ.get("STATICSITE_WORKERS", "8"))


def metrics_port() -> int:
    """Port of the Prometheus endpoint (0 disables it). STATICSITE_METRICS_PORT overrides."""
    return int(os.environ.get("STATICSITE_METRICS_PORT", "9090"))


def configure(settings: Any) -> None:
    """Tune a kopf.OperatorSettings for a quiet, level-based operator."""
    # One replica with a Recreate strategy (see the chart): kopf's peering writes a
    # heartbeat every minute and freezes equal-priority replicas, which buys nothing here.
    settings.peering.standalone = True
    # kopf would turn every handler log line into an Event (a write). We post our own
    # Events, on transitions only.
    settings.posting.enabled = False
    # No cluster-wide scanning of Namespaces and CRDs: the chart's least-privilege RBAC
    # grants neither, and without this kopf retries the namespace listing for about a
    # minute before reconciling anything. Namespaces are given by exact name instead.
    settings.scanning.disabled = True
    for group, version, plural in CHILD_RESOURCES.values():
        key = (version, plural) if not group else (group, version, plural)
        settings.watching.label_selectors[key] = labels.WATCH_SELECTOR
    settings.watching.label_selectors["v1", "pods"] = labels.PODS_WATCH_SELECTOR
    # List in pages: after a start, each kind's listing would otherwise be one response,
    # read and parsed whole (~9 MB of JSON for 1000 Deployments).
    settings.watching.chunk_size = 200
    # Reconnect watches every 10 minutes even if the server keeps them open: a cheap
    # guard against silent stalls behind load balancers (kopf #585, #957).
    settings.watching.server_timeout = int(os.environ.get("STATICSITE_WATCH_TIMEOUT", "600"))
    settings.watching.client_timeout = settings.watching.server_timeout + 60
    settings.networking.request_timeout = 60
    # kopf logs "Handler ... succeeded" for every watch event: thousands of lines an hour
    # that say nothing. Our own log lines say what was applied and why.
    logging.getLogger("kopf.objects").setLevel(os.environ.get("STATICSITE_KOPF_LOG_LEVEL", "WARNING"))
