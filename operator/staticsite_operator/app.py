"""The operator, wired together: the module that `kopf run -m staticsite_operator.app` loads.

kopf lists and watches; its indexes are the cache (runtime.cache); every event on a
site or one of its children queues that site (runtime.controller); the queue runs the
core's reconcile (core.reconcile) with the real API client (clients.kube).

Every handler here is `async` although none awaits anything: kopf runs sync handlers in
a thread pool, and the hop costs more than the handler; at a restart every listed
object would queue for that pool, each event's full body held meanwhile. It would also
make WorkQueue.add, which is not thread-safe, run outside the event loop.

There are deliberately no @kopf.on.create/update/resume handlers: those make kopf keep
a diff base in an annotation (`last-handled-configuration`) and progress markers, a
PATCH on every change, growing with the spec. The initial listing after a start arrives
as events too, so "resume" is the same code path, and it writes nothing when nothing
drifted. kopf starts non-index handlers only once every index is fully populated, so a
restart never mistakes a not-yet-listed child for a missing one.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf
import prometheus_client

from .api import models
from .clients import gitremote
from .clients.egress import Guard
from .clients.kube import Kube
from .config import Config
from .core import kinds, render
from .core import labels as lbl
from .core.reconcile import Reconciler
from .core.status import fetch_failure
from .runtime import kopffix, kopfwatch, leader, metrics
from .runtime import settings as runtime_settings
from .runtime.cache import DOMAINS_INDEX, PODS_INDEX, SITES_INDEX, Cache, index_id, pack
from .runtime.controller import Controller
from .runtime.health import Health

log = logging.getLogger(__name__)
kopffix.apply()  # before kopf builds its ToggleSets: see kopffix.py for the quadratic start-up
kopfwatch.apply()  # readiness and liveness see kopf's watches (runtime.health)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = Config.from_env(os.environ)
    policy = config.policy()
    runtime_settings.configure(settings, watch_timeout=config.watch_timeout, kopf_log_level=config.kopf_log_level,
                               inactivity_timeout=config.watch_inactivity_timeout)
    cache = Cache()
    identity = leader.new_identity()  # HA hook: runtime.leader
    election = leader.Election.create(config.lease(identity) if config.leader_election else None, identity,
                                      config.drain_timeout)
    kube = Kube.from_environment(pool_size=config.workers, on_write=metrics.count_write,
                                 identity=identity, fence=election.fence)
    guard = Guard(policy)

    def resolve_ref(url: str, ref: str, token: str | None) -> str:
        return gitremote.resolve_ref(url, ref, token=token, guard=guard)

    reconciler = Reconciler(cache, kube, resolve_ref, render.Images(config.nginx_image, config.fetcher_image), policy)
    controller = Controller(reconciler.reconcile, config.workers, gate=election.gate)
    memo.cache, memo.controller, memo.election = cache, controller, election
    controller.start()
    election.start()
    if config.health_port > 0:
        health = Health(election, kopfwatch.WATCHES)
        memo.health = await health.serve(config.listen_address, config.health_port)
    if config.metrics_port > 0:
        prometheus_client.start_http_server(config.metrics_port, addr=config.listen_address)
    log.info("staticsite-operator started: %d workers, metrics on :%s", config.workers,
             config.metrics_port or "off")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if (election := getattr(memo, "election", None)) is not None:
        await election.step_down()  # in-flight reconciles finish, then writes stop and the Lease goes
    if (controller := getattr(memo, "controller", None)) is not None:
        await controller.stop()
    if (health := getattr(memo, "health", None)) is not None:
        await health.cleanup()


# --- indexes: the cache ------------------------------------------------------------
def claimed_domains(body: Mapping[str, Any]) -> frozenset[str]:
    """A site being deleted has let go of its domains."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return frozenset()
    return frozenset((body.get("spec") or {}).get("domains") or ())


# Registered before index_site, whose pack() releases the body's spec: kopf runs one
# resource's index handlers in the order they were registered (a test checks it).
@kopf.index(models.GROUP, models.VERSION, models.PLURAL, id=DOMAINS_INDEX)
async def index_domains(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    created = body["metadata"].get("creationTimestamp", "")
    return dict.fromkeys(claimed_domains(body), (created, namespace, name))


@kopf.index(models.GROUP, models.VERSION, models.PLURAL, id=SITES_INDEX)
async def index_site(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): pack(body)}


async def _index_child(namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> dict[Any, Any]:
    site = labels.get(lbl.INSTANCE_KEY)
    return {(namespace, site): pack(body)} if site else {}


OURS: dict[str, Any] = {lbl.MANAGED_BY_KEY: lbl.MANAGED_BY}
for _kind in kinds.CHILD_KINDS:
    kopf.index(_kind.group, _kind.version, _kind.plural, id=index_id(_kind), labels=OURS)(_index_child)

# Pods are watched only for one thing: an init container that failed to fetch the
# content (a bad archive checksum, an unreachable repository). Only the pods of git and
# archive sites stream (runtime.settings); healthy ones index nothing.
FETCHING_PODS: dict[str, Any] = {**OURS, lbl.FETCH_KEY: kopf.PRESENT}


@kopf.index(kinds.POD.group, kinds.POD.version, kinds.POD.plural, id=PODS_INDEX, labels=FETCHING_PODS)
async def index_fetch_failure(namespace: str | None, name: str, labels: Mapping[str, str],
                              annotations: Mapping[str, str], status: Mapping[str, Any], **_: Any) -> dict[Any, Any]:
    site = labels.get(lbl.INSTANCE_KEY)
    failure = fetch_failure(dict(status)) if site else None
    if failure is None:
        return {}
    return {(namespace, site): {"name": name, "checksum": annotations.get(lbl.CHECKSUM_ANNOTATION), **failure}}


# --- events: queue the site for a reconcile ------------------------------------------
@kopf.on.event(kinds.POD.group, kinds.POD.version, kinds.POD.plural, id="pods_event", labels=FETCHING_PODS)
async def on_pod(namespace: str | None, labels: Mapping[str, str], status: Mapping[str, Any], memo: Any,
                 **kwargs: Any) -> None:
    memo.cache.bind(kwargs)
    if (site := labels.get(lbl.INSTANCE_KEY)) and fetch_failure(dict(status)) is not None:
        memo.controller.enqueue((namespace, site))


@kopf.on.event(models.GROUP, models.VERSION, models.PLURAL)
async def on_site(namespace: str | None, name: str, event: kopf.RawEvent, memo: Any, **kwargs: Any) -> None:
    memo.cache.bind(kwargs)
    memo.controller.enqueue((namespace, name))
    # Its spec is in the cache (kopf's copy was released); a deleted site claims nothing.
    site = memo.cache.site(namespace, name) if event.get("type") != "DELETED" else None
    for domain in memo.cache.domains_changed((namespace, name), claimed_domains(site or {})):
        for claim in memo.cache.claimants(domain):
            memo.controller.enqueue((claim.namespace, claim.name))


async def _on_child(kind: str, namespace: str | None, name: str, labels: Mapping[str, str], event: kopf.RawEvent,
                    memo: Any, **kwargs: Any) -> None:
    memo.cache.bind(kwargs)
    if event.get("type") == "DELETED":
        memo.cache.deleted(kind, namespace, name)
    if site := labels.get(lbl.INSTANCE_KEY):
        memo.controller.enqueue((namespace, site))


for _kind in kinds.CHILD_KINDS:
    kopf.on.event(_kind.group, _kind.version, _kind.plural, id=f"{_kind.plural}_event",
                  labels=OURS)(functools.partial(_on_child, _kind.kind))
