"""Reconcile one StaticSite: render, compare with what is observed, write only the difference.

Level-based, not edge-based: the input is the site and its children as the watches
last saw them (kopf indexes), never a diff of the spec. So kopf keeps no diff-base
annotation, a restart needs no stored state, and a pass that finds nothing to change
sends nothing to the API server.

The indexes lag our own writes by one watch event. To not mistake that lag for drift,
the controller remembers the objects its writes returned and uses whichever copy
has the newer resourceVersion. etcd-backed resourceVersions are increasing integers;
KEP-5504 (comparable resource versions) makes relying on that official.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic

from . import conditions as c
from . import drift, kube, metrics, models, render, status
from .revisions import Revisions, TokenUnavailable
from .status import Problem

log = logging.getLogger(__name__)

ObjKey = tuple[str, str, str]  # kind, namespace, name


class Lookup(Protocol):
    """What the watches have seen (kopf indexes in production, dicts in unit tests)."""

    def site(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def child(self, kind: str, namespace: str, site: str, name: str) -> dict[str, Any] | None: ...
    def fetch_failures(self, namespace: str, site: str) -> list[dict[str, Any]]: ...


def snapshot(body: Any) -> dict[str, Any]:
    """The part of an object the controller compares, small enough to keep for every site."""
    meta = body["metadata"]
    keep = ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations",
            "ownerReferences", "deletionTimestamp")
    out: dict[str, Any] = {"kind": body.get("kind"), "metadata": {k: meta[k] for k in keep if k in meta}}
    if body.get("kind") == "ConfigMap":
        out["dataHashes"] = render.data_hashes(body.get("data"), body.get("binaryData"))
    else:
        for part in ("spec", "status"):
            if part in body:
                out[part] = body[part]
    return out


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion", 0))
    except ValueError:
        return 0


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def _stale_namesake(obj: dict[str, Any], site: str) -> bool:
    """Controlled by an earlier StaticSite of the same name: deleted and re-created."""
    return any(ref.get("kind") == models.KIND and ref.get("name") == site and ref.get("controller")
               for ref in obj["metadata"].get("ownerReferences") or [])


def out_of_sync(desired: dict[str, Any], live: dict[str, Any]) -> str | None:
    """Why `live` needs an apply to match `desired` (the first difference), or None."""
    meta_d, meta_l = desired["metadata"], live["metadata"]
    for part in ("labels", "annotations", "ownerReferences"):
        if (found := drift.difference(meta_l.get(part), meta_d.get(part), ("metadata", part))) is not None:
            return found
    if desired["kind"] == "ConfigMap":
        live_hashes = live.get("dataHashes") or {}
        wanted = render.data_hashes(desired.get("data"), desired.get("binaryData"))
        changed = sorted(k for k, v in wanted.items() if live_hashes.get(k) != v)
        return f"data {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}" if changed else None
    return drift.difference(live.get("spec"), desired.get("spec"), ("spec",))


def _validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


@dataclass
class Pass:
    """What one reconcile did, for Events and metrics."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rollout: bool = False


class Controller:
    def __init__(self, api: kube.Kube, lookup: Lookup, images: render.Images | None = None) -> None:
        self.kube = api
        self.images = images or render.Images()
        self.lookup = lookup
        self._written: dict[ObjKey, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.revisions = Revisions()
        self.ready: dict[tuple[str, str], str] = {}  # site -> Ready status, for the sites gauge

    # --- the freshest copy of an object: index or our own last write ---------------
    def _remember(self, obj: dict[str, Any]) -> dict[str, Any]:
        snap = snapshot(obj)
        meta = snap["metadata"]
        with self._lock:
            self._written[snap["kind"], meta["namespace"], meta["name"]] = snap
        return snap

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The watch saw the object deleted: our remembered copy is no longer true."""
        with self._lock:
            self._written.pop((kind, namespace, name), None)

    def _fresh(self, key: ObjKey, indexed: dict[str, Any] | None) -> dict[str, Any] | None:
        with self._lock:
            mine = self._written.get(key)
            if mine is not None and indexed is not None and _rv(indexed) >= _rv(mine):
                del self._written[key]  # the watch has caught up
                return indexed
        return mine if mine is not None else indexed

    def _child(self, kind: str, namespace: str, site: str, name: str) -> dict[str, Any] | None:
        return self._fresh((kind, namespace, name), self.lookup.child(kind, namespace, site, name))

    # --- reconcile -------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> float | None:
        """Reconcile one site; returns when to look again (git sources poll their ref), if ever."""
        started = time.monotonic()
        try:
            recheck = self._reconcile(namespace, name)
        except Exception:
            metrics.RECONCILE_ERRORS.inc()
            metrics.RECONCILES.labels("error").inc()
            raise
        else:
            metrics.RECONCILES.labels("ok").inc()
            return recheck
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> float | None:
        body = self._fresh((models.KIND, namespace, name), self.lookup.site(namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Children carry ownerReferences: the garbage collector removes them.
            self.ready.pop((namespace, name), None)
            self.revisions.forget(namespace, name)
            self._update_gauge()
            return None
        meta = body["metadata"]
        spec: models.StaticSiteSpec | None = None
        rendered: render.Rendered | None = None
        problem: Problem | None = None
        done = Pass()
        try:
            spec = models.StaticSiteSpec.model_validate(body.get("spec") or {})
        except pydantic.ValidationError as exc:
            problem = Problem(c.INVALID_SPEC, _validation_message(exc))
        previous = body.get("status")
        revision: str | None = None
        recheck: float | None = None
        if spec is not None and (git := spec.content.git) is not None:
            rev = self.revisions.current(namespace, name, git, (previous or {}).get("revision"),
                                         token=lambda: self._token(namespace, git.secret_ref))
            revision, recheck, problem = rev.sha, rev.recheck_in, rev.problem
        if spec is not None:
            try:
                rendered = render.render(render.Site(name, namespace, meta["uid"], spec, revision, self.images))
            except render.ContentTooLarge as exc:
                problem = Problem(c.CONTENT_TOO_LARGE, str(exc))
            except render.NotResolved as exc:
                problem = problem or Problem(c.NOT_RESOLVED, str(exc))
        if spec is not None and rendered is not None:
            problem = self._sync_children(body, spec, rendered, done) or problem or self._fetch_problem(
                namespace, name, rendered.checksum)

        new = status.compute(status.Observed(
            name=name, namespace=namespace, generation=meta.get("generation", 0), spec=spec,
            checksum=rendered.checksum if rendered else None,
            content_hash=rendered.content_hash if rendered else None,
            deployment=self._child("Deployment", namespace, name, name), problem=problem,
            revision=revision if rendered else (previous or {}).get("revision"),
        ), previous)
        if not status.same(previous, new):
            self._remember(self.kube.patch_status(namespace, name, new))
        self._post_events(body, previous, new, done)
        ready = (status.condition(new, c.READY) or {}).get("status", "Unknown")
        self.ready[namespace, name] = ready
        self._update_gauge()
        return recheck

    def _token(self, namespace: str, ref: models.SecretRef | None) -> str | None:
        """The access token for a private repository, read when the ref is looked up."""
        if ref is None:
            return None
        try:
            secret = self.kube.get("Secret", namespace, ref.name)
        except kube.ApiError as exc:
            if exc.status == 403:
                raise TokenUnavailable(
                    f"the operator may not read Secret {ref.name!r}: install the chart with "
                    "gitCredentials.enabled=true to let it read access tokens") from None
            raise TokenUnavailable(f"cannot read Secret {ref.name!r}: {exc.reason}") from None
        if secret is None:
            raise TokenUnavailable(f"Secret {ref.name!r} not found in namespace {namespace!r}")
        data = (secret.get("data") or {}).get(ref.key)
        if data is None:
            raise TokenUnavailable(f"Secret {ref.name!r} has no key {ref.key!r}")
        return base64.b64decode(data).decode().strip()

    def _fetch_problem(self, namespace: str, name: str, checksum: str) -> Problem | None:
        """A pod of the current revision whose init container failed to fetch the content."""
        for failure in self.lookup.fetch_failures(namespace, name):
            if failure.get("checksum") == checksum:
                return Problem(failure["reason"], f"pod {failure['name']}: {failure['message']}; "
                                                  "the previous pods keep serving")
        return None

    def _sync_children(self, site: dict[str, Any], spec: models.StaticSiteSpec,
                       rendered: render.Rendered, done: Pass) -> Problem | None:
        meta = site["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        for obj in rendered.objects:
            kind, cname = obj["kind"], obj["metadata"]["name"]
            live = self._child(kind, namespace, name, cname)
            if live is None:
                # Not among our labelled objects: absent, or someone else's (one GET tells).
                found = self.kube.get(kind, namespace, cname)
                live = snapshot(found) if found else None
            if live is not None and not controlled_by(live, uid) and not _stale_namesake(live, name):
                return Problem(c.NAME_CONFLICT, f"{kind} {cname!r} already exists and is not managed by this "
                                                "StaticSite; it was left untouched. Rename the site or remove it.")
            why = "absent" if live is None else out_of_sync(obj, live)
            if why is None:
                continue
            log.info("applying %s %s/%s: %s", kind, namespace, cname, why)
            try:
                self._remember(self.kube.apply(obj))
            except kube.ApiError as exc:
                if not exc.permanent:
                    raise
                return Problem(c.APPLY_FAILED, f"the API server rejected {kind} {cname!r}: {exc.message}")
            (done.created if live is None else done.updated).append(f"{kind}/{cname}")
            if kind == "Deployment":
                done.rollout = live is None or not drift.contains(
                    live.get("spec"), {"template": obj["spec"]["template"]})
        # Children the spec no longer asks for: the Ingress without domains, the content
        # ConfigMap once the site moved to git or an archive. Only ours are deleted.
        wanted = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects}
        names = render.Names.of(name)
        for kind, cname in (("Ingress", names.ingress), ("ConfigMap", names.content)):
            stale = self._child(kind, namespace, name, cname) if (kind, cname) not in wanted else None
            if stale is not None and controlled_by(stale, uid):
                self.kube.delete(kind, namespace, cname, stale["metadata"]["uid"])
                self.forget(kind, namespace, cname)
                done.deleted.append(f"{kind}/{cname}")
        return None

    def _post_events(self, site: dict[str, Any], previous: dict[str, Any] | None,
                     new: dict[str, Any], done: Pass) -> None:
        """Events on transitions only: what changed, never 'nothing happened'."""
        events: list[tuple[str, str, str]] = []
        if done.created:
            events.append(("Normal", "Created", "created " + ", ".join(done.created)))
        if done.deleted:
            events.append(("Normal", "Deleted", "deleted " + ", ".join(done.deleted)))
        if done.rollout and not done.created:
            events.append(("Normal", "RollingOut", f"rolling out content {new.get('contentHash', '')[:19]}"))
        if new.get("revision") and (previous or {}).get("revision") not in (None, new["revision"]):
            events.append(("Normal", "NewRevision", f"now serving commit {new['revision'][:12]}"))
        before_ready = status.condition(previous, c.READY) or {}
        after_ready = status.condition(new, c.READY) or {}
        if after_ready.get("status") == "True" and before_ready.get("status") != "True":
            events.append(("Normal", "Ready", after_ready.get("message", "")))
        before_deg = status.condition(previous, c.DEGRADED) or {}
        after_deg = status.condition(new, c.DEGRADED) or {}
        if after_deg.get("status") == "True" and (before_deg.get("status"), before_deg.get("reason")) != (
                "True", after_deg.get("reason")):
            events.append(("Warning", after_deg["reason"], after_deg.get("message", "")))
        elif after_deg.get("status") == "False" and before_deg.get("status") == "True":
            events.append(("Normal", "Recovered", "the site reconciles again"))
        for type_, reason, message in events:
            try:
                self.kube.post_event(site, type_, reason, message)
            except kube.ApiError as exc:  # an Event is worth a log line, not a retry
                log.warning("could not post event %s on %s: %s", reason, site["metadata"]["name"], exc)

    def _update_gauge(self) -> None:
        counts = {"True": 0, "False": 0, "Unknown": 0}
        for ready in list(self.ready.values()):
            counts[ready] = counts.get(ready, 0) + 1
        for key, value in counts.items():
            metrics.SITES.labels(key).set(value)
