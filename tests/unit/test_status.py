"""status.compute: Ready means every replica runs the current content at the current
generation; conditions keep their transition times unless they flip, so an unchanged
world computes an identical status (and the controller writes nothing).
"""

from __future__ import annotations

from typing import Any

from staticsite_operator.api import conditions as c
from staticsite_operator.api import models
from staticsite_operator.core import labels, status

SPEC = models.StaticSiteSpec.model_validate({"content": {"inline": {"files": [{"path": "i", "content": "x"}]}},
                                             "replicas": 2})


def deployment(checksum: str = "sum", generation: int = 1, observed: int = 1, updated: int = 2,
               available: int = 2, total: int = 2, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"template": {"metadata": {"annotations": {labels.CHECKSUM_ANNOTATION: checksum}}}},
        "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                   "readyReplicas": available, "replicas": total, "conditions": conditions or []},
    }


def observed(dep: dict[str, Any] | None, problem: status.Problem | None = None,
             spec: models.StaticSiteSpec | None = SPEC) -> status.Observed:
    return status.Observed(name="web", namespace="ns", generation=4, spec=spec, checksum="sum",
                           content_hash="sha256:abc", deployment=dep, problem=problem)


def conds(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {x["type"]: (x["status"], x["reason"]) for x in st["conditions"]}


def test_ready_when_all_replicas_run_the_current_checksum() -> None:
    st = status.compute(observed(deployment()), None)
    assert conds(st) == {c.READY: ("True", c.AVAILABLE), c.PROGRESSING: ("False", c.ROLLOUT_COMPLETE),
                         c.DEGRADED: ("False", c.RECONCILED)}
    assert st["observedGeneration"] == 4
    assert all(x["observedGeneration"] == 4 for x in st["conditions"])
    assert st["readyReplicas"] == 2
    assert st["selector"] == labels.selector_string("web")
    assert st["url"] == "http://web.ns.svc"


def test_old_checksum_or_generation_is_a_rollout() -> None:
    assert conds(status.compute(observed(deployment(checksum="old")), None))[c.READY] == ("False", c.ROLLING_OUT)
    assert conds(status.compute(observed(deployment(generation=2, observed=1)), None))[c.PROGRESSING][0] == "True"
    # surge: a third, old pod still running
    assert conds(status.compute(observed(deployment(total=3)), None))[c.READY][0] == "False"


def test_waiting_for_availability() -> None:
    st = status.compute(observed(deployment(available=1)), None)
    assert conds(st)[c.READY] == ("False", c.WAITING_FOR_REPLICAS)


def test_problem_is_degraded_and_not_ready() -> None:
    st = status.compute(observed(None, status.Problem(c.CONTENT_TOO_LARGE, "too big")), None)
    assert conds(st)[c.DEGRADED] == ("True", c.CONTENT_TOO_LARGE)
    assert conds(st)[c.READY] == ("False", c.CONTENT_TOO_LARGE)


def test_progress_deadline_is_degraded() -> None:
    dep = deployment(checksum="sum", available=0, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "stuck"}])
    assert conds(status.compute(observed(dep), None))[c.DEGRADED] == ("True", c.DEADLINE_EXCEEDED)


def test_unchanged_world_gives_an_identical_status() -> None:
    first = status.compute(observed(deployment()), None)
    again = status.compute(observed(deployment()), first)
    assert status.same(first, again)


def test_transition_time_moves_only_on_a_flip() -> None:
    old = status.compute(observed(deployment()), None)
    for cond in old["conditions"]:
        cond["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    new = status.compute(observed(deployment(available=1)), old)
    times = {x["type"]: x["lastTransitionTime"] for x in new["conditions"]}
    assert times[c.READY] != "2000-01-01T00:00:00Z"
    assert times[c.DEGRADED] == "2000-01-01T00:00:00Z"


def test_url_prefers_the_first_domain_and_tls() -> None:
    spec = models.StaticSiteSpec.model_validate({
        "content": {"inline": {"files": [{"path": "i", "content": "x"}]}},
        "domains": ["a.example.com"], "ingress": {"tls": {"secretName": "t"}}})
    assert status.compute(observed(deployment(), spec=spec), None)["url"] == "https://a.example.com"


def test_deployments_with_the_same_rollout_signal_give_the_same_site_status() -> None:
    """The cache queues no pass for a Deployment event that keeps its spec and its
    rollout_signal (runtime.cache). Sound only if no such pass could write: for every
    status a 2-replica Deployment can report (generation seen or not, each count below,
    at or above 2, a stalled rollout or not), with the current template or an old one,
    equal signals must give statuses that `same` finds equal, and the same answer to
    "rolled out" for a move back from a pool."""
    import itertools

    from staticsite_operator.core import sharedsite

    stalled = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "slow"}]
    by_signal: dict[tuple[Any, ...], list[tuple[dict[str, Any], bool]]] = {}
    for checksum, observed_gen, updated, available, total, stuck in itertools.product(
            ("sum", "old"), (1, 2), range(4), range(4), range(4), (False, True)):
        dep = deployment(checksum=checksum, generation=2, observed=observed_gen, updated=updated,
                         available=available, total=total, conditions=stalled if stuck else None)
        dep["spec"]["replicas"] = 2
        site_status = status.compute(observed(dep), None)
        rolled_out = sharedsite._rolled_out(dep, "sum", 2)
        by_signal.setdefault((checksum, *status.rollout_signal(dep)), []).append((site_status, rolled_out))
    assert len(by_signal) > 8, "the signal tells rollouts apart"
    for group in by_signal.values():
        first, first_rolled_out = group[0]
        for other, rolled_out in group[1:]:
            assert status.same(first, other) and rolled_out == first_rolled_out
