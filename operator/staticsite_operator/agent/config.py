"""The agent's settings: environment variables, typed (the pool's Deployment sets them)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class AgentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    pool: str = Field(alias="STATICSITE_POOL", min_length=1, description="The StaticSitePool served.")
    namespace: str = Field(alias="STATICSITE_POOL_NAMESPACE", min_length=1, description="The pool's namespace.")
    pod: str = Field(alias="STATICSITE_POD_NAME", min_length=1, description="This pod: names its report.")
    pod_uid: str = Field("", alias="STATICSITE_POD_UID",
                         description="This pod's UID: owns its report (removed with the pod). Empty: no owner.")
    data_dir: str = Field("/var/lib/staticsite-pool", alias="STATICSITE_POOL_DATA_DIR",
                          description="Where the sites' files and configuration are written.")
    listen: str = Field("8080", alias="STATICSITE_POOL_LISTEN", pattern=r"^[A-Za-z0-9.:\[\]]+$",
                        description="nginx's listen address for the sites.")
    status_port: int = Field(8079, ge=1, le=65535, alias="STATICSITE_POOL_STATUS_PORT",
                             description="Loopback port where nginx tells the configuration generation it runs.")
    metrics_port: int = Field(9090, ge=0, le=65535, alias="STATICSITE_POOL_METRICS_PORT",
                              description="Prometheus metrics of the agent; 0 turns them off.")
    debounce: float = Field(0.3, ge=0, le=60, alias="STATICSITE_POOL_DEBOUNCE_SECONDS",
                            description="Quiet time after an event before a reload.")
    max_delay: float = Field(2.0, ge=0, le=300, alias="STATICSITE_POOL_MAX_DELAY_SECONDS",
                             description="The longest an event waits for its reload, however busy.")
    nginx: str = Field("nginx", alias="STATICSITE_NGINX", description="The nginx executable.")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgentConfig:
        try:
            return cls.model_validate({k: v for k, v in env.items() if k.startswith("STATICSITE_")})
        except ValidationError as exc:
            raise SystemExit("staticsite pool agent: bad configuration: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
