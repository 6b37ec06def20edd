"""The operator's scenarios for one size N, in order, on one fresh namespace.

    startup   the operator starts on a cluster with no sites
    a_create  N StaticSites applied at once; until all are Ready at generation 1
    b_update  the content of all N changed at once; until all are Ready again at the new generation
    c_idle    nothing happens for --idle-seconds; the operator should send no writes
    d_restart the operator restarted over N converged sites; until it has reconciled every
              site once, and its queue is empty (it should send no writes)
    e_delete  all N StaticSites deleted at once; until the garbage collector has removed every child

After a and b the operator is let to settle (queue empty, no reconcile for 2 s) inside
the same window, so their trailing writes are theirs, and the idle window starts quiet.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from . import sites
from .kclient import collection
from .measure import SITES, Bench, Scenario, Window, deletion, settle
from .operator_process import OperatorProcess
from .timing import summary
from .watcher import Watcher, site_ready

MANAGER = "staticsite-bench"  # the field manager of the user who owns the StaticSites


def _start(bench: Bench, n: int, run: int) -> OperatorProcess:
    kubeconfig = bench.cluster.operator_identity(bench.out / "operator.kubeconfig")
    log = bench.out / f"operator-{n}-{run}.log"
    profile = bench.out / "profiles" / f"operator-{n}-{run}.speedscope.json" if bench.profile else None
    return OperatorProcess(kubeconfig, log, bench.source.python_path, bench.workers, profile).start()


def _converge(bench: Bench, n: int, watcher: Watcher, win: Window, op: OperatorProcess, version: int,
              label: str) -> Scenario:
    """Apply version `version` of all N sites at once, wait until all are Ready at it, settle."""
    namespace = f"bench-op-{n}"
    watcher.reset()
    t0 = time.monotonic()

    def push(i: int) -> None:
        name = sites.name(i)
        since = time.monotonic()
        if version == 1:  # a new object is generation 1: expect it before it exists
            watcher.expect(name, since, site_ready(1))
        result = bench.driver.apply(sites.manifest(name, namespace, version), MANAGER)
        if version > 1:
            watcher.expect(name, since, site_ready(int(result["metadata"]["generation"])))

    with ThreadPoolExecutor(bench.threads) as pool:
        list(pool.map(push, range(n)))
    applied = time.monotonic() - t0
    bench.progress(f"N={n} {label}: {n} sites applied in {applied:.1f}s; waiting for Ready")
    complete = watcher.wait(bench.deadline(n), lambda d, t: bench.progress(f"N={n} {label}: {d}/{t} Ready"))
    reached = watcher.results()
    total = max((at for _, at in reached), default=time.monotonic()) - t0
    tail = settle(op)
    bench.progress(f"N={n} {label}: all Ready in {total:.1f}s (complete={complete}); settled {tail:.1f}s later")
    return win.close(total, complete=complete, latency=summary([at - since for since, at in reached]),
                     applied_s=applied, settle_s=tail)


def _restart(bench: Bench, n: int, op: OperatorProcess) -> tuple[Scenario, OperatorProcess]:
    win = Window("d_restart", bench.components, op)
    win.follow(None)  # the old process's CPU and peak so far; its shutdown is not measured
    shutdown = op.stop()
    new = _start(bench, n, 2)
    win.follow(new)
    deadline = bench.deadline(n)
    healthy = caught_up = 0.0
    next_report = time.monotonic() + 5
    while (now := time.monotonic()) < deadline:
        healthy = healthy or (now - new.started_at if new.healthy() else 0.0)
        m = new.metrics()
        # staticsite_sites counts each site once its first reconcile since the start has finished.
        if m is not None and m["sites"] >= n:
            caught_up = now - new.started_at
            break
        if now >= next_report:
            bench.progress(f"N={n} d_restart: {int(m['sites']) if m else 0}/{n} sites reconciled")
            next_report = now + 5
        time.sleep(0.1)
    tail = settle(new)
    bench.progress(f"N={n} d_restart: caught up {caught_up:.1f}s after spawn (healthy at {healthy:.1f}s)")
    return win.close(caught_up or time.monotonic() - new.started_at, complete=bool(caught_up),
                     shutdown_s=shutdown, healthy_s=healthy, settle_s=tail), new


def run(bench: Bench, n: int, scale: bool = False) -> list[Scenario]:
    """The operator's scenarios at n sites; `scale` (the 10,000-site run) keeps only create,
    idle and restart: an update and a delete of 10,000 sites would take most of an hour here
    and measure the same per-site paths as the 1000-site run."""
    namespace = f"bench-op-{n}"
    bench.cluster.kubectl("create", "namespace", namespace)
    out: list[Scenario] = []
    watcher = Watcher(bench.driver, collection(*SITES, namespace), name=f"watch-sites-{n}").start()
    win = Window("startup", bench.components, None)  # opened first: kopf's first requests are its
    op = _start(bench, n, 1)
    win.follow(op)
    try:
        healthy = op.wait_healthy()
        out.append(win.close(healthy, settle_s=settle(op, quiet=1.0)))
        bench.progress(f"N={n} startup: operator healthy in {healthy:.1f}s")

        out.append(_converge(bench, n, watcher, Window("a_create", bench.components, op), op, 1, "a_create"))
        if not scale:
            out.append(_converge(bench, n, watcher, Window("b_update", bench.components, op), op, 2, "b_update"))

        win = Window("c_idle", bench.components, op)
        bench.progress(f"N={n} c_idle: {bench.idle_seconds:.0f}s of nothing")
        time.sleep(bench.idle_seconds)
        out.append(win.close(bench.idle_seconds))

        restarted, op = _restart(bench, n, op)
        out.append(restarted)

        if not scale:
            out.append(deletion(bench, n, namespace, op, f"N={n} e_delete"))
    finally:
        watcher.stop()
        op.stop()
        if scale:  # nothing emptied it: its collection would run under the floor's clock
            bench.progress(f"N={n}: deleting the operator's namespace before the floor (untimed)")
        bench.cluster.delete_namespace(namespace, wait=3600 if scale else 0)
    return out
