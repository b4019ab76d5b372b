"""Fault switches that tests flip to make the platform misbehave on purpose."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Faults(BaseModel):
    outage: bool = Field(False, description="Answer every request with 503 (a platform that is down).")
    slow_ms: int = Field(0, ge=0, description="Delay every ingest response by this many ms.")
    fail_500: int = Field(0, ge=0, description="Answer the next N ingest requests with 500.")
    rate_limit: int = Field(0, ge=0, description="Answer the next N ingest requests with 429.")
    retry_after_s: float = Field(1.0, ge=0, description="Retry-After sent with the 429s.")
    expire_tokens: bool = Field(False, description="Treat every token issued so far as expired (one shot).")
    drop_after_body: int = Field(0, ge=0, description="Store the next N batches, then drop the connection unanswered.")
    reject_device_ids: list[str] = Field(default_factory=list, description="Records of these devices fail validation.")
    ack_html: int = Field(0, ge=0, description="Answer the next N ingest requests 200 with an HTML page, storing nothing "
                                                 "(a captive portal or a proxy's error page).")
    ack_truncated: int = Field(0, ge=0, description="Store the next N batches, then answer 200 with truncated JSON.")
    ack_wrong_count: int = Field(0, ge=0, description="Store the next N batches, then answer 200 with a count one short.")
