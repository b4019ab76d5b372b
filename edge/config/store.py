"""The local SQLite store: where it lives and how big it may grow."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge.config.common import Section


class StoreConfig(Section):
    path: Path = Field(Path("var/estate-edge.db"), description="SQLite database file (WAL mode).")
    evidence_dir: Path = Field(Path("var/evidence"), description="Where evidence JPEGs are kept.")
    quota_mb: float = Field(1024, gt=0, description="Disk quota for the database and evidence, MiB.")
    batch_max_records: int = Field(2000, ge=1, le=100_000, description="Most records in one commit.")
    batch_max_delay_ms: float = Field(20, ge=0, le=1000, description="Longest a write waits to share a commit, ms.")
    retention_days: float = Field(90, gt=0, description="Uploaded telemetry older than this is pruned.")
