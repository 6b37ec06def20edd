"""A pool's nginx as the agent configures it, without the API: for tests of Host routing,
isolation between sites, and the injection and confinement guarantees per site.

Each site's files go to <tmp>/sites/<key>/<revision>, its server block is rendered by
core.poolconf.site_block and the sites grouped by generation_files (as the agent does),
and one real nginx serves them all on 127.0.0.1, as nginx_harness.serve does for one site.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from staticsite_operator.api import models
from staticsite_operator.core import poolconf

from .nginx_harness import Response, _free_port, nginx_binary, nginx_t, stop, workdir, write_site


@dataclass
class PoolServer:
    port: int
    root: Path

    def raw(self, host: str, target: bytes) -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head, body

    def get(self, host: str, path: str) -> Response:
        head, body = self.raw(host, path.encode())
        lines = head.split(b"\r\n")
        headers = [(k.decode(), v.strip().decode()) for k, _, v in (line.partition(b":") for line in lines[1:])]
        return Response(int(lines[0].split(b" ")[1]), headers, body)


def site_confs(sites: dict[str, tuple[models.StaticSiteSpec, tuple[str, ...]]], tmp: Path,
               listen: str) -> dict[str, Path]:
    """Write each site's files, and the generation's include files as the agent does
    (poolconf.site_block, generation_files); the site roots by key."""
    roots: dict[str, Path] = {}
    (tmp / "conf").mkdir(mode=0o755)
    (tmp / "empty").mkdir(mode=0o755)
    blocks: dict[str, poolconf.SiteBlock] = {}
    for key, (spec, hosts) in sites.items():
        root = tmp / "sites" / key / "r1"
        root.mkdir(parents=True, mode=0o755)
        (tmp / "sites").chmod(0o755)
        (tmp / "sites" / key).chmod(0o755)
        assert spec.content.inline is not None
        write_site(spec.content.inline, root)
        blocks[key] = poolconf.site_block(spec, key=key, root=str(root), hosts=hosts, listen=listen,
                                          files={f.path: f.data() for f in spec.content.inline.files
                                                 if f.path in poolconf.ROUTING_FILES})
        roots[key] = root
    for name, text in poolconf.generation_files(blocks, fallback_root=str(tmp / "empty")).items():
        (tmp / "conf" / name).write_text(text)
    return roots


@contextmanager
def serve_pool(sites: dict[str, tuple[models.StaticSiteSpec, tuple[str, ...]]],
               before: object = None) -> Iterator[PoolServer]:
    """One nginx serving every site by Host; `before(tmp)` may add files (canaries) first."""
    binary = nginx_binary()
    with workdir() as tmp:
        port = _free_port()
        listen = f"127.0.0.1:{port}"
        site_confs(sites, tmp, listen)
        if callable(before):
            before(tmp)
        conf = tmp / "nginx.conf"
        conf.write_text(poolconf.main_conf(include=str(tmp / "conf" / "*.conf"), listen=listen, tmp_dir=str(tmp),
                                           pid=str(tmp / "nginx.pid")))
        ok, output = nginx_t(conf)
        assert ok, output
        log = (tmp / "nginx.log").open("ab")
        proc = subprocess.Popen([binary, "-e", "stderr", "-c", str(conf)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        server = PoolServer(port, tmp)
        try:
            for _ in range(500):
                try:
                    if server.get("healthz.invalid", "/healthz").status == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None:
                    pytest.fail((tmp / "nginx.log").read_text())
                time.sleep(0.02)
            yield server
        finally:
            stop(proc)
            log.close()
