"""The reconcile pipeline against the fakes it was designed for (tests/unit/fakes.py), no cluster.

Covers: a new site's children and status; quiet by construction (a second pass writes
nothing); drift repair; conflicts with objects the operator does not own (left
untouched); a stale namesake adopted; pruning, by UID and only ours; transient and
permanent API errors; a spec that cannot be rendered; the precedence of problems;
fetch-failure reporting; and git revisions pinned, cached and failing softly.
"""

from __future__ import annotations

from typing import Any

import pytest

from staticsite_operator.api import conditions as c
from staticsite_operator.api import models
from staticsite_operator.core import kinds, problems, render
from staticsite_operator.core.ports import ApiError, ResolveError
from staticsite_operator.core.problems import Problem
from staticsite_operator.core.reconcile import Reconciler
from tests.unit.fakes import SITE_UID, Cluster, site

SHA = "a" * 40


def no_git(url: str, ref: str, token: str | None) -> str:
    raise AssertionError("no git lookup expected")


def reconciler(cluster: Cluster, resolve: Any = no_git, quiet_rollout: float = 0.0) -> Reconciler:
    """A reconciler that writes rollout progress at once (test_quiet_rollout_* test the wait)."""
    return Reconciler(cluster, cluster, resolve, quiet_rollout=quiet_rollout)


def test_a_new_site_gets_its_children_in_apply_order_then_status_and_events() -> None:
    cluster = Cluster()
    cluster.put(site())
    outcome = reconciler(cluster).reconcile("ns", "web")
    created = [(call.kind, call.name.rsplit("-", 1)[0] if call.kind == "ConfigMap" else call.name)
               for call in cluster.writes() if call.verb == "create"]
    assert created == [("ConfigMap", "web"), ("Service", "web"), ("Deployment", "web")]
    assert not [call for call in cluster.calls if call.verb == "get"], "no GET before creating a child"
    assert [child.template for child in kinds.CHILDREN][:3] == ["configmap", "service", "deployment"]
    assert cluster.condition(c.READY)["status"] == "False"
    assert cluster.condition(c.PROGRESSING)["reason"] == c.ROLLING_OUT
    assert cluster.events() == ["Created"]
    assert outcome.ready == "False" and outcome.recheck is None


def test_a_converged_site_is_reconciled_without_a_single_write() -> None:
    cluster = Cluster()
    cluster.put(site())
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    cluster.roll_out()
    reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["status"] == "True"
    assert cluster.events() == ["Created", "Ready"]
    cluster.calls.clear()
    for _ in range(3):
        assert reconcile.reconcile("ns", "web").ready == "True"
    assert cluster.writes() == [], "a pass that changes nothing writes nothing"


def test_drift_in_a_field_we_set_is_repaired_and_the_reason_logged(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster()
    cluster.put(site())
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    dep = cluster.objects["Deployment", "ns", "web"]
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/nginx"
    cluster.put(dep)
    cluster.calls.clear()
    with caplog.at_level("INFO"):
        reconcile.reconcile("ns", "web")
    assert [(call.verb, call.kind) for call in cluster.writes()][:1] == [("apply", "Deployment")]
    assert "spec.template.spec.containers.[nginx].image ('evil/nginx' != " in caplog.text


def test_someone_elses_namesake_is_left_untouched() -> None:
    cluster = Cluster()
    cluster.put(site())
    cluster.put({"kind": "Service", "metadata": {"name": "web", "labels": {"app": "theirs"}}, "spec": {"x": 1}})
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    verbs = [(call.verb, call.kind) for call in cluster.calls]
    assert ("create", "Service") in verbs and ("get", "Service") in verbs, "tried to create; 409; looked"
    assert ("apply", "Service") not in verbs
    assert ("create", "Deployment") not in verbs, "stops at the conflict"
    assert cluster.objects["Service", "ns", "web"]["spec"] == {"x": 1}
    degraded = cluster.condition(c.DEGRADED)
    assert (degraded["status"], degraded["reason"]) == ("True", c.NAME_CONFLICT)
    assert "Service 'web' already exists" in degraded["message"]
    assert c.NAME_CONFLICT in cluster.events()
    cluster.calls.clear()
    reconcile.reconcile("ns", "web")
    assert [(call.verb, call.kind) for call in cluster.calls] == [("get", "Service")], (
        "a name known to be taken is looked up, not written to again; the status is unchanged")


def test_a_child_of_an_earlier_site_of_the_same_name_is_adopted() -> None:
    cluster = Cluster()
    cluster.put(site())
    old_owner = {"apiVersion": "staticsite.dev/v1alpha1", "kind": "StaticSite", "name": "web", "uid": "old",
                 "controller": True}
    cluster.put({"kind": "Service", "metadata": {"name": "web", "ownerReferences": [old_owner]}, "spec": {}})
    reconciler(cluster).reconcile("ns", "web")
    service = cluster.objects["Service", "ns", "web"]
    assert service["metadata"]["ownerReferences"][0]["uid"] == SITE_UID
    assert cluster.condition(c.DEGRADED)["status"] == "False"


def test_children_the_spec_no_longer_wants_are_pruned_by_uid() -> None:
    cluster = Cluster()
    files = {"inline": {"files": [{"path": "index.html", "content": "x"}]}}
    cluster.put(site(content=files, domains=["web.example.com"]))
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    ingress_uid = cluster.objects["Ingress", "ns", "web"]["metadata"]["uid"]
    cluster.put(site(content=files, generation=2))
    cluster.calls.clear()
    reconcile.reconcile("ns", "web")
    deletes = [call for call in cluster.calls if call.verb == "delete"]
    assert [(d.kind, d.name, d.body) for d in deletes] == [("Ingress", "web", {"uid": ingress_uid})]
    assert ("Ingress", "ns", "web") not in cluster.objects
    assert "Deleted" in cluster.events()


def test_a_labelled_child_we_do_not_control_is_never_pruned() -> None:
    cluster = Cluster()
    cluster.put(site())
    cluster.put({"kind": "Ingress", "metadata": {"name": "web", "labels": {"app.kubernetes.io/instance": "web"}},
                 "spec": {}})
    reconciler(cluster).reconcile("ns", "web")
    assert ("Ingress", "ns", "web") in cluster.objects
    assert not [call for call in cluster.calls if call.verb == "delete"]


def test_a_transient_api_error_raises_for_the_queue_to_retry() -> None:
    cluster = Cluster(fail={("apply", "Service"): ApiError(503, "ServiceUnavailable", "etcd is down")})
    cluster.put(site())
    with pytest.raises(ApiError):
        reconciler(cluster).reconcile("ns", "web")


def test_a_permanent_api_error_becomes_degraded_without_a_retry() -> None:
    cluster = Cluster(fail={("apply", "Service"): ApiError(422, "Invalid", "spec.ports: Required value")})
    cluster.put(site())
    outcome = reconciler(cluster).reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert (degraded["reason"], outcome.recheck) == (c.APPLY_FAILED, None)
    assert "spec.ports: Required value" in degraded["message"]


def test_a_spec_that_cannot_be_rendered_is_degraded_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: render.Site) -> render.Rendered:
        raise KeyError("something nobody foresaw")

    monkeypatch.setattr(render, "render", broken)
    cluster = Cluster()
    cluster.put(site())
    outcome = reconciler(cluster).reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert (degraded["status"], degraded["reason"]) == ("True", c.INVALID_SPEC)
    assert "something nobody foresaw" in degraded["message"]
    assert outcome.recheck is None
    assert [call.verb for call in cluster.writes()] == ["patch-status", "event"]


def test_a_spec_the_operator_cannot_parse_is_degraded() -> None:
    cluster = Cluster()
    cluster.put(site(content={"inline": {"files": []}}))
    reconciler(cluster).reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert degraded["reason"] == c.INVALID_SPEC and "spec.content.inline.files" in degraded["message"]


def test_problems_have_an_explicit_precedence() -> None:
    fetch = Problem(c.CHECKSUM_MISMATCH, "archive")
    conflict = Problem(c.NAME_CONFLICT, "taken")
    assert problems.most_severe([None, fetch, conflict]) == conflict
    assert problems.most_severe([None, None]) is None
    degraded_reasons = {v for k, v in vars(c).items() if k.isupper() and isinstance(v, str)}
    degraded_reasons -= {c.READY, c.PROGRESSING, c.DEGRADED, c.AVAILABLE, c.ROLLING_OUT, c.ROLLOUT_COMPLETE,
                         c.SCALED_TO_ZERO, c.WAITING_FOR_REPLICAS, c.RECONCILED}
    assert degraded_reasons <= set(problems.PRECEDENCE), "every Degraded reason has a rank"


def archive_site(**extra: Any) -> dict[str, Any]:
    return site(content={"archive": {"url": "https://example.com/site.tgz", "sha256": "b" * 64}}, **extra)


def test_a_failed_fetch_of_the_current_revision_is_reported() -> None:
    cluster = Cluster()
    cluster.put(archive_site())
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    checksum = cluster.objects["Deployment", "ns", "web"]["spec"]["template"]["metadata"]["annotations"][
        "staticsite.dev/checksum"]
    cluster.failures["ns", "web"] = [
        {"name": "web-old", "checksum": "an-older-revision", "reason": c.FETCH_FAILED, "message": "old"},
        {"name": "web-1", "checksum": checksum, "reason": c.CHECKSUM_MISMATCH, "message": "expected b..."},
    ]
    reconcile.reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert degraded["reason"] == c.CHECKSUM_MISMATCH
    assert degraded["message"] == "pod web-1: expected b...; the previous pods keep serving"


def git_site(ref: str = "main", **extra: Any) -> dict[str, Any]:
    return site(content={"git": {"url": "https://git.example.com/site.git", "ref": ref, "interval": "1m"}}, **extra)


def test_a_pinned_commit_needs_no_lookup() -> None:
    cluster = Cluster()
    cluster.put(git_site(ref=SHA))
    outcome = reconciler(cluster).reconcile("ns", "web")
    assert cluster.status()["revision"] == SHA
    assert outcome.recheck is None


def test_a_branch_is_resolved_once_per_interval_and_rechecked() -> None:
    lookups: list[tuple[str, str]] = []

    def resolve(url: str, ref: str, token: str | None) -> str:
        lookups.append((url, ref))
        return SHA

    cluster = Cluster()
    cluster.put(git_site())
    reconcile = reconciler(cluster, resolve)
    first = reconcile.reconcile("ns", "web")
    reconcile.reconcile("ns", "web")
    assert lookups == [("https://git.example.com/site.git", "main")], "cached within the interval"
    assert first.recheck == pytest.approx(60, abs=1)
    env = {e["name"]: e["value"] for e in cluster.objects["Deployment", "ns", "web"]["spec"]["template"]["spec"][
        "initContainers"][0]["env"]}
    assert env["GIT_SHA"] == SHA


def test_a_failed_lookup_keeps_the_served_revision_and_says_why() -> None:
    def resolve(url: str, ref: str, token: str | None) -> str:
        raise ResolveError("cannot reach the repository")

    cluster = Cluster()
    cluster.put(git_site(status={"revision": SHA}))
    outcome = reconciler(cluster, resolve).reconcile("ns", "web")
    assert cluster.status()["revision"] == SHA, "the last known revision stays pinned"
    degraded = cluster.condition(c.DEGRADED)
    assert degraded["reason"] == c.GIT_RESOLVE_FAILED and "cannot reach the repository" in degraded["message"]
    assert outcome.recheck is not None, "looked up again after the interval"


def test_a_missing_token_secret_is_reported_without_a_lookup() -> None:
    cluster = Cluster()
    cluster.put(site(content={"git": {"url": "https://git.example.com/private.git", "secretRef": {"name": "token"}}}))
    reconciler(cluster, no_git).reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert degraded["reason"] == c.SECRET_UNAVAILABLE and "'token' not found" in degraded["message"]


def test_a_deleted_site_is_forgotten_and_nothing_is_written() -> None:
    cluster = Cluster()
    outcome = reconciler(cluster).reconcile("ns", "gone")
    assert (outcome.ready, outcome.recheck, cluster.calls) == (None, None, [])


# --- the platform's policy and domain claims (tenant security) ----------------------------
def test_a_spec_the_policy_refuses_is_not_applied_and_the_site_keeps_serving() -> None:
    cluster = Cluster()
    cluster.put(site())
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    cluster.roll_out()
    reconcile.reconcile("ns", "web")
    served = cluster.objects["Deployment", "ns", "web"]["spec"]
    files = {"inline": {"files": [{"path": "index.html", "content": "new"}]}}
    cluster.put(site(generation=2, content=files, domains=["web.example.com"],
                     ingress={"annotations": {"nginx.ingress.kubernetes.io/server-snippet": "return 200 pwned;"}}))
    cluster.calls.clear()
    reconcile.reconcile("ns", "web")
    assert [c.verb for c in cluster.writes()] == ["patch-status", "event"], "no child was written"
    assert ("Ingress", "ns", "web") not in cluster.objects, "the refused key was never copied"
    assert cluster.objects["Deployment", "ns", "web"]["spec"] == served
    degraded = cluster.condition(c.DEGRADED)
    assert (degraded["status"], degraded["reason"]) == ("True", c.ANNOTATION_NOT_ALLOWED)
    assert "server-snippet" in degraded["message"]
    assert cluster.events() == [c.ANNOTATION_NOT_ALLOWED]


def test_an_image_the_policy_refuses_is_never_run() -> None:
    cluster = Cluster()
    files = {"inline": {"files": [{"path": "index.html", "content": "x"}]}}
    cluster.put(site(content=files, nginx={"image": "docker.io/anyone/anything:latest"}))
    reconciler(cluster).reconcile("ns", "web")
    assert not [c for c in cluster.calls if c.verb == "apply"]
    assert cluster.condition(c.DEGRADED)["reason"] == c.IMAGE_NOT_ALLOWED


def test_the_later_claimant_of_a_domain_gets_no_ingress_rule_until_the_owner_lets_go() -> None:
    files = {"inline": {"files": [{"path": "index.html", "content": "x"}]}}
    cluster = Cluster()
    cluster.put(site(name="a", namespace="team-a", uid="uid-a", content=files,
                     domains=["docs.example.com"], created="2026-01-01T00:00:00Z"))
    cluster.put(site(name="b", namespace="team-b", uid="uid-b", content=files,
                     domains=["docs.example.com", "b.example.com"], created="2026-01-02T00:00:00Z"))
    reconcile = reconciler(cluster)
    reconcile.reconcile("team-a", "a")
    reconcile.reconcile("team-b", "b")
    hosts = [r["host"] for r in cluster.objects["Ingress", "team-b", "b"]["spec"]["rules"]]
    assert hosts == ["b.example.com"]
    degraded = next(x for x in cluster.status("b", "team-b")["conditions"] if x["type"] == c.DEGRADED)
    assert degraded["reason"] == c.DOMAIN_CONFLICT and "team-a" not in degraded["message"]
    assert cluster.status("b", "team-b")["url"] == "http://b.example.com"
    # The owner goes: the next claimant gets the domain on its next reconcile.
    del cluster.objects[models.KIND, "team-a", "a"]
    reconcile.reconcile("team-b", "b")
    hosts = [r["host"] for r in cluster.objects["Ingress", "team-b", "b"]["spec"]["rules"]]
    assert hosts == ["docs.example.com", "b.example.com"]
    assert next(x for x in cluster.status("b", "team-b")["conditions"] if x["type"] == c.DEGRADED)["status"] == "False"
    cluster.calls.clear()
    reconcile.reconcile("team-b", "b")
    assert cluster.writes() == [], "nothing is written while nothing changes"


# --- fewer status writes --------------------------------------------------------------
def test_a_short_rollout_writes_its_status_once() -> None:
    now = [100.0]
    cluster = Cluster()
    cluster.put(site())
    reconcile = Reconciler(cluster, cluster, no_git, quiet_rollout=5.0, clock=lambda: now[0])
    first = reconcile.reconcile("ns", "web")
    assert [c.verb for c in cluster.writes()].count("patch-status") == 0, "progress is held back"
    assert first.recheck == pytest.approx(5.0), "and looked at again when the wait is over"
    now[0] += 2
    cluster.roll_out()
    reconcile.reconcile("ns", "web")
    assert [c.verb for c in cluster.writes()].count("patch-status") == 1
    assert cluster.condition(c.READY)["status"] == "True"
    assert cluster.events() == ["Created", "Ready"]


def test_a_long_rollout_says_so_once_the_wait_is_over() -> None:
    now = [100.0]
    cluster = Cluster()
    cluster.put(site())
    reconcile = Reconciler(cluster, cluster, no_git, quiet_rollout=5.0, clock=lambda: now[0])
    reconcile.reconcile("ns", "web")
    now[0] += 6
    outcome = reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["reason"] == c.ROLLING_OUT
    assert outcome.recheck is None


def test_replica_counts_alone_are_not_worth_a_write() -> None:
    cluster = Cluster()
    cluster.put(site(replicas=3, content={"inline": {"files": [{"path": "index.html", "content": "x"}]}}))
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    dep = cluster.objects["Deployment", "ns", "web"]
    for updated in (1, 2):
        dep["status"] = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": updated, "availableReplicas": 0}
        cluster.put(dep)
        cluster.calls.clear()
        reconcile.reconcile("ns", "web")
        assert cluster.writes() == [], f"{updated}/3 updated: progress, not a transition"
    cluster.roll_out()
    reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["status"] == "True" and cluster.status()["readyReplicas"] == 3


def test_a_cluster_out_of_service_addresses_is_reported_once_and_retried_slowly() -> None:
    full = ApiError(500, "InternalError", 'Internal error occurred: failed to allocate a serviceIP: range is full')
    cluster = Cluster(fail={("apply", "Service"): full})
    cluster.put(site())
    reconcile = reconciler(cluster)
    outcome = reconcile.reconcile("ns", "web")
    degraded = cluster.condition(c.DEGRADED)
    assert degraded["reason"] == c.ALLOCATION_FAILED and "range is full" in degraded["message"]
    assert outcome.recheck == 60.0
    cluster.calls.clear()
    reconcile.reconcile("ns", "web")
    assert [call.verb for call in cluster.writes()] == ["create"], "the same condition: no status write, no Event"


def test_a_superseded_revision_is_deleted_once_the_new_one_is_rolled_out() -> None:
    cluster = Cluster()
    cluster.put(site())
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    cluster.roll_out()
    reconcile.reconcile("ns", "web")
    (old,) = [name for kind, _, name in cluster.objects if kind == "ConfigMap"]
    cluster.put(site(generation=2, content={"inline": {"files": [{"path": "index.html", "content": "v2"}]}}))
    dep = cluster.objects["Deployment", "ns", "web"]
    reconcile.reconcile("ns", "web")
    configmaps = sorted(name for kind, _, name in cluster.objects if kind == "ConfigMap")
    assert old in configmaps and len(configmaps) == 2, "the old pods still mount the old revision"
    assert cluster.events()[-1] == "RollingOut", "a new revision is a rollout, not a creation"
    assert cluster.objects["Deployment", "ns", "web"] is not dep
    cluster.objects["Deployment", "ns", "web"]["metadata"]["generation"] = 2
    cluster.roll_out()
    cluster.calls.clear()
    reconcile.reconcile("ns", "web")
    assert [name for kind, _, name in cluster.objects if kind == "ConfigMap"] != [old]
    assert [(c.verb, c.name) for c in cluster.calls if c.verb == "delete"] == [("delete", old)]
    assert "Deleted" not in cluster.events(), "a superseded revision is routine, not news"


def test_a_pass_that_changes_nothing_does_not_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Deployment's status moving (most events during a rollout) needs no render; a
    changed spec, or a child edited by someone else, does."""
    renders = []
    real = render.render

    def counting(site: render.Site) -> render.Rendered:
        renders.append(site.name)
        return real(site)

    monkeypatch.setattr(render, "render", counting)
    cluster = Cluster()
    cluster.put(site())
    reconcile = reconciler(cluster)
    reconcile.reconcile("ns", "web")
    cluster.roll_out()
    for _ in range(3):
        reconcile.reconcile("ns", "web")
    assert cluster.condition(c.READY)["status"] == "True", "status still follows the Deployment"
    assert len(renders) == 1
    svc = cluster.objects["Service", "ns", "web"]
    svc["spec"]["ports"][0]["port"] = 8081
    cluster.put(svc)
    reconcile.reconcile("ns", "web")
    assert len(renders) == 2 and cluster.objects["Service", "ns", "web"]["spec"]["ports"][0]["port"] == 80
    cluster.put(site(generation=2, content={"inline": {"files": [{"path": "index.html", "content": "v2"}]}}))
    reconcile.reconcile("ns", "web")
    assert len(renders) == 3


def test_a_spec_is_validated_once_while_it_stays_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a rollout is under way. A changed spec (a new generation) or a recreated site (a
    new uid) is validated again, a spec that failed keeps failing without being re-validated,
    and a site that is Ready lets go of its parsed spec (memory: its next pass may be far)."""
    parses: list[str] = []
    real = models.StaticSiteSpec.model_validate

    def counting(data: Any) -> models.StaticSiteSpec:
        parses.append("parse")
        return real(data)

    monkeypatch.setattr(models.StaticSiteSpec, "model_validate", counting)
    cluster = Cluster()
    cluster.put(site())
    reconcile = reconciler(cluster)
    for _ in range(3):
        reconcile.reconcile("ns", "web")
    assert len(parses) == 1
    content = site()["spec"]["content"]
    cluster.put(site(generation=2, replicas=2, content=content))
    reconcile.reconcile("ns", "web")
    assert len(parses) == 2 and cluster.objects["Deployment", "ns", "web"]["spec"]["replicas"] == 2
    cluster.put(site(uid="site-uid-2", generation=2, replicas=2, content=content))
    reconcile.reconcile("ns", "web")
    assert len(parses) == 3
    cluster.put(site(uid="site-uid-2", generation=3, replicas="many", content=content))
    for _ in range(2):
        reconcile.reconcile("ns", "web")
    assert len(parses) == 4 and cluster.condition(c.DEGRADED)["reason"] == c.INVALID_SPEC
    cluster.put(site(uid="site-uid-2", generation=4, content=content))
    reconcile.reconcile("ns", "web")
    cluster.roll_out()
    assert reconcile.reconcile("ns", "web").ready == "True" and len(parses) == 5
    assert reconcile._parsed == {}
    reconcile.reconcile("ns", "web")
    assert len(parses) == 6
