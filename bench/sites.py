"""The StaticSites the bench creates: small, realistic, and all alike.

Each site has three files, one domain (so every child exists: its ConfigMap, a Service,
a Deployment and an Ingress) and one replica, unless `--no-ingress` or `--replicas`
say otherwise (the scale scenario runs 10,000 sites at `--replicas 0`, so that fake
nodes are not what is measured). `version` changes the content only, which is what
scenario (b) does to every site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Shape:
    """What every bench site looks like: set once from the command line (--replicas, --no-ingress)."""

    replicas: int = 1
    ingress: bool = True


SHAPE = Shape()


def name(i: int) -> str:
    return f"s{i:05d}"


def manifest(site: str, namespace: str, version: int) -> dict[str, Any]:
    body = "".join(f"<p>Paragraph {n} of {site}, version {version}.</p>\n" for n in range(20))
    files = [
        {"path": "index.html", "content": f"<!doctype html><title>{site}</title><h1>{site} v{version}</h1>\n{body}"},
        {"path": "about.html", "content": f"<!doctype html><title>About</title><p>{site}</p>"},
        {"path": "assets/site.css", "content": "body { font-family: system-ui, sans-serif; max-width: 40rem; }"},
    ]
    return {
        "apiVersion": "staticsite.dev/v1alpha1",
        "kind": "StaticSite",
        "metadata": {"name": site, "namespace": namespace},
        "spec": {
            "replicas": SHAPE.replicas,
            "domains": [f"{site}.{namespace}.bench.example"] if SHAPE.ingress else [],
            "content": {"inline": {"files": files}},
        },
    }
