"""A real browser loads a Vite-style SPA through a deep link, served by real nginx.

Headless Chromium (tests/unit/browser.py) opens http://127.0.0.1:<port>/dashboard/settings
on a site built the way `vite build` emits one (index.html, hashed module scripts and CSS
under /assets/, a lazily imported chunk), with the Netlify SPA rule in `_redirects` and the
usual immutable caching of /assets/* in `_headers`. The app must render with no console
errors, its assets must arrive with a JavaScript or CSS Content-Type (browsers refuse a
module script served as text/html, which is what a SPA fallback that shadows files would
send) and their cache headers, and a reload of the deep link must work. A screenshot lands
in build/test-artifacts/test_browser/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .browser import Page, artifacts_dir, chromium
from .nginx_harness import Server, make_spec, serve

pytestmark = [pytest.mark.nginx, pytest.mark.browser]

ENTRY = "/assets/index-D4f8a1b2.js"
CHUNK = "/assets/settings-9c1e2f3a.js"
STYLE = "/assets/index-7b2c41de.css"
INDEX = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" type="image/svg+xml" href="/vite.svg" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>Vite App</title>
    <script type="module" crossorigin src="{ENTRY}"></script>
    <link rel="stylesheet" crossorigin href="{STYLE}">
  </head>
  <body>
    <div id="app"></div>
  </body>
</html>
"""
# A router as an app would have one: the path picks the page, a route's code loads lazily.
APP = f"""const routes = {{"/": "Home", "/dashboard": "Dashboard", "/dashboard/settings": "Settings"}};
const name = routes[location.pathname.replace(/\\/$/, "") || "/"] ?? "Not found";
const {{ describe }} = await import("{CHUNK}");
document.querySelector("#app").innerHTML =
  `<h1 id="page">${{name}}</h1><p id="detail">${{describe(location.pathname)}}</p>`;
document.body.dataset.ready = "1";
"""
CHUNK_JS = "export function describe(path) { return `rendered ${path} on the client`; }\n"
CSS = "body { font-family: system-ui, sans-serif; background: #f4f4f8; } h1 { color: rgb(40, 90, 200); }\n"
FILES = {
    "index.html": INDEX,
    ENTRY[1:]: APP,
    CHUNK[1:]: CHUNK_JS,
    STYLE[1:]: CSS,
    "vite.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><circle cx="16" cy="16" r="14"/></svg>',
    # The SPA line from Netlify's docs, and the caching every Vite deploy guide recommends.
    "_redirects": "/*    /index.html   200\n",
    "_headers": "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def spa() -> Iterator[Server]:
    with serve(make_spec(FILES)) as server:
        yield server


def _errors(page: Page) -> list[str]:
    found = [f"exception: {e['exceptionDetails'].get('text')} {e['exceptionDetails'].get('exception', {})}"
             for e in page.named("Runtime.exceptionThrown")]
    found += [f"console.{e['type']}: {e['args']}" for e in page.named("Runtime.consoleAPICalled")
              if e["type"] in ("error", "assert")]
    found += [f"log: {e['entry']['text']} ({e['entry'].get('url')})" for e in page.named("Log.entryAdded")
              if e["entry"]["level"] == "error"]
    return found


def _responses(page: Page, since: int) -> dict[str, dict[str, object]]:
    """URL path -> the response the browser received for it, after event `since`."""
    out = {}
    for event in page.events[since:]:
        if event.get("method") == "Network.responseReceived":
            response = event["params"]["response"]
            path = "/" + response["url"].split("/", 3)[3]
            out[path] = {"status": response["status"], "mimeType": response["mimeType"],
                         "headers": {k.lower(): v for k, v in response["headers"].items()}}
    return out


def test_a_deep_link_renders_and_survives_a_reload(spa: Server) -> None:
    url = f"http://127.0.0.1:{spa.port}/dashboard/settings"
    out = artifacts_dir("test_browser")
    with chromium() as page:
        for attempt in ("load", "reload"):
            mark = len(page.events)
            page.navigate(url, reload=attempt == "reload")
            assert page.wait_for("document.body.dataset.ready") == "1", attempt
            assert page.evaluate("document.querySelector('#page').textContent") == "Settings"
            assert page.evaluate("document.querySelector('#detail').textContent") == \
                "rendered /dashboard/settings on the client"
            assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(40, 90, 200)"
            assert page.evaluate("location.pathname") == "/dashboard/settings", "the URL stays the deep link"
            seen = _responses(page, mark)
            assert seen["/dashboard/settings"]["status"] == 200, attempt
            assert seen["/dashboard/settings"]["mimeType"] == "text/html"
            for path, mime in ((ENTRY, "application/javascript"), (CHUNK, "application/javascript"),
                               (STYLE, "text/css")):
                assert path in seen, (attempt, path, sorted(seen))
                assert (seen[path]["status"], seen[path]["mimeType"]) == (200, mime), (attempt, path, seen[path])
                headers = seen[path]["headers"]
                assert isinstance(headers, dict) and headers["cache-control"] == IMMUTABLE, (path, headers)
            assert seen["/vite.svg"]["mimeType"] == "image/svg+xml" if "/vite.svg" in seen else True
        page.screenshot(out / "spa-deep-link.png")
        (out / "console.json").write_text(json.dumps(
            [e for e in page.events if str(e.get("method", "")).startswith(("Runtime.console", "Log."))], indent=2))
        assert _errors(page) == []
    assert (out / "spa-deep-link.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_browser_sees_a_shadowing_bug_as_an_error() -> None:
    """The test above can fail: where the SPA fallback shadows the assets (the bug a forced
    rule reproduces), the module script arrives as text/html and the browser says so."""
    broken = make_spec(FILES, {"redirects": [{"from": "/assets/*", "to": "/index.html", "status": 200,
                                              "force": True}]})
    with serve(broken) as server, chromium() as page:
        page.navigate(f"http://127.0.0.1:{server.port}/dashboard/settings")
        errors = page.poll(lambda: _errors(page), timeout=15)
        assert any("MIME type" in e for e in errors), errors
        assert page.evaluate("document.body.dataset.ready") is None
