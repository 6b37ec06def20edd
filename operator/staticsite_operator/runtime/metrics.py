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
WATCH_EVENTS = Counter("staticsite_watch_events_total", "Objects the watches brought, by kind, and whether they "
                       "queued a reconcile (news) or not (a re-listing, our own write's echo, a timestamp).",
                       ["kind", "queued"])
QUEUE_DEPTH = Gauge("staticsite_workqueue_depth", "Sites waiting for or under reconcile.")


def count_write(verb: str, kind: str) -> None:
    API_WRITES.labels(verb, kind).inc()


class SitesGauge:
    """staticsite_sites: how many sites are Ready, not Ready, or not yet known.

    Kept incrementally (O(1) per reconcile, not a recount of every site). Called from
    the event loop only.
    """

    def __init__(self) -> None:
        self.ready: dict[tuple[str, str], str] = {}
        self.counts = {"True": 0, "False": 0, "Unknown": 0}
        for label, value in self.counts.items():
            SITES.labels(label).set(value)

    def set(self, key: tuple[str, str], ready: str | None) -> None:
        """`ready`: the site's Ready status, or None once it is gone."""
        old = self.ready.pop(key, None) if ready is None else self.ready.get(key)
        if ready is not None:
            self.ready[key] = ready
        if old == ready:
            return
        for label, delta in ((old, -1), (ready, 1)):
            if label is not None:
                self.counts[label] = self.counts.get(label, 0) + delta
                SITES.labels(label).set(self.counts[label])
