"""`staticsite`: deploy a build folder as a StaticSite, preview it locally, read a site's
state, and bring a Netlify site's routing. Also `kubectl staticsite` (a kubectl plugin is an
executable named kubectl-staticsite on PATH). docs/cli.md is the manual.

Output: progress and warnings on stderr, the result (a URL, YAML) on stdout. Exit status 0 on
success, 1 with a message saying what to do next, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pydantic
import yaml

from ..api import models
from ..core import hostfiles
from . import cluster as kube
from . import netlify, pack, preview, site
from .cluster import CliError

GENERIC_FOLDERS = frozenset({"dist", "public", "build", "out", "_site", "site", "www", "html"})


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- options shared by the cluster commands ---------------------------------------------

def _cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, as kubectl)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def _connect(args: argparse.Namespace) -> tuple[kube.Cluster, str]:
    conn = kube.connect(args.kubeconfig, args.context)
    return conn, args.namespace or conn.namespace


def _routing(args: argparse.Namespace) -> models.Routing:
    """spec.routing from --routing FILE (import-netlify's output, or a bare routing mapping)
    and the flags that override it."""
    data: dict[str, Any] = {}
    if args.routing:
        try:
            loaded = yaml.safe_load(Path(args.routing).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CliError(f"--routing {args.routing}: cannot read it: {exc}") from None
        data = loaded.get("routing", loaded) if isinstance(loaded, dict) else {}
    if args.semantics:
        data["semantics"] = args.semantics
    if args.spa:
        data["spa"] = True
    try:
        return models.Routing.model_validate(data)
    except pydantic.ValidationError as exc:
        raise CliError(f"the routing is not valid:\n{_errors(exc)}") from None


def _errors(exc: pydantic.ValidationError) -> str:
    return "\n".join(f"  {'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
                     for e in exc.errors())


def _pack(folder: Path, routing: models.Routing, *, limit: bool = True) -> pack.Packed:
    _err(f"packing {folder} ...")
    try:
        packed = pack.pack(folder, routing, limit=limit,
                           progress=lambda n, size: _err(f"  {n} files, {size:,} bytes read ..."))
    except pack.PackError as exc:
        raise CliError(str(exc)) from None
    except pydantic.ValidationError as exc:  # the files and the routing together (notFoundPage)
        raise CliError(f"the site is not valid:\n{_errors(exc)}") from None
    for problem in hostfiles.parse_site(packed.host_files(), routing.semantics).problems:
        _err(f"warning: {problem} (this line will be skipped; the others apply)")
    skipped = f", left out {len(packed.skipped)} hidden path(s): {', '.join(packed.skipped[:5])}" \
        if packed.skipped else ""
    _err(f"packed {len(packed.files)} files, {packed.size:,} of {models.MAX_CONTENT_BYTES:,} bytes{skipped}")
    return packed


# --- deploy ------------------------------------------------------------------------------

def _site_name(args: argparse.Namespace) -> str:
    if args.name:
        name = str(args.name)
    elif args.dir:
        folder = Path(args.dir).resolve()
        name = site.default_name(folder.parent.name if folder.name in GENERIC_FOLDERS else folder.name)
        _err(f"site name: {name} (from the folder; give --name to choose)")
    else:
        raise CliError("give the site a name: --name NAME")
    try:
        site.check_name(name)
    except ValueError as exc:
        raise CliError(f"--name: {exc}") from None
    return name


def cmd_deploy(args: argparse.Namespace) -> int:
    name = _site_name(args)
    routing = _routing(args)
    labels: dict[str, str] = {}
    if args.branch:
        labels = {site.PREVIEW_OF: name, site.BRANCH: site.slug(args.branch) or "preview"}
        name = site.preview_name(name, args.branch)
        args.domain = [site.preview_domain(d, args.branch) for d in args.domain or []]
        _err(f"branch preview: site {name}" + (f", on {', '.join(args.domain)}" if args.domain else ""))
    if args.archive_url:
        if args.dir or not args.sha256:
            raise CliError("--archive-url takes no folder, and needs --sha256 (staticsite pack prints it)")
        content: dict[str, Any] = {"archive": {"url": args.archive_url, "sha256": args.sha256}}
    elif args.dir:
        content = _pack(Path(args.dir), routing).content()
    else:
        raise CliError("give the folder to deploy (staticsite deploy DIR), or --archive-url and --sha256")
    conn, namespace = _connect(args)
    routing_json = routing.model_dump(mode="json", by_alias=True, exclude_unset=True)
    try:
        obj = site.manifest(name, namespace, content, domains=args.domain, routing=routing_json, labels=labels)
    except pydantic.ValidationError as exc:
        raise CliError(f"the site is not valid:\n{_errors(exc)}") from None
    applied = conn.apply(obj)
    generation = int(applied["metadata"].get("generation") or 1)
    _err(f"applied StaticSite {namespace}/{name} (generation {generation})")
    if args.no_wait:
        return 0
    final = wait(lambda: conn.get(namespace, name), generation, args.timeout, name)
    print((final.get("status") or {}).get("url") or f"http://{name}.{namespace}.svc")
    return 0


def wait(get: Callable[[], dict[str, Any] | None], generation: int, timeout: float, name: str,
         interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll the site until it is Ready at `generation`, printing each change; CliError when it
    is Degraded, or still not Ready after `timeout` seconds."""
    start = clock()
    last = warned = ""
    hinted = False
    while True:
        obj = get()
        if obj is None:
            raise CliError(f"StaticSite {name} was deleted while waiting for it")
        state = site.progress(obj, generation)
        elapsed = clock() - start
        if state.line != last:
            _err(f"  [{elapsed:4.0f}s] {state.line}")
            last = state.line
        if state.warning and state.warning != warned:
            _err(f"warning: {state.warning}")
            warned = state.warning
        if state.failed:
            raise CliError(f"StaticSite {name} is Degraded: {state.failed}\n"
                           f"Fix the cause and deploy again; `staticsite status {name}` shows its Events.")
        if state.ready:
            return obj
        if not state.seen and elapsed > 15 and not hinted:
            _err("  no status for this change yet: is the operator running, and watching this namespace "
                 "(the chart's watchNamespaces, STATICSITE_NAMESPACES)?")
            hinted = True
        if elapsed >= timeout:
            raise CliError(f"StaticSite {name} is not Ready after {timeout:.0f}s (last: {state.line}).\n"
                           f"It may still converge: `staticsite status {name}` shows its conditions and Events.")
        sleep(interval)


# --- the other commands -----------------------------------------------------------------

def cmd_preview(args: argparse.Namespace) -> int:
    routing = _routing(args)
    packed = _pack(Path(args.dir), routing, limit=False)
    if packed.size > models.MAX_CONTENT_BYTES:
        _err(f"note: {packed.size:,} bytes is over the inline limit: deploy it as an archive (staticsite pack)")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    return preview.serve(packed, routing, args.host, args.port, check_only=args.check)


def cmd_status(args: argparse.Namespace) -> int:
    conn, namespace = _connect(args)
    if args.name is None:
        rows = [site.row(o) for o in conn.sites(namespace)]
        if not rows:
            _err(f"no StaticSites in namespace {namespace}")
            return 0
        widths = [max(len(r[i]) for r in [("NAME", "READY", "REASON", "URL"), *rows]) for i in range(3)]
        for r in [("NAME", "READY", "REASON", "URL"), *rows]:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[3])
        return 0
    obj = conn.get(namespace, args.name)
    if obj is None:
        raise CliError(f"no StaticSite {args.name!r} in namespace {namespace} (staticsite status lists them)")
    print(site.summary(obj, conn.events(namespace, args.name)))
    ready = site.condition(obj, "Ready").get("status") == "True"
    return 0 if ready else 1


def cmd_delete(args: argparse.Namespace) -> int:
    conn, namespace = _connect(args)
    name = site.preview_name(args.name, args.branch) if args.branch else args.name
    if not conn.delete(namespace, name):
        raise CliError(f"no StaticSite {name!r} in namespace {namespace}")
    _err(f"deleted StaticSite {namespace}/{name} (its Deployment, Service and ConfigMaps go with it)")
    return 0


def cmd_previews(args: argparse.Namespace) -> int:
    conn, namespace = _connect(args)
    for obj in conn.sites(namespace, f"{site.PREVIEW_OF}={args.name}"):
        labels = obj["metadata"].get("labels") or {}
        print(f"{obj['metadata']['name']}  branch={labels.get(site.BRANCH, '?')}  "
              f"{(obj.get('status') or {}).get('url') or '-'}")
    return 0


def cmd_import_netlify(args: argparse.Namespace) -> int:
    try:
        imported = netlify.import_netlify(Path(args.path))
        text = imported.yaml()
    except (ValueError, pydantic.ValidationError) as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(text)
    for problem in imported.problems:
        _err(f"not translated: {problem}")
    _err(f"{len(imported.redirects)} redirect(s), {len(imported.headers)} header rule(s) translated, "
         f"{len(imported.problems)} not")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    packed = _pack(Path(args.dir), models.Routing(), limit=False)
    digest = pack.archive(packed, Path(args.output))
    _err(f"wrote {args.output}; upload it where the cluster can fetch it over http(s), then deploy it with:")
    _err(f"  staticsite deploy --name NAME --archive-url URL --sha256 {digest}")
    print(digest)
    return 0


# --- the parser ---------------------------------------------------------------------------

def parser(prog: str = "staticsite") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=prog, description="Deploy and preview static sites on Kubernetes "
                                                         "(StaticSite, staticsite.dev).")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def routing_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--routing", metavar="FILE", help="spec.routing as YAML (import-netlify's output)")
        p.add_argument("--semantics", choices=["netlify", "cloudflare"], help="whose behaviour to follow")
        p.add_argument("--spa", action="store_true", help="serve /index.html for unknown paths")

    p = sub.add_parser("deploy", help="deploy a build folder, wait until it is Ready, print its URL")
    p.add_argument("dir", nargs="?", help="the folder to serve (dist, public, build ...)")
    p.add_argument("--name", help="site name (default: from the folder)")
    p.add_argument("--domain", action="append", help="a host to serve it on (repeatable)")
    p.add_argument("--branch", help="deploy a preview of the site for this branch: site SITE-BRANCH, "
                                          "on BRANCH.DOMAIN for each --domain")
    p.add_argument("--archive-url", help="serve a .tar.gz at this URL instead of a folder (see pack)")
    p.add_argument("--sha256", help="the archive's SHA-256")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for Ready (default 300)")
    p.add_argument("--no-wait", action="store_true", help="apply and return")
    routing_options(p)
    _cluster_options(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("preview", help="serve a folder here with real nginx, as the pod would")
    p.add_argument("dir")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--check", action="store_true", help="only render and check the nginx.conf")
    routing_options(p)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("status", help="a site's conditions, revision, URL and Events; or all sites")
    p.add_argument("name", nargs="?")
    _cluster_options(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("delete", help="delete a site, or a branch preview of it (--branch)")
    p.add_argument("name")
    p.add_argument("--branch")
    _cluster_options(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("previews", help="the branch previews of a site")
    p.add_argument("name")
    _cluster_options(p)
    p.set_defaults(func=cmd_previews)

    p = sub.add_parser("import-netlify", help="print spec.routing for a netlify.toml or a folder's "
                                              "_redirects/_headers")
    p.add_argument("path")
    p.set_defaults(func=cmd_import_netlify)

    p = sub.add_parser("pack", help="pack a folder as a reproducible .tar.gz for spec.content.archive")
    p.add_argument("dir")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_pack)
    return top


def main(argv: list[str] | None = None, prog: str = "staticsite") -> int:
    args = parser(prog).parse_args(argv)
    try:
        result: int = args.func(args)
    except CliError as exc:
        _err(f"error: {exc}")
        return 1
    except OSError as exc:  # a file not readable or writable: its name and why
        _err(f"error: {exc.filename or ''}: {exc.strerror or exc}".replace("error: : ", "error: "))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    return result


def kubectl_plugin() -> int:
    """`kubectl staticsite ...`: kubectl runs kubectl-staticsite with the same environment."""
    return main(prog="kubectl staticsite")


def console() -> None:
    sys.exit(main())


def console_kubectl() -> None:
    sys.exit(kubectl_plugin())
