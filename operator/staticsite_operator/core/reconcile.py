"""Reconcile one StaticSite: a pipeline from what the watches saw to the writes that remain.

    parse -> check the platform's policy -> resolve the source -> grant domains -> render
          -> sync children -> compute status -> post Events

Level-based, not edge-based: the input is the site and its children as the watches
last saw them (a `View`), never a diff of the spec. So no diff base is stored, a restart
needs no state, and a pass that finds nothing to change writes nothing.

Each stage returns its result and, instead of raising, the `Problem` that stops it;
`problems.most_severe` decides which one the status reports. Only transient API trouble
(429, 5xx, a lost connection) raises, and the work queue retries it with backoff.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

import pydantic

from ..api import conditions as c
from ..api import models
from . import domains, drift, events, hostfiles, kinds, problems, render, snapshot, status
from .events import Changes
from .policy import Policy
from .ports import ApiError, Client, Obj, RefResolver, TokenUnavailable, View
from .problems import Problem
from .revisions import Revisions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile tells the runtime."""

    ready: str | None        # the Ready condition's status; None when the site is gone
    recheck: float | None    # seconds until the site should be looked at again (git refs)


@dataclass(frozen=True)
class Source:
    revision: str | None     # the git commit to serve (git sources)
    problem: Problem | None
    recheck: float | None


SKIPPED = "lines of the content's _redirects/_headers are skipped (file:line: why):"


def routing_file_problem(found: tuple[hostfiles.LineProblem, ...]) -> Problem:
    """Lines of inline content's _redirects/_headers that are not honoured: the site serves
    without them, and says which."""
    return Problem(c.ROUTING_FILE_INVALID, f"{SKIPPED} {hostfiles.summary(found)}")


def validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def parse(site: Obj) -> tuple[models.StaticSiteSpec | None, Problem | None]:
    try:
        return models.StaticSiteSpec.model_validate(site.get("spec") or {}), None
    except pydantic.ValidationError as exc:
        return None, Problem(c.INVALID_SPEC, validation_message(exc))


class Reconciler:
    def __init__(self, view: View, client: Client, resolve: RefResolver,
                 images: render.Images | None = None, policy: Policy | None = None) -> None:
        self.view = view
        self.client = client
        self.images = images or render.Images()
        self.policy = policy or Policy(default_image=self.images.nginx)
        self.revisions = Revisions(resolve)

    def reconcile(self, namespace: str, name: str) -> Outcome:
        site = self.view.site(namespace, name)
        if site is None or site["metadata"].get("deletionTimestamp"):
            # Children carry ownerReferences: the garbage collector removes them.
            self.revisions.forget(namespace, name)
            return Outcome(None, None)
        previous: dict[str, Any] | None = site.get("status")
        changes = Changes()
        spec, parse_problem = parse(site)
        # A spec the policy refuses is not applied at all: the site keeps what it served.
        policy_problem = self.policy.check(spec) if spec is not None else None
        source, grant = Source(None, None, None), domains.Grant((), None)
        rendered, render_problem, sync_problem, fetch_problem = None, None, None, None
        if spec is not None and policy_problem is None:
            source = self._source(site, spec)
            grant = self._grant(site, spec)
            rendered, render_problem = self._render(site, spec, source.revision, grant.hosts)
        file_problem = routing_file_problem(rendered.problems) if rendered and rendered.problems else None
        if rendered is not None:
            sync_problem = self._sync(site, rendered, changes)
            fetch_problem = self._fetch_problem(namespace, name, rendered.checksum)

        new = status.compute(status.Observed(
            name=name, namespace=namespace, generation=site["metadata"].get("generation", 0), spec=spec,
            checksum=rendered.checksum if rendered else None,
            content_hash=rendered.content_hash if rendered else None,
            deployment=self.view.child("Deployment", namespace, name, name),
            problem=problems.most_severe([parse_problem, policy_problem, sync_problem, render_problem,
                                          grant.problem, source.problem, fetch_problem, file_problem]),
            revision=source.revision if rendered else (previous or {}).get("revision"),
            hosts=grant.hosts if rendered else None,
        ), previous)
        if not status.same(previous, new):
            self.view.wrote(self.client.patch_status(namespace, name, new))
        self._post(site, events.transitions(previous, new, changes))
        return Outcome((status.condition(new, c.READY) or {}).get("status", "Unknown"), source.recheck)

    # --- stages ------------------------------------------------------------------
    def _source(self, site: Obj, spec: models.StaticSiteSpec) -> Source:
        """The commit a git site serves; other sources need no lookup."""
        git = spec.content.git
        if git is None:
            return Source(None, None, None)
        meta = site["metadata"]
        served = (site.get("status") or {}).get("revision")
        rev = self.revisions.current(meta["namespace"], meta["name"], git, served,
                                     token=lambda: self._token(meta["namespace"], git.secret_ref))
        return Source(rev.sha, rev.problem, rev.recheck_in)

    def _grant(self, site: Obj, spec: models.StaticSiteSpec) -> domains.Grant:
        """The domains this site may serve: allowed for its namespace, and not claimed first by another."""
        meta = site["metadata"]
        me = domains.Claim(meta.get("creationTimestamp", ""), meta["namespace"], meta["name"])
        return domains.grant(me, spec.domains, self.view.claimants, self.policy)

    def _render(self, site: Obj, spec: models.StaticSiteSpec, revision: str | None,
                hosts: tuple[str, ...]) -> tuple[render.Rendered | None, Problem | None]:
        meta = site["metadata"]
        try:
            return render.render(render.Site(meta["name"], meta["namespace"], meta["uid"], spec, revision,
                                             self.images, hosts)), None
        except render.ContentTooLarge as exc:
            return None, Problem(c.CONTENT_TOO_LARGE, str(exc))
        except render.NotResolved as exc:
            return None, Problem(c.NOT_RESOLVED, str(exc))
        except Exception as exc:  # a spec that passed validation but cannot be rendered: never a retry loop
            log.exception("rendering %s/%s failed", meta["namespace"], meta["name"])
            return None, Problem(c.INVALID_SPEC, f"the spec cannot be rendered: {exc}"[:1000])

    def _live(self, obj: Obj, namespace: str, site: str) -> Obj | None:
        """The object of this name as the cluster has it; one GET when the watches have not seen it."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        live = self.view.child(kind, namespace, site, name)
        if live is None:
            # Not among our labelled objects: absent, or someone else's (one GET tells).
            found = self.client.get(kind, namespace, name)
            live = snapshot.snapshot(found) if found else None
        return live

    def _sync(self, site: Obj, rendered: render.Rendered, changes: Changes) -> Problem | None:
        meta = site["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        for obj in rendered.objects:
            kind, cname = obj["kind"], obj["metadata"]["name"]
            live = self._live(obj, namespace, name)
            if live is not None and not snapshot.controlled_by(live, uid) and not snapshot.stale_namesake(live, name):
                return Problem(c.NAME_CONFLICT, f"{kind} {cname!r} already exists and is not managed by this "
                                                "StaticSite; it was left untouched. Rename the site or remove it.")
            why = "absent" if live is None else snapshot.out_of_sync(obj, live)
            if why is None:
                continue
            log.info("applying %s %s/%s: %s", kind, namespace, cname, why)
            try:
                self.view.wrote(self.client.apply(obj))
            except ApiError as exc:
                if not exc.permanent:
                    raise
                return Problem(c.APPLY_FAILED, f"the API server rejected {kind} {cname!r}: {exc.message}")
            (changes.created if live is None else changes.updated).append(f"{kind}/{cname}")
            if kind == kinds.DEPLOYMENT.kind:
                changes.rollout = changes.rollout or live is None or not drift.contains(
                    live.get("spec"), {"template": obj["spec"]["template"]})
        self._prune(site, rendered, changes)
        return None

    def _prune(self, site: Obj, rendered: render.Rendered, changes: Changes) -> None:
        """Delete the children the spec no longer asks for (the Ingress of a site without
        domains, the content ConfigMap of a site moved to git): only ours, by UID."""
        meta = site["metadata"]
        wanted = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects}
        prunable = {k.kind for k in kinds.PRUNABLE}
        for child in self.view.children(meta["namespace"], meta["name"]):
            kind, cname = child["kind"], child["metadata"]["name"]
            if kind not in prunable or (kind, cname) in wanted or not snapshot.controlled_by(child, meta["uid"]):
                continue
            self.client.delete(kind, meta["namespace"], cname, child["metadata"]["uid"])
            self.view.deleted(kind, meta["namespace"], cname)
            changes.deleted.append(f"{kind}/{cname}")

    def _fetch_problem(self, namespace: str, name: str, checksum: str) -> Problem | None:
        """A pod of the current revision whose init container failed to fetch the content."""
        for failure in self.view.fetch_failures(namespace, name):
            if failure.get("checksum") == checksum:
                if failure["reason"] == c.ROUTING_FILE_INVALID:  # the pod serves, without these lines
                    return Problem(c.ROUTING_FILE_INVALID, f"{SKIPPED} {failure['message']}")
                return Problem(failure["reason"], f"pod {failure['name']}: {failure['message']}; "
                                                  "the previous pods keep serving")
        return None

    def _token(self, namespace: str, ref: models.SecretRef | None) -> str | None:
        """The access token for a private repository, read when the ref is looked up."""
        if ref is None:
            return None
        try:
            secret = self.client.get("Secret", namespace, ref.name)
        except ApiError as exc:
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

    def _post(self, site: Obj, to_post: list[events.Event]) -> None:
        for event in to_post:
            try:
                self.client.post_event(site, event.type, event.reason, event.message)
            except ApiError as exc:  # an Event is worth a log line, not a retry
                log.warning("could not post event %s on %s: %s", event.reason, site["metadata"]["name"], exc)
