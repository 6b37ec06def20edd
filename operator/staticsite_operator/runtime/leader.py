"""Leader election on a coordination.k8s.io/v1 Lease, and the write fence that goes with it.

Every replica runs the reflectors (runtime.reflector) and queues a site's key at every event,
so a standby's cache is as warm as the leader's. Only the leader reconciles:
`Leadership.gate()` is what a worker enters before a reconcile, and it waits while this
replica stands by (its queue keeps collecting keys meanwhile, coalesced, and is worked
off at a takeover). `Fence.check()` is what the API client calls before every write:
it refuses, in the writing thread, from the moment this replica's lease may have run
out, whatever the event loop is doing.

The timing is client-go's, on the monotonic clock, so clocks of different machines are
never compared:

- a standby takes over when it has seen no change of the Lease for its
  `leaseDurationSeconds`, counted from when *it* saw the last change;
- a leader writes only until `renew_deadline` after it *sent* its last successful
  renewal. That is earlier than any standby's wait can end (`renew_deadline <
  lease_duration`, and a standby sees a renewal only after it was sent), so an old
  leader is silent before a new one starts. The margin (3 s by default) is for a write
  already on the wire when the fence closes.
- the Lease is written with its resourceVersion (optimistic concurrency): of two
  candidates, one wins, the other gets a 409.

On a graceful shutdown the leader stops starting reconciles, lets those in flight
finish (`drain`), closes the fence, and hands the Lease back (holder emptied, as
client-go's ReleaseOnCancel does), so a standby takes over at its next look instead of
waiting for the lease to expire.

Why not `kubernetes.leaderelection` (kubernetes client 37.0.2): its `run()` blocks a
thread forever and has no way to stop or to release the Lease on shutdown; after
losing the lease it returns for good instead of standing by again; it measures time
with `time.time()` (a clock step changes who leads); and a leader considers itself
leading until `renew_deadline` after the start of its *failing* attempt, up to
`retry_period + renew_deadline` after its last success, which with its example's
settings (17/15/5 s) outlasts the lease: two leaders at once. docs/reliability.md has
the longer version.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import monotonic
from typing import Any

from prometheus_client import Counter, Gauge

from ..clients.kube import Kube
from ..core.ports import ApiError

log = logging.getLogger(__name__)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
# The field manager of Lease writes; the release has its own, so that the API server's
# audit log tells a hand-over from a renewal (bench/chaos checks fencing from it).
MANAGER, RELEASE_MANAGER = "staticsite-operator-leader", "staticsite-operator-release"

IS_LEADER = Gauge("staticsite_leader", "1 while this replica may write (it holds the Lease, or leader election "
                                       "is off); 0 while it stands by.")
TRANSITIONS = Counter("staticsite_leader_transitions_total", "Times this replica started or stopped leading.",
                      ["to"])

# Kube.request: (method, path, *, body, query, content_type, timeout) -> the response's JSON.
Request = Callable[..., dict[str, Any] | None]


class NotLeader(ApiError):
    """A write refused before it was sent: this replica does not hold the Lease (any longer)."""

    def __init__(self) -> None:
        super().__init__(0, "NotLeader", "this replica does not hold the Lease; the write was not sent")


class Fence:
    """Until when this replica may write (monotonic). Read from any thread: a float store is atomic."""

    def __init__(self) -> None:
        self._until = 0.0

    def extend(self, until: float) -> None:
        self._until = until

    def close(self) -> None:
        self._until = 0.0

    def remaining(self) -> float:
        return self._until - monotonic()

    def check(self) -> float:
        """The seconds left to write in; raises NotLeader when there are none."""
        left = self.remaining()
        if left <= 0:
            raise NotLeader
        return left


class Leadership:
    """Whether reconciles may start now, and how many are in flight. Event-loop side only."""

    def __init__(self, leading: bool) -> None:
        self._leading = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._inflight = 0
        self.stopping = False
        self.set(leading)

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def set(self, leading: bool) -> None:
        if leading and not self.stopping:
            if not self._leading.is_set():
                TRANSITIONS.labels("leader").inc()
            self._leading.set()
        else:
            if self._leading.is_set():
                TRANSITIONS.labels("standby").inc()
            self._leading.clear()
        IS_LEADER.set(1 if self._leading.is_set() else 0)

    @contextlib.asynccontextmanager
    async def gate(self) -> AsyncIterator[None]:
        """Enter before a reconcile: waits while standing by, then counts the reconcile as in flight."""
        await self._leading.wait()
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Start no more reconciles; wait up to `timeout` s for those in flight. True when none is left."""
        self.stopping = True
        self.set(False)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def inflight(self) -> int:
        return self._inflight


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str            # unique per process: pod name and a random suffix
    duration: int            # leaseDurationSeconds
    renew_deadline: float
    retry_period: float


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Acquires, renews and releases the Lease; drives a Leadership and a Fence."""

    def __init__(self, request: Request, settings: LeaseSettings, leadership: Leadership, fence: Fence) -> None:
        self._request = request
        self.settings = settings
        self.leadership = leadership
        self.fence = fence
        # One thread of its own: a renewal never waits behind the reconciles' API calls.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lease")
        self._lease: dict[str, Any] | None = None   # our last written copy, while we hold it
        self._observed: tuple[str, float] = ("", 0.0)  # (resourceVersion, when we first saw it)
        self._expires = 0.0                        # when the holder's lease runs out, on our clock
        self.holder: str | None = None            # as last seen
        self.contact = 0.0                         # monotonic time of the last answer from the API server
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def path(self) -> str:
        return LEASES.format(namespace=self.settings.namespace)

    def start(self) -> None:
        if self._task is None and not self.leadership.stopping:
            self._task = asyncio.create_task(self._run(), name="leader election")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        # Each attempt is bounded: a hung call must not hold the next one past the renew deadline,
        # and a slow API server (seconds per request under load) must still get a renewal through.
        timeout = max(self.settings.retry_period, self.settings.renew_deadline / 2)
        call = functools.partial(self._request, method, path, timeout=timeout, **kwargs)
        result = await asyncio.get_running_loop().run_in_executor(self._pool, call)
        self.contact = monotonic()
        return result

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.try_acquire_or_renew()
                failures = 0
            except ApiError as exc:  # unreachable, 5xx, 429: the fence runs out by itself if this lasts
                failures += 1
                log_ = log.warning if failures == 1 or self.leadership.leading else log.debug
                log_("leader election: %s (attempt %d)", exc, failures)
            except Exception:
                log.exception("leader election failed unexpectedly; retrying")
            await asyncio.sleep(self.next_look())

    def next_look(self) -> float:
        """Seconds until the next round: a retry period for a leader; with jitter for a standby (as
        client-go's JitterUntil, so that standbys do not race in step), but never past the moment the
        holder's lease expires on this replica's clock, so that a dead leader costs the lease duration
        and not up to a retry period more."""
        period = self.settings.retry_period
        if self.leadership.leading:
            return period
        wait = period * random.uniform(1.0, 1.2)  # noqa: S311
        if self.holder not in (None, self.settings.identity) and self._expires:
            wait = min(wait, max(0.0, self._expires - monotonic()) + 0.05)
        return wait

    async def try_acquire_or_renew(self) -> bool:
        """One round; True when this replica holds the Lease afterwards."""
        me = self.settings.identity
        # Renew from our own last copy: one PUT. A conflict means someone else wrote it.
        if self._lease is not None and self.fence.remaining() > 0 and await self._write(self._lease, acquire=False):
            return True
        lease = await self._get()
        now = monotonic()
        if lease is None:
            return await self._create()
        rv, spec = str(lease["metadata"]["resourceVersion"]), lease.get("spec") or {}
        if rv != self._observed[0]:
            self._observed = (rv, now)
        self.holder = spec.get("holderIdentity") or None
        duration = float(spec.get("leaseDurationSeconds") or self.settings.duration)
        self._expires = self._observed[1] + duration
        if self.holder not in (None, me) and now < self._expires:
            self._lost()
            return False  # held by another, and not expired as far as we can tell
        return await self._write(lease, acquire=self.holder != me)

    async def _get(self) -> dict[str, Any] | None:
        try:
            return await self._call("GET", f"{self.path}/{self.settings.name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _body(self, lease: dict[str, Any] | None, *, holder: str | None, acquire: bool) -> dict[str, Any]:
        spec = dict((lease or {}).get("spec") or {})
        now = _now()
        if acquire:
            previous = spec.get("holderIdentity")
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if previous else 0)
            spec["acquireTime"] = now
        spec |= {"holderIdentity": holder, "renewTime": now,
                 "leaseDurationSeconds": self.settings.duration if holder else 1}
        meta = {"name": self.settings.name, "namespace": self.settings.namespace}
        if lease is not None:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    async def _create(self) -> bool:
        sent = monotonic()
        try:
            created = await self._call("POST", self.path, body=self._body(None, holder=self.settings.identity,
                                                                            acquire=True),
                                       query=[("fieldManager", MANAGER)])
        except ApiError as exc:
            if exc.status == 409:  # another candidate created it first
                return False
            raise
        assert created is not None
        self._won(created, sent)
        return True

    async def _write(self, lease: dict[str, Any], *, acquire: bool) -> bool:
        sent = monotonic()
        try:
            written = await self._call("PUT", f"{self.path}/{self.settings.name}",
                                       body=self._body(lease, holder=self.settings.identity, acquire=acquire),
                                       query=[("fieldManager", MANAGER)])
        except ApiError as exc:
            if exc.status == 409:  # someone wrote the Lease since we read it
                self._lease = None
                return False
            raise
        assert written is not None
        self._won(written, sent)
        return True

    def _won(self, lease: dict[str, Any], sent: float) -> None:
        if not self.leadership.leading and not self.leadership.stopping:
            log.info("leading: %s holds Lease %s/%s", self.settings.identity, self.settings.namespace,
                     self.settings.name)
        self._lease = lease
        self._observed = (str(lease["metadata"]["resourceVersion"]), monotonic())
        self.holder = self.settings.identity
        self.fence.extend(sent + self.settings.renew_deadline)
        self.leadership.set(True)
        # Stand by at the fence's deadline unless a renewal moves it first.
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(max(0.0, self.fence.remaining()), self._expired)

    def _expired(self) -> None:
        if self.fence.remaining() <= 0 and self.leadership.leading:
            log.warning("lost the Lease: not renewed within %.1fs; writes are fenced off, standing by",
                        self.settings.renew_deadline)
            self._lost()

    def _lost(self) -> None:
        self._lease = None
        self.fence.close()
        self.leadership.set(False)

    async def stop(self) -> None:
        """Stop electing; release the Lease if held (its writes are fenced off first)."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        held = self._lease is not None
        self._lease = None
        self.fence.close()
        self.leadership.set(False)
        if held:
            try:
                await self._release()
            except ApiError as exc:  # a standby takes over when the lease expires instead
                log.warning("could not release the Lease (%s); a standby takes over when it expires", exc)
        self._pool.shutdown(wait=False)

    async def _release(self) -> None:
        # Read it again: a renewal cancelled mid-flight may have changed its resourceVersion.
        for _ in range(2):
            lease = await self._get()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.settings.identity:
                return
            try:
                await self._call("PUT", f"{self.path}/{self.settings.name}",
                                 body=self._body(lease, holder=None, acquire=False),
                                 query=[("fieldManager", RELEASE_MANAGER)])
            except ApiError as exc:
                if exc.status == 409:
                    continue
                raise
            log.info("released Lease %s/%s", self.settings.namespace, self.settings.name)
            return

    def standing_by(self) -> bool:
        """A standby that can see the Lease: it heard from the API server within a lease duration."""
        return monotonic() - self.contact < self.settings.duration


def new_identity() -> str:
    """This process's name in the Lease and in the user agent: unique even when a pod's name comes back
    (a restarted container must wait out its predecessor's lease, never share it)."""
    return f"{os.environ.get('POD_ID') or socket.gethostname()}_{secrets.token_hex(4)}"


class Election:
    """What the wiring sees: the gate for reconciles, the fence for writes, the role, and the step-down."""

    def __init__(self, elector: LeaseElector | None, leadership: Leadership, identity: str,
                 drain: float = 20.0) -> None:
        self.elector = elector
        self.leadership = leadership
        self.identity = identity
        self.drain = drain
        self.fence: Callable[[], float] | None = elector.fence.check if elector is not None else None

    @classmethod
    def create(cls, settings: LeaseSettings | None, identity: str, drain: float) -> Election:
        """Leader election on a Lease; None: off, this replica always leads (one replica, as before)."""
        if settings is None:
            return cls(None, Leadership(leading=True), identity, drain)
        leadership = Leadership(leading=False)
        # Its own client and connection: Lease calls never queue behind the reconciles'.
        request = Kube.from_environment(pool_size=1, identity=identity).request
        return cls(LeaseElector(request, settings, leadership, Fence()), leadership, identity, drain)

    def gate(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.leadership.gate()

    def start(self) -> None:
        if self.elector is not None:
            self.elector.start()

    def role(self) -> str:
        if self.leadership.stopping:
            return "stopping"
        if self.leadership.leading:
            return "leader"
        return "standby" if self.elector is not None and self.elector.standing_by() else "candidate"

    async def step_down(self) -> None:
        """Graceful shutdown: in-flight reconciles finish (up to `drain` s), then writes stop and the Lease goes."""
        inflight = self.leadership.inflight
        if not await self.leadership.drain(self.drain):
            log.warning("%d reconciles still running after %.0fs; abandoning them (their writes are fenced off)",
                        self.leadership.inflight, self.drain)
        elif inflight:
            log.info("%d in-flight reconciles finished before shutdown", inflight)
        if self.elector is not None:
            await self.elector.stop()
