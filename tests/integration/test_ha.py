"""Two replicas against a real API server: one leads, one stands by warm, and they hand over.

The operators run as subprocesses (`python -m staticsite_operator`, as the image does)
with leader election on, a Lease in the test namespace, and their own /healthz and
/readyz. Covered:

- exactly one leads; the standby is ready (caches synced) and healthy while it waits;
- SIGKILL of the leader: the standby leads within 15 s and reconciles a change made
  after the kill;
- SIGTERM of the leader: it releases the Lease (holder emptied) and exits 0, and the
  standby leads within a few seconds, without waiting for the lease to expire;
- never two writers: in the API server's audit log, the writes of each identity (its
  user agent) form a span that overlaps no other's, and a killed replica writes
  nothing after its death.

bench/chaos measures the same under load, 10 failovers, with the Lease's own records.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bench.chaos.fencing import identity

from tests.conftest import AuditLog, Cluster, wait_for
from tests.integration import sites

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("crd")]
LEASE = "staticsite-ha-test"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return 0, {}

    def role(self) -> str | None:
        status, body = self.probe("/readyz")
        return str(body["role"]) if status == 200 and body.get("synced") else None


class Replicas:
    def __init__(self, cluster: Cluster, namespace: str, tmp: Path) -> None:
        self.cluster, self.namespace, self.tmp = cluster, namespace, tmp
        self.all: list[Replica] = []

    def start(self, name: str) -> Replica:
        port = free_port()
        env = dict(os.environ, KUBECONFIG=self.cluster.kubeconfig, POD_ID=name, STATICSITE_NAMESPACES=self.namespace,
                   STATICSITE_HEALTH_PORT=str(port), STATICSITE_METRICS_PORT="0", STATICSITE_LISTEN_ADDRESS="127.0.0.1",
                   STATICSITE_LEADER_ELECTION="true", STATICSITE_LEADER_ELECTION_NAMESPACE=self.namespace,
                   STATICSITE_LEADER_ELECTION_LEASE=LEASE, STATICSITE_DRAIN_TIMEOUT="5")
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "staticsite_operator"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        replica = Replica(name, proc, port, log)
        self.all.append(replica)
        return replica

    def alive(self) -> list[Replica]:
        return [r for r in self.all if r.proc.poll() is None]

    def leader(self) -> Replica | None:
        leaders = [r for r in self.alive() if r.role() == "leader"]
        assert len(leaders) <= 1, f"two replicas say they lead: {[r.name for r in leaders]}"
        return leaders[0] if leaders else None

    def stop(self) -> None:
        for r in self.alive():
            r.proc.terminate()
        for r in self.all:
            try:
                r.proc.wait(20)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()


@pytest.fixture
def replicas(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Replicas]:
    group = Replicas(cluster, namespace, tmp_path)
    try:
        yield group
    finally:
        group.stop()


def lease_holder(cluster: Cluster, namespace: str) -> str | None:
    lease = cluster.kubectl_json("-n", namespace, "get", "lease", LEASE)
    return lease["spec"].get("holderIdentity")


def test_one_leads_the_other_stands_by_and_they_hand_over(cluster: Cluster, namespace: str, replicas: Replicas,
                                                        audit: AuditLog) -> None:
    first, second = replicas.start("op-a"), replicas.start("op-b")
    wait_for(lambda: sorted(filter(None, (first.role(), second.role()))) == ["leader", "standby"], timeout=60,
             what="one leader and one standby, both with synced caches")
    leader = replicas.leader()
    assert leader is not None
    standby = second if leader is first else first
    assert standby.probe("/healthz")[0] == 200, "standing by is healthy"
    holder = lease_holder(replicas.cluster, namespace)
    assert holder is not None and holder.startswith(f"{leader.name}_")

    sites.apply(cluster, sites.site("web", namespace))
    sites.wait_ready(cluster, namespace, "web")

    # SIGKILL: no release; the standby waits out the lease (10 s) and takes over.
    leader.proc.kill()
    killed_at = time.time()
    t0 = time.monotonic()
    wait_for(lambda: standby.role() == "leader", timeout=20, interval=0.1, what="the standby to take over")
    assert time.monotonic() - t0 <= 15
    sites.apply(cluster, sites.site("web", namespace, replicas=2))
    obj = sites.wait_ready(cluster, namespace, "web")
    assert obj["status"]["readyReplicas"] == 2, "the new leader reconciled the change"

    # SIGTERM: the leader releases the Lease on its way out; the next one need not wait for expiry.
    third = replicas.start("op-c")
    wait_for(lambda: third.role() == "standby", timeout=60, what="a new standby")
    standby.proc.terminate()
    t0 = time.monotonic()
    wait_for(lambda: third.role() == "leader", timeout=20, interval=0.1, what="a handover")
    handover = time.monotonic() - t0
    assert standby.proc.wait(20) == 0
    assert handover < 6, f"a graceful handover took {handover:.1f}s: was the Lease released?"
    assert "released Lease" in standby.log.read_text()
    holder = lease_holder(replicas.cluster, namespace)
    assert holder is not None and holder.startswith("op-c_")

    sites.apply(cluster, sites.site("web", namespace, replicas=1))
    sites.wait_ready(cluster, namespace, "web")
    time.sleep(2)
    spans: dict[str, list[float]] = {}
    for write in audit.writes(user_agent_prefixes=("staticsite-operator",)):
        if write.namespace == namespace and (who := identity(write.user_agent)):
            spans.setdefault(who, []).append(write.at)
    assert len(spans) >= 2, spans.keys()
    ordered = sorted((min(t), max(t), who) for who, t in spans.items())
    for (_, end, who), (start, _, nxt) in itertools.pairwise(ordered):
        assert end < start, f"{who} wrote until {end}, after {nxt} began at {start}"
    killed = [ts for who, ts in spans.items() if who.startswith(f"{leader.name}_")]
    assert all(t < killed_at for ts in killed for t in ts), "a killed replica's write reached the API server later"


def test_a_replica_that_cannot_lead_never_writes(cluster: Cluster, namespace: str, replicas: Replicas,
                                                 audit: AuditLog) -> None:
    """The Lease is held by someone else (a foreign holder renewing it): our replica stands by,
    ready, and sends no write however its queue fills."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": LEASE, "namespace": namespace},
             "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3600, "renewTime": now,
                      "acquireTime": now}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(lease))
    replica = replicas.start("op-x")
    wait_for(lambda: replica.role() == "standby", timeout=60, what="a standby")
    sites.apply(cluster, sites.site("idle", namespace))
    time.sleep(8)
    assert replica.role() == "standby"
    site = sites.get(cluster, namespace, "staticsite", "idle")
    assert site is not None and not (site.get("status") or {}).get("conditions"), "a standby wrote a status"
    assert sites.get(cluster, namespace, "deployment", "idle") is None
    written = [w for w in audit.writes(user_agent_prefixes=("staticsite-operator",)) if w.namespace == namespace]
    assert written == [], [f"{w.verb} {w.uri}" for w in written]
    # The holder lets go: ours takes over and catches up with what it queued while standing by.
    cluster.kubectl("-n", namespace, "delete", "lease", LEASE)
    wait_for(lambda: replica.role() == "leader", timeout=20, what="a takeover once the Lease is gone")
    sites.wait_ready(cluster, namespace, "idle")
