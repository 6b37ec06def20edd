"""kopf wiring, and nothing else: watches feed indexes, events feed the work queue.

Every handler here is `async` although none awaits anything: kopf runs sync handlers in
a thread pool, and the hop costs more than the handler. At a restart over 1000 sites
the ~6000 listed objects queued for that pool, each event's full body held in memory
meanwhile (bench/README.md). It would also make WorkQueue.add, which is not thread-safe,
run outside the event loop.

There are deliberately no @kopf.on.create/update/resume handlers. Those make kopf keep
a diff base in an annotation (`last-handled-configuration`) and progress markers: a PATCH
on every change, growing with the spec. Here kopf only watches: indexes hold what it
saw, and every event on a site or one of its children queues that site for a
level-based reconcile (controller.py). The initial listing after a start arrives as
events too, so "resume" is the same code path, and it writes nothing when nothing
drifted. kopf starts non-index handlers only once every index is fully populated, so
a restart never mistakes a not-yet-listed child for a missing one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

import kopf
import prometheus_client

from . import kopffix, metrics, models
from . import labels as lbl
from . import settings as config
from .controller import Controller, snapshot
from .kube import Kube
from .status import fetch_failure
from .workqueue import WorkQueue

log = logging.getLogger(__name__)
kopffix.apply()  # before kopf builds its ToggleSets: see kopffix.py for the quadratic start-up
SITES_INDEX = "staticsites_idx"
PODS_INDEX = "fetchfailures_idx"


def _index_id(kind: str) -> str:
    return f"{config.CHILD_RESOURCES[kind][2]}_idx"


class IndexLookup:
    """controller.Lookup over kopf's in-memory indexes."""

    def __init__(self) -> None:
        self.indexes: dict[str, Any] = {}

    def bind(self, kwargs: dict[str, Any]) -> None:
        # kopf passes every index to every handler as a kwarg named by the handler id.
        if not self.indexes:
            self.indexes = {k: v for k, v in kwargs.items() if k.endswith("_idx")}

    @staticmethod
    def _one(store: Any, name: str) -> dict[str, Any] | None:
        for packed in store or ():
            obj: dict[str, Any] = json.loads(packed)
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def site(self, namespace: str, name: str) -> dict[str, Any] | None:
        index = self.indexes.get(SITES_INDEX)
        return self._one(index.get((namespace, name)) if index is not None else None, name)

    def child(self, kind: str, namespace: str, site: str, name: str) -> dict[str, Any] | None:
        index = self.indexes.get(_index_id(kind))
        return self._one(index.get((namespace, site)) if index is not None else None, name)

    def fetch_failures(self, namespace: str, site: str) -> list[dict[str, Any]]:
        index = self.indexes.get(PODS_INDEX)
        return [dict(f) for f in (index.get((namespace, site)) or ())] if index is not None else []


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config.configure(settings)
    lookup = IndexLookup()
    controller = Controller(Kube.from_environment(pool_size=config.workers()), lookup, config.site_images())
    pool = concurrent.futures.ThreadPoolExecutor(config.workers(), thread_name_prefix="reconcile")

    async def reconcile(key: tuple[str, str]) -> None:
        loop = asyncio.get_running_loop()
        recheck = await loop.run_in_executor(pool, controller.reconcile, *key)
        if recheck is not None:
            queue.add_after(key, recheck)

    queue: WorkQueue[tuple[str, str]] = WorkQueue(reconcile, workers=config.workers(),
                                                  on_depth=metrics.QUEUE_DEPTH.set)
    memo.lookup, memo.controller, memo.queue, memo.pool = lookup, controller, queue, pool
    queue.start()
    if (port := config.metrics_port()) > 0:
        prometheus_client.start_http_server(port)
    log.info("staticsite-operator started: %d workers, metrics on :%s", config.workers(), port or "off")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if (queue := getattr(memo, "queue", None)) is not None:
        await queue.stop()
    if (pool := getattr(memo, "pool", None)) is not None:
        pool.shutdown(wait=False, cancel_futures=True)


# --- indexes: the operator's view of the cluster --------------------------------------
def pack(body: kopf.Body) -> str:
    """An index entry: the snapshot as compact JSON, and kopf's copy of the body emptied.

    The indexes hold one entry per site and child, for the life of the process. As
    nested dicts a Deployment's snapshot takes ~20 KB; as a string, ~4 KB. Decoding
    the one or two entries a reconcile reads costs microseconds.

    kopf keeps each event's body until the object's event handlers have run, and after
    a restart those wait until every kind is listed: every body of every child, held
    at once (~70 MB at 1000 sites). The handlers below read only metadata, so the
    parts that are now in the snapshot are released here. This relies on kopf
    reading nothing else of a body that only indexes and on.event handlers see.
    """
    packed = json.dumps(snapshot(body), separators=(",", ":"))
    body["metadata"].pop("managedFields", None)
    for part in ("spec", "status", "data", "binaryData"):
        if isinstance(held := body.get(part), dict):
            held.clear()
    return packed


@kopf.index(models.GROUP, models.VERSION, models.PLURAL, id=SITES_INDEX)
async def index_site(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): pack(body)}


async def _index_child(namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> dict[Any, Any]:
    site = labels.get(lbl.INSTANCE_KEY)
    return {(namespace, site): pack(body)} if site else {}


for _kind, (_group, _version, _plural) in config.CHILD_RESOURCES.items():
    kopf.index(_group, _version, _plural, id=_index_id(_kind),
               labels={lbl.MANAGED_BY_KEY: lbl.MANAGED_BY})(_index_child)


# Pods are watched only for one thing: an init container that failed to fetch the
# content (a bad archive checksum, an unreachable repository). Only the pods of git and
# archive sites stream (settings.py); healthy ones index nothing.
FETCHING_PODS: dict[str, Any] = {lbl.MANAGED_BY_KEY: lbl.MANAGED_BY, lbl.FETCH_KEY: kopf.PRESENT}


@kopf.index("", "v1", "pods", id=PODS_INDEX, labels=FETCHING_PODS)
async def index_fetch_failure(namespace: str | None, name: str, labels: Mapping[str, str],
                              annotations: Mapping[str, str], status: Mapping[str, Any], **_: Any) -> dict[Any, Any]:
    site = labels.get(lbl.INSTANCE_KEY)
    failure = fetch_failure(dict(status)) if site else None
    if failure is None:
        return {}
    return {(namespace, site): {"name": name, "checksum": annotations.get(lbl.CHECKSUM_ANNOTATION), **failure}}


@kopf.on.event("", "v1", "pods", id="pods_event", labels=FETCHING_PODS)
async def on_pod(namespace: str | None, labels: Mapping[str, str], status: Mapping[str, Any], memo: Any,
                 **kwargs: Any) -> None:
    memo.lookup.bind(kwargs)
    if (site := labels.get(lbl.INSTANCE_KEY)) and fetch_failure(dict(status)) is not None:
        memo.queue.add((namespace, site))


# --- events: queue the site for a reconcile ---------------------------------------
@kopf.on.event(models.GROUP, models.VERSION, models.PLURAL)
async def on_site(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    memo.lookup.bind(kwargs)
    memo.queue.add((namespace, name))


async def _on_child(kind: str, namespace: str | None, name: str, labels: Mapping[str, str], event: kopf.RawEvent,
                    memo: Any, **kwargs: Any) -> None:
    memo.lookup.bind(kwargs)
    if event.get("type") == "DELETED":
        memo.controller.forget(kind, namespace, name)
    if site := labels.get(lbl.INSTANCE_KEY):
        memo.queue.add((namespace, site))


for _kind, (_group, _version, _plural) in config.CHILD_RESOURCES.items():
    kopf.on.event(_group, _version, _plural, id=f"{_plural}_event",
                  labels={lbl.MANAGED_BY_KEY: lbl.MANAGED_BY})(functools.partial(_on_child, _kind))
