"""Why a site cannot converge, and which reason wins when several hold at once.

A stage of the reconcile that finds a problem returns it instead of raising: bad input
and policy refusals are permanent (a retry cannot fix them), so they become
`Degraded=True` with a reason and a message, and an Event, never a retry loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..api import conditions as c


@dataclass(frozen=True)
class Problem:
    """Becomes Degraded=True with this reason and message."""

    reason: str
    message: str


# The Degraded condition names the first of these that holds. Problems that stop the
# site from being rendered come first (nothing else can be judged before they are
# fixed), then what stops a child from being applied, then what the pods report.
PRECEDENCE: tuple[str, ...] = (
    c.INVALID_SPEC,
    c.ANNOTATION_NOT_ALLOWED,
    c.IMAGE_NOT_ALLOWED,
    c.INGRESS_CLASS_NOT_ALLOWED,
    c.LIMIT_EXCEEDED,
    c.SOURCE_NOT_ALLOWED,
    c.CONTENT_TOO_LARGE,
    c.NAME_CONFLICT,
    c.APPLY_FAILED,
    c.ALLOCATION_FAILED,
    c.DOMAIN_NOT_ALLOWED,
    c.DOMAIN_CONFLICT,
    c.SECRET_UNAVAILABLE,
    c.GIT_RESOLVE_FAILED,
    c.CHECKSUM_MISMATCH,
    c.REVISION_NOT_FOUND,
    c.AUTHENTICATION_FAILED,
    c.FETCH_FAILED,
    c.ROUTING_FAILED,
    c.NOT_RESOLVED,
    c.DEADLINE_EXCEEDED,
    c.ROUTING_FILE_INVALID,  # last: the site serves, without the lines named
)


def most_severe(problems: Iterable[Problem | None]) -> Problem | None:
    """The problem the status reports: the first by PRECEDENCE (unknown reasons last)."""
    found = [p for p in problems if p is not None]
    rank = {reason: i for i, reason in enumerate(PRECEDENCE)}
    return min(found, key=lambda p: rank.get(p.reason, len(PRECEDENCE)), default=None)
