"""The pool's Prometheus series, from its agent (one set per pool pod)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SITES = Gauge("staticsite_pool_sites", "Sites this pool pod serves.")
REJECTED = Gauge("staticsite_pool_rejected_sites", "Sites whose current revision this pod refused (nginx -t).")
RELOADS = Counter("staticsite_pool_reloads_total", "Graceful nginx reloads, by result.", ["result"])
RELOAD_SECONDS = Histogram(
    "staticsite_pool_reload_duration_seconds",
    "From the start of a batch (files written, nginx -t) to nginx serving the new generation.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
DISK_BYTES = Gauge("staticsite_pool_disk_bytes", "Bytes of site files on this pod's disk.")
