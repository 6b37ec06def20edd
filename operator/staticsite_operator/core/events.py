"""Which Events a reconcile posts: on transitions only, never "nothing happened". Pure.

An Event is a write, so a pass that changes nothing must post none. Each Event below
marks something a user would want in `kubectl describe`: children created or deleted,
a rollout started, a new git commit, the site becoming Ready, a new Degraded reason, and
recovery from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api import conditions as c
from . import status


@dataclass
class Changes:
    """What one reconcile wrote to the site's children."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rollout: bool = False  # the Deployment's pod template changed (or it was created)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def transitions(previous: dict[str, Any] | None, new: dict[str, Any], changes: Changes) -> list[Event]:
    """The Events that the step from `previous` to `new` status (and `changes`) deserves."""
    events: list[Event] = []
    if changes.created:
        events.append(Event("Normal", "Created", "created " + ", ".join(changes.created)))
    if changes.deleted:
        events.append(Event("Normal", "Deleted", "deleted " + ", ".join(changes.deleted)))
    if changes.rollout and not changes.created:
        events.append(Event("Normal", "RollingOut", f"rolling out content {new.get('contentHash', '')[:19]}"))
    if new.get("revision") and (previous or {}).get("revision") not in (None, new["revision"]):
        events.append(Event("Normal", "NewRevision", f"now serving commit {new['revision'][:12]}"))
    before_ready = status.condition(previous, c.READY) or {}
    after_ready = status.condition(new, c.READY) or {}
    if after_ready.get("status") == "True" and before_ready.get("status") != "True":
        events.append(Event("Normal", "Ready", after_ready.get("message", "")))
    before_deg = status.condition(previous, c.DEGRADED) or {}
    after_deg = status.condition(new, c.DEGRADED) or {}
    if after_deg.get("status") == "True" and (before_deg.get("status"), before_deg.get("reason")) != (
            "True", after_deg.get("reason")):
        events.append(Event("Warning", after_deg["reason"], after_deg.get("message", "")))
    elif after_deg.get("status") == "False" and before_deg.get("status") == "True":
        events.append(Event("Normal", "Recovered", "the site reconciles again"))
    return events
