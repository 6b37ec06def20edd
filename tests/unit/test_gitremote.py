"""gitremote: resolving a ref to a commit over smart HTTP, against a real `git http-backend`.

Covers branches, annotated and lightweight tags, full refnames, HEAD, pinned SHAs (no
network at all), a branch that moves, private repositories (no token, the right one, a
wrong one), redirects (the token stays on the repository's origin), and the errors a
user sees: missing refs list the branches; any failure to get a git answer (unreachable,
closed, silent, non-git, HTTP errors) reads the same, so a tenant cannot tell an open port
from a closed one, while the operator's log keeps the cause; no message or log record
ever holds the token. The servers run on 127.0.0.1, which the default egress policy
refuses: these tests allow loopback explicitly (test_egress covers the refusals).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from staticsite_operator.clients import gitremote
from staticsite_operator.clients.egress import Guard
from staticsite_operator.clients.gitremote import NO_ANSWER, GitError, parse_advertisement
from staticsite_operator.core.policy import Network, Policy

from .gitserver import GitServer, QuietHandler, http_server, serve_git

TOKEN = "glpat-s3cr3t-Token_value"
LOOPBACK = Guard(Policy(allowed_networks=(Network(ipaddress.ip_network("127.0.0.1/32")),)))
resolve_ref = partial(gitremote.resolve_ref, guard=LOOPBACK)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """A public repository that no test changes."""
    with serve_git(tmp_path_factory.mktemp("git")) as server:
        yield server


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[GitServer]:
    """A public repository a test may push to."""
    with serve_git(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with serve_git(tmp_path_factory.mktemp("private"), token=TOKEN) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartServer = Callable[[Callable[..., BaseHTTPRequestHandler]], ThreadingHTTPServer]


@pytest.fixture
def serve_http() -> Iterator[StartServer]:
    """Start any handler on 127.0.0.1; all are stopped at the end of the test."""
    with ExitStack() as stack:
        yield lambda handler: stack.enter_context(http_server(handler))


# --- Resolution -----------------------------------------------------------------------

def test_branches(repo: GitServer) -> None:
    one, _two, three = repo.commits
    assert resolve_ref(repo.url, "main") == three
    assert resolve_ref(repo.url, "dev") == one


def test_tags_resolve_to_commits(repo: GitServer) -> None:
    tag_object = repo.git("rev-parse", "refs/tags/v1")
    assert tag_object != repo.commits[1]  # v1 is annotated: a tag object, not the commit
    assert resolve_ref(repo.url, "v1") == repo.commits[1]
    assert resolve_ref(repo.url, "light") == repo.commits[0]  # lightweight


def test_full_refnames_and_head(repo: GitServer) -> None:
    assert resolve_ref(repo.url, "refs/heads/dev") == repo.commits[0]
    assert resolve_ref(repo.url, "refs/tags/v1") == repo.commits[1]
    assert resolve_ref(repo.url, "HEAD") == repo.commits[2]


def test_ls_remote_peels_annotated_tags(repo: GitServer) -> None:
    refs = gitremote.ls_remote(repo.url, guard=LOOPBACK)
    assert refs == {"HEAD": repo.commits[2], "refs/heads/main": repo.commits[2], "refs/heads/dev": repo.commits[0],
                    "refs/tags/v1": repo.commits[1], "refs/tags/light": repo.commits[0]}


def test_pinned_sha_needs_no_network(repo: GitServer) -> None:
    sha = repo.commits[0]
    before = len(repo.requests)
    assert resolve_ref(f"http://127.0.0.1:{closed_port()}/gone.git", sha.upper()) == sha
    assert resolve_ref(repo.url, sha) == sha
    assert len(repo.requests) == before


def test_a_branch_beats_a_tag_of_the_same_name(fresh: GitServer) -> None:
    fresh.tag("dev", fresh.commits[2])
    assert resolve_ref(fresh.url, "dev") == fresh.commits[0]
    assert resolve_ref(fresh.url, "refs/tags/dev") == fresh.commits[2]


def test_a_moving_branch_resolves_to_its_new_commit(fresh: GitServer) -> None:
    assert resolve_ref(fresh.url, "main") == fresh.commits[2]
    pushed = fresh.commit({"public/index.html": "<h1>four</h1>\n"}, "commit 4")
    assert resolve_ref(fresh.url, "main") == pushed
    fresh.move_branch("main", fresh.commits[0])  # a force push back
    assert resolve_ref(fresh.url, "main") == fresh.commits[0]


def test_same_origin_redirects_are_followed(repo: GitServer) -> None:
    assert resolve_ref(repo.moved_url, "main") == repo.commits[2]


# --- Private repositories -------------------------------------------------------------

def test_private_without_token(private: GitServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(GitError) as err:
        resolve_ref(private.url, "main")
    assert str(err.value) == f"{private.url}: {NO_ANSWER}"
    assert "secretRef" in str(err.value)
    assert "authentication required or refused (HTTP 401, no token was sent)" in caplog.text


def test_private_with_token(private: GitServer) -> None:
    assert resolve_ref(private.url, "main", token=TOKEN) == private.commits[2]
    assert resolve_ref(private.url, "v1", token=f"{TOKEN}\n") == private.commits[1]  # as `echo > file` leaves it
    assert resolve_ref(private.moved_url, "main", token=TOKEN) == private.commits[2]  # same origin: still sent


def test_private_with_a_wrong_token(private: GitServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(GitError, match=r"no git repository answered.*secretRef"):
        resolve_ref(private.url, "main", token="wrong")
    assert "the token was refused" in caplog.text


def test_token_is_not_sent_to_another_origin(private: GitServer, serve_http: StartServer) -> None:
    class Redirect(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", private.url + self.path.removeprefix("/elsewhere.git"))
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirector = serve_http(Redirect)
    seen = len(private.authorization)
    with pytest.raises(GitError, match="no git repository answered"):
        resolve_ref(f"http://127.0.0.1:{redirector.server_port}/elsewhere.git", "main", token=TOKEN)
    assert private.authorization[seen:] == [None]


def test_token_never_in_messages_or_logs(private: GitServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[GitError] = []
    for url, ref, token in [(private.url, "main", TOKEN + "x"), (private.url, "nope", TOKEN),
                            (private.url.replace("site.git", "absent.git"), "main", TOKEN),
                            (f"http://127.0.0.1:{closed_port()}/x.git", "main", TOKEN)]:
        with pytest.raises(GitError) as err:
            resolve_ref(url, ref, token=token)
        failures.append(err.value)
    assert resolve_ref(private.url, "main", token=TOKEN)
    text = " ".join(f"{e} {e!r} {e.args}" for e in failures) + caplog.text
    text += " ".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert TOKEN not in text
    assert "s3cr3t" not in text


# --- Errors ---------------------------------------------------------------------------

def test_missing_ref_lists_branches(repo: GitServer) -> None:
    with pytest.raises(GitError) as err:
        resolve_ref(repo.url, "release")
    assert str(err.value) == f"{repo.url}: ref 'release' not found; branches: dev, main"


def test_missing_ref_lists_ten_branches_at_most(fresh: GitServer) -> None:
    for n in range(12):
        fresh.move_branch(f"b{n:02}", fresh.commits[0])
    with pytest.raises(GitError) as err:
        resolve_ref(fresh.url, "nope")
    assert str(err.value).endswith("branches: b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, … (4 more)")


def test_abbreviated_sha_is_explained(repo: GitServer) -> None:
    with pytest.raises(GitError, match="give all 40 hex digits"):
        resolve_ref(repo.url, repo.commits[0][:7])


def test_repository_not_found(repo: GitServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(GitError, match="no git repository answered"):
        resolve_ref(repo.url.replace("site.git", "absent.git"), "main")
    assert "HTTP 404" in caplog.text


def test_unreachable_server(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = f"http://127.0.0.1:{closed_port()}/site.git"
    with pytest.raises(GitError) as err:
        resolve_ref(url, "main", timeout=2)
    assert str(err.value) == f"{url}: {NO_ANSWER}"
    assert "cannot connect" in caplog.text and "refused" in caplog.text.lower()


def test_an_open_port_and_a_closed_one_read_the_same(serve_http: StartServer) -> None:
    """A tenant must not learn which ports are open by how a lookup failed."""
    class Other(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    http_port = serve_http(Other).server_port
    with socket.socket() as listener:  # open, silent
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        messages = []
        for port in (http_port, closed_port(), listener.getsockname()[1]):
            with pytest.raises(GitError) as err:
                resolve_ref(f"http://127.0.0.1:{port}/r.git", "main", timeout=0.5)
            messages.append(str(err.value).replace(str(port), "PORT"))
    assert len(set(messages)) == 1, messages


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        start = time.monotonic()
        with pytest.raises(GitError, match="no git repository answered"):
            resolve_ref(f"http://127.0.0.1:{listener.getsockname()[1]}/x.git", "main", timeout=0.5)
        assert time.monotonic() - start < 5


def test_a_dumb_http_server_is_not_enough(tmp_path: Path, serve_http: StartServer) -> None:
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "refs").write_text("a" * 40 + "\trefs/heads/main\n")
    server = serve_http(partial(QuietHandler, directory=str(tmp_path)))
    with pytest.raises(GitError, match="no git repository answered"):
        resolve_ref(f"http://127.0.0.1:{server.server_port}", "main")


@pytest.mark.parametrize(("url", "needle"), [
    ("ssh://git@example.com/o/r.git", "only http:// and https://"),
    ("git@example.com:o/r.git", "only http:// and https://"),
    ("ftp://example.com/r.git", "only http:// and https://"),
    ("https://user:hunter2@example.com/r.git", "credentials in the URL"),
    ("https://hunter2@example.com/r.git", "credentials in the URL"),
    ("https://example.com/r.git?token=hunter2", "query string"),
    ("https://example.com/r.git#hunter2", "fragment"),
    ("https://example.com/r .git", "whitespace"),
    ("https:///r.git", "no host"),
    ("https://example.com:99999/r.git", "not a valid URL"),
])
def test_unsupported_urls(url: str, needle: str) -> None:
    with pytest.raises(GitError, match=needle) as err:
        resolve_ref(url, "main")
    assert "hunter2" not in str(err.value)
    with pytest.raises(GitError):  # even a pinned commit needs a URL the pods can fetch
        resolve_ref(url, "a" * 40)


@pytest.mark.parametrize("ref", ["", "has space", "tab\there", "x" * 1025])
def test_bad_refs(repo: GitServer, ref: str) -> None:
    with pytest.raises(GitError, match="git ref"):
        resolve_ref(repo.url, ref)


# --- The advertisement parser ---------------------------------------------------------

def pkt(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return f"{len(data) + 4:04x}".encode() + data


A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_parse_a_v0_advertisement() -> None:
    data = (pkt("# service=git-upload-pack\n") + b"0000" + pkt(f"{A} HEAD\0multi_ack symref=HEAD:refs/heads/main\n")
            + pkt(f"{A} refs/heads/main\n") + pkt(f"{B} refs/tags/v1\n") + pkt(f"{C} refs/tags/v1^{{}}\n") + b"0000")
    assert parse_advertisement(data) == {"HEAD": A, "refs/heads/main": A, "refs/tags/v1": C}


def test_parse_an_empty_repository() -> None:
    data = pkt("# service=git-upload-pack\n") + b"0000" + pkt("0" * 40 + " capabilities^{}\0agent=git\n") + b"0000"
    assert parse_advertisement(data) == {}


def test_parse_without_the_service_line() -> None:
    assert parse_advertisement(pkt(f"{A} refs/heads/main\0caps\n") + b"0000") == {"refs/heads/main": A}


@pytest.mark.parametrize(("data", "needle"), [
    (b"<html>hello</html>", "bad pkt-line"),
    (b"00ffshort", "truncated"),
    (b"0002", "unexpected pkt-line"),
    (pkt("# service=git-receive-pack\n") + b"0000", "another git service"),
    (pkt("ERR access denied\n"), "the server refused: access denied"),
    (pkt("d" * 64 + " refs/heads/main\0object-format=sha256\n"), "SHA-256 repositories"),
    (pkt("nonsense\n"), "malformed"),
])
def test_parse_errors(data: bytes, needle: str) -> None:
    with pytest.raises(GitError, match=needle):
        parse_advertisement(data)
