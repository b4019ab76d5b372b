"""Simulated MQTT devices: the payloads of the shipped profiles, built from a small state per device.

Pure functions (state -> topic, payload) so the farm, the tests and the bench publish exactly what
a device of each profile would, and the tests can also publish the malformed variants.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

Kind = Literal["smoke", "leak", "lift"]
PROFILE_OF: dict[str, str] = {"smoke": "nbiot_smoke_detector", "leak": "water_leak_probe", "lift": "lift_box_json"}
SHANGHAI = timezone(timedelta(hours=8))


@dataclass
class SimDevice:
    id: str
    kind: Kind
    base_topic: str
    alarm: bool = False  # smoke: smoke detected; leak: water detected; lift: fault
    battery: float = 95.0
    rsrp: int = -92
    floor: int = 1
    running: bool = False
    door_open: bool = False
    load_pct: float = 0.0
    motor_current_ma: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return PROFILE_OF[self.kind]


def _j(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def smoke_up(dev: SimDevice, ts: datetime) -> tuple[str, bytes]:
    return f"{dev.base_topic}/up", _j({
        "imei": f"86{abs(hash(dev.id)) % 10**13:013d}", "ts": int(ts.timestamp() * 1000),
        "alarm": "smoke" if dev.alarm else "normal", "fault": "none",
        "battery": dev.battery, "signal": {"rsrp": dev.rsrp, "snr": 11},
    })


def smoke_raw(dev: SimDevice, ts: datetime) -> tuple[str, bytes]:
    frame = struct.pack(">BBh", 1 if dev.alarm else 0, int(dev.battery), dev.rsrp)
    return f"{dev.base_topic}/raw", _j({"ts": int(ts.timestamp()), "data": frame.hex().upper()})


def leak_state(dev: SimDevice) -> tuple[str, bytes]:
    return f"{dev.base_topic}/leak", b"wet" if dev.alarm else b"dry"


def leak_battery(dev: SimDevice) -> tuple[str, bytes]:
    return f"{dev.base_topic}/battery", f"{dev.battery:g}".encode()


def lift_report(dev: SimDevice, ts: datetime) -> tuple[str, bytes]:
    local = ts.astimezone(SHANGHAI).replace(tzinfo=None)
    return f"{dev.base_topic}/report", _j({
        "time": local.isoformat(sep=" ", timespec="seconds"),
        "quality": "good",
        "status": {"running": dev.running, "floor": dev.floor, "door": "open" if dev.door_open else "closed",
                   "load_pct": dev.load_pct, "fault_code": 17 if dev.alarm else 0},
        "metrics": [{"name": "motor_current", "value": dev.motor_current_ma, "unit": "mA"},
                    {"name": "cabin_temperature", "value": 24.5, "unit": "°C"}],
    })


def reports(dev: SimDevice, ts: datetime | None = None) -> list[tuple[str, bytes]]:
    """Everything one report cycle of ``dev`` publishes."""
    ts = ts or datetime.now(UTC)
    if dev.kind == "smoke":
        return [smoke_up(dev, ts)]
    if dev.kind == "leak":
        return [leak_state(dev), leak_battery(dev)]
    return [lift_report(dev, ts)]


MALFORMED: dict[str, bytes] = {
    "json": b'{"alarm": "normal", "battery": 9',  # cut off
    "type": b'{"alarm": "normal", "battery": "full", "signal": {"rsrp": -90}}',  # battery is a word
    "utf8": b'{"alarm": "normal", "battery": 90, "note": "\xff\xfe\xfa"}',  # not UTF-8
    "too_large": b'{"pad": "' + b"x" * (1024 * 1024) + b'"}',  # 1 MB
}
