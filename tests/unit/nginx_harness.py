"""Run the real nginx against rendered configs: `nginx -t`, and a live server per site.

Tests that use this are marked `nginx`. A missing nginx binary is a test failure, not a
skip: the routing features are only proven by running nginx, so a green run without it
would prove nothing.

nginx runs here as whoever runs pytest. As root, its workers drop to `nobody`, so every
directory and file it reads is made world-readable, in a private temporary directory
(pytest's own tmp dirs are mode 0700).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from staticsite_operator.api import models
from staticsite_operator.core import hostfiles, render
from staticsite_operator.core.nginxconf import HostRules, render_nginx_conf

NGINX_MISSING = (
    "nginx is required for the tests marked `nginx` and was not found on PATH or at /usr/sbin/nginx. "
    "Run `make test` (or `make nginx`), or install it with `apt-get install nginx-light`."
)


def nginx_binary() -> str:
    """The nginx executable; fails the calling test loudly when there is none."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        pytest.fail(NGINX_MISSING, pytrace=False)
    return found


@contextmanager
def workdir() -> Iterator[Path]:
    """A world-readable scratch directory (see the module docstring), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="staticsite-nginx-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def nginx_t(conf: Path) -> tuple[bool, str]:
    """`nginx -t` on a config file: (passed, nginx's output)."""
    proc = subprocess.run([nginx_binary(), "-t", "-e", "stderr", "-c", str(conf)],
                          check=False, capture_output=True, text=True, timeout=30)
    return proc.returncode == 0, proc.stdout + proc.stderr


def check_spec(spec: models.StaticSiteSpec, host: HostRules | None = None) -> tuple[bool, str, str]:
    """Render `spec` (and the rules of its _redirects/_headers, `host`) the way a test server
    would and run `nginx -t`: (passed, output, conf)."""
    with workdir() as tmp:
        (tmp / "site").mkdir(mode=0o755)
        conf = render_nginx_conf(spec, root=str(tmp / "site"), listen="127.0.0.1:8080", tmp_dir=str(tmp), host=host)
        path = tmp / "nginx.conf"
        path.write_text(conf)
        ok, output = nginx_t(path)
        return ok, output, conf


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Server:
    port: int
    root: Path
    conf: str
    log_path: Path

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
        """One request with http.client: redirects are not followed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()

    def raw(self, request_target: bytes, extra: bytes = b"") -> tuple[bytes, bytes]:
        """Send a request line byte for byte (http.client refuses odd targets): (head, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"GET " + request_target + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                         + extra + b"\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head, body

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_site(content: models.InlineContent, root: Path) -> None:
    for f in content.files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data())
    for dirpath, dirnames, filenames in os.walk(root):
        Path(dirpath).chmod(0o755)
        for name in filenames:
            (Path(dirpath) / name).chmod(0o644)
        del dirnames


@contextmanager
def serve(spec: models.StaticSiteSpec, root: Path | None = None, host: HostRules | None = None,
          conf_text: str | None = None) -> Iterator[Server]:
    """A real nginx on 127.0.0.1 with `spec`'s rendered config (with the rules of the
    content's _redirects/_headers: `host`, or those of the inline files when None), serving
    its inline files, or the directory `root` when given (content fetched from git or an
    archive). `conf_text`: a config rendered elsewhere (the pod's), with its root, listen
    address and temporary directory swapped for this server's."""
    binary = nginx_binary()
    with workdir() as tmp:
        if root is None:
            assert spec.content.inline is not None
            root = tmp / "site"
            root.mkdir(mode=0o755)
            write_site(spec.content.inline, root)
        log_path = tmp / "nginx.log"
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            if conf_text is not None:
                conf = _relocate(conf_text, root=str(root), listen=f"127.0.0.1:{port}", tmp_dir=str(tmp))
            else:
                rules = host if host is not None else _inline_rules(spec)
                conf = render_nginx_conf(spec, root=str(root), listen=f"127.0.0.1:{port}", tmp_dir=str(tmp),
                                         host=rules)
            (tmp / "nginx.conf").write_text(conf)
            with log_path.open("ab") as log:
                proc = subprocess.Popen([binary, "-e", "stderr", "-c", str(tmp / "nginx.conf")],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            server = Server(port, root, conf, log_path)
            if _wait_healthy(server, proc):
                break
            stop(proc)
        else:
            pytest.fail(f"nginx did not start; its output:\n{log_path.read_text(errors='replace')}")
        try:
            yield server
        finally:
            stop(proc)


def _inline_rules(spec: models.StaticSiteSpec) -> HostRules | None:
    """The rules of the inline content's _redirects and _headers, as the operator reads them."""
    inline = spec.content.inline
    return hostfiles.parse_site(render.host_files(inline), spec.routing.semantics).host_rules() if inline else None


def _relocate(conf: str, *, root: str, listen: str, tmp_dir: str) -> str:
    """A pod's nginx.conf, moved onto this machine: its root, listen and temporary paths."""
    conf = re.sub(r"(?m)^(\s*root) [^;]+;", rf"\1 {root};", conf)
    conf = re.sub(r"(?m)^(\s*listen) \S+ default_server;", rf"\1 {listen} default_server;", conf)
    return re.sub(r"(?m)^(\s*(?:pid|[a-z]+_temp_path)) /tmp/", rf"\1 {tmp_dir}/", conf)


def _wait_healthy(server: Server, proc: subprocess.Popen[bytes], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if server.get("/healthz").status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Stop a process this test started (nginx, chromium, an agent, a port-forward), by its
    PID: SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: nginx's fast shutdown of the master and its workers
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def make_spec(files: Mapping[str, str | bytes], routing: dict[str, Any] | None = None) -> models.StaticSiteSpec:
    """A validated spec from file contents (str: text, bytes: binaryContent) and a routing dict."""
    entries = [{"path": p, "binaryContent": base64.b64encode(c).decode()} if isinstance(c, bytes)
               else {"path": p, "content": c} for p, c in files.items()]
    return models.StaticSiteSpec.model_validate({"content": {"inline": {"files": entries}},
                                                 "routing": routing or {}})


# --- A reader for nginx.conf, to check its structure -----------------------------------
# It follows ngx_conf_read_token: whitespace separates words, ';' ends a directive, '{' and
# '}' delimit blocks, '#' starts a comment only where a word could start, "..." and '...'
# quote, and a backslash escapes the next character (\" \' \\ and \t \r \n are unescaped).

@dataclass
class Directive:
    words: list[str]            # words[0] is the name; quotes removed and escapes undone
    quoted: list[bool]          # which words were quoted
    block: list[Directive] | None

    @property
    def name(self) -> str:
        return self.words[0]


_UNESCAPE = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


def _tokens(text: str) -> Iterator[tuple[str, str, bool]]:
    """(kind, value, quoted): kind is "word" or "punct" (value ';', '{' or '}')."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in ";{}":
            yield "punct", c, False
            i += 1
        else:
            quote = c if c in "\"'" else None
            j = i + 1 if quote else i
            buf: list[str] = []
            while True:
                if j >= n:
                    if quote:
                        raise ValueError("unterminated quoted string")
                    break
                d = text[j]
                if d == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    buf.append(_UNESCAPE.get(esc, "\\" + esc))
                    j += 2
                    continue
                if quote and d == quote:
                    j += 1
                    if j < n and text[j] not in " \t\r\n;{)":
                        raise ValueError(f"unexpected {text[j]!r} after a quoted string")
                    break
                if not quote and (d in " \t\r\n;" or (d == "{" and not (buf and buf[-1].endswith("$")))):
                    break
                buf.append(d)
                j += 1
            yield "word", "".join(buf), quote is not None
            i = j


def parse_conf(text: str) -> list[Directive]:
    tokens = list(_tokens(text))
    pos = 0

    def block(depth: int) -> list[Directive]:
        nonlocal pos
        out: list[Directive] = []
        words: list[str] = []
        quoted: list[bool] = []
        while pos < len(tokens):
            kind, value, was_quoted = tokens[pos]
            pos += 1
            if kind == "word":
                words.append(value)
                quoted.append(was_quoted)
            elif value == ";":
                if not words:
                    raise ValueError("empty directive")
                out.append(Directive(words, quoted, None))
                words, quoted = [], []
            elif value == "{":
                out.append(Directive(words, quoted, block(depth + 1)))
                words, quoted = [], []
            else:
                if words or depth == 0:
                    raise ValueError("unexpected '}'")
                return out
        if words or depth != 0:
            raise ValueError("unterminated block or directive")
        return out

    return block(0)


def walk(directives: list[Directive]) -> Iterator[tuple[list[str], Directive]]:
    """Every directive with the names of the blocks around it."""
    def go(ds: list[Directive], path: list[str]) -> Iterator[tuple[list[str], Directive]]:
        for d in ds:
            yield path, d
            if d.block is not None:
                yield from go(d.block, [*path, d.name])
    yield from go(directives, [])


Shape = list[tuple[str, tuple[bool, ...], "Shape | None"]]


def shape(directives: list[Directive], in_table: bool = False) -> Shape:
    """The structure of a config, without its values: directive names (entries of map
    and geo blocks, whose "names" are keys, count as "<entry>"), which words were
    quoted, and the nesting."""
    return [("<entry>" if in_table else d.name, tuple(d.quoted),
             None if d.block is None else shape(d.block, d.name in ("map", "geo")))
            for d in directives]
