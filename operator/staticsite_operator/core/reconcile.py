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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from ..api import conditions as c
from ..api import models
from . import domains, drift, events, hostfiles, kinds, problems, render, sharedsite, snapshot, status
from . import labels as lbl
from .events import Changes
from .policy import Policy
from .ports import ApiError, Client, Obj, RefResolver, TokenUnavailable, View
from .problems import SKIPPED, Problem, routing_file_problem
from .revisions import Revisions
from .shared import Mover

log = logging.getLogger(__name__)


# A cluster out of Service addresses: not the site's fault, and not worth hammering.
ALLOCATION_RETRY = 60.0


@dataclass(frozen=True)
class _Verified:
    inputs: tuple[Any, ...]
    checksum: str
    content_hash: str
    children: dict[tuple[str, str], str]  # (kind, name) -> fingerprint when found in sync
    problems: tuple[hostfiles.LineProblem, ...]  # lines of _redirects/_headers not honoured


class _Taken(Exception):
    """A child's name is held by an object this site does not control."""


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


def validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


ParsedSpec = tuple[models.StaticSiteSpec | None, Problem | None]


def parse(site: Obj) -> ParsedSpec:
    try:
        return models.StaticSiteSpec.model_validate(site.get("spec") or {}), None
    except pydantic.ValidationError as exc:
        return None, Problem(c.INVALID_SPEC, validation_message(exc))


class Reconciler:
    def __init__(self, view: View, client: Client, resolve: RefResolver,
                 images: render.Images | None = None, policy: Policy | None = None,
                 quiet_rollout: float = 15.0, clock: Callable[[], float] = time.monotonic,
                 tier_move_grace: float = 30.0, gateway_api: bool = True) -> None:
        self.view = view
        # The shared tier (core.sharedsite): how long the old tier outlives a routing switch,
        # and whether the cluster serves the Gateway API (HTTPRoute).
        self.mover = Mover(tier_move_grace, clock)
        self.gateway_api = gateway_api
        self.quiet_rollout = quiet_rollout
        self._clock = clock
        self._lock = threading.Lock()
        self._rolling: dict[tuple[str, str], float] = {}  # site -> when its rollout's progress began
        self._verified: dict[tuple[str, str], _Verified] = {}
        self._parsed: dict[tuple[str, str], tuple[tuple[str, Any], ParsedSpec]] = {}  # site -> (uid, gen), parse
        self.client = client
        self.images = images or render.Images()
        self.policy = policy or Policy(default_image=self.images.nginx)
        self.revisions = Revisions(resolve)
        # Names found taken by someone else's object: looked up (a read) rather than tried
        # (a refused write) on the next pass, until they are free again.
        self._taken: set[tuple[str, str, str]] = set()

    def reconcile(self, namespace: str, name: str) -> Outcome:
        site = self.view.site(namespace, name)
        if site is None or site["metadata"].get("deletionTimestamp"):
            # Children carry ownerReferences: the garbage collector removes them.
            self.revisions.forget(namespace, name)
            with self._lock:
                self._rolling.pop((namespace, name), None)
                self._verified.pop((namespace, name), None)
                self._parsed.pop((namespace, name), None)
            return Outcome(None, None)
        previous: dict[str, Any] | None = site.get("status")
        changes = Changes()
        spec, parse_problem = self._parse(namespace, name, site)
        # A spec the policy refuses is not applied at all: the site keeps what it served.
        policy_problem = self.policy.check(spec) if spec is not None else None
        if spec is not None and policy_problem is None and spec.serving.tier == "shared":
            return self._settled(namespace, name, Outcome(*sharedsite.reconcile_shared(self, site, spec, previous)))
        source, grant = Source(None, None, None), domains.Grant((), None)
        rendered, render_problem, sync_problem, fetch_problem = None, None, None, None
        verified = False
        if spec is not None and policy_problem is None:
            source = self._source(site, spec)
            grant = self._grant(site, spec)
            inputs = (site["metadata"]["uid"], site["metadata"].get("generation"), source.revision, grant.hosts)
            # While a move back from a pool is under way, what is synced follows the
            # Deployment's progress, not the inputs: no memo then.
            rendered = None if self.view.site_pool_objects(namespace, name) else \
                self._still_verified(namespace, name, inputs)
            verified = rendered is not None
            if rendered is None:
                rendered, render_problem = self._render(site, spec, source.revision, grant.hosts)
        file_problem = routing_file_problem(rendered.problems) if rendered and rendered.problems else None
        moved_back = None
        if rendered is not None and spec is not None:
            if spec.gateway is not None and not self.gateway_api:
                render_problem = Problem(c.GATEWAY_API_UNAVAILABLE, "spec.gateway: this cluster serves no Gateway "
                                                                    "API (gateway.networking.k8s.io/v1 HTTPRoute)")
            back = sharedsite.Return(self, site, spec, rendered)  # from a pool: routing waits for the Deployment
            if not verified:
                sync_problem = self._sync(site, back.to_sync(rendered), changes)
                if sync_problem is None and not back.left:
                    self._verify(namespace, name, inputs, rendered)
            moved_back = back.after_sync(sync_problem is None)
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
        if rendered is not None and sync_problem is None:
            ready = (status.condition(new, c.READY) or {}).get("status") == "True"
            self._prune(site, rendered.wanted, changes, rolled_out=ready)
        wait = self._quiet_rollout(namespace, name, new)
        if wait is None and not status.same(previous, new):
            self.view.writing_status(namespace, name, new)
            self.view.wrote(self.client.patch_status(namespace, name, new))
        self._post(site, events.transitions(previous, new, changes))
        retry = ALLOCATION_RETRY if sync_problem is not None and sync_problem.reason == c.ALLOCATION_FAILED else None
        rechecks = [t for t in (source.recheck, wait, retry, moved_back) if t is not None]
        return self._settled(namespace, name, Outcome((status.condition(new, c.READY) or {}).get("status", "Unknown"),
                                                      min(rechecks, default=None)))

    def _parse(self, namespace: str, name: str, site: Obj) -> ParsedSpec:
        """parse(), kept while the site's spec is the same (a generation of the same site: the API
        server moves it with every spec change) and its rollout is under way: validating was about
        a twentieth of every pass, and a rollout's passes all see one spec. A site that ends a pass
        Ready lets go of it (`_settled`): its next pass may be hours away, and 1000 parsed specs
        are about 6 MiB."""
        meta = site["metadata"]
        stamp = (meta.get("uid", ""), meta.get("generation"))
        with self._lock:
            kept = self._parsed.get((namespace, name))
        if kept is not None and kept[0] == stamp:
            return kept[1]
        parsed = parse(site)
        if stamp[1] is not None:
            with self._lock:
                self._parsed[namespace, name] = (stamp, parsed)
        return parsed

    def _settled(self, namespace: str, name: str, outcome: Outcome) -> Outcome:
        if outcome.ready == "True" and outcome.recheck is None:
            with self._lock:
                self._parsed.pop((namespace, name), None)
        return outcome

    def _quiet_rollout(self, namespace: str, name: str, new: dict[str, Any]) -> float | None:
        """Seconds to hold back a status that only says "rolling out", or None to write now.

        Most rollouts finish within seconds; a status write for their start and another
        for their end are two writes where one says all. So for the first
        `quiet_rollout` seconds of a rollout its progress is not written: if it finishes
        in time, only Ready is; otherwise the progress is written then.
        """
        key = (namespace, name)
        with self._lock:
            if not status.in_progress(new):
                self._rolling.pop(key, None)
                return None
            started = self._rolling.setdefault(key, self._clock())
        left = self.quiet_rollout - (self._clock() - started)
        return left if left > 0 else None

    # --- what was verified in sync, to skip render on a pass that changes nothing ------------
    def _still_verified(self, namespace: str, name: str, inputs: tuple[Any, ...]) -> render.Rendered | None:
        """The rendered result of an earlier pass, if nothing it depends on has changed: the
        same inputs (the spec's generation, the commit, the domains granted), and the same
        children, each as it was when found in sync. Most passes are of this kind (a
        Deployment's status moving during a rollout), and render is most of their cost."""
        with self._lock:
            memo = self._verified.get((namespace, name))
        if memo is None or memo.inputs != inputs:
            return None
        live = self.view.fingerprints(namespace, name)
        if any(live.get(key) != print_ for key, print_ in memo.children.items()):
            return None
        return render.Rendered(objects=[], content_hash=memo.content_hash, checksum=memo.checksum,
                               problems=memo.problems, names=frozenset(memo.children))

    def _verify(self, namespace: str, name: str, inputs: tuple[Any, ...], rendered: render.Rendered) -> None:
        """Remember the wanted children as they are now that they are in sync (after our writes)."""
        wanted = rendered.wanted
        children = {key: print_ for key, print_ in self.view.fingerprints(namespace, name).items() if key in wanted}
        with self._lock:
            if wanted == children.keys():
                self._verified[namespace, name] = _Verified(inputs, rendered.checksum, rendered.content_hash,
                                                            children, rendered.problems)
            else:
                self._verified.pop((namespace, name), None)

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

    def _sync(self, site: Obj, rendered: render.Rendered, changes: Changes) -> Problem | None:
        meta = site["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        # A new revision's ConfigMap is part of a rollout, not news; for a new site, it is.
        new_site = self.view.child(kinds.DEPLOYMENT.kind, namespace, name, name) is None
        versioned = {k.kind for k in kinds.VERSIONED}
        for obj in rendered.objects:
            kind, cname = obj["kind"], obj["metadata"]["name"]
            live = self.view.child(kind, namespace, name, cname)
            conflict = Problem(c.NAME_CONFLICT, f"{kind} {cname!r} already exists and is not managed by this "
                                                "StaticSite; it was left untouched. Rename the site or remove it.")
            if live is not None and not snapshot.controlled_by(live, uid) and not snapshot.stale_namesake(live, name):
                return conflict
            why = "absent" if live is None else snapshot.out_of_sync(obj, live)
            if why is None:
                continue
            log.info("applying %s %s/%s: %s", kind, namespace, cname, why)
            try:
                self.view.wrote(self._apply(obj, absent=live is None))
            except _Taken:
                return conflict
            except ApiError as exc:
                if exc.exhausted:
                    return Problem(c.ALLOCATION_FAILED, f"{kind} {cname!r} cannot be created: {exc.message}; it is "
                                                        "tried again every minute (ask the platform team for a "
                                                        "bigger Service range)")
                if not exc.permanent:
                    raise
                return Problem(c.APPLY_FAILED, f"the API server rejected {kind} {cname!r}: {exc.message}")
            if live is not None:
                changes.updated.append(f"{kind}/{cname}")
            elif new_site or kind not in versioned:
                changes.created.append(f"{kind}/{cname}")
            if kind == kinds.DEPLOYMENT.kind:
                changes.rollout = changes.rollout or live is None or not drift.contains(
                    live.get("spec"), {"template": obj["spec"]["template"]})
        return None

    def _apply(self, obj: Obj, *, absent: bool) -> Obj:
        """Apply `obj`; if the watches have not seen it, only create it: a namesake that is
        not ours (or not yet in the cache) answers 409, and one GET tells which."""
        if not absent:
            return self.client.apply(obj)
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        if key not in self._taken:
            try:
                return self.client.apply(obj, if_absent=True)
            except ApiError as exc:
                if exc.status != 409:
                    raise
        found = self.client.get(*key)
        site_uid = meta["ownerReferences"][0]["uid"]
        if found is not None and not snapshot.controlled_by(found, site_uid) \
                and not snapshot.stale_namesake(found, meta["labels"][lbl.INSTANCE_KEY]):
            self._taken.add(key)
            raise _Taken
        self._taken.discard(key)
        return self.client.apply(obj)

    def _prune(self, site: Obj, wanted: frozenset[tuple[str, str]], changes: Changes, *, rolled_out: bool) -> None:
        """Delete the children the spec no longer asks for (the Ingress of a site without
        domains), only ours, by UID; and a superseded revision's ConfigMap once the new
        revision is rolled out (until then, the old pods mount it)."""
        meta = site["metadata"]
        prunable = {k.kind for k in kinds.PRUNABLE}
        versioned = {k.kind for k in kinds.VERSIONED}
        for child in self.view.children(meta["namespace"], meta["name"]):
            kind, cname = child["kind"], child["metadata"]["name"]
            if kind not in prunable or (kind, cname) in wanted or not snapshot.controlled_by(child, meta["uid"]):
                continue
            if kind in versioned and not rolled_out:
                continue
            self.client.delete(kind, meta["namespace"], cname, child["metadata"]["uid"])
            self.view.deleted(kind, meta["namespace"], cname)
            if kind not in versioned:  # a superseded revision is routine, not news
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
