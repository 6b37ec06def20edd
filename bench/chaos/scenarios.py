"""One chaos scenario: real work, one fault in the middle of it, then every invariant.

A run applies a workload (N sites created, or the content of all N changed), injects
its fault on a thread at a seeded moment while the operator converges, waits until
every site is Ready at its latest generation, lets the operator settle, watches a
quiet window, and checks the invariants (invariants.py). Everything is bounded in
time: a run that does not converge is reported as such, never waited for forever.

    recovery_s   from the end of the fault (the restart, the API back, the stall over)
                 until the last site was Ready; 0 when all were Ready before it ended
    converge_s   from the first apply until the last site was Ready
    writes       the operator's writes (audit log, Leases apart) from the first apply
                 to the end of the quiet window; excess_writes: minus a clean run's
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..audit import Request
from ..measure import settle
from .harness import Harness
from .invariants import Findings, check_children, check_decoys, check_sites
from .workload import Workload

QUIET_S = 10.0
KWOK = "kwok-controller"


@dataclass
class Record:
    """What a fault did, filled in by its thread."""

    description: str = ""
    at: float | None = None        # monotonic
    at_wall: float | None = None
    end: float | None = None       # monotonic
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def began(self, description: str) -> None:
        self.description, self.at, self.at_wall = description, time.monotonic(), time.time()


Inject = Callable[[Harness, Record], None]


@dataclass
class Fault:
    delay: float      # seconds after the first apply (never before every apply was sent)
    inject: Inject


@dataclass
class Result:
    scenario: str
    seed: int | None
    workload: str                   # "create" or "update"
    fault: str
    fault_at_s: float | None
    fault_end_s: float | None
    converged: bool
    converge_s: float | None
    recovery_s: float | None
    writes: int
    lease_writes: int
    findings: Findings
    extra: dict[str, Any] = field(default_factory=dict)
    excess_writes: int | None = None

    def ok(self) -> bool:
        return self.converged and self.findings.ok() and not self.extra.get("fault_error")

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seed": self.seed, "workload": self.workload, "fault": self.fault,
                "fault_at_s": self.fault_at_s, "fault_end_s": self.fault_end_s, "converged": self.converged,
                "converge_s": self.converge_s, "recovery_s": self.recovery_s, "writes": self.writes,
                "excess_writes": self.excess_writes, "lease_writes": self.lease_writes, "ok": self.ok(),
                "invariants": self.findings.as_dict(), "extra": self.extra}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run(h: Harness, work: Workload, scenario: str, *, seed: int | None = None, fault: Fault | None = None,
        side: Callable[[Workload, float, dict[str, Any]], None] | None = None) -> Result:
    """One scenario on `work`: create its sites (first time) or change all their content."""
    label = f"{scenario}[{seed}]" if seed is not None else scenario
    kind = "update" if work.version else "create"
    version = max(work.version.values(), default=0) + 1
    mark, wall0 = h.audit.mark(), time.time()
    t0 = time.monotonic()
    record, extra = Record(), dict[str, Any]()
    applied = threading.Event()

    def inject() -> None:
        assert fault is not None
        applied.wait(600)
        time.sleep(max(0.0, t0 + fault.delay - time.monotonic()))
        try:
            fault.inject(h, record)
            h.progress(f"{label}: {record.description} at {(record.at or t0) - t0:.1f}s, over at "
                       f"{(record.end or t0) - t0:.1f}s")
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            h.progress(f"{label}: the fault failed: {record.error}")

    threads = [threading.Thread(target=inject, name=f"fault {label}", daemon=True)] if fault else []
    if side is not None:
        threads.append(threading.Thread(target=side, args=(work, t0, extra), name=f"side {label}", daemon=True))
    for thread in threads:
        thread.start()
    applied_s = work.push_all(version)
    applied.set()
    h.progress(f"{label}: {len(work.names)} sites applied (v{version}) in {applied_s:.1f}s")
    converged = work.wait_ready(t0 + 240 + 1.0 * len(work.names), h.progress, label)
    for thread in threads:
        thread.join(timeout=300)
    # kube-controller-manager and kube-scheduler exit when they lose their own lease; the
    # harness's supervisor starts them again, as a kubelet would. Say so in the result.
    if revived := [name for at, name in h.control.revived if at >= wall0]:
        extra["control_plane_revived"] = revived
    if restarted := [f"{log} exited {code}" for at, log, code in h.restarts if at >= wall0]:
        extra["operator_exits"] = restarted
    leader = h.leader()
    if leader is not None:
        settle(leader, quiet=2.0, limit=60.0)
    quiet_from = time.time()
    time.sleep(QUIET_S)
    wall_end = time.time()

    findings = Findings()
    check_sites(h.driver, work.namespace, work.wanted, findings)
    check_children(h.driver, work.namespace, work.decoys, findings)
    if work.decoys is not None:
        check_decoys(work.decoys, findings)
    requests = h.operator_requests(mark)
    writes = [r for r in requests if r.is_write and wall0 <= r.at < wall_end]
    ours = [r for r in writes if r.resource != "leases"]
    findings.writes_after = [f"{r.verb} {r.uri.split('?')[0]}" for r in ours if r.at >= quiet_from]
    if record.error:
        extra["fault_error"] = record.error
    extra |= record.extra
    if fault is not None and record.at_wall is not None:
        extra |= _watch_reconnects(requests, record.at_wall)
    if "flood" in extra:
        extra["flood"] |= _applies_to(ours, work.namespace, extra["flood"]["site"])
    result = Result(
        scenario=scenario, seed=seed, workload=kind, fault=record.description or "none",
        fault_at_s=_r(record.at - t0) if record.at else None, fault_end_s=_r(record.end - t0) if record.end else None,
        converged=converged is not None, converge_s=_r(converged - t0) if converged else None,
        recovery_s=_r(max(0.0, converged - record.end)) if converged and record.end else None,
        writes=len(ours), lease_writes=len(writes) - len(ours), findings=findings, extra=extra)
    status = "ok" if result.ok() else f"FAILED {findings.summary()} {extra.get('fault_error', '')}"
    h.progress(f"{label}: converge {result.converge_s}s, recovery {result.recovery_s}s, {result.writes} writes; "
               f"{status}")
    return result


def _watch_reconnects(requests: list[Request], since_wall: float) -> dict[str, Any]:
    """When each watched resource's watch was opened again after the fault began (audit log)."""
    first: dict[str, float] = {}
    lists = 0
    for req in sorted(requests, key=lambda r: r.at):
        if req.verb == "watch" and req.at >= since_wall:
            first.setdefault(req.resource, req.at - since_wall)
        lists += req.verb == "list" and req.at >= since_wall  # re-listings (after a 410, a restart)
    if not first:
        return {"lists_after_fault": lists} if lists else {}
    return {"watches_reopened_first_s": round(min(first.values()), 2),
            "watches_reopened_all_s": round(max(first.values()), 2), "watches_reopened": len(first),
            "lists_after_fault": lists}


def _applies_to(writes: list[Request], namespace: str, site: str) -> dict[str, int]:
    """The operator's writes to one site's objects: applies of its children, and status patches.

    Its ConfigMaps are one per revision, named `{site}-{checksum[:10]}` (core.render.Names)."""
    prefix = f"/namespaces/{namespace}/"
    named = {f"{prefix}{plural}/{site}" for plural in ("services", "deployments", "ingresses")}
    config = re.compile(re.escape(f"{prefix}configmaps/{site}-") + "[0-9a-f]{10}$")
    status = f"{prefix}staticsites/{site}/status"
    paths = [r.uri.split("?")[0] for r in writes]
    return {"child_applies": sum(any(p.endswith(c) for c in named) or bool(config.search(p)) for p in paths),
            "status_patches": sum(p.endswith(status) for p in paths)}


# --- faults ------------------------------------------------------------------------------
def sigkill_operator() -> Inject:
    """SIGKILL the leader; start a new replica at once, as the kubelet restarts a container."""
    def inject(h: Harness, rec: Record) -> None:
        op = h.leader()
        if op is None:
            raise RuntimeError("no leader to kill")
        proxy = h.retire(op)
        op.kill()
        rec.began(f"operator SIGKILLed, restarted at once ({op.log_path.name})")
        killed = time.monotonic()
        new = h.start_operator(proxy)
        rec.end = time.monotonic()
        rec.extra["takeover_s"] = round(h.wait_role(new, ("leader",), timeout=120) + rec.end - killed, 2)
    return inject


def restart_component(name: str, restart_kwok: bool = False) -> Inject:
    """SIGKILL a control-plane component and start it again at once, as a supervisor would."""
    def inject(h: Harness, rec: Record) -> None:
        with h.control.lock:
            h.control.kill(name)
            rec.began(f"{name} SIGKILLed and restarted")
            h.control.start(name)
        h.wait_api(timeout=180)
        rec.end = time.monotonic()
        rec.extra["api_down_s"] = round(rec.end - (rec.at or rec.end), 2)
        if not restart_kwok:
            return
        # kwok's controller (the fake kubelet) does not resume its pod watch after an etcd restart
        # (seen here: pods stay Pending for good). A real kubelet does; so it is restarted, and the
        # fake nodes' Leases it held (200 s) are dropped so that the new one takes them at once:
        # the run then measures the operator, not kwok.
        with h.control.lock:
            h.control.kill(KWOK)
            h.control.start(KWOK)
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        for lease in h.driver.request("GET", leases).get("items") or []:
            h.driver.request("DELETE", f"{leases}/{lease['metadata']['name']}")
        rec.extra["kwok_restarted"] = True
    return inject


def stall(seconds: float) -> Inject:
    """Every open connection of the operator stops forwarding for good, new ones for `seconds`."""
    def inject(h: Harness, rec: Record) -> None:
        (_, proxy), *_ = h.replicas
        proxy.stall(seconds)
        rec.began(f"watch stall: connections frozen, new ones for {seconds:.0f}s")
        time.sleep(seconds)
        rec.end = time.monotonic()
        rec.extra["requests_frozen"] = proxy.stats().frozen
    return inject


def api_errors(rate: float, seconds: float) -> Inject:
    """A fraction `rate` of the operator's requests answered 429/500/503 for `seconds`."""
    def inject(h: Harness, rec: Record) -> None:
        (_, proxy), *_ = h.replicas
        before = proxy.second()
        proxy.errors(rate, seconds)
        rec.began(f"{rate:.0%} of requests answered 429/500/503 for {seconds:.0f}s")
        time.sleep(seconds)
        rec.end = time.monotonic()
        during = proxy.second()
        time.sleep(10)
        stats = proxy.stats()
        rec.extra |= {"injected": sum(stats.injected[s] for s in range(before, during + 1)),
                      "req_per_s_before": round(stats.rate(max(0, before - 20), before), 1),
                      "req_per_s_during": round(stats.rate(before, during), 1),
                      "req_per_s_peak_during": stats.peak(before, during),
                      "req_per_s_after": round(stats.rate(during, during + 10), 1)}
    return inject


def partition(seconds: float) -> Inject:
    """The operator cannot reach the API server for `seconds`: every connection reset, new ones too."""
    def inject(h: Harness, rec: Record) -> None:
        (_, proxy), *_ = h.replicas
        proxy.partition(seconds)
        rec.began(f"partition: the operator's connections reset for {seconds:.0f}s")
        time.sleep(seconds)
        rec.end = time.monotonic()
    return inject


def slow_api(delay: float, seconds: float) -> Inject:
    """Every request of the operator answered `delay` s late for `seconds`."""
    def inject(h: Harness, rec: Record) -> None:
        (_, proxy), *_ = h.replicas
        before = proxy.second()
        proxy.slow(delay, seconds)
        rec.began(f"slow API: every request {delay:.1f}s late for {seconds:.0f}s")
        time.sleep(seconds)
        rec.end = time.monotonic()
        rec.extra["req_per_s_during"] = round(proxy.stats().rate(before, proxy.second()), 1)
    return inject


def watch_expiry(seconds: float) -> Inject:
    """Every watch cut, and answered 410 Expired when it resumes, for `seconds`: every kind is listed again."""
    def inject(h: Harness, rec: Record) -> None:
        (_, proxy), *_ = h.replicas
        proxy.expire(seconds)
        rec.began(f"watch expiry: watches cut and answered 410 Gone for {seconds:.0f}s")
        time.sleep(seconds)
        rec.end = time.monotonic()
    return inject


# --- concurrent workloads -------------------------------------------------------------
def flood(rate: float = 50.0, seconds: float = 10.0, start: float = 2.0,
          threads: int = 2) -> Callable[[Workload, float, dict[str, Any]], None]:
    """`rate` spec changes per second to one site for `seconds`, sent on a schedule from a thread pool
    (one apply may take longer than 1/rate), each a new content. Two threads: concurrent
    applies to one object conflict in the API server, which retries them (on this machine,
    without the operator: 125 applies/s from 1 thread, 72 from 8, 35 from 32; during the
    scenario's update of every site, 32 threads delivered 3.1 changes/s, 8 threads 16.6,
    2 threads 49.6)."""
    def side(work: Workload, t0: float, extra: dict[str, Any]) -> None:
        name = work.names[0]
        time.sleep(max(0.0, t0 + start - time.monotonic()))
        base = max(work.version.values(), default=0) + 1
        began_wall, began = time.time(), time.monotonic()
        futures = []
        with ThreadPoolExecutor(threads) as pool:
            for i in range(int(rate * seconds)):
                time.sleep(max(0.0, began + i / rate - time.monotonic()))
                futures.append(pool.submit(work.apply, name, base + i))
        sent = sum(1 for f in futures if f.exception() is None)
        took = time.monotonic() - began
        extra["flood"] = {"site": name, "changes": sent, "seconds": round(took, 2),
                          "changes_per_s": round(sent / took, 1),
                          "from_wall": began_wall, "to_wall": time.time()}
    return side


def delete_in_flight(count: int, seed: int) -> Callable[[Workload, float, dict[str, Any]], None]:
    """`count` extra sites, each deleted a seeded 0-300 ms after it was created: mid-reconcile."""
    def side(work: Workload, t0: float, extra: dict[str, Any]) -> None:
        rng = random.Random(seed)
        time.sleep(max(0.0, t0 + 1 - time.monotonic()))
        deleted = []
        for i in range(count):
            name = f"doomed-{i:03d}"
            work.apply(name, 1, expect=False)
            time.sleep(rng.uniform(0.0, 0.3))
            work.client.request("DELETE", f"/apis/staticsite.dev/v1alpha1/namespaces/{work.namespace}/staticsites/"
                                f"{name}", body={"propagationPolicy": "Background"})
            work.forget(name)
            deleted.append(name)
            time.sleep(rng.uniform(0.1, 0.5))
        extra["deleted_in_flight"] = len(deleted)
    return side
