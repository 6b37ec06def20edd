"""The chaos suite's double-writer check (bench/chaos/fencing.py) on hand-made audit records.

It must pass a clean handover (renewals, a release, a takeover) and catch each way two
writers can overlap: a write by a standby, a write by a former leader after a takeover,
a write after the holder's lease ran out, a write after a release; and it must tell
writes it cannot attribute apart.
"""

from __future__ import annotations

from bench.audit import Request
from bench.chaos.fencing import check, identity

from staticsite_operator.runtime.leader import MANAGER, RELEASE_MANAGER

USER = "system:serviceaccount:ns:op"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"


def agent(who: str | None) -> str:
    return f"staticsite-operator/0.1.0 ({who})" if who else "kopf/1.45.2"


def lease(at: float, who: str, verb: str = "update", manager: str = MANAGER, code: int = 200) -> Request:
    uri = (LEASE if verb == "update" else LEASE.rsplit("/", 1)[0]) + f"?fieldManager={manager}"
    return Request(at, verb, "leases", USER, agent(who), code, uri)


def write(at: float, who: str | None) -> Request:
    return Request(at, "patch", "configmaps", USER, agent(who), 200, "/api/v1/namespaces/a/configmaps/x")


def test_identity_comes_from_the_user_agent() -> None:
    assert identity("staticsite-operator/0.1.0 (op-7_ab12cd34)") == "op-7_ab12cd34"
    assert identity("staticsite-operator/0.1.0") is None
    assert identity("kopf/1.45.2") is None


def test_a_clean_handover_has_no_double_write() -> None:
    records = [lease(0, "a", verb="create"), write(1, "a"), lease(2, "a"), write(3, "a"),
               lease(4, "a", manager=RELEASE_MANAGER), lease(4.5, "b"), write(5, "b"),
               lease(18, "b"), lease(20, "a", code=409), write(21, "b"),  # a's late attempt was refused
               Request(22, "get", "configmaps", USER, agent("a"), 200, "/api/v1/x")]  # reads never count
    out = check(records, USER, "l", lease_duration=10)
    assert out.double_writes == [] and out.unattributed == []
    assert out.writes == 4 and out.holders == ["a", "b"] and out.lease_writes == 5


def test_every_kind_of_overlap_is_caught() -> None:
    records = [lease(0, "a", verb="create"), write(1, "b"),          # a standby writes
               lease(2, "b"), write(3, "a"),                         # the former leader writes after a takeover
               write(13, "b"),                                       # b's lease ran out at 12
               lease(14, "b"), lease(15, "b", manager=RELEASE_MANAGER), write(16, "b"),  # after its release
               write(17, None)]                                      # no identity
    out = check(records, USER, "l", lease_duration=10)
    assert len(out.double_writes) == 4, out.double_writes
    assert [w.split(" by ")[1].split(" at ")[0] for w in out.double_writes] == ["b", "a", "b", "b"]
    assert len(out.unattributed) == 1


def test_other_users_and_other_leases_are_ignored() -> None:
    other_lease = Request(0, "update", "leases", USER, agent("b"), 200,
                          "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1")
    someone = Request(1, "patch", "configmaps", "admin", "kubectl", 200, "/api/v1/x")
    out = check([lease(0, "a", verb="create"), other_lease, someone, write(2, "a")], USER, "l", lease_duration=10)
    assert out.double_writes == [] and out.holders == ["a"] and out.writes == 1
