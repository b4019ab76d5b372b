"""Where and how the gateway uploads: the central rating platform (seed 000 clause 7.2)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl, SecretStr

from edge.config.common import Section


class PlatformConfig(Section):
    url: HttpUrl = Field(title="Platform base URL", description="HTTPS base URL of the central platform's API.")
    token_path: str = Field("/oauth/token", description="OAuth2 token endpoint, relative to url.")
    client_id: str = Field(min_length=1, description="OAuth2 client id issued to this gateway.")
    client_secret: SecretStr | None = Field(
        None, description="OAuth2 client secret. Give it as `!secret platform_client_secret`, never inline."
    )
    ca_bundle: Path | None = Field(None, description="PEM bundle of extra CAs to trust (private CA). Verification stays on.")
    verify_tls: bool = Field(True, description="Verify the platform's certificate. Only turn off in a lab.")
    batch_size: int = Field(1000, ge=1, le=1000, description="Records per upload request (the platform takes at most 1,000).")
    concurrency: int = Field(4, ge=1, le=16, description="Upload requests in flight at once.")
    timeout_s: float = Field(15.0, gt=0, le=120, description="Per-request timeout, seconds.")
    gzip: bool = Field(True, description="Compress request bodies with gzip.")
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay after a failure, seconds.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest retry delay, seconds.")
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit breaker.")
    breaker_reset_s: float = Field(30.0, gt=0, description="Seconds the breaker stays open before a half-open probe.")
    enabled: bool = Field(True, description="Upload at all; when off, records stay buffered in the store.")
