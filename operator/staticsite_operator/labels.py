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
