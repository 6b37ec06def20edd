"""Nothing outside the site's content is ever served, whatever the spec and the request.

A canary file sits next to the content root, where a rewrite with dot segments would
reach it (a tenant tried `{from: /leak, to: /../../etc/passwd, status: 200}` and got
/etc/passwd). Real nginx serves the rendered config and every test asserts that the
canary's bytes never come back.

- Validation refuses dot segments (test_models, test_admission); here the second layer
  is tested on its own: specs built *without* validation still cannot leave the root.
- The ConfigMap volume's own `..data` and `..<timestamp>` entries are never served.
- A property test over whole (valid) specs, with requests derived from each spec, in
  both semantics, with forced rules, 404/410 pages and `_redirects` files.
- Cloudflare's nearest 404.html is looked up from the request's directories: never above
  the root, where a canary named 404.html waits.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from staticsite_operator.api import models
from staticsite_operator.core import hostfiles
from staticsite_operator.core.nginxconf import HostRules
from tests.unit.nginx_harness import Server, serve, workdir, write_site

pytestmark = pytest.mark.nginx

CANARY = f"canary-{secrets.token_hex(8)}".encode()
TRAVERSALS = [
    "/../canary.txt", "/../../canary.txt", "/%2e%2e/canary.txt", "/..%2fcanary.txt", "/%2e%2e%2fcanary.txt",
    "/a/../../canary.txt", "/..%5ccanary.txt", "/.%2e/canary.txt", "/..data/index.html", "/..2026_01_01/index.html",
    "//../canary.txt", "/./../canary.txt",
]


@contextmanager
def site_with_canary(spec: models.StaticSiteSpec, host: HostRules | None = None) -> Iterator[Server]:
    """nginx serving `spec` from <tmp>/site, with the canary at <tmp>/canary.txt (and as
    <tmp>/404.html, <tmp>/index.html) and in ConfigMap-volume-style ..data and
    ..<timestamp> directories inside the root."""
    with workdir() as tmp:
        for name in ("canary.txt", "404.html", "index.html", "canary.txt.html"):
            (tmp / name).write_bytes(CANARY)
            (tmp / name).chmod(0o644)
        root = tmp / "site"
        root.mkdir(mode=0o755)
        assert spec.content.inline is not None
        write_site(spec.content.inline, root)
        for hidden in ("..data", "..2026_01_01"):
            (root / hidden).mkdir(mode=0o755)
            (root / hidden / "index.html").write_bytes(CANARY)
            (root / hidden / "index.html").chmod(0o644)
        with serve(spec, root=root, host=host) as server:
            yield server


def assert_no_canary(server: Server, path: str) -> int:
    """GET `path`, following up to three redirects within the site: no response holds the canary."""
    status = 0
    for _hop in range(4):
        head, body = server.raw(path.encode())
        assert CANARY not in body, f"GET {path} served a file outside the site:\n{head.decode(errors='replace')}"
        status = int(head.split(b" ", 2)[1])
        location = next((line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")[1:]
                         if line.lower().startswith(b"location:")), "")
        if not (300 <= status < 400 and location.startswith("/") and not location.startswith("//")):
            break
        path = location
    return status


def unchecked(source: str, target: str, status: int, force: bool = False) -> models.Redirect:
    """A rule as if validation had a gap: not checked at all."""
    return models.Redirect.model_construct(from_=source, to=target, status=status, force=force, query={})


def unvalidated(redirects: list[tuple[str, str, int]], *, force: bool = False, files: list[str] | None = None,
                **routing: Any) -> models.StaticSiteSpec:
    """A spec as if validation had a gap: the redirects are not checked at all."""
    spec = models.StaticSiteSpec.model_validate({"content": {"inline": {"files": [
        {"path": p, "content": "not found" if p == "404.html" else "home"}
        for p in files or ["index.html", "404.html"]]}}, "routing": routing})
    rules = [unchecked(f, t, s, force) for f, t, s in redirects]
    return spec.model_copy(update={"routing": spec.routing.model_copy(update={"redirects": rules})})


def test_a_rewrite_that_escapes_the_root_serves_404_not_the_file() -> None:
    """The two rules from the report, rendered as if validation had let them through."""
    spec = unvalidated([("/leak", "/../canary.txt", 200), ("/leak2", "/../../../../../..//etc/passwd", 200),
                        ("/f/*", "/../:splat", 200), ("/g/*", "/a/../..:splat", 200)])
    with site_with_canary(spec) as server:
        for path in ["/leak", "/leak2", "/f/canary.txt", "/g//canary.txt", "/g/canary.txt"]:
            status = assert_no_canary(server, path)
            assert status == 404, (path, status)
        passwd = server.get("/leak2")
        assert b"root:" not in passwd.body
        assert passwd.body == b"not found", "the custom 404 page answers"


@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
@pytest.mark.parametrize("force", [False, True])
def test_error_pages_and_rewrites_that_escape_serve_404_not_the_file(semantics: str, force: bool) -> None:
    """404/410 rules whose page is outside the root, and rewrites there, in both semantics
    (Cloudflare: the nearest 404.html is looked up from the rewritten path too)."""
    spec = unvalidated([("/e1", "/../canary.txt", 404), ("/e2", "/../../404", 410), ("/r/*", "/../:splat", 200),
                        ("/r2/*", "/a/../..:splat", 200), ("/x/:p", "/:p/../../canary.txt", 200)],
                       force=force, semantics=semantics)
    with site_with_canary(spec) as server:
        for path in ["/e1", "/e2", "/r/canary.txt", "/r/404.html", "/r2//canary.txt", "/x/a", "/r/", "/r/x/y/z"]:
            assert assert_no_canary(server, path) in (404, 410), path
        assert_no_canary(server, "/x/..")  # nginx makes it / itself


@pytest.mark.parametrize("semantics", ["netlify", "cloudflare"])
def test_rules_from_a_redirects_file_cannot_leave_the_root(semantics: str) -> None:
    """The same attempts in `_redirects`: every line is refused; and, were one let through
    unchecked, nginx still confines it."""
    text = "\n".join(["/leak /../canary.txt 200", "/f/* /../../:splat 200", "/g /%2e%2e/canary.txt 200",
                      "/h/* /..data/:splat 200", "/e /../404.html 404"])
    parsed = hostfiles.parse_site({"_redirects": text}, semantics)  # type: ignore[arg-type]
    assert parsed.redirects.rules == () and len(parsed.problems) == 5
    spec = unvalidated([], semantics=semantics)
    host = HostRules(redirects=[(f"_redirects:{n}", unchecked(*line.split()[:2], int(line.split()[2])))
                                for n, line in enumerate(text.splitlines(), start=1)])
    with site_with_canary(spec, host) as server:
        for path in ["/leak", "/f/canary.txt", "/g", "/h/index.html", "/e"]:
            assert assert_no_canary(server, path) == 404, path


def test_the_nearest_404_page_is_never_above_the_root() -> None:
    """Cloudflare: a missing /a/b looks for /a/404.html, then /404.html; a URI that a
    rewrite gave dot segments looks nowhere (the canary is <root>/../404.html)."""
    spec = unvalidated([("/up/*", "/a/../../:splat", 200), ("/deep", "/a/b/../../../../x", 200)],
                       files=["index.html"], semantics="cloudflare")
    with site_with_canary(spec) as server:
        for path in ["/up/x", "/up/404.html", "/deep", "/..%2f404.html", "/a/..%2f..%2f404.html"]:
            assert_no_canary(server, path)
        assert server.get("/nope/x").body == b"home", "no 404.html in the site: Cloudflare's SPA default"


@pytest.mark.parametrize("routing", [{}, {"spa": True, "cleanUrls": True, "trailingSlash": "add"},
                                     {"cleanUrls": True, "trailingSlash": "auto"}, {"semantics": "cloudflare"}])
def test_no_request_reaches_outside_the_root_or_the_volumes_internals(routing: dict[str, Any]) -> None:
    spec = models.StaticSiteSpec.model_validate({"content": {"inline": {"files": [
        {"path": "index.html", "content": "home"}]}}, "routing": routing})
    with site_with_canary(spec) as server:
        for path in TRAVERSALS:
            assert_no_canary(server, path)


def test_configmap_volume_symlinks_still_serve() -> None:
    """A ConfigMap volume serves files through ..data symlinks: those keep working."""
    spec = models.StaticSiteSpec.model_validate({"content": {"inline": {"files": [
        {"path": "placeholder.txt", "content": "x"}]}}})
    with workdir() as tmp:
        root = tmp / "site"
        (root / "..2026_01_01").mkdir(parents=True, mode=0o755)
        (root / "..2026_01_01" / "index.html").write_text("through the link")
        (root / "..2026_01_01" / "index.html").chmod(0o644)
        os.symlink("..2026_01_01", root / "..data")
        os.symlink("..data/index.html", root / "index.html")
        root.chmod(0o755)
        with serve(spec, root=root) as server:
            assert server.get("/").body == b"through the link"
            assert server.get("/..data/index.html").status == 404


# --- the property: any valid spec, requests derived from it ----------------------------
SEGMENT = st.sampled_from(["a", "docs", "x.html", ":p", "*", "..", ".", "%2e%2e", "..data", "b..c", "%2f"])
TARGET_SEGMENT = st.sampled_from(["a", "index.html", ":p", ":splat", "..", ".", "%2e%2e", "..data", "canary.txt"])


@st.composite
def spec_docs(draw: st.DrawFn) -> dict[str, Any]:
    redirects = []
    for _ in range(draw(st.integers(0, 4))):
        source = "/" + "/".join(draw(st.lists(SEGMENT, min_size=0, max_size=3)))
        target = "/" + "/".join(draw(st.lists(TARGET_SEGMENT, min_size=0, max_size=4)))
        redirects.append({"from": source, "to": target, "status": draw(st.sampled_from([200, 301, 302, 404, 410])),
                          "force": draw(st.booleans())})
    semantics = draw(st.sampled_from(["netlify", "cloudflare"]))
    routing: dict[str, Any] = {"semantics": semantics, "spa": draw(st.booleans()), "redirects": redirects}
    if semantics == "netlify":
        routing |= {"cleanUrls": draw(st.booleans()),
                    "trailingSlash": draw(st.sampled_from(["ignore", "add", "remove", "auto"]))}
    files = [{"path": "index.html", "content": "home"}, {"path": "a/index.html", "content": "a"}]
    if draw(st.booleans()):
        files.append({"path": "a/404.html", "content": "a 404"})
    return {"content": {"inline": {"files": files}}, "routing": routing}


def renderable(source: str, target: str, status: int) -> bool:
    """What render itself would refuse (a '*' before the end, a placeholder `from` lacks,
    a placeholder in a 404/410 page)."""
    captured = {":p"} if ":p" in source.split("/") else set()
    captured |= {":splat"} if source.endswith("*") else set()
    used = {seg for seg in target.split("/") if seg.startswith(":")}
    return "*" not in source[:-1] and used <= captured and not (used and status in (404, 410))


def requests_for(spec: models.StaticSiteSpec) -> list[str]:
    """Each rule's `from` with its placeholders and splat filled by traversal attempts."""
    out = list(TRAVERSALS)
    for rule in spec.routing.redirects:
        for fill in ["../canary.txt", "..%2fcanary.txt", "%2e%2e", ".."]:
            out.append(rule.from_.replace("*", fill).replace(":p", fill.split("/")[0]))
    return out


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(doc=spec_docs())
def test_the_canary_is_never_served_whatever_the_spec_and_the_request(doc: dict[str, Any]) -> None:
    try:
        spec = models.StaticSiteSpec.model_validate(doc)
    except ValidationError:
        # Refused at the door; the same rules, unvalidated, must still be confined.
        routing = {k: v for k, v in doc["routing"].items() if k != "redirects"}
        spec = unvalidated([(r["from"], r["to"], r["status"]) for r in doc["routing"]["redirects"]
                            if renderable(r["from"], r["to"], r["status"])], **routing)
    with site_with_canary(spec) as server:
        for path in requests_for(spec):
            assert_no_canary(server, path)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(path=st.from_regex(models.FILE_PATH_PATTERN, fullmatch=True))
def test_the_file_path_schema_refuses_everything_confinement_does(path: str) -> None:
    """Files need no CEL rule (too costly over 5000 files): whatever FILE_PATH_PATTERN
    admits, UNSAFE_PATH_PATTERN would not have refused."""
    import re

    assert not re.match(models.UNSAFE_PATH_PATTERN, path), path
