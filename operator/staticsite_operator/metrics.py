"""Prometheus metrics: what a platform team graphs and alerts on."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("staticsite_reconcile_total", "Reconciles of StaticSites, by result.", ["result"])
RECONCILE_ERRORS = Counter("staticsite_reconcile_errors_total", "Reconciles that raised and will be retried.")
RECONCILE_SECONDS = Histogram(
    "staticsite_reconcile_duration_seconds", "Time to reconcile one StaticSite.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_WRITES = Counter("staticsite_api_writes_total", "Write requests sent to the API server.", ["verb", "kind"])
SITES = Gauge("staticsite_sites", "StaticSites by the status of their Ready condition.", ["ready"])
QUEUE_DEPTH = Gauge("staticsite_workqueue_depth", "Sites waiting for or under reconcile.")
