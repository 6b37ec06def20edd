"""One measured scenario: a time window with its CPU, memory, reconciles and API requests.

Windows of one size follow each other without gaps, so every request the operator
makes is attributed to exactly one scenario (the audit log is read once per size,
after the fact, and split by the time the server received each request).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import audit
from .cluster import BenchCluster
from .kclient import Client, collection
from .operator_process import OperatorProcess
from .procstat import Meter, Usage
from .source import Source
from .timing import Progress

# The children and grandchildren of a site, all labelled managed-by=staticsite-operator
# (ReplicaSets and Pods inherit the pod template's labels).
SELECTOR = "app.kubernetes.io/managed-by=staticsite-operator"
CHILDREN = (("v1", "configmaps"), ("v1", "services"), ("apps/v1", "deployments"), ("networking.k8s.io/v1", "ingresses"))
GRANDCHILDREN = (("apps/v1", "replicasets"), ("v1", "pods"))
SITES = ("staticsite.dev/v1alpha1", "staticsites")
CHILD_RESOURCES = frozenset(plural for _, plural in CHILDREN)


@dataclass
class Bench:
    """What every scenario needs: the cluster, clients, limits and where to write."""

    cluster: BenchCluster
    source: Source             # which operator code is measured
    driver: Client             # creates and changes the StaticSites, watches them
    floor: Client              # the floor's applies (its own user agent in the audit log)
    out: Path
    threads: int               # the driver's and the floor's concurrency
    workers: int | None        # STATICSITE_WORKERS for the operator (None: its default)
    idle_seconds: float
    progress: Progress
    components: dict[str, int]  # control-plane pids
    profile: bool = False       # record each operator process with py-spy (bench/profile.py)

    def deadline(self, n: int) -> float:
        """A bound for one wait at size n: generous, but a stuck run still ends."""
        return time.monotonic() + 120 + 1.2 * n


@dataclass
class Scenario:
    name: str
    seconds: float                       # the headline figure (see README for each scenario)
    complete: bool = True                # False when a wait hit its time limit
    latency: dict[str, Any] | None = None
    extra: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    start_wall: float = 0.0
    end_wall: float = 0.0
    requests: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Window:
    """Open at the start of a scenario, `close` at its end."""

    def __init__(self, name: str, components: dict[str, int], op: OperatorProcess | None) -> None:
        self.name = name
        self.start_wall = time.time()
        self.meter = Meter(op.pid if op else None, components)
        self.op = op
        self._metrics0 = (op.metrics() if op else None) or {}
        self._before: dict[str, float] = {}  # what the processes followed before `op` counted

    def _counted(self) -> dict[str, float]:
        """The operator's counters since the window opened, every process it followed
        included: reconciles, and watch events by kind."""
        now = (self.op.metrics() if self.op else None) or {}
        counted = dict(self._before)
        for key, value in now.items():
            if key == "reconciles" or key.startswith(("events ", "queued ")):
                counted[key] = counted.get(key, 0.0) + value - self._metrics0.get(key, 0.0)
        return counted

    def follow(self, op: OperatorProcess | None) -> None:
        """The operator process changes (restart): account for the old one, then follow `op`."""
        self._before = self._counted()
        self.meter.switch(op.pid if op else None)
        self.op = op
        self._metrics0 = {}  # a new process counts from zero

    def close(self, seconds: float, *, complete: bool = True, latency: dict[str, Any] | None = None,
              **extra: float) -> Scenario:
        counted = self._counted()
        usage = self.meter.stop()
        if self.op is not None or counted.get("reconciles"):
            extra["reconciles"] = counted.get("reconciles", 0.0)
            extra |= {k: v for k, v in sorted(counted.items()) if k != "reconciles" and v}
        return Scenario(self.name, round(seconds, 3), complete, latency,
                        {k: round(v, 3) for k, v in extra.items()}, usage, self.start_wall, time.time())


def settle(op: OperatorProcess, quiet: float = 2.0, limit: float = 60.0) -> float:
    """Wait until no reconcile has finished for `quiet` seconds.

    Returns the seconds until that quiet period began: the tail of work after the last
    site turned Ready (status echoes, Deployment status updates). The operator's
    staticsite_workqueue_depth gauge is not enough alone: it reads 0 between two
    bursts of watch events as well as at the end.
    """
    t0 = time.monotonic()
    last: float | None = None
    changed = t0
    while (now := time.monotonic()) - t0 < limit:
        m = op.metrics()
        if m is not None:
            if m["reconciles"] != last:
                last, changed = m["reconciles"], now
            elif now - changed >= quiet:
                return changed - t0
        time.sleep(0.2)
    return limit


def remaining(client: Client, namespace: str) -> dict[str, int]:
    """How many sites, children and grandchildren a namespace still holds.

    Counted from one-item pages (remainingItemCount), which the server fills in only
    without a selector: the bench namespaces hold nothing else, except the CA ConfigMap
    every namespace gets, so ConfigMaps alone are counted with the selector (0 or 1+).
    """
    out = {"staticsites": client.count(collection(*SITES, namespace))}
    for api_version, plural in CHILDREN + GRANDCHILDREN:
        selector = SELECTOR if plural == "configmaps" else None
        out[plural] = client.count(collection(api_version, plural, namespace), selector)
    return out


def delete_all(client: Client, namespace: str, deadline: float, progress: Progress,
               label: str) -> tuple[bool, float, float]:
    """Delete every StaticSite at once; (complete, seconds until the children are gone, until pods are)."""
    t0 = time.monotonic()
    client.request("DELETE", collection(*SITES, namespace), body={"propagationPolicy": "Background"})
    children_gone = 0.0
    next_report = t0 + 5
    while (now := time.monotonic()) < deadline:
        left = remaining(client, namespace)
        direct = left["staticsites"] + sum(left[p] for _, p in CHILDREN)
        if direct == 0 and not children_gone:
            children_gone = now - t0
        if direct == 0 and sum(left.values()) == 0:
            return True, children_gone, now - t0
        if now >= next_report:
            progress(f"{label}: left {', '.join(f'{v} {k}' for k, v in left.items() if v)}")
            next_report = now + 5
        time.sleep(0.5)
    return False, children_gone or time.monotonic() - t0, time.monotonic() - t0


def deletion(bench: Bench, n: int, namespace: str, op: OperatorProcess | None, label: str) -> Scenario:
    """Scenario e: delete every site at once; the time until the garbage collector is done."""
    win = Window("e_delete", bench.components, op)
    complete, children, everything = delete_all(bench.driver, namespace, bench.deadline(n), bench.progress, label)
    bench.progress(f"{label}: children gone in {children:.1f}s, pods in {everything:.1f}s")
    return win.close(children, complete=complete, pods_gone_s=everything)


def attach_requests(scenarios: list[Scenario], requests: list[audit.Request], *, user: str | None = None,
                    agent_prefix: str | None = None, sites: int = 1) -> None:
    """Fill each scenario's request counts from the audit log."""
    for sc in scenarios:
        counts = audit.tally(requests, sc.start_wall, sc.end_wall, user=user, agent_prefix=agent_prefix)
        sc.requests = counts.as_dict() | {"writes_per_site": round(counts.writes / max(1, sites), 2)}
        writes = [r for r in requests if sc.start_wall <= r.at < sc.end_wall and r.is_write
                  and (user is None or r.user == user)
                  and (agent_prefix is None or r.user_agent.startswith(agent_prefix))]
        # When the writer was done: the children are its own throughput (the rest of
        # convergence is the cluster's controllers); the last write is usually a status.
        children = [r.at for r in writes if r.resource in CHILD_RESOURCES]
        if children:
            sc.extra["last_child_write_s"] = round(max(children) - sc.start_wall, 3)
        if writes:
            sc.extra["last_write_s"] = round(max(r.at for r in writes) - sc.start_wall, 3)
