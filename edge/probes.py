"""What one test read of one device returns: the raw frames on the wire and the decoded values.

Kernel types: each protocol's probe (``drivers/<protocol>/probe.py``) builds them and the panel's
"test device" tool renders them, so they live below both. A driver that needed them from the panel
would point a lower layer at a higher one (import-linter's contracts in ``pyproject.toml`` refuse it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProbeFrame:
    """One frame on the wire during a device test: ``direction`` is "tx" or "rx"; ``data`` the raw bytes."""

    direction: str
    data: bytes
    note: str = ""

    @property
    def hex(self) -> str:
        return self.data.hex(" ")


@dataclass(frozen=True, slots=True)
class ProbeValue:
    point: str
    value: float | str | None
    unit: str = ""
    raw: str = ""  # e.g. the registers the value came from, "0x40 0x1A"


@dataclass(frozen=True, slots=True)
class DeviceProbe:
    """The result of one test read of one device. A failed read is a result (ok=False), not an exception."""

    device_id: str
    ok: bool
    frames: tuple[ProbeFrame, ...] = ()
    values: tuple[ProbeValue, ...] = ()
    error: str | None = None
    duration_ms: float | None = None
