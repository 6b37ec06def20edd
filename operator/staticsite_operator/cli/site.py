"""What the CLI writes and reads, as pure functions: the StaticSite it applies, the names of
branch previews, and a site's progress and summary from its status and Events.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..api import conditions as c
from ..api import models

PREVIEW_OF = f"{models.GROUP}/preview-of"
BRANCH = f"{models.GROUP}/branch"
MAX_NAME = 63  # the site's Service and Deployment carry its name: a DNS label
# Degraded, but the site serves: report and keep waiting for Ready.
SERVING_ANYWAY = frozenset({c.ROUTING_FILE_INVALID, c.DOMAIN_NOT_ALLOWED, c.DOMAIN_CONFLICT})
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def check_name(name: str) -> str:
    """`name` if it can name a site; ValueError saying why not."""
    if len(name) > MAX_NAME or not re.match(NAME_PATTERN, name):
        raise ValueError(f"{name!r} cannot name a site: use at most {MAX_NAME} lower-case letters, digits and '-', "
                         "starting with a letter")
    return name


def slug(text: str) -> str:
    """A DNS-label form of a branch or folder name: feature/Login_v2 -> feature-login-v2."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def preview_name(site: str, branch: str) -> str:
    """The site a branch preview deploys to: SITE-BRANCH, shortened with a hash to fit a name."""
    label = slug(branch) or "preview"
    name = f"{site}-{label}"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(branch.encode()).hexdigest()[:8]
        name = f"{site}-{label}"[: MAX_NAME - 9].rstrip("-") + "-" + digest
    return name


def preview_domain(domain: str, branch: str) -> str:
    """The host of a branch preview: BRANCH.DOMAIN, as Cloudflare Pages' branch aliases
    (feature/login on blog.example.com -> feature-login.blog.example.com)."""
    label = slug(branch) or "preview"
    if len(label) > MAX_NAME:
        label = label[: MAX_NAME - 9].rstrip("-") + "-" + hashlib.sha256(branch.encode()).hexdigest()[:8]
    return f"{label}.{domain.removeprefix('*.')}"


def default_name(folder_name: str) -> str:
    """A site name from a folder's name (my-blog/public -> the caller passes my-blog)."""
    name = slug(folder_name)
    if not name or not name[0].isalpha():
        name = f"site-{name}".rstrip("-")
    return name[:MAX_NAME].rstrip("-")


def manifest(name: str, namespace: str, content: dict[str, Any], *, domains: list[str] | None = None,
             routing: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The StaticSite the CLI applies. Only what the user gave: with server-side apply, a field
    the CLI set before and leaves out now is removed, and fields set by others are kept."""
    spec: dict[str, Any] = {"content": content}
    if domains:
        spec["domains"] = domains
    if routing:
        spec["routing"] = routing
    models.StaticSiteSpec.model_validate(spec)  # the operator's own checks, before the cluster's
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": models.KIND, "metadata": meta, "spec": spec}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


@dataclass(frozen=True)
class Progress:
    """Where a site stands with respect to generation `generation`."""

    seen: bool                 # the operator has reconciled this generation
    ready: bool
    failed: str | None         # Degraded: the reason and message, when the site will not converge
    warning: str | None        # Degraded, but the site serves (a skipped _redirects line, a refused domain)
    line: str                  # one line for a person to read

    @property
    def done(self) -> bool:
        return self.ready or self.failed is not None


def progress(obj: dict[str, Any], generation: int) -> Progress:
    status = obj.get("status") or {}
    seen = int(status.get("observedGeneration") or 0) >= generation
    if not seen:
        return Progress(False, False, None, None, "waiting for the operator to pick up the change")
    ready, degraded, rolling = condition(obj, c.READY), condition(obj, c.DEGRADED), condition(obj, c.PROGRESSING)
    failed = warning = None
    if degraded.get("status") == "True":
        text = f"{degraded.get('reason')}: {degraded.get('message', '')}".strip()
        if degraded.get("reason") in SERVING_ANYWAY:
            warning = text
        else:
            failed = text
    is_ready = ready.get("status") == "True"
    replicas = f"{status.get('readyReplicas') or 0}/{status.get('replicas') or 0} replicas ready"
    if is_ready:
        line = f"Ready ({ready.get('reason')}), {replicas}"
    elif rolling.get("status") == "True":
        line = f"rolling out: {rolling.get('message') or rolling.get('reason')} ({replicas})"
    else:
        line = f"not ready: {ready.get('reason', 'waiting')} {ready.get('message', '')} ({replicas})".strip()
    return Progress(True, is_ready, failed, warning, line)


def summary(obj: dict[str, Any], events: list[dict[str, Any]], limit: int = 8) -> str:
    """`staticsite status NAME`: conditions, revision, URL and recent Events, for a person."""
    meta, status = obj["metadata"], obj.get("status") or {}
    spec = obj.get("spec") or {}
    source = next((k for k in ("inline", "git", "archive") if k in (spec.get("content") or {})), "?")
    observed = status.get("observedGeneration")
    lines = [f"{meta['namespace']}/{meta['name']}",
             f"  URL:        {status.get('url') or '(none yet)'}",
             f"  content:    {source}" + (f", {len(spec['content']['inline']['files'])} files"
                                          if source == "inline" else ""),
             f"  revision:   {status.get('revision') or status.get('contentHash') or '(none yet)'}",
             f"  generation: {meta.get('generation')} (operator has seen {observed if observed else 'none'})",
             f"  replicas:   {status.get('readyReplicas') or 0}/{status.get('replicas') or 0} ready"]
    if meta.get("labels", {}).get(PREVIEW_OF):
        lines.append(f"  preview of: {meta['labels'][PREVIEW_OF]} (branch {meta['labels'].get(BRANCH, '?')})")
    lines.append("  conditions:")
    for cond in status.get("conditions") or []:
        msg = f" - {cond['message']}" if cond.get("message") else ""
        lines.append(f"    {cond.get('type'):<12} {cond.get('status'):<6} {cond.get('reason')}{msg}")
    if not status.get("conditions"):
        lines.append("    (none: is the operator running, and watching this namespace?)")
    lines.append("  recent events:")
    for ev in events[-limit:]:
        when = ev.get("lastTimestamp") or ev.get("eventTime") or ""
        count = f" (x{ev['count']})" if (ev.get("count") or 1) > 1 else ""
        lines.append(f"    {when} {ev.get('type')} {ev.get('reason')}: {ev.get('message')}{count}")
    if not events:
        lines.append("    (none)")
    return "\n".join(lines)


def row(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """NAME, READY, REASON, URL for `staticsite status` without a name."""
    ready = condition(obj, c.READY)
    return (obj["metadata"]["name"], ready.get("status", "-"), ready.get("reason", "-"),
            (obj.get("status") or {}).get("url") or "-")
