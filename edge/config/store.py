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
    min_free_mb: float = Field(
        64, ge=0, description="Free space to keep on the store's file system, MiB: beyond the quota, old telemetry "
                              "is evicted to keep it, and below it the store pauses telemetry (alarms still kept).")
    reserve_mb: float = Field(
        8, ge=0, le=1024, description="Ballast file kept beside the database and given back when the disk is full, "
                                       "so alarms and eviction can still commit, MiB.")
    maintenance_interval_s: float = Field(
        10, gt=0, le=3600, description="Seconds between maintenance passes (pruning, quota, free space, recovery).")
