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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .api import models
from .api import pool as pool_api
from .core.policy import Policy, PolicyError


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
                             description="Port of the liveness endpoint (GET /healthz); 0 turns it off.")
    metrics_port: int = Field(9090, ge=0, le=65535, alias="STATICSITE_METRICS_PORT",
                              description="Port of the Prometheus endpoint (GET /metrics); 0 turns it off.")
    workers: int = Field(8, ge=1, le=256, alias="STATICSITE_WORKERS",
                         description="Concurrent reconciles, each with its own API connection.")
    watch_timeout: int = Field(600, ge=10, alias="STATICSITE_WATCH_TIMEOUT",
                               description="Seconds after which a watch is re-opened even if the server keeps "
                                           "it open: a guard against silent stalls.")
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
            raise ConfigError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None

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
