"""The local web panel: where it listens, how it secures accounts, how much chart history it keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from edge.config.common import Section


class PanelConfig(Section):
    host: str = Field("127.0.0.1", description="Address the panel listens on (the estate LAN address in production).")
    port: int = Field(8080, ge=1, le=65535)
    language: str = Field("zh", pattern="^(zh|en)$", description="Default language: zh (Chinese) or en.")
    enabled: bool = True
    tls_cert: Path | None = Field(
        None, description="PEM certificate to serve the panel over HTTPS (session cookies are then marked Secure)."
    )
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")
    cookie_secure: Literal["auto", "always"] = Field(
        "auto",
        description="auto: mark cookies Secure whenever the request came over HTTPS; always: also over plain HTTP "
        "(only behind a TLS-terminating proxy, or the browser will drop the cookie).",
    )
    session_idle_minutes: float = Field(
        480, gt=0, le=10080, description="A session unused this long ends (minutes; default one control-room shift)."
    )
    session_max_hours: float = Field(24, gt=0, le=720, description="A session ends this long after login (hours).")
    login_attempts_per_minute: int = Field(
        10, ge=1, le=1000, description="Login attempts allowed per client address per minute before HTTP 429."
    )
    login_free_failures: int = Field(
        3, ge=1, le=100,
        description="Wrong passwords in a row for one account from one address before each further try must "
        "wait (the wait doubles with every further failure). There is no account lock-out.",
    )
    login_max_delay_s: float = Field(
        900, ge=1, le=86400, description="Longest wait for one account from one address after wrong passwords (s)."
    )
    login_account_free_failures: int = Field(
        10, ge=1, le=1000,
        description="Wrong passwords in a row for one account from all addresses together before addresses that "
        "never logged in to it must wait too (addresses it logged in from before keep their own budget).",
    )
    login_account_max_delay_s: float = Field(
        60, ge=1, le=3600, description="Longest wait for an account from addresses it never logged in from (s)."
    )
    password_min_length: int = Field(10, ge=8, le=128, description="Shortest password accepted (characters).")
    rollup_flush_s: float = Field(
        30, gt=0, le=3600, description="How often chart rollups and latest values are written to the store (s)."
    )
    config_backups: int = Field(20, ge=1, le=1000, description="Previous config files kept as backups on each save.")
    upload_max_kb: int = Field(1024, ge=16, le=65536, description="Largest config file accepted for upload (KiB).")
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token for Prometheus scrapes of /metrics ('Authorization: Bearer <token>'). Give as "
        "`!secret panel_metrics_token` (see config/secrets.example.yaml). Without it /metrics needs a login.",
    )
    metrics_public: bool = Field(
        False,
        description="Serve /metrics to anyone who can reach the panel, without token or login (device names, "
        "backlogs and alarm counts become visible to the whole network: only on an isolated monitoring LAN).",
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> PanelConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self
