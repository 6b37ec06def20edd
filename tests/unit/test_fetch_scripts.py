"""The init-container scripts (templates/fetch-git.sh, fetch-archive.sh), run as a pod runs them.

Each runs with `sh` from PATH and only its documented environment, where PATH is a
directory of BusyBox applets (as in alpine/git: busybox's sh, wget, tar, sha256sum...)
plus, for the git script, the git binary. Against a local `git http-backend` and a
local HTTP server, it covers: the right commit lands in DEST with no .git, real nginx
serves a subdirectory of it, rolling back to an older SHA, commits that are not branch
tips (also from servers that refuse a want by SHA), private repositories (the token is
in no output and no argv), checksum mismatches (exit 42, DEST untouched), stripping,
failed downloads, and a run as an unprivileged user replacing what an earlier run left.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path

import pytest

import staticsite_operator
from staticsite_operator.api import models
from staticsite_operator.core import render

from .gitserver import GitServer, QuietHandler, _git_env, http_server, serve_git
from .nginx_harness import Server, make_spec, serve, workdir

pytestmark = pytest.mark.nginx

TEMPLATES = Path(staticsite_operator.__file__).parent / "core" / "templates"
FETCH_GIT = TEMPLATES / "fetch-git.sh"
FETCH_ARCHIVE = TEMPLATES / "fetch-archive.sh"
TOKEN = "ghp_Sup3rSecretTokenValue"
BUSYBOX_MISSING = ("busybox is required to run the init-container scripts as alpine/git does: "
                   "apt-get install busybox")


# --- Running the scripts ----------------------------------------------------------------

@pytest.fixture(scope="module")
def bin_dirs() -> Iterator[dict[str, str]]:
    """PATHs: "busybox" (every applet), "git" (+ git), "curl" (every applet but wget, + curl),
    "gnutar" (every applet but tar, + GNU tar, as a dash-and-coreutils image would extract).

    In a world-readable directory, so an unprivileged user can run from it too."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail(BUSYBOX_MISSING, pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="staticsite-bin-"))
    root.chmod(0o755)
    try:
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True,
                                 timeout=10).stdout.split()
        dirs = {name: root / name for name in ("busybox", "nowget", "notar", "git", "curl", "tar")}
        for path in dirs.values():
            path.mkdir(mode=0o755)
        for applet in applets:
            (dirs["busybox"] / applet).symlink_to(busybox)
            for without in ("wget", "tar"):
                if applet != without:
                    (dirs[f"no{without}"] / applet).symlink_to(busybox)
        for tool in ("git", "curl", "tar"):
            found = shutil.which(tool)
            if found is None or (tool == "tar" and "GNU tar" not in subprocess.run(
                    [found, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout):
                pytest.fail(f"{tool} is required for these tests (GNU tar for tar)", pytrace=False)
            (dirs[tool] / tool).symlink_to(found)
        yield {"busybox": str(dirs["busybox"]), "git": f"{dirs['busybox']}:{dirs['git']}",
               "curl": f"{dirs['nowget']}:{dirs['curl']}", "gnutar": f"{dirs['notar']}:{dirs['tar']}"}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(script: Path, env: Mapping[str, str], path: str, *,
        user: int | None = None) -> subprocess.CompletedProcess[str]:
    """`sh script` with exactly `env` and PATH, as the container would (optionally as `user`)."""
    sh = shutil.which("sh", path=path)
    assert sh is not None
    assert Path(sh).resolve().name == "busybox", f"sh on {path} is {sh}, not busybox"
    prefix = [] if user is None else [shutil.which("setpriv") or "setpriv (util-linux)", f"--reuid={user}",
                                      f"--regid={user}", "--clear-groups"]
    return subprocess.run([*prefix, sh, str(script)], env={"PATH": path, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def assert_refused(proc: subprocess.CompletedProcess[str], needle: str, dest: Path) -> None:
    """A bad configuration: exit 2, a message naming the problem, no secret echoed
    (the cases put "hunter2" where a credential would be), and nothing written."""
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert not dest.exists()


@pytest.fixture
def dest() -> Iterator[Path]:
    """DEST, in a world-readable directory so nginx's workers can serve it."""
    with workdir() as tmp:
        yield tmp / "site"


def files(root: Path) -> dict[str, str]:
    """Every file under root (relative path -> text), symlinks and all."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def serve_dir(root: Path) -> AbstractContextManager[Server]:
    """A real nginx serving `root` with the rendered config."""
    return serve(make_spec({"index.html": "unused"}), root=root)


# --- fetch-git.sh -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with serve_git(tmp_path_factory.mktemp("git")) as server:
        yield server


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with serve_git(tmp_path_factory.mktemp("private"), token=TOKEN) as server:
        yield server


def fetch_git(bins: dict[str, str], url: str, sha: str, dest: Path, user: int | None = None,
              **extra: str) -> subprocess.CompletedProcess[str]:
    return run(FETCH_GIT, {"GIT_URL": url, "GIT_SHA": sha, "DEST": str(dest), **extra}, bins["git"], user=user)


def unprivileged(dest: Path) -> int | None:
    """Run as nobody, like the pod (as UID 101), in an emptyDir-like DEST; None when not root."""
    if os.geteuid() != 0:
        return None  # already unprivileged
    dest.mkdir(mode=0o777)
    dest.chmod(0o777)
    return 65534


def test_git_commit_lands_in_dest_and_nginx_serves_its_path(bin_dirs: dict[str, str], repo: GitServer,
                                                            dest: Path) -> None:
    sha = repo.commits[2]
    proc = fetch_git(bin_dirs, repo.url, sha, dest)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"fetched {sha} from {repo.url}\n"
    assert proc.stderr == ""
    assert files(dest) == {"README.md": "source\n", "public/index.html": "<h1>three</h1>\n",
                           "public/about.html": "about\n", "public/.well-known/security.txt": "x\n"}
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "public"]  # no .git, no scratch directory
    with serve_dir(dest / "public") as server:
        assert (server.get("/").status, server.get("/").body) == (200, b"<h1>three</h1>\n")
        assert server.get("/about.html").body == b"about\n"
        assert server.get("/.well-known/security.txt").status == 200


def test_git_rollback_to_an_older_commit(bin_dirs: dict[str, str], repo: GitServer, dest: Path) -> None:
    user = unprivileged(dest)
    assert fetch_git(bin_dirs, repo.url, repo.commits[2], dest, user=user).returncode == 0
    proc = fetch_git(bin_dirs, repo.url, repo.commits[0].upper(), dest, user=user)  # the same emptyDir, older pin
    assert proc.returncode == 0, proc.stderr
    assert files(dest) == {"README.md": "source\n", "public/index.html": "<h1>one</h1>\n"}  # about.html is gone
    with serve_dir(dest / "public") as server:
        assert server.get("/").body == b"<h1>one</h1>\n"
        assert server.get("/about.html").status == 404


@pytest.mark.parametrize("allow_sha", [True, False], ids=["sha-wants-allowed", "sha-wants-refused"])
def test_git_commits_that_are_no_tip(bin_dirs: dict[str, str], tmp_path: Path, dest: Path, allow_sha: bool) -> None:
    """A commit deep in the history; a server that refuses wants by SHA makes the script fetch the history."""
    with serve_git(tmp_path, allow_any_sha=allow_sha, protocol_v2=allow_sha) as repo:
        tip = repo.commit({"public/index.html": "<h1>four</h1>\n"}, "commit 4")
        for sha, index in ((repo.commits[1], "<h1>two</h1>\n"), (tip, "<h1>four</h1>\n")):
            proc = fetch_git(bin_dirs, repo.url, sha, dest)
            assert proc.returncode == 0, proc.stderr
            assert (dest / "public" / "index.html").read_text() == index
            assert not (dest / ".git").exists()
        proc = fetch_git(bin_dirs, repo.url, "1234567890" * 4, dest)
        assert proc.returncode == 43, proc.stderr
        assert f"commit {'1234567890' * 4} not found in {repo.url}" in proc.stderr
        assert (dest / "public" / "index.html").read_text() == "<h1>four</h1>\n"  # DEST untouched


def test_git_private_repository(bin_dirs: dict[str, str], private: GitServer, dest: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` often gets it
    wrong_file = tmp_path / "wrong"
    wrong_file.write_text("nope")
    # A git that records its argv: the token must reach git through the environment only.
    argv_log = tmp_path / "argv.log"
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec {shutil.which("git")} "$@"\n')
    (spy / "git").chmod(0o755)
    bins = {"git": f"{bin_dirs['busybox']}:{spy}"}
    sha = private.commits[2]

    ok = fetch_git(bins, private.url, sha, dest, GIT_TOKEN_FILE=str(token_file))
    assert ok.returncode == 0, ok.stderr
    assert (dest / "public" / "index.html").read_text() == "<h1>three</h1>\n"
    missing = fetch_git(bins, private.url, sha, dest)
    wrong = fetch_git(bins, private.url, sha, dest, GIT_TOKEN_FILE=str(wrong_file))
    for failed in (missing, wrong):
        assert failed.returncode == 44, failed.stderr
        assert f"authentication required or refused by {private.url}: check the token" in failed.stderr
    assert (dest / "public" / "index.html").read_text() == "<h1>three</h1>\n"  # failures leave DEST as it was
    encoded = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    for secret in (TOKEN, encoded):
        for proc in (ok, missing, wrong):
            assert secret not in proc.stdout + proc.stderr
        assert secret not in argv_log.read_text()
    assert "fetch --no-tags --depth 1" in argv_log.read_text().replace("-q ", "")


@pytest.mark.parametrize(("env", "needle"), [
    ({"GIT_SHA": ""}, "GIT_SHA is not set"),
    ({"GIT_SHA": "abc123"}, "40 hex digits"),
    ({"GIT_SHA": "g" * 40}, "40 hex digits"),
    ({"GIT_URL": "git@example.com:o/r.git"}, "only http:// and https://"),
    ({"GIT_URL": "http://user:hunter2@127.0.0.1:1/r.git"}, "must not hold credentials"),
    ({"GIT_URL": "http://127.0.0.1:1/r.git?hunter2"}, "query or fragment"),
    ({"DEST": "relative/dir"}, "absolute path"),
    ({"DEST": "/"}, "absolute path"),
    ({"GIT_TOKEN_FILE": "/nonexistent/token"}, "not a readable file"),
])
def test_git_bad_configuration(bin_dirs: dict[str, str], dest: Path, env: dict[str, str], needle: str) -> None:
    base = {"GIT_URL": "http://127.0.0.1:1/r.git", "GIT_SHA": "a" * 40, "DEST": str(dest)}
    assert_refused(run(FETCH_GIT, base | env, bin_dirs["git"]), needle, dest)


def test_git_unreachable_server(bin_dirs: dict[str, str], dest: Path) -> None:
    dest.mkdir()
    (dest / "index.html").write_text("old")
    # A port this test holds bound but not listening: connections are refused. A port that
    # was free a moment ago may meanwhile be another test's git server (a 401: CI saw it).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}/site.git"
        proc = fetch_git(bin_dirs, url, "a" * 40, dest)
    assert proc.returncode == 1
    assert f"cannot fetch from {url}" in proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["index.html"]


# --- fetch-archive.sh -------------------------------------------------------------------

SITE = {"public/index.html": "<h1>archive</h1>\n", "public/assets/app.css": "body{}\n",
        "public/.well-known/security.txt": "x\n", "README": "built\n"}


def make_tar(entries: Mapping[str, str], *, top: str = "site-1.0", gzip: bool = True,
             modes: Mapping[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w") as tar:
        for name, mode in (modes or {}).items():  # directories with explicit modes, first
            if name in entries:
                continue
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size, info.mode = len(data), (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def artifacts(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1: (directory, base URL)."""
    root = tmp_path / "artifacts"
    root.mkdir()
    with http_server(partial(QuietHandler, directory=str(root))) as server:
        yield root, f"http://127.0.0.1:{server.server_port}"


def publish(artifacts: tuple[Path, str], name: str, data: bytes) -> tuple[str, str]:
    """Put `data` on the artifact server: (its URL, its sha256)."""
    root, base = artifacts
    (root / name).write_bytes(data)
    return f"{base}/{name}", hashlib.sha256(data).hexdigest()


def fetch_archive(path: str, url: str, sha256: str, dest: Path, strip: str | None = None,
                  user: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {"ARCHIVE_URL": url, "ARCHIVE_SHA256": sha256, "DEST": str(dest)}
    if strip is not None:
        env["STRIP_COMPONENTS"] = strip
    return run(FETCH_ARCHIVE, env, path, user=user)


def test_archive_extracts_and_nginx_serves_it(bin_dirs: dict[str, str], artifacts: tuple[Path, str],
                                             dest: Path) -> None:
    url, sha = publish(artifacts, "site.tar.gz", make_tar(SITE))
    proc = fetch_archive(bin_dirs["busybox"], url, sha, dest, strip="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"fetched {url} (sha256 {sha})\n"
    assert files(dest) == SITE
    assert sorted(p.name for p in dest.iterdir()) == ["README", "public"]  # no scratch directory left
    with serve_dir(dest / "public") as server:
        assert server.get("/").body == b"<h1>archive</h1>\n"
        assert server.get("/assets/app.css").header("Content-Type") == "text/css"


def test_archive_checksum_mismatch(bin_dirs: dict[str, str], artifacts: tuple[Path, str], dest: Path) -> None:
    url, sha = publish(artifacts, "site.tgz", make_tar(SITE))
    dest.mkdir()
    (dest / "index.html").write_text("what the pod had")
    wrong = hashlib.sha256(b"something else").hexdigest()
    proc = fetch_archive(bin_dirs["busybox"], url, wrong.upper(), dest, strip="1")
    assert proc.returncode == 42
    assert proc.stderr == f"checksum mismatch: expected {wrong}, got {sha}\n"
    assert files(dest) == {"index.html": "what the pod had"}
    assert [p.name for p in dest.iterdir()] == ["index.html"]


def test_archive_plain_tar_without_strip_replaces_dest(bin_dirs: dict[str, str], artifacts: tuple[Path, str],
                                                       dest: Path) -> None:
    dest.mkdir()
    (dest / "stale.html").write_text("from an earlier run")
    url, sha = publish(artifacts, "download", make_tar({"index.html": "flat\n"}, top="", gzip=False))
    proc = fetch_archive(bin_dirs["busybox"], f"{url}?id=7&sig=hunter2", sha, dest)
    assert proc.returncode == 0, proc.stderr
    assert files(dest) == {"index.html": "flat\n"}
    assert "hunter2" not in proc.stdout + proc.stderr  # a signed URL's query stays out of the log


def test_archive_with_curl_when_there_is_no_wget(bin_dirs: dict[str, str], artifacts: tuple[Path, str],
                                                 dest: Path) -> None:
    url, sha = publish(artifacts, "site.tar.gz", make_tar(SITE))
    assert shutil.which("wget", path=bin_dirs["curl"]) is None
    proc = fetch_archive(bin_dirs["curl"], url, sha, dest, strip="1")
    assert proc.returncode == 0, proc.stderr
    assert files(dest) == SITE


@pytest.mark.parametrize(("name", "data", "strip", "code", "needle"), [
    ("site.tar.gz", make_tar(SITE), "2", 0, ""),  # public/ and README's directory level gone: fine
    ("site.tar.gz", make_tar({"index.html": "x"}), "3", 3, "holds no files after stripping 3"),
    ("page.html", b"<h1>not an archive</h1>", "0", 3, "is not a .tar.gz, .tgz or .tar archive"),
    ("broken.tar.gz", make_tar(SITE)[:200], "0", 1, "cannot extract"),
])
def test_archive_bad_contents(bin_dirs: dict[str, str], artifacts: tuple[Path, str], dest: Path, name: str,
                              data: bytes, strip: str, code: int, needle: str) -> None:
    url, sha = publish(artifacts, name, data)
    proc = fetch_archive(bin_dirs["busybox"], url, sha, dest, strip=strip)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr
    if code:
        assert list(dest.iterdir()) == []


def test_archive_download_fails(bin_dirs: dict[str, str], artifacts: tuple[Path, str], dest: Path) -> None:
    url = f"{artifacts[1]}/missing.tar.gz"
    for path in (bin_dirs["busybox"], bin_dirs["curl"]):
        proc = fetch_archive(path, url, "0" * 64, dest)
        assert proc.returncode == 1
        assert f"cannot download {url}" in proc.stderr
        assert list(dest.iterdir()) == []


def test_archive_cannot_write_outside_dest(bin_dirs: dict[str, str], artifacts: tuple[Path, str],
                                           dest: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("top/index.html", "top/../../../escaped.txt", "/abs.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    url, sha = publish(artifacts, "evil.tar.gz", buf.getvalue())
    proc = fetch_archive(bin_dirs["busybox"], url, sha, dest, strip="1")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in dest.parent.iterdir()) == ["site"]
    assert "escaped.txt" not in {p.name for p in dest.parent.parent.iterdir()}
    assert not Path("/abs.txt").exists()


@pytest.mark.parametrize(("env", "needle"), [
    ({"ARCHIVE_SHA256": "abc"}, "64 hex digits"),
    ({"ARCHIVE_URL": "file:///etc/passwd"}, "only http:// and https://"),
    ({"ARCHIVE_URL": "https://u:hunter2@example.com/a.tgz"}, "must not hold credentials"),
    ({"STRIP_COMPONENTS": "-1"}, "whole number"),
    ({"STRIP_COMPONENTS": "1; rm -rf /"}, "whole number"),
    ({"DEST": "site"}, "absolute path"),
])
def test_archive_bad_configuration(bin_dirs: dict[str, str], dest: Path, env: dict[str, str], needle: str) -> None:
    base = {"ARCHIVE_URL": "http://127.0.0.1:1/a.tgz", "ARCHIVE_SHA256": "0" * 64, "DEST": str(dest)}
    assert_refused(run(FETCH_ARCHIVE, base | env, bin_dirs["busybox"]), needle, dest)


def test_archive_as_an_unprivileged_user(bin_dirs: dict[str, str], artifacts: tuple[Path, str], dest: Path) -> None:
    """As the pod runs (UID 101 there): read-only directories in the archive are made
    writable for the owner, so a restarted init container can replace them, and
    everything is readable by nginx whatever its UID."""
    user = unprivileged(dest)
    data = make_tar({"index.html": "locked\n", "ro/page.html": "ro\n", "ro/deeper/page.html": "deeper\n"},
                    modes={"ro": 0o555, "ro/deeper": 0o555, "index.html": 0o600, "ro/page.html": 0o444})
    url, sha = publish(artifacts, "locked.tar.gz", data)
    for _run in range(2):
        proc = fetch_archive(bin_dirs["busybox"], url, sha, dest, strip="1", user=user)
        assert proc.returncode == 0, proc.stderr
        assert files(dest) == {"index.html": "locked\n", "ro/page.html": "ro\n", "ro/deeper/page.html": "deeper\n"}
    assert (dest / "ro" / "deeper").stat().st_mode & 0o777 == 0o755
    assert (dest / "index.html").stat().st_mode & 0o777 == 0o644
    with serve_dir(dest) as server:
        assert server.get("/ro/page.html").body == b"ro\n"


# --- The rendered pod's own fetch step ------------------------------------------------------

def run_rendered_fetch(spec: dict[str, object], revision: str | None, dest: Path, path: str,
                       user: int | None) -> tuple[subprocess.CompletedProcess[str], models.StaticSiteSpec]:
    """Run the init container exactly as render() wrote it: its command, its env, and the
    script from the rendered ConfigMap. Only DEST moves, from the pod's mount to `dest`."""
    parsed = models.StaticSiteSpec.model_validate(spec)
    rendered = render.render(render.Site("site", "ns", "uid", parsed, revision))
    config = next(o for o in rendered.objects if o["kind"] == "ConfigMap")
    deployment = next(o for o in rendered.objects if o["kind"] == "Deployment")
    init = next(c for c in deployment["spec"]["template"]["spec"]["initContainers"] if c["name"] == "fetch")
    assert init["command"][0] == "sh"
    script_name = init["command"][1].rsplit("/", 1)[1]
    for name, text in config["data"].items():  # the script and what it sources, as mounted
        (dest.parent / name).write_text(text)
        (dest.parent / name).chmod(0o644)  # world-readable, like the pod's ConfigMap mount
    script = dest.parent / script_name
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["DEST"] == render.SITE_ROOT
    env["DEST"] = str(dest)
    return run(script, env, path, user=user), parsed


def test_rendered_pod_fetches_a_commit_that_nginx_serves(bin_dirs: dict[str, str], repo: GitServer,
                                                        dest: Path) -> None:
    sha = repo.sha("refs/heads/main")
    assert sha is not None
    spec = {"content": {"git": {"url": repo.url, "ref": "main", "path": "public"}}}
    proc, parsed = run_rendered_fetch(spec, sha, dest, bin_dirs["git"], unprivileged(dest))
    assert proc.returncode == 0, proc.stderr
    assert not (dest / ".git").exists()
    with serve(parsed, root=dest / "public") as server:
        assert server.get("/").status == 200
        assert server.get("/").body == (dest / "public" / "index.html").read_bytes()


def test_rendered_pod_refuses_a_bad_archive(bin_dirs: dict[str, str], artifacts: tuple[Path, str],
                                            dest: Path) -> None:
    url, sha = publish(artifacts, "site.tar.gz", make_tar(SITE))
    good = {"content": {"archive": {"url": url, "sha256": sha, "stripComponents": 1, "path": "public"}}}
    user = unprivileged(dest)
    proc, parsed = run_rendered_fetch(good, None, dest, bin_dirs["busybox"], user)
    assert proc.returncode == 0, proc.stderr
    with serve(parsed, root=dest / "public") as server:
        assert server.get("/").body == b"<h1>archive</h1>\n"

    bad = {"content": {"archive": {"url": url, "sha256": "0" * 64, "stripComponents": 1}}}
    before = files(dest)
    proc, _ = run_rendered_fetch(bad, None, dest, bin_dirs["busybox"], user)
    assert proc.returncode == 42
    assert "checksum mismatch" in proc.stderr
    assert files(dest) == before, "a failed fetch leaves what was there"


# --- Hostile content: symlinks, hard links and special files (fetch-common.sh) ---------------
# nginx follows symlinks without a per-request check, so what leaves the content must never
# reach DEST. Links that leave are removed (the site still deploys); special files and hard
# links to files outside are refused (exit 45). Each case is then served by real nginx.

COMMITTED = 1600000000  # the hostile commit's committer time: every fetched file gets it as mtime
COMMITTED_HTTP = "Sun, 13 Sep 2020 12:26:40 GMT"
# path -> target. Each KEPT link resolves, through any chain, to an existing file or
# directory of the content; every other one is REMOVED.
KEPT = {"public/alias.html": "index.html", "public/docs": "../docs", "public/up": ".."}
REMOVED = {
    "up": "..",                                                  # .. at the top of the content
    "public/passwd": "/etc/passwd",                              # absolute
    "public/abs-inside": "/srv/site/public/index.html",          # absolute, even if it named the content
    "public/chain": "chain-2",                                   # a chain that ends outside...
    "public/chain-2": "../../../../../../../../etc/passwd",      # ...and its last link
    "public/through": "docs/../../../../../../../../etc/passwd",  # out through a kept directory link
    "public/dangling": "missing.html",
    "public/loop": "loop",
    "public/reenter": "up/../tree/public/index.html",            # back in through the scratch directory
}
HOSTILE_FILES = {"public/index.html": "home\n", "docs/page.html": "page\n", "README.md": "readme\n"}


def assert_confined(proc: subprocess.CompletedProcess[str], dest: Path, who: str) -> None:
    """Fetched with every leaving link removed (and named on stderr), every kept one working, and
    nginx serving the kept ones while nothing outside the content ever comes back."""
    assert proc.returncode == 0, proc.stderr
    for path, target in KEPT.items():
        assert os.readlink(dest / path) == target
    for path, target in REMOVED.items():
        assert not os.path.lexists(dest / path), path
        assert f"{who}: removed the symlink {path} -> {target}: it leads outside the content" in proc.stderr
    fetched = files(dest)
    assert {p: fetched.get(p) for p in HOSTILE_FILES} == HOSTILE_FILES
    assert (dest / "public" / "docs" / "page.html").read_text() == "page\n"
    with serve_dir(dest / "public") as server:
        for path, body in (("/alias.html", b"home\n"), ("/docs/page.html", b"page\n"), ("/up/README.md", b"readme\n")):
            assert (server.get(path).status, server.get(path).body) == (200, body), path
        for path in REMOVED:
            if path.startswith("public/"):
                got = server.get(path.removeprefix("public"))
                assert got.status == 404, path
                assert b"root:" not in got.body


def commit_hostile(repo: GitServer) -> str:
    """Commit HOSTILE_FILES and every link of KEPT and REMOVED at COMMITTED: the new SHA."""
    for path, text in HOSTILE_FILES.items():
        (repo.work / path).parent.mkdir(parents=True, exist_ok=True)
        (repo.work / path).write_text(text)
    for path, target in (KEPT | REMOVED).items():
        (repo.work / path).symlink_to(target)
    env = _git_env(repo.work.parent) | {"GIT_AUTHOR_DATE": f"@{COMMITTED} +0000",
                                        "GIT_COMMITTER_DATE": f"@{COMMITTED} +0000"}
    for args in (["add", "-A"], ["commit", "-q", "-m", "hostile links"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=repo.work, env=env, check=True, capture_output=True, timeout=30)
    return repo.git("rev-parse", "HEAD")


def test_git_symlinks_that_leave_are_removed(bin_dirs: dict[str, str], tmp_path: Path, dest: Path) -> None:
    with serve_git(tmp_path) as repo:
        sha = commit_hostile(repo)
        proc = fetch_git(bin_dirs, repo.url, sha, dest, user=unprivileged(dest))
    assert_confined(proc, dest, "fetch-git")
    assert proc.stdout == f"fetched {sha} from {repo.url}\n"


def test_git_files_carry_the_commit_time_so_replicas_agree(bin_dirs: dict[str, str], tmp_path: Path) -> None:
    """Two pods of one commit send the same ETag and Last-Modified: nginx derives both from
    mtime and size, and a checkout would stamp each pod's own time."""
    with serve_git(tmp_path / "git") as repo, workdir() as tmp:
        sha = commit_hostile(repo)
        answers = []
        for replica in ("a", "b"):
            proc = fetch_git(bin_dirs, repo.url, sha, tmp / replica)
            assert proc.returncode == 0, proc.stderr
            mtimes = {p.lstat().st_mtime for p in (tmp / replica).rglob("*") if not p.is_symlink()}
            assert mtimes == {COMMITTED}
            with serve_dir(tmp / replica / "public") as server:
                answers.append(server.get("/alias.html"))
    assert answers[0].header("Last-Modified") == COMMITTED_HTTP
    assert answers[0].header("ETag") == answers[1].header("ETag") == f'"{COMMITTED:x}-5"'


def hostile_tar(entries: list[tarfile.TarInfo], data: Mapping[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info in entries:
            payload = (data or {}).get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644, **extra: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, COMMITTED
    for key, value in extra.items():
        setattr(info, key, value)
    return info


TARS = ["busybox", "gnutar"]
USERS = ["root", "nobody"]


def as_user(user: str, dest: Path) -> int | None:
    """None (root) or nobody's UID, with DEST writable by it; a test of root's behaviour fails loudly otherwise."""
    if os.geteuid() != 0:
        pytest.fail("these cases compare root and an unprivileged user: run them as root (CI does)", pytrace=False)
    return unprivileged(dest) if user == "nobody" else None


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("tar", TARS)
def test_archive_symlinks_that_leave_are_removed(bin_dirs: dict[str, str], artifacts: tuple[Path, str],
                                                 dest: Path, tar: str, user: str) -> None:
    data = {name: text.encode() for name, text in HOSTILE_FILES.items()}
    links = [entry(path, tarfile.SYMTYPE, target) for path, target in (KEPT | REMOVED).items()]
    url, sha = publish(artifacts, "links.tar.gz", hostile_tar([entry(n) for n in data] + links, data))
    proc = fetch_archive(bin_dirs[tar], url, sha, dest, user=as_user(user, dest))
    assert_confined(proc, dest, "fetch-archive")
    with serve_dir(dest / "public") as server:  # the archive's own mtimes: the same on every replica
        assert server.get("/alias.html").header("Last-Modified") == COMMITTED_HTTP


PASSWD = "/etc/passwd"
# What each hostile archive gives, by tar and user. 45: extracted, then refused by the
# check; 1: tar itself refused to extract it; 0: extracted without the entry. In every
# case nothing of it reaches DEST and nothing outside changes.
HOSTILE_ARCHIVES: dict[str, tuple[list[tarfile.TarInfo], dict[tuple[str, str], int], str]] = {
    # busybox tar as root makes the hard link to /etc/passwd; GNU tar strips the leading
    # '/' (or '../') and finds no such file in the archive; unprivileged, the kernel
    # (protected_hardlinks) refuses a link to a file of another user.
    "hard link to /etc/passwd": (
        [entry("index.html"), entry("pw", tarfile.LNKTYPE, PASSWD)],
        {("busybox", "root"): 45, ("busybox", "nobody"): 1, ("gnutar", "root"): 1, ("gnutar", "nobody"): 1},
        "refusing a hard link to a file outside the content: ./pw"),
    "hard link climbing out": (
        [entry("index.html"), entry("pw", tarfile.LNKTYPE, "../../../../../../../../etc/passwd")],
        {("busybox", "root"): 45, ("busybox", "nobody"): 1, ("gnutar", "root"): 1, ("gnutar", "nobody"): 1},
        "refusing a hard link to a file outside the content: ./pw"),
    "hard link through a symlinked directory": (
        [entry("index.html"), entry("etc", tarfile.SYMTYPE, "/etc"), entry("pw", tarfile.LNKTYPE, "etc/passwd")],
        {("busybox", "root"): 45, ("busybox", "nobody"): 1, ("gnutar", "root"): 1, ("gnutar", "nobody"): 1},
        "refusing a hard link to a file outside the content: ./pw"),
    "write through a symlinked directory": (
        [entry("index.html"), entry("out", tarfile.SYMTYPE, "../../.."), entry("out/evil.html")],
        {(t, u): 1 for t in TARS for u in USERS}, "cannot extract"),
    "FIFO": (
        [entry("index.html"), entry("pipe", tarfile.FIFOTYPE)],
        {(t, u): 45 for t in TARS for u in USERS}, "refusing special files (devices, FIFOs, sockets are never"),
    "character device": (
        [entry("index.html"), entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
        {("busybox", "root"): 45, ("busybox", "nobody"): 0, ("gnutar", "root"): 45, ("gnutar", "nobody"): 1},
        "refusing special files (devices, FIFOs, sockets are never site content): ./null"),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("tar", TARS)
@pytest.mark.parametrize("case", list(HOSTILE_ARCHIVES))
def test_archive_hostile_entries(bin_dirs: dict[str, str], artifacts: tuple[Path, str], dest: Path, case: str,
                                 tar: str, user: str) -> None:
    entries, codes, needle = HOSTILE_ARCHIVES[case]
    uid = as_user(user, dest)
    dest.mkdir(exist_ok=True)
    (dest / "index.html").write_text("what the pod had")
    passwd = os.stat(PASSWD)
    url, sha = publish(artifacts, "hostile.tar.gz", hostile_tar(entries, {"index.html": b"<h1>new</h1>"}))
    proc = fetch_archive(bin_dirs[tar], url, sha, dest, user=uid)
    assert proc.returncode == codes[tar, user], proc.stderr
    if proc.returncode:
        assert (needle if proc.returncode == 45 else "fetch-archive: cannot extract") in proc.stderr
        assert files(dest) == {"index.html": "what the pod had"}, "a refused archive leaves DEST as it was"
    else:  # extracted without the entry it could not make
        assert files(dest) == {"index.html": "<h1>new</h1>"}
    assert sorted(p.name for p in dest.iterdir()) == ["index.html"], "nothing else, no scratch directory"
    after = os.stat(PASSWD)
    assert (after.st_nlink, after.st_mode, after.st_ino) == (passwd.st_nlink, passwd.st_mode, passwd.st_ino)
    assert not (dest.parent.parent / "evil.html").exists()


def test_archive_hard_links_inside_are_kept(bin_dirs: dict[str, str], artifacts: tuple[Path, str], dest: Path) -> None:
    entries = [entry("a.html"), entry("b.html", tarfile.LNKTYPE, "a.html")]
    url, sha = publish(artifacts, "dup.tar.gz", hostile_tar(entries, {"a.html": b"same\n"}))
    user = unprivileged(dest)
    for tar in TARS:
        proc = fetch_archive(bin_dirs[tar], url, sha, dest, user=user)
        assert proc.returncode == 0, proc.stderr
        assert files(dest) == {"a.html": "same\n", "b.html": "same\n"}
        assert (dest / "b.html").stat().st_nlink == 2
        with serve_dir(dest) as server:
            assert server.get("/b.html").body == b"same\n"
