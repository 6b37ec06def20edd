"""The `routes` init container of a git or archive site: its nginx.conf, rendered in the pod
from the spec (site.json, which the operator writes into the site's ConfigMap) and the
fetched content's `_redirects` and `_headers`.

    python -m staticsite_operator.siteconf SITE_JSON OUT [--problems PATH]

Why in the pod: the operator never downloads a site's content (it resolves git refs only),
so only the pod sees these files. The pod runs the operator's own image and code: the same
parser, validation, quoting and templates as for inline content, and an `nginx -t` init
container checks the result before nginx starts (core/templates/deployment.yaml.j2).

Exit status: 0 the configuration is written; lines that cannot be honoured are skipped and
listed in PATH (the kubelet's termination message, which the operator reports as
RoutingFileInvalid while the site serves). 45: nothing written, the reason in PATH and on
stderr (RoutingFailed: the pod stays un-Ready and the previous pods keep serving).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from .api import models
from .core import hostfiles, nginxconf

EXIT_FAILED = 45
# The kubelet reads at most 4096 bytes of a termination message.
MAX_MESSAGE = 2000


def read_host_file(root: Path, name: str) -> bytes | None:
    """A site file at the root, if there is one. A symlink is not followed (it could point
    anywhere in this container: OSError), nor is anything but a regular file read."""
    try:
        fd = os.open(root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{name} is not a regular file")
        return f.read(hostfiles.MAX_FILE_BYTES + 1)


def render(site: dict[str, object]) -> tuple[str, tuple[hostfiles.LineProblem, ...]]:
    """The nginx.conf for `site` (site.json's content) and the problems of its files."""
    spec = models.StaticSiteSpec.model_validate(site["spec"])
    root = str(site["root"])
    files: dict[str, str | bytes] = {}
    unread: list[hostfiles.LineProblem] = []
    for name in (hostfiles.REDIRECTS_FILE, hostfiles.HEADERS_FILE):
        try:
            if (data := read_host_file(Path(root), name)) is not None:
                files[name] = data
        except OSError as exc:
            unread.append(hostfiles.LineProblem(name, 0, "", f"not read: {exc.strerror or exc} (a symbolic link "
                                                             "or not a regular file)"))
    parsed = hostfiles.parse_site(files, spec.routing.semantics)
    conf = nginxconf.render_nginx_conf(spec, root=root, host=parsed.host_rules())
    return conf, (*unread, *parsed.problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m staticsite_operator.siteconf", description=__doc__.split("\n")[0])
    parser.add_argument("site_json", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--problems", type=Path, default=Path("/dev/termination-log"))
    args = parser.parse_args(argv)
    try:
        conf, problems = render(json.loads(args.site_json.read_text()))
    except Exception as exc:  # whatever it is, the pod must not serve: say why and stop
        message = f"cannot render nginx.conf with the content's _redirects and _headers: {exc}"[:MAX_MESSAGE]
        print(message, file=sys.stderr)
        _write(args.problems, message)
        return EXIT_FAILED
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(conf)
    tmp.replace(args.out)
    if problems:
        message = hostfiles.summary(problems)
        print(f"skipped: {message}", file=sys.stderr)
        _write(args.problems, message[:MAX_MESSAGE])
    print(f"wrote {args.out}: {len(conf)} bytes", file=sys.stderr)
    return 0


def _write(path: Path, message: str) -> None:
    try:
        path.write_text(message)
    except OSError as exc:  # no kubelet here (a test, a local run): stderr has it
        print(f"cannot write {path}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
