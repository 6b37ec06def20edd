"""Leader election (runtime.leader) without a cluster: a fake Lease store that keeps the API
server's rules (create refuses an existing name, a write with a stale resourceVersion gets
409), and electors driven round by round on a fake clock.

Covered: one leader among candidates; renewals; a standby takes over only after a lease
duration without change, counted on its own clock; the fence closes at the renew
deadline, before a standby can take over, even when the event loop is not running; the
Lease is released on step-down, in-flight reconciles finish first; API errors never
make a leader of a standby and never extend a leader's fence; the gate holds reconciles
while standing by.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any

import pytest

from staticsite_operator.core.ports import ApiError
from staticsite_operator.runtime import leader
from staticsite_operator.runtime.leader import Election, Fence, Leadership, LeaseElector, LeaseSettings, NotLeader

PATH = "/apis/coordination.k8s.io/v1/namespaces/ops/leases"


class Clock:
    """Stands in for time.monotonic in runtime.leader."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(leader, "monotonic", c)
    return c


class LeaseStore:
    """The API server's side of one Lease, with optimistic concurrency."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = itertools.count(1)
        self.calls: list[tuple[str, str, str]] = []   # method, identity, fieldManager
        self.down = False

    def request(self, identity: str) -> leader.Request:
        def call(method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
                 timeout: float = 30, **_: Any) -> dict[str, Any] | None:
            self.calls.append((method, identity, dict(query or []).get("fieldManager", "")))
            if self.down:
                raise ApiError(503, "ServiceUnavailable", "the API server is down")
            if method == "GET":
                assert path == f"{PATH}/ss"
                if self.lease is None:
                    raise ApiError(404, "NotFound", "leases.coordination.k8s.io \"ss\" not found")
                return copy.deepcopy(self.lease)
            if method == "POST":
                assert path == PATH
                if self.lease is not None:
                    raise ApiError(409, "AlreadyExists", "exists")
            elif method == "PUT":
                assert self.lease is not None
                if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", "the object has been modified")
            self.lease = copy.deepcopy(body)
            self.lease["metadata"]["resourceVersion"] = str(next(self.rv))
            return copy.deepcopy(self.lease)
        return call

    @property
    def holder(self) -> str | None:
        return ((self.lease or {}).get("spec") or {}).get("holderIdentity")


def settings(identity: str) -> LeaseSettings:
    return LeaseSettings("ops", "ss", identity, duration=10, renew_deadline=7, retry_period=2)


def elector(store: LeaseStore, identity: str) -> LeaseElector:
    return LeaseElector(store.request(identity), settings(identity), Leadership(leading=False), Fence())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def pair(clock: Clock) -> tuple[LeaseStore, LeaseElector, LeaseElector]:
    store = LeaseStore()
    return store, elector(store, "a"), elector(store, "b")


async def rounds(*electors: LeaseElector) -> list[bool]:
    return [await e.try_acquire_or_renew() for e in electors]


def test_one_leader_among_candidates(pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    store, a, b = pair

    async def scenario() -> None:
        assert await rounds(a, b) == [True, False]
        assert store.holder == "a"
        assert a.leadership.leading and not b.leadership.leading
        assert a.fence.check() == pytest.approx(7)
        with pytest.raises(NotLeader):
            b.fence.check()
        assert b.holder == "a"
    run(scenario())


def test_the_leader_renews_with_one_put_from_its_own_copy(clock: Clock,
                                                          pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    store, a, _ = pair

    async def scenario() -> None:
        await a.try_acquire_or_renew()
        store.calls.clear()
        clock.now += 2
        assert await a.try_acquire_or_renew()
        assert store.calls == [("PUT", "a", leader.MANAGER)]
        assert a.fence.remaining() == pytest.approx(7)  # from when the renewal was sent
    run(scenario())


def test_a_standby_takes_over_only_after_a_lease_duration_without_change(
        clock: Clock, pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    store, a, b = pair

    async def scenario() -> None:
        await rounds(a, b)
        # The leader dies silently (SIGKILL): b keeps looking.
        for _ in range(4):
            clock.now += 2.4
            assert not await b.try_acquire_or_renew()  # 9.6 s since b saw the last change: not yet
        clock.now += 0.5
        assert await b.try_acquire_or_renew()
        assert store.holder == "b"
        assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1
    run(scenario())


def test_a_standby_looks_again_when_the_lease_expires_not_a_retry_period_later(
        clock: Clock, pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    _, a, b = pair

    async def scenario() -> None:
        await rounds(a, b)
        assert a.next_look() == a.settings.retry_period  # the leader renews on the period
        clock.now += 9.0  # b saw the last change 9 s ago: the lease runs out in 1 s
        assert not await b.try_acquire_or_renew()
        assert 0.9 < b.next_look() <= 1.1  # not the 2-2.4 s period
        clock.now += 1.05
        assert b.next_look() <= 0.05
        assert await b.try_acquire_or_renew()
        clock.now += 100
        assert not await a.try_acquire_or_renew()  # a sees b's Lease for the first time: 10 s ahead
        assert a.settings.retry_period <= a.next_look() <= 1.2 * a.settings.retry_period
    run(scenario())


def test_the_old_leader_is_fenced_off_before_the_standby_can_take_over(
        clock: Clock, pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    """The invariant behind "never two writers": renew deadline (7 s after the last renewal
    was sent) < the earliest takeover (10 s after a standby saw it)."""
    store, a, b = pair

    async def scenario() -> None:
        await rounds(a, b)
        store.down = True  # a is cut off from the API server; b's view too, then b's returns first
        clock.now += 6.9
        a.fence.check()  # still inside its deadline
        clock.now += 0.2
        with pytest.raises(NotLeader):
            a.fence.check()  # checked in the writing thread: no event loop needed
        store.down = False
        assert not await b.try_acquire_or_renew()  # 7.1 s < 10 s
        clock.now += 3
        assert await b.try_acquire_or_renew()
        # a, back in touch, sees b hold it: it does not write the Lease, it stands by.
        store.calls.clear()
        assert not await a.try_acquire_or_renew()
        assert [c[0] for c in store.calls] == ["GET"]
        assert not a.leadership.leading
    run(scenario())


def test_api_errors_never_extend_the_fence_nor_make_a_leader(
        clock: Clock, pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    store, a, b = pair

    async def scenario() -> None:
        await rounds(a, b)
        store.down = True
        for _ in range(5):
            clock.now += 2
            for e in (a, b):
                with pytest.raises(ApiError):
                    await e.try_acquire_or_renew()
        with pytest.raises(NotLeader):
            a.fence.check()
        assert not b.leadership.leading
        store.down = False
        # Nobody else wrote the Lease: its holder resumes leading (the Lease still names it).
        assert await a.try_acquire_or_renew()
        assert store.holder == "a" and store.lease is not None and store.lease["spec"]["leaseTransitions"] == 0
    run(scenario())


def test_a_lost_race_is_a_409_not_two_leaders(clock: Clock,
                                             pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    store, a, b = pair

    async def scenario() -> None:
        await rounds(a, b)
        clock.now += 11  # expired for b; a comes back at the same time
        stale = copy.deepcopy(store.lease)
        assert await b.try_acquire_or_renew()
        # a renews from its own (now stale) copy: refused, then it reads and stands by.
        assert a._lease is not None and a._lease["metadata"] == (stale or {})["metadata"]
        a.fence.extend(clock.now + 1)  # pretend its deadline had not passed yet
        assert not await a.try_acquire_or_renew()
        assert store.holder == "b"
        with pytest.raises(NotLeader):
            a.fence.check()
    run(scenario())


def test_step_down_drains_then_fences_then_releases(clock: Clock,
                                                  pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    store, a, b = pair
    election = Election(a, a.leadership, "a", drain=5)
    events: list[str] = []

    async def reconcile() -> None:
        async with election.gate():
            events.append("started")
            await asyncio.sleep(0.05)
            a.fence.check()  # still allowed while draining
            events.append("finished")

    async def scenario() -> None:
        await rounds(a, b)
        task = asyncio.create_task(reconcile())
        await asyncio.sleep(0)
        await election.step_down()
        events.append("stepped down")
        await task
        assert store.holder is None
        assert store.calls[-1] == ("PUT", "a", leader.RELEASE_MANAGER)
        assert store.lease is not None and store.lease["spec"]["leaseDurationSeconds"] == 1
        with pytest.raises(NotLeader):
            a.fence.check()
        assert election.role() == "stopping"
        # The standby need not wait for the lease to expire.
        clock.now += 0.1
        assert await b.try_acquire_or_renew()
    run(scenario())
    assert events == ["started", "finished", "stepped down"]


def test_a_reconcile_still_running_after_the_drain_is_abandoned_and_fenced(
        clock: Clock, pair: tuple[LeaseStore, LeaseElector, LeaseElector]) -> None:
    _, a, _ = pair
    election = Election(a, a.leadership, "a", drain=0.05)
    release = asyncio.Event

    async def scenario() -> None:
        done = release()
        await a.try_acquire_or_renew()

        async def stuck() -> None:
            async with election.gate():
                await done.wait()

        task = asyncio.create_task(stuck())
        await asyncio.sleep(0)
        await election.step_down()
        with pytest.raises(NotLeader):
            a.fence.check()
        done.set()
        await task
    run(scenario())


def test_the_gate_holds_reconciles_while_standing_by() -> None:
    async def scenario() -> None:
        leadership = Leadership(leading=False)
        entered: list[int] = []

        async def worker(i: int) -> None:
            async with leadership.gate():
                entered.append(i)

        tasks = [asyncio.create_task(worker(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert entered == []
        leadership.set(True)
        await asyncio.gather(*tasks)
        assert sorted(entered) == [0, 1, 2]
        assert leadership.inflight == 0
    run(scenario())


def test_leader_election_off_always_leads_and_never_fences() -> None:
    async def scenario() -> None:
        election = Election.create(None, "solo", drain=1)
        assert election.fence is None
        assert election.role() == "leader"
        async with election.gate():
            pass
        await election.step_down()
        assert election.role() == "stopping"
    run(scenario())


def test_identity_is_the_pod_name_and_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_ID", "op-7d9f")
    first, second = leader.new_identity(), leader.new_identity()
    assert first.startswith("op-7d9f_") and second.startswith("op-7d9f_")
    assert first != second
