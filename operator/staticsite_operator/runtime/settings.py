"""kopf's settings for a quiet, level-based operator. Each one is a decision; the comment says why."""

from __future__ import annotations

import logging
from typing import Any

from ..core import kinds
from ..core import labels as lbl


def configure(settings: Any, *, watch_timeout: int, kopf_log_level: str, inactivity_timeout: float = 70.0) -> None:
    """Tune a kopf.OperatorSettings."""
    # kopf's peering writes a heartbeat object every minute and freezes replicas of equal
    # priority; it buys nothing for one replica.
    settings.peering.standalone = True
    # kopf would turn every handler log line into an Event (a write). We post our own
    # Events, on transitions only.
    settings.posting.enabled = False
    # No cluster-wide scanning of Namespaces and CRDs: the chart's least-privilege RBAC
    # grants neither, and without this kopf retries the namespace listing for about a
    # minute before reconciling anything. Namespaces are given by exact name instead.
    settings.scanning.disabled = True
    # Only our children stream (a server-side label selector), never every Deployment in
    # the cluster; pods only if they fetch content.
    for kind in (*kinds.CHILD_KINDS, *kinds.POOL_KINDS):
        key = (kind.group, kind.version, kind.plural) if kind.group else (kind.version, kind.plural)
        settings.watching.label_selectors[key] = lbl.WATCH_SELECTOR
    settings.watching.label_selectors[kinds.POD.version, kinds.POD.plural] = lbl.PODS_WATCH_SELECTOR
    # List in small pages: each kind's listing is read and parsed a whole page at a time, and
    # at a start every kind lists at once. What a page costs stays in the process (Python
    # keeps the memory it grew into): a restart over 1000 sites peaked at 206 MiB with pages
    # of 1000, 123 MiB with 200, 110 with 100 and 101 with 50 (25: no lower), every site
    # checked within 3.3 to 5.2 s at each size. The price is at 10,000 sites: 4x the list
    # requests before the first pass (821 against 221; a restart in 47 s, within its 60 s
    # target: bench/README.md, "Wave 2").
    settings.watching.chunk_size = 50
    # A watch that delivers nothing, not even the bookmark the API server sends about every
    # 60 s, is dead (a connection a load balancer forgot: kopf #585, #957): kopf re-opens it
    # from its last resourceVersion, missing nothing. This, not the timeouts below, is what
    # bounds a silent stall; bench/chaos measures it (docs/reliability.md).
    settings.watching.inactivity_timeout = inactivity_timeout
    # Reconnect watches even if the server keeps them open: a cheap guard against silent
    # stalls behind load balancers (kopf #585, #957).
    settings.watching.server_timeout = watch_timeout
    settings.watching.client_timeout = watch_timeout + 60
    # A connection that cannot even be opened is retried soon, not after the request timeout.
    settings.watching.connect_timeout = 10
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    # kopf retries a request that fails with a 5xx, a 429 or a lost connection after these
    # pauses, then gives up; a watch that gives up ends the whole operator. Its default
    # (1..21 s, about 54 s in all) is shorter than an API server restart on a busy node
    # (bench/chaos measured 67 s): the process exited, lost its caches, and a Deployment
    # would count it as a crash. Retrying in place for about 10 minutes, at most 30 s apart,
    # costs nothing while the API server is away and keeps the caches warm.
    settings.networking.error_backoffs = (1, 1, 2, 3, 5, 8, 13, 21) + (30,) * 18
    # kopf logs "Handler ... succeeded" for every watch event: thousands of lines an hour
    # that say nothing. Our own log lines say what was applied and why.
    logging.getLogger("kopf.objects").setLevel(kopf_log_level)
