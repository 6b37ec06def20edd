"""The floor: the same child objects applied by the thinnest client, with no operator.

What would convergence cost if an operator were free? Every site's manifests are
rendered in-process beforehand with the operator's own `render`, then server-side
applied from a thread pool over pooled connections, as fast as the API server takes
them; the time runs until every Deployment has rolled out. Everything after the
applies (ReplicaSets, Pods, scheduling, kwok's readiness) is the cluster's own work,
the same for the operator and the floor.

The children must carry ownerReferences to a real StaticSite: with a made-up uid the
garbage collector would delete them as orphans while we measure. So the StaticSites
are created first, untimed, in their own namespace, with no operator running to
react; the floor's clock starts after, at its first child apply. That makes the floor
slightly faster than a client that also had to create the sites: the ratio errs
against the operator.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from staticsite_operator.api import models
from staticsite_operator.core import render
from staticsite_operator.core.labels import FIELD_MANAGER

from . import sites
from .kclient import collection
from .measure import Bench, Scenario, Window, deletion
from .scenarios import MANAGER
from .timing import summary
from .watcher import Watcher, deployment_ready


def _render(namespace: str, uids: dict[str, str], version: int) -> dict[str, render.Rendered]:
    out = {}
    for name, uid in uids.items():
        spec = models.StaticSiteSpec.model_validate(sites.manifest(name, namespace, version)["spec"])
        out[name] = render.render(render.Site(name, namespace, uid, spec))
    return out


def _push(bench: Bench, n: int, watcher: Watcher, label: str,
          objects: dict[str, list[dict[str, Any]]], generation_from_apply: bool) -> Scenario:
    """Apply each site's objects (one task per site, in the operator's order); wait for rollouts."""
    win = Window(label, bench.components, None)
    watcher.reset()
    t0 = time.monotonic()

    def push(name: str) -> None:
        if not generation_from_apply:
            watcher.expect(name, t0, deployment_ready(1))
        for obj in objects[name]:
            result = bench.floor.apply(obj, FIELD_MANAGER, force=True)
            if generation_from_apply and obj["kind"] == "Deployment":
                watcher.expect(name, t0, deployment_ready(int(result["metadata"]["generation"])))

    with ThreadPoolExecutor(bench.threads) as pool:
        list(pool.map(push, objects))
    applied = time.monotonic() - t0
    count = sum(len(v) for v in objects.values())
    bench.progress(f"N={n} floor {label}: {count} objects applied in {applied:.1f}s; waiting for rollouts")
    complete = watcher.wait(bench.deadline(n), lambda d, t: bench.progress(f"N={n} floor {label}: {d}/{t} rolled out"))
    reached = watcher.results()
    total = max((at for _, at in reached), default=time.monotonic()) - t0
    bench.progress(f"N={n} floor {label}: all rolled out in {total:.1f}s")
    # Latency from the floor's start: all N sites were asked for at once, as in a_create.
    return win.close(total, complete=complete, latency=summary([at - t0 for _, at in reached]),
                     applied_s=applied, objects=count)


def run(bench: Bench, n: int, delete: bool = True, update: bool = True) -> list[Scenario]:
    namespace = f"bench-floor-{n}"
    bench.cluster.kubectl("create", "namespace", namespace)
    names = [sites.name(i) for i in range(n)]
    with ThreadPoolExecutor(bench.threads) as pool:
        created = list(pool.map(lambda s: bench.driver.apply(sites.manifest(s, namespace, 1), MANAGER), names))
    uids = {obj["metadata"]["name"]: obj["metadata"]["uid"] for obj in created}
    t0 = time.monotonic()
    first = _render(namespace, uids, 1)
    second = _render(namespace, uids, 2)
    render_s = (time.monotonic() - t0) / 2
    bench.progress(f"N={n} floor: {n} StaticSites created (untimed), pre-rendered in {render_s:.2f}s per version")

    watcher = Watcher(bench.driver, collection("apps/v1", "deployments", namespace), name=f"watch-deploy-{n}")
    watcher.start()
    out: list[Scenario] = []
    try:
        sc = _push(bench, n, watcher, "a_create", {s: r.objects for s, r in first.items()}, False)
        sc.extra["prerender_s"] = round(render_s, 3)
        out.append(sc)
        time.sleep(2)  # as the operator's settle does: the controllers' tail of a_create passes first
        # Only what the new content changes (the content ConfigMap and the Deployment's checksum):
        # the least a client that knows the old state has to send.
        changed = {s: [o for o, old in zip(second[s].objects, first[s].objects, strict=True) if o != old]
                   for s in names}
        if update:
            out.append(_push(bench, n, watcher, "b_update", changed, True))
        if not delete:
            return out

        out.append(deletion(bench, n, namespace, None, f"N={n} floor e_delete"))
    finally:
        watcher.stop()
        bench.cluster.delete_namespace(namespace)
    return out
