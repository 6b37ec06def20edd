"""What must hold after every fault, checked against the API server (never the operator's word).

- **converged**: every site Ready=True at its latest generation (observedGeneration ==
  generation), and its spec is the last one the driver wrote;
- **no lost update**: the content ConfigMap holds exactly the files of that last spec,
  and the Deployment's pod template carries that content's checksum, both computed by
  the operator's own pure `render` from the spec the driver wrote;
- **no orphan**: no object labelled as ours whose controlling owner is not a live site
  (after giving the garbage collector a bounded time);
- **no duplicate**: a site owns exactly the children its spec renders, one of each name;
- **no foreign object touched**: the decoys (decoys.py) are byte for byte what they were;
- **quiet after convergence**: no write by the operator in a window after it settled
  (counted by the API server's audit log, Lease renewals reported apart).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from staticsite_operator.api import models
from staticsite_operator.core import kinds, render
from staticsite_operator.core import labels as lbl

from ..kclient import ApiError, Client, collection
from ..measure import SITES
from ..watcher import site_ready
from .decoys import Decoys


@dataclass
class Findings:
    not_ready: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    decoys_touched: list[str] = field(default_factory=list)
    writes_after: list[str] = field(default_factory=list)   # "verb resource name" of writes in the quiet window

    def ok(self) -> bool:
        return not any(asdict(self).values())

    def summary(self) -> dict[str, int]:
        return {k: len(v) for k, v in asdict(self).items()}

    def as_dict(self) -> dict[str, Any]:
        # Names, capped: a failure should say which, without a thousand lines.
        return {k: v[:20] for k, v in asdict(self).items()} | {"counts": self.summary()}


def _children(client: Client, namespace: str) -> list[dict[str, Any]]:
    out = []
    for kind in kinds.CHILD_KINDS:
        try:
            page = client.request("GET", collection(kind.api_version, kind.plural, namespace),
                                  query=[("labelSelector", lbl.WATCH_SELECTOR)], timeout=120)
        except ApiError as exc:
            if exc.status == 404:  # a kind this cluster does not serve (the Gateway API's): none exist
                continue
            raise
        out += [dict(item, kind=kind.kind) for item in page.get("items") or []]
    return out


def _controller(obj: dict[str, Any]) -> str | None:
    return next((ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("controller")),
                None)


def check_sites(client: Client, namespace: str, wanted: dict[str, dict[str, Any]], findings: Findings) -> None:
    """`wanted`: site name -> the spec the driver wrote last."""
    live = {s["metadata"]["name"]: s for s in
            client.request("GET", collection(*SITES, namespace), timeout=120).get("items") or []}
    children = {(c["kind"], c["metadata"]["name"]): c for c in _children(client, namespace)}
    for name, spec in sorted(wanted.items()):
        site = live.get(name)
        if site is None or not site_ready(0)(site):
            findings.not_ready.append(name)
            continue
        if site.get("spec") != spec:
            findings.lost_updates.append(f"{name}: the live spec is not the last one written")
            continue
        rendered = render.render(render.Site(name, namespace, site["metadata"]["uid"],
                                             models.StaticSiteSpec.model_validate(spec)))
        # One immutable ConfigMap per revision, named by its checksum (core.render.Names).
        config = render.Names.of(name, rendered.checksum).config
        content = children.get(("ConfigMap", config))
        want_data = next(o for o in rendered.objects if o["metadata"]["name"] == config)["data"]
        if content is None or content.get("data") != want_data:
            findings.lost_updates.append(f"{name}: ConfigMap {config} (the last content's) is missing or differs")
        deployment = children.get(("Deployment", name))
        annotations = (((deployment or {}).get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "annotations") or {}
        if annotations.get(lbl.CHECKSUM_ANNOTATION) != rendered.checksum:
            findings.lost_updates.append(f"{name}: Deployment checksum is not the last content's")


def check_children(client: Client, namespace: str, decoys: Decoys | None, findings: Findings,
                   gc_wait: float = 90.0) -> None:
    """Orphans (after up to `gc_wait` s of garbage collection) and duplicates."""
    deadline = time.monotonic() + gc_wait
    while True:
        sites = {s["metadata"]["uid"]: s for s in
                 client.request("GET", collection(*SITES, namespace), timeout=120).get("items") or []}
        ours = [c for c in _children(client, namespace) if not (decoys and decoys.owns(c))]
        orphans = [f"{c['kind']}/{c['metadata']['name']}" for c in ours if _controller(c) not in sites]
        if not orphans or time.monotonic() >= deadline:
            break
        time.sleep(2)
    findings.orphans += orphans
    by_site: dict[str, list[str]] = {}
    for child in ours:
        owner = sites.get(_controller(child) or "")
        if owner is not None:
            by_site.setdefault(owner["metadata"]["name"], []).append(f"{child['kind']}/{child['metadata']['name']}")
    for name, found in sorted(by_site.items()):
        site = next(s for s in sites.values() if s["metadata"]["name"] == name)
        try:
            rendered = render.render(render.Site(name, namespace, site["metadata"]["uid"],
                                                 models.StaticSiteSpec.model_validate(site["spec"])))
        except (ValueError, render.ContentTooLarge):
            continue
        expected = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in rendered.objects)
        if sorted(found) != expected:
            findings.duplicates.append(f"{name}: {sorted(set(found) - set(expected)) or 'missing children'}")


def check_decoys(decoys: Decoys, findings: Findings) -> None:
    try:
        findings.decoys_touched += decoys.touched()
    except ApiError as exc:
        findings.decoys_touched.append(f"could not read the decoys: {exc}")
