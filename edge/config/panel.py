"""The local web panel."""

from __future__ import annotations

from pydantic import Field

from edge.config.common import Section


class PanelConfig(Section):
    host: str = Field("127.0.0.1", description="Address the panel listens on (the estate LAN address in production).")
    port: int = Field(8080, ge=1, le=65535)
    language: str = Field("zh", pattern="^(zh|en)$", description="Default language: zh (Chinese) or en.")
    enabled: bool = True
