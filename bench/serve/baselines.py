"""Hand-written nginx configs with the same behaviour as the rendered ones, per scenario.

What an nginx expert would write for one known site, not for any spec: locations
instead of routing scripts, a hash `map` for exact redirects, prefix locations for
splats, and `add_header` repeated in each location that needs its own (add_header is
not inherited by a level that has one). The bench proves the equivalence on every
request of the load before it measures (`check.py`: same status, headers and body as
the rendered config), so a baseline that cut a corner cannot post a number either.

Only large rule sets are generated (nobody types 1000 redirects); their structure is
the hand-tuned one.
"""

from __future__ import annotations

from collections.abc import Callable

from staticsite_operator.core.nginxconf import BASELINE_HEADERS

from .scenarios import CSP, IMMUTABLE, Scenario


def prelude(*, listen: str, root: str, tmp: str) -> str:
    """Main and http context as a hand-tuned static server has them; the server block follows."""
    return f"""worker_processes 2;
pid {tmp}/nginx.pid;
daemon off;
error_log stderr warn;
pcre_jit on;
events {{
    worker_connections 1024;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    charset utf-8;
    client_body_temp_path {tmp}/client_temp;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi_temp;
    uwsgi_temp_path {tmp}/uwsgi_temp;
    scgi_temp_path {tmp}/scgi_temp;
    log_format staticsite '$remote_addr "$request" $status $body_bytes_sent $request_time "$http_user_agent"';
    access_log /dev/stdout staticsite buffer=4k flush=1s;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    absolute_redirect off;
    port_in_redirect off;
    keepalive_requests 10000;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_errors on;
    map_hash_max_size 8192;
    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_min_length 256;
    gzip_types text/css text/javascript application/javascript application/json application/manifest+json
               image/svg+xml text/plain text/xml application/xml application/rss+xml application/atom+xml;
    gzip_static on;
"""


def _server(listen: str, root: str, body: str, extra_http: str = "") -> str:
    return f"""{extra_http}
    server {{
        listen {listen} default_server;
        root {root};
        {headers({})}
        location = /healthz {{
            access_log off;
            default_type text/plain;
            return 200 "ok\\n";
        }}
{body}
    }}
}}
"""


def headers(overrides: dict[str, str]) -> str:
    """add_header lines for the baseline headers with `overrides` (a level that has one needs them all)."""
    merged = BASELINE_HEADERS | overrides
    return "\n        ".join(f'add_header {name} "{value}" always;' for name, value in merged.items())


FILES = "try_files $uri $uri/index.html =404;"


def plain(s: Scenario) -> tuple[str, str]:
    del s
    return f"        location / {{ {FILES} }}", ""


def spa(s: Scenario) -> tuple[str, str]:
    del s
    # "/" and unknown paths reach /index.html by an internal redirect, so its location's headers apply.
    return f"""        index index.html;
        location / {{ try_files $uri $uri/ /index.html; }}
        location = /index.html {{ {headers({"Cache-Control": "no-cache"})} }}
        location /assets/ {{ {headers({"Cache-Control": IMMUTABLE})} try_files $uri $uri/ /index.html; }}""", ""


def clean_urls(s: Scenario) -> tuple[str, str]:
    del s
    return r"""        rewrite ^/index\.html$ / permanent;
        rewrite ^(.+)/index\.html$ $1/ permanent;
        rewrite ^(.+)\.html$ $1/ permanent;
        location = / { try_files /index.html =404; }
        location ~ ^(?<stem>/.+)/$ { try_files $stem.html $uri/index.html =404; }
        location ~ \.[^/]*$ { try_files $uri =404; }
        location / { try_files $uri @slash; }
        location @slash { return 301 $uri/$is_args$args; }""", ""


def redirects(s: Scenario) -> tuple[str, str]:
    exact: list[tuple[str, str]] = s.baseline["exact"]
    prefixed: list[tuple[str, str]] = s.baseline["prefixed"]
    entries = "\n".join(f"        {f} {t};\n        {f}/ {t};" for f, t in exact)
    splats = "\n".join(f"        location ^~ {f} {{ rewrite ^{f}(.*)$ {t}$1 permanent; }}" for f, t in prefixed)
    return f"""        if ($redirect_to) {{ return 301 $redirect_to$is_args$args; }}
{splats}
        location / {{ {FILES} }}""", f"    map $uri $redirect_to {{\n        default \"\";\n{entries}\n    }}"


def header_rules(s: Scenario) -> tuple[str, str]:
    """The scenario's rules: "/*" sets the CSP everywhere, the others are disjoint prefixes or pages."""
    base = {"Content-Security-Policy": CSP}
    out = [f"        location / {{ {headers(base)} {FILES} }}"]
    for rule in s.baseline["rules"]:
        path, values = rule["path"], base | rule["set"]
        if path == "/*":
            continue
        where = path[:-1] if path.endswith("*") else f"= {path}"
        out.append(f"        location {where} {{ {headers(values)} {FILES} }}")
    return "\n".join(out), ""


def not_found(s: Scenario) -> tuple[str, str]:
    del s
    return f"""        error_page 404 /404.html;
        location / {{ {FILES} }}""", ""


def large(s: Scenario) -> tuple[str, str]:
    del s
    return f"""        location / {{ {FILES} }}
        location /assets/ {{ {headers({"Cache-Control": IMMUTABLE})} {FILES} }}""", ""


BUILDERS: dict[str, Callable[[Scenario], tuple[str, str]]] = {
    "plain": plain, "spa": spa, "clean-urls": clean_urls, "redirects-50": redirects, "headers-20": header_rules,
    "redirects-1000": redirects, "not-found": not_found, "large-assets": large,
}


def config(s: Scenario, *, listen: str, root: str, tmp: str) -> str:
    body, extra_http = BUILDERS[s.name](s)
    return prelude(listen=listen, root=root, tmp=tmp) + _server(listen, root, body, extra_http)
