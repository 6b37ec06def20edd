"""Standard app.kubernetes.io labels on every child object.

The selector is a stable subset (name + instance): a Deployment's selector is
immutable, so it must never include anything that can change, such as a version.
"""

from __future__ import annotations

MANAGED_BY = "staticsite-operator"
NAME = "staticsite"
FIELD_MANAGER = "staticsite-operator"

# Label used by the operator's watches (server-side selector): only our children stream.
MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
INSTANCE_KEY = "app.kubernetes.io/instance"
WATCH_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY}"

CHECKSUM_ANNOTATION = "staticsite.dev/checksum"

# On the pods of sites whose init container fetches the content (git, archive), and on
# no others: the operator watches pods only to report a failed fetch, and with this
# label in the watch selector, the pods of inline sites (most of them) never stream.
FETCH_KEY = "staticsite.dev/fetch"
PODS_WATCH_SELECTOR = f"{WATCH_SELECTOR},{FETCH_KEY}"  # the key present, any value


def selector(site: str) -> dict[str, str]:
    """Pod selector: never changes for the life of a site."""
    return {"app.kubernetes.io/name": NAME, INSTANCE_KEY: site}


def labels(site: str, component: str) -> dict[str, str]:
    """Labels for a child object of `site`."""
    return {
        **selector(site),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "staticsite",
        MANAGED_BY_KEY: MANAGED_BY,
    }


def selector_string(site: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(site).items())
