"""The operator's configuration: every environment variable it reads, listed once, typed.

The chart sets these (charts/staticsite-operator/templates/deployment.yaml) and
docs/configuration.md lists them; both are checked against this class by tests, and
`python -m staticsite_operator.config` prints the table that the docs hold.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .api import models
from .api import pool as pool_api
from .core.policy import Policy, PolicyError
from .runtime.leader import LeaseSettings

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _names(value: Any) -> Any:
    return tuple(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else value


def _or_default(default: str) -> BeforeValidator:
    # The chart passes "" for "not set": the default applies then too.
    return BeforeValidator(lambda v: v or default)


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    namespaces: Annotated[tuple[str, ...], BeforeValidator(_names)] = Field(
        (), alias="STATICSITE_NAMESPACES",
        description="Comma-separated namespaces to serve; empty: every namespace.")
    log_format: Annotated[str, Field(pattern="^(plain|full|json)$")] = Field(
        "plain", alias="STATICSITE_LOG_FORMAT", description="kopf's log format: plain, full or json.")
    listen_address: str = Field(
        "0.0.0.0", alias="STATICSITE_LISTEN_ADDRESS",  # noqa: S104 - a pod's endpoints must be reachable
        description="Address of the health and metrics endpoints.")
    health_port: int = Field(8080, ge=0, le=65535, alias="STATICSITE_HEALTH_PORT",
                             description="Port of the liveness (GET /healthz) and readiness (GET /readyz) "
                                         "endpoints; 0 turns them off.")
    metrics_port: int = Field(9090, ge=0, le=65535, alias="STATICSITE_METRICS_PORT",
                              description="Port of the Prometheus endpoint (GET /metrics); 0 turns it off.")
    workers: int = Field(8, ge=1, le=256, alias="STATICSITE_WORKERS",
                         description="Concurrent reconciles, each with its own API connection.")
    watch_timeout: int = Field(600, ge=10, alias="STATICSITE_WATCH_TIMEOUT",
                               description="Seconds after which a watch is re-opened even if the server keeps "
                                           "it open: a guard against silent stalls.")
    watch_inactivity_timeout: float = Field(
        70, ge=5, alias="STATICSITE_WATCH_INACTIVITY_TIMEOUT",
        description="Seconds without any event on a watch (the API server sends a bookmark about every 60 s) "
                    "after which it is considered stalled and re-opened from its last resourceVersion.")
    leader_election: bool = Field(
        False, alias="STATICSITE_LEADER_ELECTION",
        description="Elect one writer among replicas with a coordination.k8s.io Lease; the others keep their "
                    "caches warm and stand by. The chart turns it on.")
    leader_election_namespace: str = Field(
        "", alias="STATICSITE_LEADER_ELECTION_NAMESPACE",
        description="Namespace of the Lease; empty: the pod's own namespace (in a cluster).")
    leader_election_lease: str = Field(
        "staticsite-operator", alias="STATICSITE_LEADER_ELECTION_LEASE", description="Name of the Lease.")
    lease_duration: int = Field(
        10, ge=2, le=300, alias="STATICSITE_LEASE_DURATION",
        description="Seconds a standby waits after the last renewal it saw before it takes the Lease over.")
    lease_renew_deadline: float = Field(
        7, gt=0, alias="STATICSITE_LEASE_RENEW_DEADLINE",
        description="Seconds after its last successful renewal at which a leader stops writing (the fence); "
                    "less than the lease duration, so an old leader is silent before a new one can start.")
    lease_retry_period: float = Field(
        2, gt=0, alias="STATICSITE_LEASE_RETRY_PERIOD",
        description="Seconds between two renewals (leader) or two looks at the Lease (standby).")
    drain_timeout: float = Field(
        20, ge=0, alias="STATICSITE_DRAIN_TIMEOUT",
        description="On shutdown, seconds to let in-flight reconciles finish before writes are fenced off and "
                    "the Lease released; keep it below the pod's termination grace period.")
    kopf_log_level: Annotated[str, Field(pattern="^(DEBUG|INFO|WARNING|ERROR)$")] = Field(
        "WARNING", alias="STATICSITE_KOPF_LOG_LEVEL",
        description="Level of kopf's per-object log lines (every handler run at INFO).")
    nginx_image: Annotated[str, _or_default(models.DEFAULT_NGINX_IMAGE)] = Field(
        models.DEFAULT_NGINX_IMAGE, alias="STATICSITE_NGINX_IMAGE",
        description="nginx image of sites that name none (spec.nginx.image).")
    fetcher_image: Annotated[str, _or_default(models.DEFAULT_FETCHER_IMAGE)] = Field(
        models.DEFAULT_FETCHER_IMAGE, alias="STATICSITE_FETCHER_IMAGE",
        description="Image of the init container that fetches git and archive content.")
    routes_image: Annotated[str, _or_default(models.DEFAULT_ROUTES_IMAGE)] = Field(
        models.DEFAULT_ROUTES_IMAGE, alias="STATICSITE_ROUTES_IMAGE",
        description="Image of the init container that renders a git or archive site's nginx.conf with its "
                    "_redirects and _headers: the operator's own image (the chart sets it).")
    quiet_rollout: float = Field(
        15.0, ge=0, le=600, alias="STATICSITE_QUIET_ROLLOUT_SECONDS",
        description="Seconds of a rollout during which its progress is not written to status: a rollout "
                    "done by then writes Ready only (one status write instead of two).")
    pool_image: Annotated[str, _or_default(pool_api.DEFAULT_POOL_IMAGE)] = Field(
        pool_api.DEFAULT_POOL_IMAGE, alias="STATICSITE_POOL_IMAGE",
        description="Image of StaticSitePools that name none: the operator's image with nginx (Dockerfile "
                    "target pool), which runs the pool's agent.")
    tier_move_grace: float = Field(
        30.0, ge=0, le=3600, alias="STATICSITE_TIER_MOVE_GRACE_SECONDS",
        description="Seconds a site's old tier keeps serving after its routing moved to the other one "
                    "(dedicated <-> shared), for ingress controllers and Gateways to follow.")
    policy_dir: str = Field(
        "", alias="STATICSITE_POLICY_DIR",
        description="Directory holding the platform's policy, one file per key (the chart mounts its policy "
                    "ConfigMap there; docs/security.md lists the keys). Empty: the built-in defaults.")

    @model_validator(mode="after")
    def _lease_timings(self) -> Config:
        # A leader must fall silent (renew deadline) before a standby may take over (lease
        # duration), and have room for more than one renewal attempt before that.
        if self.leader_election and not (
                self.lease_duration > self.lease_renew_deadline >= 1.5 * self.lease_retry_period):
            raise ValueError("STATICSITE_LEASE_DURATION > STATICSITE_LEASE_RENEW_DEADLINE >= "
                             "1.5 x STATICSITE_LEASE_RETRY_PERIOD is required")
        return self

    def lease(self, identity: str, sa_namespace_file: str = SA_NAMESPACE_FILE) -> LeaseSettings:
        """Where the Lease is and how it is timed; the namespace defaults to the pod's own."""
        namespace = self.leader_election_namespace
        if not namespace:
            try:
                namespace = Path(sa_namespace_file).read_text().strip()
            except OSError:
                raise ConfigError("STATICSITE_LEADER_ELECTION_NAMESPACE: not set, and not running in a pod "
                                  f"({sa_namespace_file} is missing)") from None
        return LeaseSettings(namespace, self.leader_election_lease, identity, self.lease_duration,
                             self.lease_renew_deadline, self.lease_retry_period)

    def policy(self) -> Policy:
        """The platform's policy: the files in policy_dir, else the defaults."""
        data: dict[str, str] = {}
        if self.policy_dir:
            root = Path(self.policy_dir)
            if not root.is_dir():
                raise ConfigError(f"STATICSITE_POLICY_DIR: {self.policy_dir!r} is not a directory")
            # A mounted ConfigMap also holds ..data and ..<timestamp> entries: keys never start with '.'.
            data = {f.name: f.read_text() for f in root.iterdir() if not f.name.startswith(".") and f.is_file()}
        try:
            loaded = Policy.from_data(data)
        except PolicyError as exc:
            raise ConfigError(f"the policy in {self.policy_dir or '(defaults)'}: {exc}") from None
        return loaded if "images.default" in data else replace(loaded, default_image=self.nginx_image)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        try:
            return cls.model_validate({k: v for k, v in env.items() if k.startswith("STATICSITE_")})
        except ValidationError as exc:
            raise ConfigError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
                                        for e in exc.errors())) from None

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Environment variable -> its description."""
        return {str(f.alias): str(f.description) for f in cls.model_fields.values()}


def markdown() -> str:
    """The table of docs/configuration.md."""
    rows = [f"| `{f.alias}` | {f'`{f.default}`' if f.default not in ((), '') else '(empty)'} | {f.description} |"
            for f in Config.model_fields.values()]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
