"""Before any load: every request of a scenario is answered correctly, and the same by both configs.

Correct: the expected status, and the body marker (in the decoded body) or the exact
Location. The same: status, body and every response header but Date, compared as a
multiset. A scenario that fails either check is reported as failed, with no figures.
"""

from __future__ import annotations

import gzip
import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

from .scenarios import Request

IGNORED = {"date", "connection", "keep-alive"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def decoded(self) -> bytes:
        return gzip.decompress(self.body) if self.header("content-encoding") == "gzip" else self.body


def fetch(url: str, r: Request) -> Answer:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", r.path, headers=r.headers)
        resp = conn.getresponse()
        body = resp.read()
        headers = tuple(sorted((k.lower(), v) for k, v in resp.getheaders() if k.lower() not in IGNORED))
        return Answer(resp.status, headers, body)
    finally:
        conn.close()


def wrong(r: Request, a: Answer) -> str | None:
    """Why `a` is not a correct answer to `r`, or None."""
    if a.status != r.status:
        return f"status {a.status}, expected {r.status}"
    if r.location is not None and a.header("location") != r.location:
        return f"Location {a.header('location')!r}, expected {r.location!r}"
    if r.marker is not None and r.marker.encode() not in a.decoded():
        return f"the body lacks {r.marker!r}"
    return None


def check(requests: list[Request], rendered_url: str, baseline_url: str) -> list[str]:
    """Problems found (empty when both configs answer every request correctly and alike)."""
    problems = []
    for r in requests:
        got = fetch(rendered_url, r)
        base = fetch(baseline_url, r)
        for who, answer in (("rendered", got), ("baseline", base)):
            if (why := wrong(r, answer)) is not None:
                problems.append(f"{who} GET {r.path}: {why}")
        if got != base:
            diff = sorted(set(got.headers) ^ set(base.headers))
            what = f"headers differ: {diff}" if diff else f"status {got.status}/{base.status} or body differ"
            problems.append(f"GET {r.path}: rendered and baseline answer differently: {what}")
    return problems
