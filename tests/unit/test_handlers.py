"""The kopf wiring's own logic: what the indexes keep, and how it is read back."""

from __future__ import annotations

import copy
import json
from typing import Any

import kopf

from staticsite_operator import handlers, labels, settings
from staticsite_operator.controller import snapshot

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "42", "generation": 3,
                 "labels": {labels.INSTANCE_KEY: "web"}, "annotations": {"a": "b"},
                 "managedFields": [{"manager": "staticsite-operator", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"replicas": 2, "template": {"metadata": {"labels": {"x": "y"}}}},
    "status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
}


def test_pack_keeps_the_snapshot_and_releases_kopfs_copy() -> None:
    raw = copy.deepcopy(DEPLOYMENT)
    packed = handlers.pack(kopf.Body(raw))
    assert json.loads(packed) == snapshot(DEPLOYMENT), "the index entry is exactly the snapshot"
    assert " " not in packed, "compact JSON"
    # What the event handlers still read is intact; the rest of kopf's copy is released.
    assert raw["metadata"]["name"] == "web" and raw["metadata"]["labels"] == {labels.INSTANCE_KEY: "web"}
    assert "managedFields" not in raw["metadata"]
    assert raw["spec"] == {} and raw["status"] == {}


def test_lookup_decodes_the_entry_with_the_name_asked_for() -> None:
    content = {"kind": "ConfigMap", "metadata": {"name": "web-content", "namespace": "ns"}, "data": {"k": "v"}}
    nginx = {"kind": "ConfigMap", "metadata": {"name": "web-nginx", "namespace": "ns"}, "data": {"k": "w"}}
    lookup = handlers.IndexLookup()
    lookup.bind({"configmaps_idx": {("ns", "web"): [handlers.pack(kopf.Body(copy.deepcopy(o)))
                                                      for o in (content, nginx)]}, "other": 1})
    found = lookup.child("ConfigMap", "ns", "web", "web-nginx")
    assert found == snapshot(nginx)
    assert lookup.child("ConfigMap", "ns", "web", "web-other") is None
    assert lookup.child("ConfigMap", "ns", "elsewhere", "web-nginx") is None
    assert lookup.child("Service", "ns", "web", "web") is None, "an index kopf has not passed yet"


def test_pods_stream_only_when_they_fetch() -> None:
    config = kopf.OperatorSettings()
    settings.configure(config)
    pods = kopf.Resource("", "v1", "pods")
    deployments = kopf.Resource("apps", "v1", "deployments")
    assert config.watching.label_selectors.collect(pods) == [labels.PODS_WATCH_SELECTOR]
    assert labels.FETCH_KEY in labels.PODS_WATCH_SELECTOR.split(",")
    assert config.watching.label_selectors.collect(deployments) == [labels.WATCH_SELECTOR]
    assert config.watching.chunk_size


def test_every_watch_handler_runs_on_the_event_loop() -> None:
    """kopf runs sync handlers in a thread pool: slower at a restart, and WorkQueue.add
    (asyncio, not thread-safe) would then run off the loop. Every handler must be async."""
    from kopf._core.actions.invocation import is_async_fn  # kopf's own test of what it awaits

    registry = kopf.get_default_registry()
    found = [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]
    assert {h.id for h in found} >= {"staticsites_idx", "deployments_idx", "fetchfailures_idx", "on_site",
                                     "deployments_event", "pods_event"}
    assert [h.id for h in found if not is_async_fn(h.fn)] == []
