"""Cameras (ONVIF / RTSP) and the analytics configured on them."""

from __future__ import annotations

from pydantic import Field, SecretStr

from edge.config.common import Identifier, Section
from edge.config.devices import Location


class CameraConfig(Section):
    id: Identifier
    name: str
    location: Location
    host: str = Field(description="Camera host name or IP (ONVIF).")
    port: int = Field(80, ge=1, le=65535, description="ONVIF HTTP port.")
    username: str | None = None
    password: SecretStr | None = Field(None, description="Give as `!secret <name>`.")
    enabled: bool = True
