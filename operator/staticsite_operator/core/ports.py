"""The two interfaces through which the reconcile reaches the cluster, and their errors.

The core defines them; `runtime.cache` implements `View` and `clients.kube` implements
`Client`. Unit tests implement both with dicts and a recording fake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .domains import Claim

Obj = dict[str, Any]


class ApiError(Exception):
    """A failed API call. `permanent` means retrying the same request cannot help."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def permanent(self) -> bool:
        # 400 Bad Request, 403 Forbidden, 404, 409 Conflict (AlreadyExists / field conflict),
        # 422 Invalid: the same request fails the same way. 429 and 5xx are transient.
        return self.status in (400, 403, 404, 409, 422)

    @property
    def exhausted(self) -> bool:
        """The cluster ran out of something to allocate (Service IPs, node ports): a
        condition to report, then retry slowly, not a reconcile error to retry at once."""
        text = self.message.lower()
        return "failed to allocate" in text or "range is full" in text


class ResolveError(Exception):
    """A git ref could not be resolved. The message is for users: it holds no credentials."""


class SourceRefused(ResolveError):
    """The platform's policy forbids contacting the source's address (a private, loopback,
    link-local or cluster address, after DNS and on every redirect)."""


class TokenUnavailable(Exception):
    """The access token named by secretRef cannot be read; the message says why and what to do."""


class View(Protocol):
    """What the watches have seen, as snapshots (core.snapshot), freshest copy first."""

    def site(self, namespace: str, name: str) -> Obj | None: ...
    def child(self, kind: str, namespace: str, site: str, name: str) -> Obj | None: ...
    def children(self, namespace: str, site: str) -> list[Obj]: ...
    # snapshot.fingerprint of each of children(), by (kind, name): kept by the cache per version.
    def fingerprints(self, namespace: str, site: str) -> dict[tuple[str, str], str]: ...
    def fetch_failures(self, namespace: str, site: str) -> list[dict[str, Any]]: ...
    def claimants(self, domain: str) -> list[Claim]: ...
    def wrote(self, obj: Obj) -> None: ...
    def writing_status(self, namespace: str, name: str, status: Obj) -> None: ...
    def deleted(self, kind: str, namespace: str, name: str) -> None: ...
    # The shared tier (core.shared, core.poolreconcile).
    def pool(self, name: str) -> Obj | None: ...
    def pool_members(self, pool: str) -> list[Claim]: ...
    def pool_objects(self, pool: str) -> list[Obj]: ...
    def pool_reports(self, pool: str) -> dict[str, dict[str, dict[str, Any]]]: ...
    def site_pool_objects(self, namespace: str, site: str) -> list[Obj]: ...
    def live(self, kind: str, namespace: str, name: str) -> Obj | None: ...


class Client(Protocol):
    """The writes (and the few reads) of one reconcile. Failures raise ApiError."""

    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...
    def apply(self, obj: Obj, *, if_absent: bool = False) -> Obj: ...
    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None: ...
    def patch_status(self, namespace: str, name: str, status: Obj) -> Obj: ...
    def patch_pool_status(self, name: str, status: Obj) -> Obj: ...
    def post_event(self, site: Obj, type_: str, reason: str, message: str) -> None: ...


# url, ref, token -> the commit SHA (raises ResolveError).
RefResolver = Callable[[str, str, "str | None"], str]
