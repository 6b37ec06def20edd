"""High availability: two replicas, the leader killed again and again while sites keep changing.

Two operator processes run, each through its own pass-through proxy (so each one's
API requests are counted apart). While a churn thread changes a seeded random site's
content several times a second:

- the leader is SIGKILLed `kills` times; each time the standby's takeover is timed
  (from the kill until its /readyz says "leader"), and a new replica is started in
  place of the dead one and waited for until it stands by with synced caches;
- the leader is stopped gracefully (SIGTERM) `handovers` times, timed the same way:
  it finishes its reconciles and releases the Lease, so no lease expiry is waited for;
- the leader is cut off from the API server (its proxy resets every connection)
  `partitions` times for `partition_s`: it cannot renew, so its fence closes and it
  must stop writing before the standby, which still reaches the API server, takes
  over when the lease expires; timed from the cut until the standby leads. After
  the partition the old leader must come back as a standby (never a second leader).

Then the churn stops, every site must converge and every invariant hold, and the audit
log must show no write by a replica that did not hold the Lease (fencing.py). In a
quiet window at the end, the standby's memory and API requests are measured beside
the leader's: what a second replica costs.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..cluster import OPERATOR_USER
from ..measure import settle
from ..operator_process import OperatorProcess
from ..procstat import memory_kib
from ..timing import summary
from .fencing import Fencing, check
from .harness import LEASE, LEASE_DURATION, Harness
from .invariants import Findings, check_children, check_decoys, check_sites
from .proxy import ProxyProcess
from .workload import Workload

QUIET_S = 30.0


@dataclass
class HaResult:
    kills: list[float] = field(default_factory=list)        # takeover seconds after a SIGKILL
    handovers: list[float] = field(default_factory=list)    # takeover seconds after a SIGTERM
    partitions: list[float] = field(default_factory=list)   # takeover seconds after the leader was cut off
    rejoins: list[float] = field(default_factory=list)      # seconds from a partition's end to "standby"
    changes: int = 0
    converged: bool = False
    fencing: Fencing = field(default_factory=Fencing)
    findings: Findings = field(default_factory=Findings)
    standby: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def ok(self) -> bool:
        return (self.converged and self.findings.ok() and not self.fencing.double_writes
                and not self.fencing.unattributed and self.error is None
                and all(t <= 15 for t in self.kills + self.partitions))

    def as_dict(self) -> dict[str, Any]:
        return {"sigkill_takeover": summary(self.kills) | {"all_s": [round(t, 2) for t in self.kills]},
                "graceful_takeover": summary(self.handovers) | {"all_s": [round(t, 2) for t in self.handovers]},
                "partition_takeover": summary(self.partitions) | {"all_s": [round(t, 2) for t in self.partitions]},
                "partition_rejoin": summary(self.rejoins) | {"all_s": [round(t, 2) for t in self.rejoins]},
                "changes_during_failovers": self.changes, "converged": self.converged,
                "fencing": self.fencing.as_dict(), "invariants": self.findings.as_dict(),
                "standby_cost": self.standby, "error": self.error, "ok": self.ok()}


def _role(op: OperatorProcess) -> str | None:
    ready = op.readiness() or {}
    return str(ready.get("role")) if ready.get("synced") else None


def _takeover(old: OperatorProcess, others: list[OperatorProcess], how: signal.Signals) -> float:
    """Signal the leader; seconds until another replica says it leads."""
    assert old.proc is not None
    old.proc.send_signal(how)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if any(_role(op) == "leader" for op in others):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise TimeoutError(f"no replica took over within 60s of {how.name}")


def _replace(h: Harness, old: OperatorProcess, proxy: ProxyProcess) -> None:
    """Wait for `old` to exit, start a new replica on its proxy, wait until it stands by."""
    if old.proc is not None:
        old.proc.wait(60)
    new = h.start_operator(proxy)
    h.wait_role(new, ("standby",), timeout=180)


def _partition(h: Harness, seconds: float) -> tuple[float, float]:
    """Cut the leader off for `seconds`: (seconds until another replica leads, seconds from the partition's
    end until the old leader stands by again)."""
    leader = h.leader()
    if leader is None:
        raise RuntimeError("no leader")
    proxy = next(p for op, p in h.replicas if op is leader)
    others = [op for op, _ in h.replicas if op is not leader]
    proxy.partition(seconds)
    t0 = time.monotonic()
    took = None
    while time.monotonic() - t0 < seconds + 60:
        if took is None and any(_role(op) == "leader" for op in others):
            took = time.monotonic() - t0
        if took is not None and time.monotonic() - t0 >= seconds:
            break
        time.sleep(0.02)
    if took is None:
        raise TimeoutError(f"no replica took over within {seconds + 60:.0f}s of a partition of the leader")
    ended = t0 + seconds
    h.wait_role(leader, ("standby",), timeout=120)
    return took, time.monotonic() - ended


def run(h: Harness, work: Workload, *, kills: int, handovers: int, seed: int, partitions: int = 0,
        partition_s: float = 20.0) -> HaResult:
    out = HaResult()
    h.stop_all()
    # The audited window opens before the replicas start: the fencing check learns who holds
    # the Lease from its acquisition. Opened after it, the first leader's first writes (before
    # its first renewal) were counted as a writer with no Lease.
    mark, wall0 = h.audit.mark(), time.time()
    for _ in range(2):
        h.start_operator(h.proxy())
    h.wait_role(h.replicas[0][0], ("leader", "standby"), timeout=180)
    h.wait_role(h.replicas[1][0], ("leader", "standby"), timeout=180)
    stop = threading.Event()
    rng = random.Random(seed)
    if work.watcher is not None:
        work.watcher.reset()

    def churn() -> None:
        base = max(work.version.values(), default=0) + 1
        while not stop.is_set():
            work.apply(rng.choice(work.names), base + out.changes)
            out.changes += 1
            stop.wait(0.2)

    churner = threading.Thread(target=churn, name="churn", daemon=True)
    churner.start()
    try:
        for i in range(kills + handovers):
            leader = h.leader()
            if leader is None:
                raise RuntimeError("no leader")
            how = signal.SIGKILL if i < kills else signal.SIGTERM
            others = [op for op, _ in h.replicas if op is not leader]
            proxy = h.retire(leader)
            took = _takeover(leader, others, how)
            (out.kills if how == signal.SIGKILL else out.handovers).append(took)
            h.progress(f"ha: {how.name} {i + 1}: the standby took over in {took:.2f}s")
            _replace(h, leader, proxy)
        for i in range(partitions):
            took, rejoined = _partition(h, partition_s)
            out.partitions.append(took)
            out.rejoins.append(rejoined)
            h.progress(f"ha: partition {i + 1}: the standby took over in {took:.2f}s; the old leader stood by "
                       f"again {rejoined:.2f}s after the partition")
    except Exception as exc:  # reported, and the checks still run
        out.error = f"{type(exc).__name__}: {exc}"
        h.progress(f"ha: {out.error}")
    stop.set()
    churner.join(10)
    converged = work.wait_ready(time.monotonic() + 300, h.progress, "ha: converging")
    out.converged = converged is not None
    leader = h.leader()
    if leader is not None:
        settle(leader, quiet=2.0, limit=60.0)
    out.standby = _standby_cost(h)
    wall_end = time.time()
    check_sites(h.driver, work.namespace, work.wanted, out.findings)
    check_children(h.driver, work.namespace, work.decoys, out.findings)
    if work.decoys is not None:
        check_decoys(work.decoys, out.findings)
    requests = [r for r in h.operator_requests(mark) if wall0 <= r.at < wall_end]
    out.fencing = check(requests, OPERATOR_USER, LEASE, LEASE_DURATION)
    quiet_from = wall_end - QUIET_S
    out.findings.writes_after = [f"{r.verb} {r.uri.split('?')[0]}" for r in requests
                                 if r.is_write and r.resource != "leases" and r.at >= quiet_from]
    return out


def _standby_cost(h: Harness) -> dict[str, Any]:
    """Over a quiet window: each replica's RSS and the requests its proxy saw, per minute."""
    start = {id(p): p.second() for _, p in h.replicas}
    time.sleep(QUIET_S)
    out: dict[str, Any] = {"window_s": QUIET_S}
    for op, proxy in h.replicas:
        role = _role(op) or "unknown"
        forwarded = proxy.stats().forwarded
        requests = sum(forwarded[s] for s in range(start[id(proxy)], proxy.second()))
        rss = memory_kib(op.pid).get("VmRSS", 0)
        out[role] = {"rss_mib": round(rss / 1024, 1), "requests_per_min": round(requests * 60 / QUIET_S, 1)}
    return out
