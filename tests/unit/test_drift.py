"""drift.difference: a live object 'contains' what we would apply, with Kubernetes' own
equivalences (quantities, named-list merging, server defaults), and says where it differs.
"""

from __future__ import annotations

from staticsite_operator.core import drift


def test_extra_live_fields_are_not_drift() -> None:
    live = {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {"dnsPolicy": "ClusterFirst"}}}
    assert drift.contains(live, {"replicas": 2, "template": {"spec": {}}})


def test_changed_scalar_is_named() -> None:
    assert drift.difference({"replicas": 2}, {"replicas": 3}, ("spec",)) == "spec.replicas (2 != 3)"


def test_missing_field_is_drift_but_missing_empty_is_not() -> None:
    assert drift.difference({}, {"a": 1}) == "a"
    assert drift.contains({}, {"a": {}, "b": [], "c": None})


def test_quantities_compare_by_value_under_resources() -> None:
    live = {"resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}
    assert drift.contains(live, {"resources": {"requests": {"cpu": "0.5", "memory": "67108864"}}})
    assert not drift.contains(live, {"resources": {"requests": {"cpu": "1"}}})
    assert not drift.contains({"image": "500m"}, {"image": "0.5"}), "only resource fields are quantities"


def test_named_lists_merge_by_name() -> None:
    live = {"containers": [{"name": "sidecar", "image": "x"}, {"name": "nginx", "image": "nginx:1", "tty": False}]}
    assert drift.contains(live, {"containers": [{"name": "nginx", "image": "nginx:1"}]})
    assert drift.difference(live, {"containers": [{"name": "nginx", "image": "nginx:2"}]}) is not None
    assert drift.difference(live, {"containers": [{"name": "other"}]}) == "containers[other]"


def test_plain_lists_compare_by_position_and_length() -> None:
    assert drift.contains({"args": ["a", "b"]}, {"args": ["a", "b"]})
    assert not drift.contains({"args": ["a", "b", "c"]}, {"args": ["a", "b"]})
    assert not drift.contains({"args": ["b", "a"]}, {"args": ["a", "b"]})
