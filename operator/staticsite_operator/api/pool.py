"""The StaticSitePool API (v1alpha1): a platform-owned nginx pool that serves shared sites.

Cluster-scoped, like an IngressClass: a pool is infrastructure the platform team runs
(its Deployment lives in a namespace of theirs) and offers to tenants by name. Tenants
get no rights on it; a StaticSite only names it (`spec.serving.pool`), and the pool
says which namespaces may (`spec.namespaces`) and how many sites it takes (`maxSites`).
The CRD is generated from these models (`python -m staticsite_operator.api.crd pool`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from .models import DNS_LABEL_PATTERN, Condition, Resources, _Model

POOL_KIND = "StaticSitePool"
POOL_PLURAL = "staticsitepools"
# The agent's image: the operator's own image with nginx added (Dockerfile target `pool`).
DEFAULT_POOL_IMAGE = "staticsite-operator-pool:dev"
DEFAULT_MAX_SITES = 1000
# A namespace glob: '*' may only start and/or end it (core.policy.glob_match).
NAMESPACE_GLOB_PATTERN = r"^\*?[a-z0-9-]*\*?$"


class PoolAutoscaling(_Model):
    """A HorizontalPodAutoscaler on CPU for the pool's Deployment (replaces `replicas`)."""

    min_replicas: int = Field(default=2, ge=1, le=100, alias="minReplicas")
    max_replicas: int = Field(default=10, ge=1, le=100, alias="maxReplicas")
    target_cpu_utilization: int = Field(default=70, ge=10, le=100, alias="targetCPUUtilization",
                                        description="Average CPU utilisation, in percent of requests.")

    @model_validator(mode="after")
    def _ordered(self) -> PoolAutoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling: minReplicas is more than maxReplicas")
        return self


def _pool_resources() -> Resources:
    # Measured (bench/README.md): nginx and the agent of a 1000-site pool stay under
    # 128 MiB together; the limit leaves room for a reload's second set of workers.
    return Resources(requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "512Mi"})


class StaticSitePoolSpec(_Model):
    namespace: str = Field(max_length=63, pattern=DNS_LABEL_PATTERN,
                           description="The platform's namespace that runs the pool (its Deployment, Service, "
                                       "site entries and routing). It must hold the agent's ServiceAccount.")
    replicas: int = Field(default=2, ge=1, le=100, description="Pods of the pool (ignored with autoscaling).")
    image: str | None = Field(default=None, max_length=512, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
                              description="The pool image (agent and nginx). Default: the operator's setting.")
    resources: Resources = Field(default_factory=_pool_resources, description="Of each pool pod.")
    autoscaling: PoolAutoscaling | None = None
    namespaces: list[Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_GLOB_PATTERN)]] = Field(
        default_factory=list, max_length=256,
        description="Tenant namespaces whose sites may use the pool: names or globs ('team-*'); '*' for all. "
                    "Empty: none.")
    max_sites: int = Field(default=DEFAULT_MAX_SITES, ge=1, le=10000, alias="maxSites",
                           description="The most sites the pool serves; later ones (by creation) are refused.")
    service_account_name: str = Field(default="staticsite-pool-agent", alias="serviceAccountName",
                                      max_length=253, pattern=DNS_LABEL_PATTERN,
                                      description="The agent's ServiceAccount in `namespace` (the chart makes it).")

    @field_validator("namespaces")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        for glob in value:
            if "*" in glob.strip("*"):
                raise ValueError(f"namespaces: {glob!r}: '*' may only start and/or end a glob")
        return value


class StaticSitePoolStatus(_Model):
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    conditions: list[Condition] = Field(default_factory=list)
    sites: int | None = Field(default=None, description="Sites the pool serves.")
    replicas: int | None = None
    ready_replicas: int | None = Field(default=None, alias="readyReplicas")


CEL_RULES: dict[str, list[dict[str, Any]]] = {
    "PoolAutoscaling": [
        {"rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
         "message": "minReplicas is more than maxReplicas", "fieldPath": ".minReplicas"},
    ],
}
"""CEL rules of the pool's schema, by model name (as models.CEL_RULES for the StaticSite)."""
