"""The local SQLite store (see ``edge.store.store`` for how its parts fit, ``edge.store.writer`` for durability)."""

from edge.store.store import EVICTION_ORDER, LANE_TABLES, LaneBacklog, OutboxRow, Store

__all__ = ["EVICTION_ORDER", "LANE_TABLES", "LaneBacklog", "OutboxRow", "Store"]
