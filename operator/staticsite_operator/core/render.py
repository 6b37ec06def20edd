"""Desired state as a pure function: a StaticSite in, Kubernetes manifests out. No I/O.

Everything the controller applies comes from here, so a unit test can check every
example without a cluster, and the controller can compare what it wants with what
it sees without asking the API server twice.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
from dataclasses import dataclass
from typing import Any

from ..api import models
from . import hostfiles, kinds
from . import labels as lbl
from .nginxconf import render_nginx_conf
from .templating import render_yaml

SITE_ROOT = "/srv/site"
GIT_TOKEN_DIR = "/etc/staticsite-git"  # noqa: S105 - a mount path, not a secret
CONFIG_DIR = "/etc/staticsite"          # the nginx ConfigMap: nginx.conf or site.json, and scripts
# Where the `routes` init container of a git or archive site writes the nginx.conf it renders
# from site.json and the fetched `_redirects`/`_headers` (an emptyDir; siteconf.py).
ROUTES_DIR = "/etc/staticsite-routes"
SITE_JSON = "site.json"
# An emptyDir holds fetched content; this bounds what one pod may write to its node.
FETCHED_SIZE_LIMIT = "1Gi"



class ContentTooLarge(ValueError):
    """Inline content (or the nginx.conf its routing makes) that cannot fit in one ConfigMap."""


class NotResolved(ValueError):
    """A git source whose ref has not been resolved to a commit yet."""


@dataclass(frozen=True)
class Images:
    """The platform's images for site pods (the chart's sites.* values)."""

    nginx: str = models.DEFAULT_NGINX_IMAGE
    fetcher: str = models.DEFAULT_FETCHER_IMAGE
    # The operator's own image: it renders a fetched site's nginx.conf inside the pod.
    routes: str = models.DEFAULT_ROUTES_IMAGE


@dataclass(frozen=True)
class Site:
    """What render needs to know about a StaticSite object."""

    name: str
    namespace: str
    uid: str
    spec: models.StaticSiteSpec
    revision: str | None = None  # the commit a git source is pinned to (resolved by the controller)
    images: Images = Images()
    hosts: tuple[str, ...] | None = None  # the domains the site may serve (core.domains); None: all of them
    # Where the HTTPRoute sends traffic: None for the site's own Service; a shared site's
    # pool Service otherwise (core.pool.route_backend).
    backend: dict[str, Any] | None = None

    @property
    def served_hosts(self) -> tuple[str, ...]:
        return tuple(self.spec.domains) if self.hosts is None else self.hosts


@dataclass(frozen=True)
class Names:
    deployment: str
    service: str
    ingress: str
    config: str  # the ConfigMap of one revision: content, nginx.conf and fetch scripts

    @classmethod
    def of(cls, site: str, checksum: str) -> Names:
        # Named by what it holds, and immutable: a new revision is a new ConfigMap, so the
        # pods of the old one keep serving exactly the old files until they are replaced.
        # A name is at most 253 characters; the site's may be as long.
        config = f"{site[:242].rstrip('-.')}-{checksum[:10]}"
        return cls(deployment=site, service=site, ingress=site, config=config)


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]  # in apply order
    content_hash: str              # "sha256:<hex>" of the files, for status.contentHash
    checksum: str                  # content + nginx.conf: the pod-template annotation
    # Lines of the inline content's _redirects/_headers that are not honoured (skipped).
    problems: tuple[hostfiles.LineProblem, ...] = ()
    names: frozenset[tuple[str, str]] | None = None  # (kind, name) of the objects, when they are not held

    @property
    def wanted(self) -> frozenset[tuple[str, str]]:
        """(kind, name) of every child the site wants."""
        if self.names is not None:
            return self.names
        return frozenset((o["kind"], o["metadata"]["name"]) for o in self.objects)


def config_key(path: str) -> str:
    """A stable ConfigMap key for a file path (keys allow [-._a-zA-Z0-9] only)."""
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in path.rsplit("/", 1)[-1])[:40]
    return f"{hashlib.sha256(path.encode()).hexdigest()[:12]}-{safe}"


def content_hash(site: Site) -> str:
    """What identifies the content being served: a hash of inline files, the archive's
    checksum, or the git commit."""
    content = site.spec.content
    if content.git is not None:
        return f"git:{site.revision}"
    if content.archive is not None:
        return f"sha256:{content.archive.sha256}"
    assert content.inline is not None
    digest = hashlib.sha256()
    for f in sorted(content.inline.files, key=lambda f: f.path):
        digest.update(json.dumps([f.path, f.content, f.binary_content]).encode())
    return "sha256:" + digest.hexdigest()


def _split_files(inline: models.InlineContent) -> tuple[dict[str, str], dict[str, str], list[dict[str, str]]]:
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    items: list[dict[str, str]] = []
    for f in sorted(inline.files, key=lambda f: f.path):
        key = config_key(f.path)
        if f.binary_content is not None:
            # Normalise the encoding so equal bytes always give equal manifests.
            binary[key] = base64.b64encode(f.data()).decode()
        else:
            text[key] = f.content or ""
        items.append({"key": key, "path": f.path})
    return text, binary, items


def _check_size(data: dict[str, str], binary: dict[str, str], inline: bool) -> None:
    size = sum(len(k) + len(v) for k, v in data.items()) + sum(len(k) + len(v) for k, v in binary.items())
    if size > models.MAX_CONTENT_BYTES:
        what = "inline content and nginx.conf" if inline else "the nginx.conf the routing rules make"
        hint = ("serve large sites from spec.content.git or spec.content.archive instead" if inline
                else "use fewer or shorter rules")
        raise ContentTooLarge(f"{what} take {size} bytes, over the {models.MAX_CONTENT_BYTES}-byte ConfigMap "
                              f"limit; {hint}")


FETCH_COMMON = "fetch-common.sh"


def fetch_script(name: str) -> str:
    return importlib.resources.files(__package__).joinpath("templates", name).read_text()


def _fetcher(site: Site) -> tuple[dict[str, Any] | None, dict[str, str], str]:
    """The init container that fills the site root, the scripts it needs, and the root nginx serves."""
    content = site.spec.content
    env: list[dict[str, str]]
    if content.git is not None:
        if site.revision is None:
            raise NotResolved(f"ref {content.git.ref!r} of {content.git.url} is not resolved yet")
        kind, sub = "git", content.git.path
        env = [{"name": "GIT_URL", "value": content.git.url}, {"name": "GIT_SHA", "value": site.revision}]
        if content.git.secret_ref is not None:
            env.append({"name": "GIT_TOKEN_FILE", "value": f"{GIT_TOKEN_DIR}/token"})
    elif content.archive is not None:
        kind, sub = "archive", content.archive.path
        env = [{"name": "ARCHIVE_URL", "value": content.archive.url},
               {"name": "ARCHIVE_SHA256", "value": content.archive.sha256},
               {"name": "STRIP_COMPONENTS", "value": str(content.archive.strip_components)}]
    else:
        return None, {}, SITE_ROOT
    # git wants a writable HOME; /tmp is the pod's only writable path (an emptyDir).
    env += [{"name": "DEST", "value": SITE_ROOT}, {"name": "HOME", "value": "/tmp"}]  # noqa: S108
    script = f"fetch-{kind}.sh"
    container = {"name": "fetch", "kind": kind, "script": script, "env": env}
    # The script sources fetch-common.sh from its own directory (the same ConfigMap mount).
    scripts = {script: fetch_script(script), FETCH_COMMON: fetch_script(FETCH_COMMON)}
    return container, scripts, f"{SITE_ROOT}/{sub}".rstrip("/")


def host_files(inline: models.InlineContent | None) -> dict[str, str | bytes]:
    """The `_redirects` and `_headers` at the root of inline content."""
    names = (hostfiles.REDIRECTS_FILE, hostfiles.HEADERS_FILE)
    return {f.path: (f.content if f.content is not None else f.data()) for f in (inline.files if inline else [])
            if f.path in names}


def site_json(spec: models.StaticSiteSpec, root: str) -> str:
    """What the `routes` init container renders a fetched site's nginx.conf from."""
    return json.dumps({"spec": spec.model_dump(mode="json", by_alias=True), "root": root}, sort_keys=True)


def _resources(spec: models.StaticSiteSpec) -> dict[str, Any]:
    res = spec.nginx.resources
    return {k: v for k, v in (("requests", res.requests), ("limits", res.limits)) if v}


def render(site: Site) -> Rendered:
    spec = site.spec
    inline = spec.content.inline
    text, binary, items = _split_files(inline) if inline is not None else ({}, {}, [])
    fetcher, scripts, root = _fetcher(site)
    parsed = hostfiles.parse_site(host_files(inline), spec.routing.semantics)
    nginx_conf = render_nginx_conf(spec, root=root, host=parsed.host_rules())
    # A fetched site's nginx.conf depends on its files too: the pod renders it (siteconf.py).
    # Content keys start with 12 hex digits and a '-' (config_key): never these.
    config = ({"nginx.conf": nginx_conf} if fetcher is None else {SITE_JSON: site_json(spec, root)}) | scripts
    _check_size(text | config, binary, inline is not None)
    chash = content_hash(site)
    checksum = hashlib.sha256(f"{chash}\n{json.dumps(config, sort_keys=True)}\n"
                              f"{json.dumps(fetcher, sort_keys=True)}".encode()).hexdigest()

    context = {
        "spec": spec,
        "namespace": site.namespace,
        "names": Names.of(site.name, checksum),
        "labels": lambda component: lbl.labels(site.name, component),
        "pod_labels": lbl.labels(site.name, "server") | ({lbl.FETCH_KEY: fetcher["kind"]} if fetcher else {}),
        "selector": lbl.selector(site.name),
        "owner": {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "name": site.name,
            "uid": site.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        },
        "text_files": text,
        "binary_files": binary,
        "items": items,
        "config_data": text | config,
        "config_items": [{"key": key, "path": key} for key in config],
        "nginx_conf_path": f"{CONFIG_DIR}/nginx.conf" if fetcher is None else f"{ROUTES_DIR}/nginx.conf",
        "config_dir": CONFIG_DIR,
        "routes_dir": ROUTES_DIR,
        "site_json": f"{CONFIG_DIR}/{SITE_JSON}",
        "routes_image": site.images.routes,
        "fetcher": fetcher,
        "nginx_image": spec.nginx.image or site.images.nginx,
        "fetcher_image": site.images.fetcher,
        "git_token_dir": GIT_TOKEN_DIR,
        "fetched_size_limit": FETCHED_SIZE_LIMIT,
        "checksum": checksum,
        "checksum_annotation": lbl.CHECKSUM_ANNOTATION,
        "resources": _resources(spec),
        "site_root": SITE_ROOT,
        "hosts": list(site.served_hosts),
        "parent_refs": [ref.model_dump(mode="json", by_alias=True, exclude_none=True)
                        for ref in (spec.gateway.parent_refs if spec.gateway else [])],
        "route_backend": site.backend or {"name": Names.of(site.name, checksum).service, "port": 80},
    }
    objects = [render_yaml(f"{child.template}.yaml.j2", context)
               for child in kinds.CHILDREN if child.wanted(spec, site.served_hosts)]
    return Rendered(objects=objects, content_hash=chash, checksum=checksum, problems=parsed.problems)
