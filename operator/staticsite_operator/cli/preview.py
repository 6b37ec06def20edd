"""`staticsite preview DIR`: the folder served on this machine by real nginx, with the
nginx.conf the operator renders for it (core/nginxconf.py), `_redirects` and `_headers`
included: what `netlify dev` is to a Netlify site.

The files are packed as `deploy` packs them and written to a private temporary directory,
so the preview serves exactly what the pod would (hidden files left out, the same names), and
the configuration differs from the pod's only in its root, listen address and temporary paths.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ..api import models
from ..core import hostfiles
from ..core.nginxconf import render_nginx_conf
from .cluster import CliError
from .pack import Packed

NGINX_MISSING = ("nginx was not found on PATH or in /usr/sbin: install it (Debian/Ubuntu: sudo apt-get install "
                 "nginx-light; macOS: brew install nginx) and re-run")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        raise CliError(NGINX_MISSING)
    return found


def write_site(packed: Packed, root: Path) -> None:
    """The packed files under `root`, world-readable (nginx's workers run as `nobody` when
    nginx is started as root)."""
    root.mkdir(mode=0o755)
    for f in packed.files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(f.data())
        target.chmod(0o644)
    for dirpath, _, _ in os.walk(root):
        Path(dirpath).chmod(0o755)


def render(packed: Packed, routing: models.Routing, root: Path, listen: str, tmp_dir: Path) -> tuple[
        str, tuple[hostfiles.LineProblem, ...]]:
    """The operator's nginx.conf for these files and routing, moved to `root` and `listen`."""
    spec = models.StaticSiteSpec.model_validate({"content": packed.content(),
                                                 "routing": routing.model_dump(by_alias=True, exclude_unset=True)})
    parsed = hostfiles.parse_site(packed.host_files(), routing.semantics)
    conf = render_nginx_conf(spec, root=str(root), listen=listen, tmp_dir=str(tmp_dir), host=parsed.host_rules())
    return conf, parsed.problems


def check(conf_path: Path) -> None:
    proc = subprocess.run([nginx_binary(), "-t", "-q", "-e", "stderr", "-c", str(conf_path)],
                          check=False, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise CliError(f"nginx -t refused the rendered configuration (the operator would refuse it too):\n"
                       f"{proc.stderr.strip()}")


def serve(packed: Packed, routing: models.Routing, host: str, port: int, *, check_only: bool = False) -> int:
    """Serve until interrupted (or only run `nginx -t` with `check_only`); nginx's exit status."""
    tmp = Path(tempfile.mkdtemp(prefix="staticsite-preview-"))
    try:
        tmp.chmod(0o755)
        write_site(packed, tmp / "site")
        conf, _ = render(packed, routing, tmp / "site", f"{host}:{port}", tmp)  # main reports the problems
        conf_path = tmp / "nginx.conf"
        conf_path.write_text(conf)
        check(conf_path)
        if check_only:
            print(f"nginx -t: the configuration for {len(packed.files)} files is valid", file=sys.stderr)
            return 0
        print(f"serving {len(packed.files)} files on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr,
              flush=True)
        proc = subprocess.Popen([nginx_binary(), "-e", "stderr", "-c", str(conf_path)], stdin=subprocess.DEVNULL)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests under way
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
