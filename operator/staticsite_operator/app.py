"""The operator, wired together: the module that `kopf run -m staticsite_operator.app` loads.

kopf hosts the process (credentials, signals, start-up and clean-up) and
provides the informers: runtime.reflector runs kopf's watch streams for the sites and
their children straight into the cache (runtime.cache). Every event queues the sites it
concerns (runtime.controller); once every kind has been listed, the queue runs the
core's reconcile (core.reconcile) with the real API client (clients.kube).

There are deliberately no @kopf.on.* resource handlers: those would make kopf keep a diff
base in an annotation (`last-handled-configuration`) and progress markers, a PATCH on
every change, and give every watched object its own worker. Level-based reconciliation
needs neither: after a start, the listing is an ordinary pass, and it writes nothing when
nothing drifted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf
import prometheus_client

from .clients import gitremote
from .clients.egress import Guard
from .clients.kube import Kube
from .config import Config
from .core import kinds, render
from .core.poolreconcile import PoolReconciler
from .core.reconcile import Outcome, Reconciler
from .runtime import leader, metrics
from .runtime import settings as runtime_settings
from .runtime.cache import Cache, Key
from .runtime.controller import Controller
from .runtime.health import Health
from .runtime.poolindex import POOL_SCOPE
from .runtime.reflector import Informers

log = logging.getLogger(__name__)

# What the operator watches: its sites, their children (by a server-side label selector),
# and the pods of sites that fetch content (to report a failed fetch).
WATCHED: list[kinds.Kind] = [kinds.STATICSITE, *kinds.CHILD_KINDS, kinds.POD]
# The shared tier and the Gateway API: watched where the cluster serves them (the
# StaticSitePool CRD installed; gateway.networking.k8s.io), as a missing kind would hold
# the start barrier forever.
OPTIONAL: list[kinds.Kind] = [kinds.STATICSITEPOOL, *kinds.GATEWAY_KINDS, kinds.HPA]


def watched(kube: Kube) -> list[kinds.Kind]:
    kept = [k for k in dict.fromkeys([*WATCHED, *OPTIONAL]) if k not in OPTIONAL or kube.served(k)]
    log.info("optional kinds served: %s", ", ".join(k.kind for k in OPTIONAL if k in kept) or "none")
    return kept


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = Config.from_env(os.environ)
    policy = config.policy()
    runtime_settings.configure(settings, watch_timeout=config.watch_timeout, kopf_log_level=config.kopf_log_level,
                               inactivity_timeout=config.watch_inactivity_timeout)
    cache = Cache()
    # Every replica lists and watches (a standby's cache is warm at a takeover); only the
    # leader reconciles (the controller's gate) and only the leader's writes are sent
    # (the API client's fence). runtime.leader says how.
    identity = leader.new_identity()
    election = leader.Election.create(config.lease(identity) if config.leader_election else None, identity,
                                      config.drain_timeout)
    kube = Kube.from_environment(pool_size=config.workers, on_write=metrics.count_write,
                                 identity=identity, fence=election.fence)
    guard = Guard(policy)

    def resolve_ref(url: str, ref: str, token: str | None) -> str:
        return gitremote.resolve_ref(url, ref, token=token, guard=guard)

    kinds_watched = await asyncio.get_running_loop().run_in_executor(None, watched, kube)
    images = render.Images(config.nginx_image, config.fetcher_image, config.routes_image)
    reconciler = Reconciler(cache, kube, resolve_ref, images, policy,
                            quiet_rollout=config.quiet_rollout, tier_move_grace=config.tier_move_grace,
                            gateway_api=kinds.HTTPROUTE in kinds_watched)
    pools = PoolReconciler(cache, kube, config.pool_image, config.namespaces)

    def reconcile(namespace: str, name: str) -> Outcome:
        if namespace == POOL_SCOPE:  # a StaticSitePool (cluster-scoped): runtime.poolindex.pool_key
            pools.reconcile(name)
            return Outcome(None, None)
        return reconciler.reconcile(namespace, name)

    controller = Controller(reconcile, config.workers, gate=election.gate)

    def queue(keys: set[Key]) -> None:
        for key in keys:
            controller.enqueue(key)

    def observe(kind: kinds.Kind, event: str | None, body: dict[str, Any]) -> None:
        keys = cache.observe(kind, event, body)
        metrics.WATCH_EVENTS.labels(kind.kind, "true" if keys else "false").inc()
        queue(keys)

    informers = Informers(settings, kinds_watched, config.namespaces, observe=observe,
                          sweep=lambda kind, namespace, listed, version: queue(
                              cache.sweep(kind, namespace, listed, version)))
    memo.cache, memo.controller, memo.informers, memo.election = cache, controller, informers, election
    informers.start()

    async def start_when_synced() -> None:
        await informers.synced()
        log.info("every kind is listed (%s); reconciling", ", ".join(f"{n} {k}" for k, n in cache.size().items()))
        controller.start()
        # Campaign only with a full cache: a replica that wins the Lease reconciles at once,
        # and a cold replica never takes over from a warm standby.
        election.start()

    memo.starter = asyncio.create_task(start_when_synced(), name="start when synced")
    if config.health_port > 0:
        memo.health = await Health(election, informers).serve(config.listen_address, config.health_port)
    if config.metrics_port > 0:
        prometheus_client.start_http_server(config.metrics_port, addr=config.listen_address)
    log.info("staticsite-operator started: %d workers, metrics on :%s", config.workers,
             config.metrics_port or "off")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if (starter := getattr(memo, "starter", None)) is not None:
        starter.cancel()  # first: a replica still listing must not start campaigning now
    if (election := getattr(memo, "election", None)) is not None:
        await election.step_down()  # in-flight reconciles finish, then writes stop and the Lease goes
    if (informers := getattr(memo, "informers", None)) is not None:
        await informers.stop()
    if (controller := getattr(memo, "controller", None)) is not None:
        await controller.stop()
    if (health := getattr(memo, "health", None)) is not None:
        await health.cleanup()
