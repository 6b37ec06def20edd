"""Resolve a git ref to a commit SHA, as `git ls-remote` would, over git's smart HTTP protocol.

Pure Python (urllib) on purpose: the operator image has no git binary and the operator
runs no shell or subprocess. One GET of `{url}/info/refs?service=git-upload-pack`
(protocol v0, which every smart HTTP server still speaks when the client does not ask for
v2) returns every ref and its commit, which is all that resolving a branch or tag needs.
The pods then fetch exactly that commit (templates/fetch-git.sh), so the SHA returned
here is what gets served.

Outbound requests go through the egress guard (clients.egress): every connection, the
first and each redirect, is to an address the platform's policy allows, and every failure
to get a git answer reads the same to the tenant (an open port and a closed one look
alike; the operator's log has the detail, for the platform team).

Credentials: a token goes as HTTP basic auth, `x-access-token:<token>` (GitHub, GitLab,
Gitea, and a plain `git http-backend` behind basic auth accept it), only to the origin
of `url`: it is dropped on a redirect to another scheme, host or port. It never appears
in an exception message or a log record. URLs with credentials, a query or a fragment
are refused, so the URL in a message is always safe to show.
"""

from __future__ import annotations

import base64
import functools
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPException, HTTPMessage
from typing import IO, Any
from urllib.parse import urlsplit

from ..core.policy import Policy
from ..core.ports import ResolveError, SourceRefused
from .egress import Guard

log = logging.getLogger(__name__)

SHA1 = re.compile(r"[0-9a-fA-F]{40}")
MAX_ADVERTISEMENT_BYTES = 32 * 1024 * 1024  # ~300k refs; a bigger answer is not a repository we serve
MAX_LISTED_BRANCHES = 10
USER_AGENT = "git/staticsite-operator"  # some hosts only speak the smart protocol to "git/*" agents
_ADVERTISEMENT_TYPE = "application/x-git-upload-pack-advertisement"


class GitError(ResolveError):
    """ls-remote failed. The message is meant for users (status, Events) and holds no credentials."""


class _NoAnswer(GitError):
    """No git repository answered (the cause is logged, not shown)."""


NO_ANSWER = ("no git repository answered over smart HTTP: check the url, that the repository exists, "
             "and secretRef if it is private")


def validate_url(url: str) -> None:
    """Refuse what v1alpha1 does not support: anything but http(s), credentials in the URL,
    a query or a fragment. The URL is not echoed, since it may hold a credential."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise GitError("git url: whitespace and control characters are not allowed")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise GitError("git url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise GitError("git url: only http:// and https:// URLs are supported (not ssh or git@host:path)")
    if "@" in parts.netloc:
        raise GitError("git url: credentials in the URL are not supported: put a token in the Secret named by "
                       "secretRef")
    if not parts.hostname:
        raise GitError("git url: no host")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise GitError("git url: a query string or fragment is not supported")


def resolve_ref(url: str, ref: str, *, token: str | None = None, timeout: float = 10.0,
                guard: Guard | None = None) -> str:
    """The commit SHA (40 lower-case hex digits) that `ref` names in the repository at `url`.

    A 40-hex `ref` is a pinned commit: returned lower-cased, without any network access.
    Otherwise the first of these that the server advertises wins: `ref` as a full refname
    (e.g. refs/heads/main, refs/pull/1/head, HEAD), refs/heads/{ref}, refs/tags/{ref}; an
    annotated tag resolves to the commit it points to. `token` (whitespace is removed) is
    the Secret's `token`; `timeout` bounds each network operation and the whole read;
    `guard` decides which addresses may be contacted (default: public addresses only).
    """
    validate_url(url)
    if SHA1.fullmatch(ref):
        return ref.lower()
    if not ref or len(ref) > 1024 or any(c.isspace() or not c.isprintable() for c in ref):
        raise GitError("git ref: must be a branch, tag, refname or commit SHA, without spaces")
    refs = ls_remote(url, token=token, timeout=timeout, guard=guard)
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if name in refs:
            log.debug("git %s: %s is %s", url, name, refs[name])
            return refs[name]
    raise GitError(_not_found(url, ref, refs))


def ls_remote(url: str, *, token: str | None = None, timeout: float = 10.0,
              guard: Guard | None = None) -> dict[str, str]:
    """Every ref the server advertises -> its commit (an annotated tag -> the commit it tags)."""
    validate_url(url)
    token = "".join((token or "").split()) or None
    try:
        return parse_advertisement(_get_advertisement(url, token, timeout, guard or Guard(Policy())))
    except _NoAnswer as exc:
        log.info("git %s: %s", urlsplit(url).hostname, exc)  # the detail, for the platform team only
        raise GitError(f"{url}: {NO_ANSWER}") from None
    except GitError as exc:
        message = f"{url}: {exc}"
        if token:  # belt and braces: a server could echo what it was sent
            for secret in (token, _basic(token)):
                message = message.replace(secret, "***")
        raise GitError(message) from None


def parse_advertisement(data: bytes) -> dict[str, str]:
    """Refs from a protocol v0 upload-pack advertisement (pkt-lines), peeled tags applied."""
    lines = _pkt_lines(data)
    first = next(lines, None)
    if first is not None and first.startswith(b"# service="):
        if first.rstrip(b"\n") != b"# service=git-upload-pack":
            raise GitError("the server answered for another git service")
        first = next(lines, None)
        if first is None:  # the flush after the service line; refs follow
            first = next(lines, None)
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    line = first
    while line is not None:
        if line.startswith(b"ERR "):
            raise GitError("the server refused: " + _printable(line[4:]))
        oid, sep, name = line.split(b"\0", 1)[0].rstrip(b"\n").partition(b" ")
        text = name.decode("utf-8", "replace")
        if not sep or not SHA1.fullmatch(oid.decode("ascii", "replace")):
            if re.fullmatch(rb"[0-9a-f]{64}", oid):
                raise GitError("SHA-256 repositories are not supported")
            raise _NoAnswer("malformed ref advertisement")
        if text.endswith("^{}"):
            peeled[text[:-3]] = oid.decode().lower()
        elif text != "capabilities^{}":  # the placeholder an empty repository sends
            refs[text] = oid.decode().lower()
        line = next(lines, None)
    return refs | {name: sha for name, sha in peeled.items() if name in refs}


def _pkt_lines(data: bytes) -> Iterator[bytes | None]:
    """Payloads, and None for a flush-pkt ("0000")."""
    pos = 0
    while pos < len(data):
        head = data[pos:pos + 4]
        if not re.fullmatch(rb"[0-9a-fA-F]{4}", head):
            raise _NoAnswer("not a git smart HTTP answer (bad pkt-line)")
        size = int(head, 16)
        if size == 0:
            yield None
            pos += 4
            continue
        if size < 4 or pos + size > len(data):
            raise _NoAnswer("not a git smart HTTP answer (truncated or unexpected pkt-line)")
        yield data[pos + 4:pos + size]
        pos += size


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects as git does, but send the token to the repository's origin only."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(new.full_url).scheme not in ("http", "https"):
            return None  # urllib would follow to ftp:; the caller reports the 3xx
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self._guard = guard

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_connection, http.client.HTTPConnection, self._guard), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self._guard = guard

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_connection, http.client.HTTPSConnection, self._guard), req,
                            context=self._context)  # type: ignore[attr-defined]


def _connection(cls: type[http.client.HTTPConnection], guard: Guard, host: str, **kwargs: Any) -> Any:
    """An http.client connection whose socket goes to the address the guard checked
    (HTTPSConnection still verifies the certificate against the host name)."""
    conn = cls(host, **kwargs)
    conn._create_connection = guard.create_connection  # type: ignore[attr-defined]
    return conn


def _get_advertisement(url: str, token: str | None, timeout: float, guard: Guard) -> bytes:
    headers = {"User-Agent": USER_AGENT, "Accept": f"{_ADVERTISEMENT_TYPE}, */*", "Cache-Control": "no-cache"}
    if token:
        headers["Authorization"] = f"Basic {_basic(token)}"
    # S310: validate_url admitted http(s) only, and _SameOriginAuth keeps redirects there.
    request = urllib.request.Request(url.rstrip("/") + "/info/refs?service=git-upload-pack",  # noqa: S310
                                     headers=headers)
    # No proxy: a proxy from the environment would be contacted instead of the checked address.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler({}), _GuardedHTTPHandler(guard), _GuardedHTTPSHandler(guard),
                    urllib.request.HTTPDefaultErrorHandler(), _SameOriginAuth(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as resp:
            if resp.headers.get_content_type() != _ADVERTISEMENT_TYPE:
                raise _NoAnswer("not a git repository served over smart HTTP "
                                f"(the answer was {resp.headers.get_content_type()})")
            data = bytearray()
            while chunk := resp.read(1 << 16):
                data += chunk
                if len(data) > MAX_ADVERTISEMENT_BYTES:
                    raise GitError(f"the ref advertisement is larger than {MAX_ADVERTISEMENT_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise _NoAnswer(f"timed out after {timeout:g}s")
            return bytes(data)
    except SourceRefused:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _NoAnswer(_http_error(exc.code, token)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, SourceRefused):
            raise exc.reason from None
        raise _NoAnswer(f"cannot connect: {_printable(str(exc.reason).encode())}") from None
    except TimeoutError:
        raise _NoAnswer(f"timed out after {timeout:g}s") from None
    except (OSError, HTTPException) as exc:
        raise _NoAnswer(f"network error: {_printable(str(exc).encode()) or type(exc).__name__}") from None


def _http_error(code: int, token: str | None) -> str:
    if code in (401, 403):
        sent = "the token was refused" if token else "no token was sent"
        return f"authentication required or refused (HTTP {code}, {sent})"
    if 300 <= code < 400:
        return f"redirect not followed (HTTP {code})"  # urllib's message would name the target URL
    return f"the server answered HTTP {code}"


def _not_found(url: str, ref: str, refs: dict[str, str]) -> str:
    branches = sorted(name.removeprefix("refs/heads/") for name in refs if name.startswith("refs/heads/"))
    listed = ", ".join(branches[:MAX_LISTED_BRANCHES])
    if len(branches) > MAX_LISTED_BRANCHES:
        listed += f", … ({len(branches) - MAX_LISTED_BRANCHES} more)"
    hint = ""
    if re.fullmatch(r"[0-9a-fA-F]{4,39}", ref):
        hint = " (an abbreviated commit SHA cannot be resolved remotely: give all 40 hex digits)"
    elif ref == "HEAD":
        hint = " (the server advertises no HEAD: an empty repository, or HEAD names a missing branch)"
    return f"{url}: ref {ref!r} not found{hint}; branches: {listed or 'none (empty repository)'}"


def _printable(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return "".join(c if c.isprintable() else " " for c in text)[:200]
