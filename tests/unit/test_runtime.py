"""The controller runtime's own logic, without a cluster: the cache (what kopf's indexes
keep, how it is read back, and the read-your-writes memory), kopf's settings, the
controller loop, and the kopf wiring in app.py."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import kopf
import pytest

from staticsite_operator import app
from staticsite_operator.core import kinds, labels
from staticsite_operator.core.reconcile import Outcome
from staticsite_operator.core.snapshot import snapshot
from staticsite_operator.runtime import settings
from staticsite_operator.runtime.cache import Cache, index_id, pack
from staticsite_operator.runtime.controller import Controller

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "42", "generation": 3,
                 "labels": {labels.INSTANCE_KEY: "web"}, "annotations": {"a": "b"},
                 "managedFields": [{"manager": "staticsite-operator", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"replicas": 2, "template": {"metadata": {"labels": {"x": "y"}}}},
    "status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
}


def obj(kind: str, name: str, rv: int, site: str = "web", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                                       "resourceVersion": str(rv), "labels": {labels.INSTANCE_KEY: site}}, **extra}


def cache_with(*objects: dict[str, Any]) -> Cache:
    stores: dict[str, dict[tuple[str, str], list[str]]] = {}
    for o in objects:
        index = index_id(kinds.BY_NAME[o["kind"]])
        stores.setdefault(index, {}).setdefault(("ns", o["metadata"]["labels"][labels.INSTANCE_KEY]), []).append(
            pack(kopf.Body(copy.deepcopy(o))))
    cache = Cache()
    cache.bind({**stores, "other": 1})
    return cache


def test_pack_keeps_the_snapshot_and_releases_kopfs_copy() -> None:
    raw = copy.deepcopy(DEPLOYMENT)
    packed = pack(kopf.Body(raw))
    assert json.loads(packed) == snapshot(DEPLOYMENT), "the index entry is exactly the snapshot"
    assert " " not in packed, "compact JSON"
    # What the event handlers still read is intact; the rest of kopf's copy is released.
    assert raw["metadata"]["name"] == "web" and raw["metadata"]["labels"] == {labels.INSTANCE_KEY: "web"}
    assert "managedFields" not in raw["metadata"]
    assert raw["spec"] == {} and raw["status"] == {}


def test_child_decodes_the_entry_with_the_name_asked_for() -> None:
    content = obj("ConfigMap", "web-content", 1, data={"k": "v"})
    nginx = obj("ConfigMap", "web-nginx", 2, data={"k": "w"})
    cache = cache_with(content, nginx)
    assert cache.child("ConfigMap", "ns", "web", "web-nginx") == snapshot(nginx)
    assert cache.child("ConfigMap", "ns", "web", "web-other") is None
    assert cache.child("ConfigMap", "ns", "elsewhere", "web-nginx") is None
    assert cache.child("Service", "ns", "web", "web") is None, "an index kopf has not passed yet"


def test_our_newer_write_wins_until_the_watch_catches_up() -> None:
    cache = cache_with(obj("Service", "web", 10, spec={"v": "old"}))
    cache.wrote(obj("Service", "web", 11, spec={"v": "new"}))
    assert cache.child("Service", "ns", "web", "web")["spec"] == {"v": "new"}, "watch lag is not drift"
    cache.indexes = cache_with(obj("Service", "web", 11, spec={"v": "new"})).indexes
    assert cache.child("Service", "ns", "web", "web")["spec"] == {"v": "new"}
    assert cache._written == {}, "the remembered copy is dropped once the index has it"


def test_an_older_write_never_hides_a_newer_watch_event() -> None:
    cache = cache_with(obj("Service", "web", 20, spec={"v": "someone's edit"}))
    cache.wrote(obj("Service", "web", 19, spec={"v": "ours"}))
    assert cache.child("Service", "ns", "web", "web")["spec"] == {"v": "someone's edit"}


def test_children_includes_what_we_created_before_the_watch_saw_it() -> None:
    cache = cache_with(obj("Service", "web", 1), obj("Deployment", "other", 1, site="other"))
    cache.wrote(obj("Ingress", "web", 5))
    cache.wrote(obj("Ingress", "other", 6, site="other"))
    names = sorted((o["kind"], o["metadata"]["name"]) for o in cache.children("ns", "web"))
    assert names == [("Ingress", "web"), ("Service", "web")]
    cache.deleted("Ingress", "ns", "web")
    assert [o["kind"] for o in cache.children("ns", "web")] == ["Service"]


def test_pods_stream_only_when_they_fetch() -> None:
    config = kopf.OperatorSettings()
    settings.configure(config, watch_timeout=600, kopf_log_level="WARNING")
    pods = kopf.Resource("", "v1", "pods")
    assert config.watching.label_selectors.collect(pods) == [labels.PODS_WATCH_SELECTOR]
    assert labels.FETCH_KEY in labels.PODS_WATCH_SELECTOR.split(",")
    for kind in kinds.CHILD_KINDS:
        resource = kopf.Resource(kind.group, kind.version, kind.plural)
        assert config.watching.label_selectors.collect(resource) == [labels.WATCH_SELECTOR], kind
    assert config.watching.chunk_size
    assert config.watching.client_timeout > config.watching.server_timeout == 600


def test_every_watch_handler_runs_on_the_event_loop() -> None:
    """kopf runs sync handlers in a thread pool: slower at a restart, and WorkQueue.add
    (asyncio, not thread-safe) would then run off the loop. Every handler must be async."""
    from kopf._core.actions.invocation import is_async_fn  # kopf's own test of what it awaits

    assert app.SITES_INDEX  # the module registered its handlers on import
    registry = kopf.get_default_registry()
    found = [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]
    expected = {"staticsites_idx", "fetchfailures_idx", "on_site", "pods_event"}
    expected |= {index_id(k) for k in kinds.CHILD_KINDS} | {f"{k.plural}_event" for k in kinds.CHILD_KINDS}
    assert {h.id for h in found} >= expected
    assert [h.id for h in found if not is_async_fn(h.fn)] == []


def test_controller_requeues_a_site_that_asks_to_be_looked_at_again() -> None:
    calls: list[tuple[str, str]] = []

    def reconcile(namespace: str, name: str) -> Outcome:
        calls.append((namespace, name))
        return Outcome("True", 0.05 if len(calls) == 1 else None)

    async def run() -> None:
        controller = Controller(reconcile, workers=2)
        controller.start()
        controller.enqueue(("ns", "git-site"))
        for _ in range(100):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.02)
        await controller.stop()

    asyncio.run(run())
    assert calls == [("ns", "git-site"), ("ns", "git-site")]


def test_controller_retries_a_reconcile_that_raises() -> None:
    calls: list[int] = []

    def reconcile(namespace: str, name: str) -> Outcome:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the API server went away")
        return Outcome("True", None)

    async def run() -> None:
        controller = Controller(reconcile, workers=1)
        controller.queue._base_delay = 0.01
        controller.start()
        controller.enqueue(("ns", "web"))
        for _ in range(100):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.02)
        await controller.stop()

    asyncio.run(run())
    assert len(calls) == 2


@pytest.mark.parametrize("ready", ["True", "False"])
def test_sites_gauge_counts_each_site_once(ready: str) -> None:
    from staticsite_operator.runtime.metrics import SitesGauge

    gauge = SitesGauge()
    gauge.set(("ns", "a"), ready)
    gauge.set(("ns", "a"), ready)
    gauge.set(("ns", "b"), "Unknown")
    assert gauge.counts[ready] == 1 and gauge.counts["Unknown"] == 1
    gauge.set(("ns", "a"), None)
    assert gauge.counts[ready] == 0
