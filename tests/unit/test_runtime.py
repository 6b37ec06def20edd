"""The controller runtime's own logic, without a cluster: the cache (what it keeps of each
watched object, how the reconcile reads it back, the read-your-writes memory, which sites
an event concerns), the reflectors (listing barrier, sweeping what a re-listing no longer
holds, surviving a failed stream), kopf's settings, and the controller loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest

from staticsite_operator import app
from staticsite_operator.core import kinds, labels
from staticsite_operator.core.reconcile import Outcome
from staticsite_operator.core.snapshot import fingerprint, snapshot
from staticsite_operator.runtime import reflector, settings
from staticsite_operator.runtime.cache import Cache, pack
from staticsite_operator.runtime.controller import Controller
from staticsite_operator.runtime.metrics import SitesGauge

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
    """A cache fed with these objects as a listing would feed it."""
    cache = Cache()
    for o in objects:
        cache.observe(kinds.BY_NAME[o["kind"]], None, o)
    return cache


def site(name: str, rv: int, domains: list[str] | None = None, created: str = "2026-01-01T00:00:00Z",
         **meta: Any) -> dict[str, Any]:
    return {"kind": "StaticSite", "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                                               "resourceVersion": str(rv), "creationTimestamp": created, **meta},
            "spec": {"domains": domains or []}}


def test_pack_keeps_the_snapshot_as_compact_json() -> None:
    packed = pack(DEPLOYMENT)
    assert json.loads(packed) == snapshot(DEPLOYMENT)
    assert " " not in packed
    assert "managedFields" not in packed


def test_child_decodes_the_entry_with_the_name_asked_for() -> None:
    content = obj("ConfigMap", "web-content", 1, data={"k": "v"})
    nginx = obj("ConfigMap", "web-nginx", 2, data={"k": "w"})
    cache = cache_with(content, nginx)
    assert cache.child("ConfigMap", "ns", "web", "web-nginx") == snapshot(nginx)
    assert cache.child("ConfigMap", "ns", "web", "web-other") is None
    assert cache.child("ConfigMap", "ns", "elsewhere", "web-nginx") is None
    assert cache.child("Service", "ns", "web", "web") is None


def test_events_queue_the_site_they_concern_once_per_change() -> None:
    cache = Cache()
    service = kinds.SERVICE
    assert cache.observe(service, None, obj("Service", "web", 1)) == {("ns", "web")}
    assert cache.observe(service, None, obj("Service", "web", 1)) == set(), "a re-listing of the same version"
    assert cache.observe(service, "MODIFIED", obj("Service", "web", 2, spec={"v": 2})) == {("ns", "web")}
    assert cache.observe(service, "MODIFIED", obj("Service", "web", 3, spec={"v": 2})) == set(), (
        "a new version with nothing the reconcile reads changed (managedFields, say)")
    assert cache.observe(service, "DELETED", obj("Service", "web", 4)) == {("ns", "web")}
    assert cache.child("Service", "ns", "web", "web") is None
    assert cache.observe(kinds.STATICSITE, None, site("web", 1)) == {("ns", "web")}


def test_our_own_write_coming_back_queues_nothing() -> None:
    """The reconcile that wrote it already saw it: its echo is not news, for a child or the site."""
    cache = cache_with(obj("Service", "web", 10, spec={"v": "old"}), site("web", 10))
    cache.wrote(obj("Service", "web", 11, spec={"v": "new"}))
    assert cache.observe(kinds.SERVICE, "MODIFIED", obj("Service", "web", 11, spec={"v": "new"})) == set()
    assert cache._written == {}
    assert cache.observe(kinds.SERVICE, "MODIFIED", obj("Service", "web", 12, spec={"v": "edited"})) == {
        ("ns", "web")}, "someone else's change after ours is news"
    cache.wrote(site("web", 11) | {"status": {"ready": True}})
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("web", 11) | {"status": {"ready": True}}) == set()
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("web", 12)) == {("ns", "web")}


def test_an_echo_that_overtakes_the_response_is_still_known() -> None:
    """The watch may bring our write back before the pass has the response."""
    cache = cache_with(site("web", 10))
    created = obj("Service", "web", 11) | {"metadata": obj("Service", "web", 11)["metadata"] | {
        "managedFields": [{"manager": labels.FIELD_MANAGER, "operation": "Apply"}]}}
    assert cache.observe(kinds.SERVICE, "ADDED", created) == set(), "created by us alone"
    by_someone = obj("Ingress", "web", 12) | {"metadata": obj("Ingress", "web", 12)["metadata"] | {
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}]}}
    assert cache.observe(kinds.INGRESS, "ADDED", by_someone) == {("ns", "web")}
    assert cache.observe(kinds.CONFIGMAP, None, obj("ConfigMap", "web", 13) | {"metadata": created["metadata"] | {
        "name": "web-cm"}}) == {("ns", "web")}, "a listing always queues"

    status = {"observedGeneration": 1}
    cache.writing_status("ns", "web", status)
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("web", 14) | {"status": status}) == set()
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("web", 15, ["new.example"]) | {"status": status}) == {
        ("ns", "web")}, "the status we are writing, and a spec change: news"
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("web", 16, ["new.example"]) | {
        "status": {"observedGeneration": 0}}) == {("ns", "web")}, "someone else's status"
    cache.wrote(site("web", 17, ["new.example"]) | {"status": status})
    assert cache._status_pending == {}, "from the response on, the echo is known by its version"


def test_a_child_whose_conditions_only_moved_in_time_queues_nothing() -> None:
    def deployment(rv: int, updated: str, available: int) -> dict[str, Any]:
        return obj("Deployment", "web", rv, spec={"replicas": 1}, status={
            "updatedReplicas": 1, "replicas": 1, "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                            "lastUpdateTime": updated, "lastTransitionTime": "2026-01-01T00:00:00Z"}]})

    cache = cache_with(deployment(1, "2026-01-01T00:00:01Z", 0))
    assert cache.observe(kinds.DEPLOYMENT, "MODIFIED", deployment(2, "2026-01-01T00:00:02Z", 0)) == set()
    assert cache.child("Deployment", "ns", "web", "web")["metadata"]["resourceVersion"] == "2", "still kept"
    assert cache.observe(kinds.DEPLOYMENT, "MODIFIED", deployment(3, "2026-01-01T00:00:03Z", 1)) == {
        ("ns", "web")}, "a count that made it Ready is news"


def test_a_rollouts_counts_queue_a_pass_only_when_they_can_change_the_site() -> None:
    """A rolling update of 2 replicas (surge 1), as the Deployment controller reports it:
    only the steps that change what the site's status says (status.rollout_signal) are news."""
    def deployment(rv: int, generation: int = 2, image: str = "v2", **counts: int) -> dict[str, Any]:
        st = {"observedGeneration": 2, "updatedReplicas": 0, "availableReplicas": 2, "replicas": 2, **counts}
        return obj("Deployment", "web", rv, spec={"replicas": 2, "template": {"image": image}},
                   status=st) | {"metadata": {**obj("Deployment", "web", rv)["metadata"], "generation": generation}}

    cache = cache_with(deployment(1, observedGeneration=1))  # our apply's echo: the new spec, not yet seen
    revised = deployment(2, observedGeneration=1)
    revised["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}  # the controller's
    assert cache.observe(kinds.DEPLOYMENT, "MODIFIED", revised) == set()
    steps = [  # (counts, queued?)
        ({}, False),                                                 # seen: still rolling out
        ({"updatedReplicas": 1, "replicas": 3}, False),              # a surge pod
        ({"updatedReplicas": 1, "replicas": 3, "availableReplicas": 3}, False),
        ({"updatedReplicas": 2, "replicas": 3, "availableReplicas": 3}, True),  # every replica updated
        ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}, True),  # Ready
        ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2, "readyReplicas": 2}, False),
    ]
    for rv, (counts, news) in enumerate(steps, start=3):
        queued = cache.observe(kinds.DEPLOYMENT, "MODIFIED", deployment(rv, **counts))
        assert queued == ({("ns", "web")} if news else set()), (rv, counts)
    assert cache.child("Deployment", "ns", "web", "web")["metadata"]["resourceVersion"] == "8", "all kept"
    ready = {"updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}
    assert cache.observe(kinds.DEPLOYMENT, "MODIFIED", deployment(9, image="evil", **ready)) == {("ns", "web")}, \
        "a spec edited by someone else is news"
    stalled = {**ready, "availableReplicas": 1}
    assert cache.observe(kinds.DEPLOYMENT, "MODIFIED", deployment(10, image="evil", **stalled)) == {("ns", "web")}


def test_our_newer_write_wins_until_the_watch_catches_up() -> None:
    cache = cache_with(obj("Service", "web", 10, spec={"v": "old"}))
    cache.wrote(obj("Service", "web", 11, spec={"v": "new"}))
    assert cache.child("Service", "ns", "web", "web")["spec"] == {"v": "new"}, "watch lag is not drift"
    cache.observe(kinds.SERVICE, "MODIFIED", obj("Service", "web", 11, spec={"v": "new"}))
    assert cache.child("Service", "ns", "web", "web")["spec"] == {"v": "new"}
    assert cache._written == {}, "the remembered copy is dropped once the watch has it"


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


def test_fingerprints_are_those_of_the_freshest_children() -> None:
    cache = cache_with(obj("Service", "web", 10, spec={"v": 1}), obj("Deployment", "web", 11, spec={"r": 1}))

    def expected() -> dict[tuple[str, str], str]:
        return {(o["kind"], o["metadata"]["name"]): fingerprint(o) for o in cache.children("ns", "web")}

    first = cache.fingerprints("ns", "web")
    assert first == expected() and len(first) == 2
    assert cache.fingerprints("ns", "web") == first, "kept per version"
    cache.wrote(obj("Service", "web", 12, spec={"v": 2}))
    assert cache.fingerprints("ns", "web")[("Service", "web")] == fingerprint(snapshot(
        obj("Service", "web", 12, spec={"v": 2}))), "our newer write, before the watch has it"
    cache.observe(kinds.SERVICE, "MODIFIED", obj("Service", "web", 13, spec={"v": 3}))
    assert cache.fingerprints("ns", "web") == expected() != first
    cache.observe(kinds.DEPLOYMENT, "DELETED", obj("Deployment", "web", 14))
    assert list(cache.fingerprints("ns", "web")) == [("Service", "web")]


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


def test_the_operator_registers_no_resource_handlers() -> None:
    """kopf's resource handlers would give every watched object a worker (and, with
    indexes, hold it until every kind is listed); the reflectors feed the cache instead."""
    assert app.WATCHED[0] is kinds.STATICSITE and kinds.POD in app.WATCHED
    registry = kopf.get_default_registry()
    assert registry._indexing.get_all_handlers() == []
    assert registry._watching.get_all_handlers() == []
    assert registry._changing.get_all_handlers() == []


def test_domain_claims_and_who_must_look_again() -> None:
    cache = Cache()
    first = site("a", 1, ["docs.example.com"], created="2026-01-01T00:00:00Z")
    second = site("b", 1, ["docs.example.com", "b.example.com"], created="2026-01-02T00:00:00Z")
    assert cache.observe(kinds.STATICSITE, None, first) == {("ns", "a")}
    assert cache.observe(kinds.STATICSITE, None, second) == {("ns", "b"), ("ns", "a")}, (
        "a new claimant: the owner's ownership is unchanged, but it is looked at again")
    assert [c.name for c in cache.claimants("docs.example.com")] == ["a", "b"]
    # The owner lets go: the next claimant must look again.
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("a", 2, [])) == {("ns", "a"), ("ns", "b")}
    assert [c.name for c in cache.claimants("docs.example.com")] == ["b"]
    # A site being deleted has let go too; a deleted one claims nothing.
    deleting = site("b", 2, ["docs.example.com", "b.example.com"], deletionTimestamp="2026-01-03T00:00:00Z")
    cache.observe(kinds.STATICSITE, "MODIFIED", deleting)
    assert cache.claimants("docs.example.com") == []
    assert cache.observe(kinds.STATICSITE, "MODIFIED", site("b", 3, ["x.example.com"])) == {("ns", "b")}
    cache.observe(kinds.STATICSITE, "DELETED", site("b", 4, ["x.example.com"]))
    assert cache.claimants("x.example.com") == []


def pod(name: str, rv: int, exit_code: int | None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if exit_code is not None:
        status = {"initContainerStatuses": [{"name": "fetch", "state": {"terminated": {"exitCode": exit_code,
                                                                                       "message": "bad sum"}}}]}
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv),
                                        "labels": {labels.INSTANCE_KEY: "web"},
                                        "annotations": {labels.CHECKSUM_ANNOTATION: "c1"}}, "status": status}


def test_pods_are_kept_only_as_failed_fetches() -> None:
    cache = Cache()
    assert cache.observe(kinds.POD, None, pod("web-1", 1, None)) == set(), "a healthy pod queues nothing"
    assert cache.observe(kinds.POD, "MODIFIED", pod("web-1", 2, 42)) == {("ns", "web")}
    assert cache.fetch_failures("ns", "web") == [{"name": "web-1", "checksum": "c1", "reason": "ChecksumMismatch",
                                                   "message": "bad sum"}]
    assert cache.observe(kinds.POD, "MODIFIED", pod("web-1", 3, 42)) == set(), "nothing new to say"
    assert cache.observe(kinds.POD, "DELETED", pod("web-1", 4, 42)) == {("ns", "web")}
    assert cache.fetch_failures("ns", "web") == []
    assert cache.size() == {}, "pods are not kept"


def test_a_relisting_drops_what_was_deleted_meanwhile() -> None:
    cache = cache_with(obj("Service", "web", 1), obj("Service", "gone", 1, site="gone"),
                       obj("Service", "newer", 9, site="newer"), obj("Deployment", "web", 1))
    affected = cache.sweep(kinds.SERVICE, "ns", {("ns", "web")}, 5)
    assert affected == {("ns", "gone")}
    assert cache.child("Service", "ns", "gone", "gone") is None
    assert cache.child("Service", "ns", "newer", "newer") is not None, "created after the listing's snapshot"
    assert cache.child("Deployment", "ns", "web", "web") is not None, "only the swept kind"
    assert cache.sweep(kinds.SERVICE, "elsewhere", set(), 5) == set(), "only the swept namespace"


def fake_api(pages: list[list[dict[str, Any]]], watches: list[list[dict[str, Any]]],
             fail_first: bool = False) -> tuple[Any, Any, dict[str, int]]:
    """kopf's fetch_objs and watch_objs, scripted: each listing returns `pages` at version
    "5"; each watch call plays the next script, then stays open."""
    calls = {"lists": 0, "watches": 0}

    async def fetch_objs(**_: Any) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        calls["lists"] += 1
        if fail_first and calls["lists"] == 1:
            raise ConnectionError("the API server went away")
        for page in pages:
            yield page, "5"

    async def watch_objs(**kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        calls["watches"] += 1
        script = watches.pop(0) if watches else []
        calls[f"since-{kwargs.get('since')}"] = calls.get(f"since-{kwargs.get('since')}", 0) + 1
        for event in script:
            yield event
        if not watches:
            await asyncio.sleep(3600)  # a watch that stays open

    return fetch_objs, watch_objs, calls


@pytest.mark.parametrize("fail_first", [False, True])
def test_reflector_lists_sweeps_watches_and_survives_a_failed_stream(monkeypatch: pytest.MonkeyPatch,
                                                                     fail_first: bool) -> None:
    fetch, watch, calls = fake_api(
        pages=[[obj("Service", "web", 1)]],
        watches=[
            [{"type": "MODIFIED", "object": obj("Service", "web", 6)},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}}],  # then the connection drops
            [{"type": "ADDED", "object": obj("Service", "late", 8, site="late")}],
        ], fail_first=fail_first)
    monkeypatch.setattr(reflector, "fetch_objs", fetch)
    monkeypatch.setattr(reflector, "watch_objs", watch)
    monkeypatch.setattr(reflector.random, "random", lambda: 0.0)
    monkeypatch.setattr(reflector.asyncio, "sleep", _fast_sleep)
    cache = cache_with(obj("Service", "stale", 1, site="stale"))
    observed: list[tuple[str | None, str]] = []

    def observe(kind: kinds.Kind, event: str | None, body: dict[str, Any]) -> None:
        observed.append((event, body["metadata"]["resourceVersion"]))
        cache.observe(kind, event, body)

    def sweep(kind: kinds.Kind, namespace: str | None, listed: set[tuple[str, str]], version: int) -> None:
        assert version == 5
        cache.sweep(kind, namespace, listed, version)

    async def run() -> None:
        informers = reflector.Informers(kopf.OperatorSettings(), [kinds.SERVICE], (), observe, sweep)
        informers.start()
        await asyncio.wait_for(informers.synced(), timeout=5)
        for _ in range(100):
            if ("ADDED", "8") in observed:
                break
            await _real_sleep(0.01)
        await informers.stop()

    asyncio.run(run())
    assert observed == [(None, "1"), ("MODIFIED", "6"), ("ADDED", "8")], "bookmarks are not objects"
    assert cache.child("Service", "ns", "stale", "stale") is None, "deleted while we were not looking"
    assert calls["lists"] == (2 if fail_first else 1), "a dropped watch resumes; it does not re-list"
    assert calls["since-5"] == 1 and calls["since-7"] == 1, "resumed from the last version seen (the bookmark)"


_real_sleep = asyncio.sleep


async def _fast_sleep(delay: float) -> None:
    await _real_sleep(min(delay, 0.01) if delay < 3600 else delay)


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

    gauge = SitesGauge()
    gauge.set(("ns", "a"), ready)
    gauge.set(("ns", "a"), ready)
    gauge.set(("ns", "b"), "Unknown")
    assert gauge.counts[ready] == 1 and gauge.counts["Unknown"] == 1
    gauge.set(("ns", "a"), None)
    assert gauge.counts[ready] == 0


def test_an_expired_watch_means_a_new_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    fetch, watch, calls = fake_api(pages=[[obj("Service", "web", 1)]],
                                   watches=[[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}], []])
    monkeypatch.setattr(reflector, "fetch_objs", fetch)
    monkeypatch.setattr(reflector, "watch_objs", watch)

    async def run() -> None:
        informers = reflector.Informers(kopf.OperatorSettings(), [kinds.SERVICE], (),
                                        lambda *_: None, lambda *_: None)
        informers.start()
        for _ in range(200):
            if calls["lists"] >= 2:
                break
            await asyncio.sleep(0.01)
        await informers.stop()

    asyncio.run(run())
    assert calls["lists"] == 2
