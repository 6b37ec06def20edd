"""A real git repository served over smart HTTP on 127.0.0.1, for tests of git sources.

`serve_git(base)` builds a repository with the git CLI (three commits on `main` with a
`public/` site, an annotated tag `v1`, a lightweight tag `light`, a branch `dev`) and
serves a bare copy with `git http-backend` (CGI) behind a ThreadingHTTPServer: the same
server side that GitHub-less self-hosting uses. Optional HTTP basic auth requires a
token (any username, the token as password). Tests then add commits and move branches
with `GitServer.commit` and `GitServer.move_branch`.

Every subprocess has a timeout, and the server binds 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

GIT_TIMEOUT = 30
REPO = "site.git"
MOVED = "moved.git"  # redirects to REPO on the same server


def git_binary() -> str:
    found = shutil.which("git")
    if found is None:
        pytest.fail("git is required for the git source tests (apt-get install git)", pytrace=False)
    return found


def _git_env(home: Path) -> dict[str, str]:
    """A git environment that no user or system configuration can change."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com", "LC_ALL": "C"}


@dataclass
class GitServer:
    url: str                   # http://127.0.0.1:PORT/site.git
    work: Path                 # a working clone; commits are made here and pushed to `bare`
    bare: Path                 # what http-backend serves
    token: str | None
    commits: list[str]         # the initial commits on main, oldest first
    requests: list[str] = field(default_factory=list)  # "GET /site.git/info/refs?..." as they came
    authorization: list[str | None] = field(default_factory=list)  # each request's Authorization header

    @property
    def moved_url(self) -> str:
        """A URL that redirects (301, same origin) to `url`."""
        return self.url.removesuffix(REPO) + MOVED

    def git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run([git_binary(), *args], cwd=cwd or self.work, env=_git_env(self.work.parent),
                              capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
        if proc.returncode != 0:
            pytest.fail(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def commit(self, files: Mapping[str, str], message: str = "change", branch: str = "main") -> str:
        """Write `files` on `branch` (created from HEAD if new), commit, push; the new SHA."""
        self.git("fetch", "-q", "origin")
        self.git("checkout", "-q", "-B", branch, f"origin/{branch}" if self.sha(f"refs/heads/{branch}") else "HEAD")
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        self.git("fetch", "-q", "origin")
        return self.git("rev-parse", "HEAD")

    def move_branch(self, branch: str, sha: str) -> None:
        """Point `branch` at `sha` on the server, as a force push would."""
        self.git("update-ref", f"refs/heads/{branch}", sha, cwd=self.bare)

    def tag(self, name: str, sha: str, *, annotated: bool = True) -> None:
        self.git("tag", *(["-a", "-m", name] if annotated else []), "-f", name, sha)
        self.git("push", "-q", "-f", "origin", f"refs/tags/{name}")

    def sha(self, ref: str) -> str | None:
        """What the server has for `ref` (peeled to a commit), or None."""
        proc = subprocess.run([git_binary(), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], cwd=self.bare,
                              env=_git_env(self.work.parent), capture_output=True, text=True, timeout=GIT_TIMEOUT,
                              check=False)
        return proc.stdout.strip() or None


def _create(base: Path, *, allow_any_sha: bool) -> tuple[Path, Path, list[str]]:
    work, bare = base / "work", base / "srv" / REPO
    env = _git_env(base)

    def run(*args: str, cwd: Path = work) -> str:
        return subprocess.run([git_binary(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=True).stdout.strip()

    work.mkdir(parents=True)
    bare.parent.mkdir(parents=True)
    run("init", "-q", "-b", "main")
    commits = []
    for n, pages in enumerate(({"public/index.html": "<h1>one</h1>\n", "README.md": "source\n"},
                               {"public/index.html": "<h1>two</h1>\n", "public/about.html": "about\n"},
                               {"public/index.html": "<h1>three</h1>\n", "public/.well-known/security.txt": "x\n"}),
                              start=1):
        for path, text in pages.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        run("add", "-A")
        run("commit", "-q", "-m", f"commit {n}")
        commits.append(run("rev-parse", "HEAD"))
    run("tag", "-a", "-m", "release v1", "v1", commits[1])
    run("tag", "light", commits[0])
    run("branch", "dev", commits[0])
    run("clone", "-q", "--bare", str(work), str(bare), cwd=base)
    run("config", "uploadpack.allowAnySHA1InWant", "true" if allow_any_sha else "false", cwd=bare)
    run("config", "http.receivepack", "false", cwd=bare)
    run("remote", "add", "origin", str(bare))
    run("fetch", "-q", "origin")
    return work, bare, commits


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = GIT_TIMEOUT  # per socket operation

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read GitServer.requests instead

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return body
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:
            return False
        return password == token

    def _cgi(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.server.authorization.append(self.headers.get("Authorization"))
        body = self._body()
        if self.path.startswith(f"/{MOVED}/"):  # a renamed repository, as hosts redirect them
            self.send_response(301)
            self.send_header("Location", f"/{REPO}/" + self.path.removeprefix(f"/{MOVED}/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urlsplit(self.path)
        env = {**_git_env(self.server.home), "GIT_PROJECT_ROOT": str(self.server.root), "GIT_HTTP_EXPORT_ALL": "1",
               "REQUEST_METHOD": self.command, "PATH_INFO": unquote(target.path), "QUERY_STRING": target.query,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "REMOTE_ADDR": "127.0.0.1", "REMOTE_USER": "git", "GATEWAY_INTERFACE": "CGI/1.1",
               "SERVER_PROTOCOL": "HTTP/1.0"}
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        if self.server.protocol_v2 and (proto := self.headers.get("Git-Protocol")):
            env["GIT_PROTOCOL"] = proto
        proc = subprocess.run([git_binary(), "http-backend"], input=body, env=env, capture_output=True,
                              timeout=GIT_TIMEOUT, check=False)
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, home: Path, token: str | None, protocol_v2: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.home, self.token, self.protocol_v2 = root, home, token, protocol_v2
        self.requests: list[str] = []
        self.authorization: list[str | None] = []


@contextmanager
def serve_git(base: Path, *, token: str | None = None, allow_any_sha: bool = True,
              protocol_v2: bool = True) -> Iterator[GitServer]:
    """The repository described in the module docstring, served until the block ends.

    allow_any_sha=False and protocol_v2=False make a server that refuses to send a commit
    that is not a branch or tag tip when asked for it by SHA, like some older hosts.
    """
    work, bare, commits = _create(base, allow_any_sha=allow_any_sha)
    server = _Server(bare.parent, base, token, protocol_v2)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield GitServer(url=f"http://127.0.0.1:{server.server_port}/{REPO}", work=work, bare=bare, token=token,
                        commits=commits, requests=server.requests,
                        authorization=server.authorization)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files (directory=... through functools.partial) without logging each request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """Any handler, served on 127.0.0.1 (a free port) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def counting_listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts: proof that
    something was, or was never, contacted."""
    accepted: list[int] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(0.1)
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                conn.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield sock.getsockname()[1], accepted
        finally:
            stop.set()
            thread.join(timeout=2)
