"""Where and how the gateway uploads: the central rating platform (seed 000 clause 7.2).

Seed 000 7.2.2: the link to the platform is HTTPS. A plain ``http://`` URL would send the OAuth2
client secret, the bearer token and every record in clear text across the estate's network, and
``verify_tls: false`` lets anyone on the path impersonate the platform; both are refused unless
``lab_mode_insecure: true`` says, in the file, that this is a lab. The daemon then logs a warning
at every start and the panel shows a banner on every page, so a lab setting that reaches an
estate does not go unnoticed. (A private CA is not insecure: give it as ``ca_bundle``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr, ValidationInfo, field_validator, model_validator

from edge.config.common import Section

LAB_SWITCH = "platform.lab_mode_insecure"


class MqttUplinkConfig(Section):
    """The broker (cluster) a platform ingests through, when ``platform.transport`` is ``mqtt``.

    Batches are the HTTPS bodies, one QoS 1 message each on ``{topic_prefix}/{estate}/{gateway}/{kind}``
    (see ``edge.uplink.mqtt_transport``); TLS is on (seed 000 7.2.2 asks for an encrypted link), with
    the broker's CA and a client certificate or a user name and password.
    """

    host: str = Field(min_length=1, description="Broker host name or address.")
    port: int = Field(8883, ge=1, le=65535, description="Broker port (8883: MQTT over TLS).")
    tls: bool = Field(True, description="TLS to the broker. Turning it off needs platform.lab_mode_insecure: true.")
    ca_file: Path | None = Field(None, description="PEM CA bundle that signed the broker's certificate.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), when the broker wants one.")
    key_file: Path | None = Field(None, description="Key of the client certificate (PEM).")
    username: str | None = Field(None, description="User name, when the broker wants one.")
    password: SecretStr | None = Field(None, description="Password. Give it as `!secret mqtt_uplink_password`.")
    client_id: str | None = Field(None, description="MQTT client id (default: estate-edge-uplink-<gateway id>); "
                                                    "fixed, so the broker keeps the persistent session.")
    topic_prefix: str = Field("estate-edge", min_length=1, description="First level of every uplink topic.")
    ack_timeout_s: float = Field(10.0, gt=0, le=120, description="Longest wait for the broker's PUBACK, seconds.")


class ReportByExceptionConfig(Section):
    """Telemetry upload by exception (``edge.uplink.exception``).

    The store and the gateway's own figures keep every reading; only the upload skips readings that say
    nothing new.
    """

    enabled: bool = Field(False, description="Off by default: every reading goes up.")
    deadband: dict[str, float] = Field(
        default_factory=dict, description="Per point name, the change (absolute, in the point's unit) a reading must "
        "exceed to go up, e.g. {pressure: 0.005, voltage: 1.0}.")
    default_deadband: float = Field(0.0, ge=0, description="Deadband of points not named: 0 sends every change.")
    max_interval_s: float = Field(300.0, gt=0, le=86400,
                                  description="A point goes up at least this often even when steady, seconds.")


class PlatformConfig(Section):
    # Declared first: the url and verify_tls validators read it.
    lab_mode_insecure: bool = Field(
        False,
        title="Lab mode: allow an insecure platform link",
        description="Allow an http:// url and verify_tls: false (a lab or a simulator only). Logged as a warning "
        "at every start and shown as a banner on every panel page. Never in an estate.",
    )
    url: HttpUrl = Field(title="Platform base URL", description="HTTPS base URL of the central platform's API.")
    token_path: str = Field("/oauth/token", description="OAuth2 token endpoint, relative to url.")
    client_id: str = Field(min_length=1, description="OAuth2 client id issued to this gateway.")
    client_secret: SecretStr | None = Field(
        None, description="OAuth2 client secret. Give it as `!secret platform_client_secret`, never inline."
    )
    ca_bundle: Path | None = Field(None, description="PEM bundle of extra CAs to trust (private CA). Verification stays on.")
    verify_tls: bool = Field(
        True, description="Verify the platform's certificate. Turning it off needs lab_mode_insecure: true."
    )
    batch_size: int = Field(1000, ge=1, le=1000, description="Records per upload request (the platform takes at most 1,000).")
    concurrency: int = Field(4, ge=1, le=16, description="Upload requests in flight at once.")
    timeout_s: float = Field(15.0, gt=0, le=120, description="Per-request timeout, seconds.")
    gzip: bool = Field(True, description="Compress request bodies with gzip.")
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay after a failure, seconds.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest retry delay, seconds.")
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit breaker.")
    breaker_reset_s: float = Field(30.0, gt=0, description="Seconds the breaker stays open before a half-open probe.")
    enabled: bool = Field(True, description="Upload at all; when off, records stay buffered in the store.")
    transport: Literal["https", "mqtt"] = Field(
        "https", description="How batches travel: https to the platform's ingest API, or mqtt to the broker cluster "
                             "the platform ingests through (then give `mqtt`). Lanes, idempotency, breaker and "
                             "backoff are the same.")
    mqtt: MqttUplinkConfig | None = Field(None, description="The broker, when transport is mqtt.")
    report_by_exception: ReportByExceptionConfig = Field(
        default_factory=ReportByExceptionConfig,
        description="Upload a telemetry reading only when it changed (off by default; never alarms or events).")
    validate_telemetry: bool = Field(
        False, description="Debug switch: check every telemetry record against the published schema before sending "
        "(records are valid by construction; the check costs CPU on the busiest path). Events, alarm steps, "
        "indicators and device records are always checked.")

    @field_validator("url")
    @classmethod
    def _https(cls, value: HttpUrl, info: ValidationInfo) -> HttpUrl:
        if value.scheme != "https" and not info.data.get("lab_mode_insecure", False):
            raise ValueError(
                f"{value.scheme}:// sends the client secret and every record in clear text; the platform link must be "
                f"https:// (seed 000 7.2.2). Only in a lab: set {LAB_SWITCH}: true"
            )
        return value

    @field_validator("verify_tls")
    @classmethod
    def _verified(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and not info.data.get("lab_mode_insecure", False):
            raise ValueError(
                "turning certificate verification off lets anyone on the path pose as the platform; for a private "
                f"CA give ca_bundle instead. Only in a lab: set {LAB_SWITCH}: true"
            )
        return value

    @model_validator(mode="after")
    def _transport(self) -> PlatformConfig:
        if self.transport == "mqtt" and self.mqtt is None:
            raise ValueError("transport mqtt needs the broker: give platform.mqtt (host, port, ca_file ...)")
        if self.mqtt is not None and not self.mqtt.tls and not self.lab_mode_insecure:
            raise ValueError("mqtt.tls: false sends every record in clear text; the platform link must be encrypted "
                             f"(seed 000 7.2.2). Only in a lab: set {LAB_SWITCH}: true")
        return self
