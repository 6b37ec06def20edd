"""Status as a pure function of what the controller observed. No I/O.

`Ready` is True only when every desired replica is available *and* runs the current
content and config (the pod-template checksum), at the current generation of the
Deployment. Timestamps are carried over from the previous status unless a
condition's status flips, so recomputing an unchanged status yields an identical
dict, and the controller writes nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from ..api import conditions as c
from ..api import models
from . import labels as lbl
from .problems import Problem


@dataclass(frozen=True)
class Observed:
    name: str
    namespace: str
    generation: int
    spec: models.StaticSiteSpec | None       # None when the spec failed to parse
    checksum: str | None                    # desired pod-template checksum, None if not rendered
    content_hash: str | None
    deployment: dict[str, Any] | None
    problem: Problem | None
    revision: str | None = None             # the git commit pinned in the pod template
    hosts: tuple[str, ...] | None = None    # the domains the site serves (core.domains); None: spec.domains


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def url_of(name: str, namespace: str, spec: models.StaticSiteSpec | None,
           hosts: tuple[str, ...] | None = None) -> str:
    served = (tuple(spec.domains) if spec else ()) if hosts is None else hosts
    if spec and served:
        scheme = "https" if spec.ingress.tls else "http"
        return f"{scheme}://{served[0].replace('*.', 'www.', 1)}"
    return f"http://{name}.{namespace}.svc"


def _rollout(obs: Observed) -> tuple[bool, str, str]:
    """(ready, reason, message) from the Deployment's own status."""
    dep = obs.deployment
    want = obs.spec.replicas if obs.spec else 0
    if dep is None:
        return False, c.WAITING_FOR_REPLICAS, "Deployment not created yet"
    annotations = dep["spec"]["template"]["metadata"].get("annotations") or {}
    return _progress(dep, want, annotations.get(lbl.CHECKSUM_ANNOTATION) == obs.checksum)


def _progress(dep: dict[str, Any], want: int, current_template: bool) -> tuple[bool, str, str]:
    st = dep.get("status") or {}
    seen = st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
    updated, available, total = (st.get(k, 0) for k in ("updatedReplicas", "availableReplicas", "replicas"))
    if current_template and seen and updated == want and available == want and total == want:
        if want == 0:
            return True, c.SCALED_TO_ZERO, "scaled to 0 replicas"
        return True, c.AVAILABLE, f"{available}/{want} replicas available with the current content"
    if not current_template or not seen or updated < want or total > want:
        return False, c.ROLLING_OUT, f"rolling out: {updated}/{want} updated, {available} available"
    return False, c.WAITING_FOR_REPLICAS, f"{available}/{want} replicas available"


def rollout_signal(dep: dict[str, Any]) -> tuple[Any, ...]:
    """What of a Deployment's status can change its site's reconcile, for a given spec.

    The site's Ready and its reason (`_rollout`, taking the Deployment's own replicas as
    wanted and its template as current: when it is not, the site is "rolling out"
    whatever the status says), a stalled rollout, and whether every wanted replica is
    updated and available (a move back from a pool waits for that, sharedsite). During
    a rollout most status changes are counts moving on the same side of these lines:
    they change only a progress message, which is never worth a write (`same`), so the
    cache queues no pass for them.
    """
    want = int((dep.get("spec") or {}).get("replicas", 1))
    ready, reason, _ = _progress(dep, want, True)
    return ready, reason, all_updated(dep, want), _deadline_exceeded(dep)


def all_updated(dep: dict[str, Any], want: int) -> bool:
    """At least `want` replicas updated and available, at the Deployment's current generation."""
    st = dep.get("status") or {}
    return bool(st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
                and st.get("updatedReplicas", 0) >= want and st.get("availableReplicas", 0) >= want)


def _deadline_exceeded(dep: dict[str, Any] | None) -> str | None:
    for cond in ((dep or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return str(cond.get("message", "the Deployment stopped progressing"))
    return None


def compute(obs: Observed, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The full status to store, reusing the previous lastTransitionTimes where nothing flipped."""
    ready, reason, message = _rollout(obs)
    problem = obs.problem
    if problem is None and (stalled := _deadline_exceeded(obs.deployment)):
        problem = Problem(c.DEADLINE_EXCEEDED, stalled)
    if problem is not None and not ready:
        reason, message = problem.reason, problem.message

    conds = [
        (c.READY, ready, reason, message),
        (c.PROGRESSING, reason == c.ROLLING_OUT,
         c.ROLLING_OUT if reason == c.ROLLING_OUT else c.ROLLOUT_COMPLETE if ready else reason,
         message),
        (c.DEGRADED, problem is not None,
         problem.reason if problem else c.RECONCILED,
         problem.message if problem else "the desired state is applied"),
    ]
    old = {cond.get("type"): cond for cond in (previous or {}).get("conditions") or []}
    out_conds = []
    for type_, status_bool, why, msg in conds:
        status = "True" if status_bool else "False"
        before = old.get(type_)
        since = before["lastTransitionTime"] if before and before.get("status") == status else _now()
        out_conds.append({
            "type": type_, "status": status, "reason": why, "message": msg,
            "lastTransitionTime": since, "observedGeneration": obs.generation,
        })

    dep_status = (obs.deployment or {}).get("status") or {}
    result: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "conditions": out_conds,
        "url": url_of(obs.name, obs.namespace, obs.spec, obs.hosts),
        "replicas": dep_status.get("replicas", 0),
        "readyReplicas": dep_status.get("readyReplicas", 0),
        "selector": lbl.selector_string(obs.name),
    }
    if obs.revision:
        result["revision"] = obs.revision
    if obs.content_hash:
        result["contentHash"] = obs.content_hash
    elif previous and previous.get("contentHash"):
        result["contentHash"] = previous["contentHash"]  # still serving what was last rendered
    return result


# The fetch scripts' exit codes (templates/fetch-*.sh).
_FETCH_EXIT_REASONS = {42: c.CHECKSUM_MISMATCH, 43: c.REVISION_NOT_FOUND, 44: c.AUTHENTICATION_FAILED}
# The init containers of a pod that fetches its content, in the order they run.
_INIT_CONTAINERS = ("fetch", "routes", "check")


def fetch_failure(pod_status: dict[str, Any]) -> dict[str, str] | None:
    """Why a pod's init containers failed to prepare its content, from what the kubelet
    reported; None if they did not. Also the lines of the content's _redirects/_headers that
    the `routes` container skipped (it succeeds, and the pod serves without them).

    fetch-archive.sh exits 42 on a checksum mismatch, fetch-git.sh 43 when the commit is
    not on the server and 44 when authentication fails; anything else is a fetch failure.
    `routes` (siteconf.py) or `check` (nginx -t) failing is RoutingFailed. The message is
    the container's termination message (its last log lines).
    """
    statuses = {cs.get("name"): cs for cs in pod_status.get("initContainerStatuses") or []}
    for name in _INIT_CONTAINERS:
        cs = statuses.get(name) or {}
        for state in (cs.get("state") or {}, cs.get("lastState") or {}):
            term = state.get("terminated") or {}
            code = term.get("exitCode", 0)
            message = (term.get("message") or "").strip()[-500:]
            if code:
                reason = _FETCH_EXIT_REASONS.get(code, c.FETCH_FAILED) if name == "fetch" else c.ROUTING_FAILED
                return {"reason": reason, "message": message or f"{name}: exit code {code}"}
            if name == "routes" and term and message:
                return {"reason": c.ROUTING_FILE_INVALID, "message": message}
    return None


# Rollout progress: its counts change with every pod that starts, and each change would
# be a write of its own (about three per site per rollout, more with more replicas).
PROGRESS = (c.ROLLING_OUT, c.WAITING_FOR_REPLICAS)


def _material(st: dict[str, Any] | None) -> dict[str, Any]:
    """A status without what changes pod by pod: replica counts, and the message of a
    condition that reports progress (its status and reason are kept)."""
    out = {k: v for k, v in (st or {}).items() if k not in ("replicas", "readyReplicas")}
    out["conditions"] = [{k: v for k, v in cond.items() if k != "message" or cond.get("reason") not in PROGRESS}
                         for cond in out.get("conditions") or []]
    return out


def same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """True when storing `b` over `a` would change nothing a user needs to know now.

    Counts of replicas and rollout-progress messages alone are not worth a write: they
    are refreshed by the next write, which every transition makes (Ready, a new
    generation, a problem).
    """
    return _material(a) == _material(b)


def in_progress(st: dict[str, Any]) -> bool:
    """Rolling out with no problem: the status a short rollout can skip altogether."""
    ready, degraded = condition(st, c.READY) or {}, condition(st, c.DEGRADED) or {}
    return ready.get("status") == "False" and ready.get("reason") in PROGRESS and degraded.get("status") != "True"


def condition(status: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None
