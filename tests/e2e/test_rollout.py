"""A content update rolls out with no failed request, seen from the host through the Service.

A two-replica site is changed while a request loop runs from the host against its
Service's ClusterIP (kube-proxy's iptables rules on the real node pick a pod for each
new connection). The loop is bounded (ROLL_SECONDS and MAX_REQUESTS) and lasts until the
new pods have served alone for a while, so it spans the whole replacement of the old
pods, their termination included. Every response must be 200 with exactly the old or
the new page, and the loop must see both; a refused or reset connection is a failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster, wait_for
from tests.e2e import kit
from tests.integration import sites

OLD = "<!doctype html><title>v1</title><p>the old page</p>\n"
NEW = "<!doctype html><title>v2</title><p>the new page</p>\n"
ROLL_SECONDS = 90
MAX_REQUESTS = 20_000
SETTLE_SECONDS = 15  # after the last old pod is gone: endpoint removal races show up here
PAUSE = 0.005  # between requests: about 150 a second, so the node's two cores keep up


class Loop(threading.Thread):
    """GET / on a new connection each time, until stopped or a bound is hit."""

    def __init__(self, host: str) -> None:
        super().__init__(daemon=True)
        self.host = host
        self.stop = threading.Event()
        self.results: list[tuple[float, str]] = []  # (time, "old" | "new" | what went wrong)

    def run(self) -> None:
        for _ in kit.bounded_loop(ROLL_SECONDS, MAX_REQUESTS):
            if self.stop.is_set():
                return
            try:
                resp = kit.request(self.host, 80, "/", timeout=2)
                outcome = ("old" if resp.body == OLD else "new" if resp.body == NEW
                           else f"HTTP {resp.status}: {resp.body[:80]!r}")
                if resp.status != 200:
                    outcome = f"HTTP {resp.status}: {resp.body[:80]!r}"
            except OSError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            self.results.append((time.monotonic(), outcome))
            time.sleep(PAUSE)


@pytest.fixture
def site(cluster: Cluster, operator: kit.OperatorRelease, node: str) -> Iterator[tuple[str, str]]:
    operator.ensure()
    with kit.namespace(cluster, "e2e-rollout") as ns:
        sites.apply(cluster, sites.site("roll", ns, {"index.html": OLD}, replicas=2))
        kit.wait_site_ready(cluster, ns, "roll", timeout=120)
        yield ns, "roll"


def answers(ip: str) -> bool:
    try:
        return kit.request(ip, 80, "/", timeout=2).body == OLD
    except OSError:
        return False


# Measured on the real node (docs/local-cluster.md): without a preStop delay, each old
# pod stops listening as soon as it is marked for deletion, while kube-proxy still sends
# it new connections for up to a second: 10-20 refused connections per rollout. With
# `lifecycle: {preStop: {sleep: {seconds: 5}}}` on the nginx container the same rollout
# had none. strict: once the operator renders the delay this passes, and the marker must go.
def test_content_update_rolls_out_without_a_failed_request(cluster: Cluster, site: tuple[str, str]) -> None:
    ns, name = site
    ip = kit.cluster_ip(cluster, ns, name)
    # kube-proxy programs a new Service within a second or so of its endpoints: that is
    # not the rollout, so the loop starts once the Service answers.
    wait_for(lambda: answers(ip), timeout=30, interval=0.5, what=f"the Service {ip} to answer")
    old_pods = {p["metadata"]["name"] for p in kit.pods(cluster, ns, kit.site_selector(name))}
    loop = Loop(ip)
    loop.start()
    try:
        wait_for(lambda: len(loop.results) >= 50, timeout=20, what="the loop to get going")
        sites.apply(cluster, sites.site(name, ns, {"index.html": NEW}, replicas=2))
        kit.wait_site_ready(cluster, ns, name, timeout=ROLL_SECONDS - 20)

        def old_pods_gone() -> bool:
            return not old_pods & {p["metadata"]["name"] for p in kit.pods(cluster, ns, kit.site_selector(name))}

        wait_for(old_pods_gone, timeout=60, what="the old pods to be deleted")
        time.sleep(SETTLE_SECONDS)
    finally:
        loop.stop.set()
        loop.join(timeout=10)
    outcomes = Counter(outcome for _, outcome in loop.results)
    failures = {k: v for k, v in outcomes.items() if k not in ("old", "new")}
    print(f"rollout loop: {len(loop.results)} requests, {dict(outcomes)}")
    assert not failures, f"failed or unexpected responses during the rollout: {failures} (of {dict(outcomes)})"
    assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes
    assert loop.results[-1][1] == "new", "the loop ended before the new page was served"
