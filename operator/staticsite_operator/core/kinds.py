"""Every Kubernetes kind the operator touches, and its children, in one table.

`CHILDREN` is the single list of what a StaticSite owns: which template renders each
child, and when a spec wants it. Everything that needs "every child kind" reads it:
the watches (runtime), the API client's URL paths (clients.kube), render, pruning,
the bench and the RBAC test. Adding a kind (an HTTPRoute, say) is one row here, one
template, and the chart's RBAC rule, which a test compares with this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..api import models


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The URL path of the collection (or one object) in `namespace` (cluster-wide: None)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scoped = f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        return f"{scoped}/{name}" if name else scoped


CONFIGMAP = Kind("ConfigMap", "", "v1", "configmaps")
SERVICE = Kind("Service", "", "v1", "services")
DEPLOYMENT = Kind("Deployment", "apps", "v1", "deployments")
INGRESS = Kind("Ingress", "networking.k8s.io", "v1", "ingresses")
# Watched (only the pods of sites that fetch content), never written.
POD = Kind("Pod", "", "v1", "pods")
# Written or read, never owned.
EVENT = Kind("Event", "", "v1", "events")
SECRET = Kind("Secret", "", "v1", "secrets")
STATICSITE = Kind(models.KIND, models.GROUP, models.VERSION, models.PLURAL)


@dataclass(frozen=True)
class Child:
    """One object a StaticSite owns."""

    template: str                                   # templates/<template>.yaml.j2
    kind: Kind
    when: Callable[[models.StaticSiteSpec, tuple[str, ...]], bool] | None = None  # (spec, hosts); None: always
    # One object per revision (named by its content): a superseded one is deleted only
    # once the new revision is rolled out, since the old pods still mount it.
    versioned: bool = False

    def wanted(self, spec: models.StaticSiteSpec, hosts: tuple[str, ...]) -> bool:
        """`hosts`: the domains the site may serve (core.domains)."""
        return self.when is None or self.when(spec, hosts)


# In apply order: what a Deployment mounts exists before the Deployment does.
CHILDREN: tuple[Child, ...] = (
    Child("configmap", CONFIGMAP, versioned=True),
    Child("service", SERVICE),
    Child("deployment", DEPLOYMENT),
    Child("ingress", INGRESS, when=lambda spec, hosts: bool(hosts)),
)

# The kinds of CHILDREN, each once, in apply order.
CHILD_KINDS: tuple[Kind, ...] = tuple(dict.fromkeys(child.kind for child in CHILDREN))
# Kinds of which a site may own an object it no longer wants: the only kinds the
# operator ever deletes (and the only ones the chart lets it delete).
PRUNABLE: tuple[Kind, ...] = tuple(dict.fromkeys(child.kind for child in CHILDREN
                                                 if child.when is not None or child.versioned))
VERSIONED: tuple[Kind, ...] = tuple(dict.fromkeys(child.kind for child in CHILDREN if child.versioned))

BY_NAME: dict[str, Kind] = {k.kind: k for k in (*CHILD_KINDS, POD, EVENT, SECRET, STATICSITE)}
