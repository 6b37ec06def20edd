"""Event transitions (core.events): an Event marks a change a user would want to see, and
a pass that changes nothing posts none."""

from __future__ import annotations

from typing import Any

from staticsite_operator.api import conditions as c
from staticsite_operator.core.events import Changes, transitions


def status(ready: str = "False", degraded: str = "False", reason: str = c.RECONCILED, **extra: Any) -> dict[str, Any]:
    return {"conditions": [{"type": c.READY, "status": ready, "message": "2/2 replicas available"},
                           {"type": c.DEGRADED, "status": degraded, "reason": reason, "message": "why"}], **extra}


def reasons(previous: dict[str, Any] | None, new: dict[str, Any], changes: Changes | None = None) -> list[str]:
    return [e.reason for e in transitions(previous, new, changes or Changes())]


def test_nothing_changed_posts_nothing() -> None:
    assert reasons(status(ready="True"), status(ready="True")) == []
    conflict = status(degraded="True", reason=c.NAME_CONFLICT)
    assert reasons(conflict, conflict) == []


def test_created_and_deleted_children_are_named() -> None:
    events = transitions(None, status(), Changes(created=["Service/web", "Deployment/web"], rollout=True))
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Normal", "Created", "created Service/web, Deployment/web")]
    assert reasons(status(), status(), Changes(deleted=["Ingress/web"])) == ["Deleted"]


def test_a_rollout_of_an_existing_deployment_is_announced() -> None:
    assert reasons(status(), status(contentHash="sha256:abc"), Changes(updated=["Deployment/web"], rollout=True)) == [
        "RollingOut"]


def test_ready_is_posted_once_when_it_becomes_true() -> None:
    assert reasons(status(), status(ready="True")) == ["Ready"]
    assert reasons(status(ready="True"), status(ready="True")) == []


def test_a_new_degraded_reason_is_a_warning_and_recovery_is_posted() -> None:
    events = transitions(status(), status(degraded="True", reason=c.NAME_CONFLICT), Changes())
    assert [(e.type, e.reason) for e in events] == [("Warning", c.NAME_CONFLICT)]
    assert reasons(status(degraded="True", reason=c.NAME_CONFLICT),
                   status(degraded="True", reason=c.APPLY_FAILED)) == [c.APPLY_FAILED]
    assert reasons(status(degraded="True", reason=c.NAME_CONFLICT), status()) == ["Recovered"]


def test_a_new_git_revision_is_announced_but_not_the_first() -> None:
    assert reasons(status(), status(revision="a" * 40)) == []
    assert reasons(status(revision="a" * 40), status(revision="b" * 40)) == ["NewRevision"]
