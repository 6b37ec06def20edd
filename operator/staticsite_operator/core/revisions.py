"""Which commit a git-backed site serves: the operator resolves `ref` itself, every `interval`.

Pods are pinned to the resolved SHA, so a new commit is an ordinary rollout and a
failed lookup never disturbs what is being served: the last known revision stays
pinned, and the site is marked Degraded until the lookup works again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..api import conditions as c
from ..api import models
from .ports import RefResolver, ResolveError, SourceRefused, TokenUnavailable
from .problems import Problem


@dataclass(frozen=True)
class _Resolved:
    url: str
    ref: str
    sha: str
    at: float


@dataclass(frozen=True)
class Revision:
    sha: str | None           # None: not known yet, nothing can be rendered
    problem: Problem | None
    recheck_in: float | None  # seconds until the ref should be looked up again


class Revisions:
    """The commit each git site serves, looked up at most once per `interval` per site."""

    def __init__(self, resolve: RefResolver, clock: Callable[[], float] = time.monotonic) -> None:
        self._resolve = resolve
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], _Resolved] = {}

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._cache.pop((namespace, name), None)

    def current(self, namespace: str, name: str, git: models.GitSource, served: str | None,
                token: Callable[[], str | None]) -> Revision:
        """The commit to serve now. `served` is status.revision: what the pods run already."""
        if git.pinned():
            return Revision(git.ref, None, None)
        interval = float(models.duration_seconds(git.interval))
        key = (namespace, name)
        with self._lock:
            cached = self._cache.get(key)
        now = self._clock()
        if cached and (cached.url, cached.ref) == (git.url, git.ref) and now - cached.at < interval:
            return Revision(cached.sha, None, interval - (now - cached.at))
        try:
            sha = self._resolve(git.url, git.ref, token())
        except TokenUnavailable as exc:
            return Revision(served, Problem(c.SECRET_UNAVAILABLE, str(exc)), interval)
        except SourceRefused as exc:
            return Revision(served, Problem(c.SOURCE_NOT_ALLOWED, str(exc)), interval)
        except ResolveError as exc:
            return Revision(served, Problem(c.GIT_RESOLVE_FAILED, f"cannot resolve {git.ref!r}: {exc}"), interval)
        with self._lock:
            self._cache[key] = _Resolved(git.url, git.ref, sha, now)
        return Revision(sha, None, interval)
