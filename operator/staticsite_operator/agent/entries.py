"""A site entry (one ConfigMap per site revision), checked again and written to disk.

The agent trusts an entry no more than the operator trusts a StaticSite: its spec is
validated with the same models, its hosts with the same pattern, and its file paths
come from the validated spec (never from the ConfigMap's keys), so nothing in an entry
can write outside the revision's directory or inject into nginx.conf.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pydantic

from ..api import models
from ..core import pool as pl
from ..core import poolconf
from ..core.render import config_key

_REVISION = re.compile(r"^[0-9a-f]{64}$")


class InvalidEntry(ValueError):
    """An entry the agent will not serve; the message says why."""


@dataclass(frozen=True)
class Entry:
    name: str            # the ConfigMap's
    site: str            # the site's key in the pool (core.pool.site_key)
    revision: str
    order: int           # resourceVersion: the newest entry of a site wins
    spec: models.StaticSiteSpec
    hosts: tuple[str, ...]
    # The revision's `_redirects`/`_headers`: their rules are part of its server block.
    routing_files: dict[str, bytes] = field(default_factory=dict, compare=False)


def site_of(body: dict[str, Any]) -> str | None:
    """The site key an entry is for, from the annotation only the operator writes."""
    site = ((body.get("metadata") or {}).get("annotations") or {}).get(pl.SITE_ANNOTATION, "")
    namespace, _, name = str(site).partition("/")
    return pl.site_key(namespace, name) if namespace and name else None


def parse(body: dict[str, Any]) -> Entry:
    meta = body.get("metadata") or {}
    site = site_of(body)
    if site is None:
        raise InvalidEntry(f"entry {meta.get('name')!r} names no site")
    try:
        described = json.loads((body.get("data") or {}).get(pl.SITE_JSON, ""))
        spec = models.StaticSiteSpec.model_validate(described["spec"])
        hosts = tuple(str(h) for h in described["hosts"])
        revision = str(described["revision"])
    except (ValueError, KeyError, TypeError, pydantic.ValidationError) as exc:
        raise InvalidEntry(f"entry {meta.get('name')!r} is not valid: {str(exc)[:300]}") from None
    if described.get("site") != site.replace(".", "/", 1) or not _REVISION.fullmatch(revision):
        raise InvalidEntry(f"entry {meta.get('name')!r} does not match its site or revision")
    if not hosts or not all(re.fullmatch(models.DOMAIN_PATTERN, h) for h in hosts) or spec.content.inline is None:
        raise InvalidEntry(f"entry {meta.get('name')!r}: a shared site has inline content and at least one host")
    entry = Entry(str(meta.get("name")), site, revision, int(meta.get("resourceVersion") or 0), spec, hosts)
    return replace(entry, routing_files=files(entry, body, only=poolconf.ROUTING_FILES))


def files(entry: Entry, body: dict[str, Any], only: frozenset[str] | None = None) -> dict[str, bytes]:
    """The revision's files by validated path (those named in `only`, if given)."""
    data, binary = body.get("data") or {}, body.get("binaryData") or {}
    inline = entry.spec.content.inline
    assert inline is not None
    out: dict[str, bytes] = {}
    for f in inline.files:
        if only is not None and f.path not in only:
            continue
        key = config_key(f.path)
        try:
            out[f.path] = data[key].encode() if key in data else base64.b64decode(binary[key], validate=True)
        except (KeyError, binascii.Error, ValueError):
            raise InvalidEntry(f"entry {entry.name!r} lacks the file {f.path!r}") from None
    return out


def write_revision(root: Path, content: dict[str, bytes]) -> int:
    """Write a revision's files into `root` (which must not exist yet) atomically: into a
    temporary sibling, then one rename. Returns the bytes written."""
    tmp = root.with_name(f".tmp-{root.name}-{os.getpid()}")
    size = 0
    for path, body in content.items():
        target = tmp / path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(body)
        target.chmod(0o644)
        size += len(body)
    tmp.mkdir(parents=True, exist_ok=True, mode=0o755)
    for dirpath, _dirs, _files in os.walk(tmp):
        Path(dirpath).chmod(0o755)  # nginx's workers may run as another user (tests as root)
    tmp.rename(root)
    return size
