"""The device inventory the gateway keeps the platform in step with (seed 002 5.5.4.1 c), seed 004 7.3.3 a)).

Alarms and readings name devices by id; the platform needs to know what each id is: its name,
category and kind, profile or model, where it hangs, its role in its system (the most unfavourable
point of a hydrant network, seed 004 8.3.3), the alarm limits in force, and whether it is enabled.
Seed 004 chapter 6 ("物联网系统" f)) wants the history kept when a device is removed.

``sync_inventory`` compares the configuration with the newest version of each entry in the store's
device lane and writes a new ``DeviceRecord`` version only where something changed:

* at start: every device and camera the platform has not seen in its current form (version 1 on a
  fresh gateway; nothing after a plain restart);
* on reload: the entries whose content changed (a threshold, a name, a location, enabled);
* a device that left the configuration gets one last version with ``removed: true`` (and
  ``enabled: false``), its other fields as they were; earlier versions stay in the store and at the
  platform, so the history is never lost. A device that comes back continues its version count.

The uplink sends the lane like any other (after alarms, before events), with estate and gateway on
each record. Pure comparison, one store read, one write: cheap enough for every reload.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from edge.clock import Clock, SystemClock
from edge.records import DeviceRecord
from edge.rules.specs import specs_from_config
from edge.store.codec import upload_unit

if TYPE_CHECKING:
    from edge.config import EstateConfig
    from edge.store import Store

log = logging.getLogger(__name__)

# category -> what kind of instrument it is (a bus kind can say more, see _kind)
_KINDS: dict[str, str] = {
    "electricity": "electricity_meter", "water": "water_meter", "gas": "gas_meter", "heat": "heat_meter",
    "fire_pressure": "pressure_transmitter", "fire_level": "level_sensor", "water_supply": "level_sensor",
    "environment": "environment_sensor", "lighting": "lighting_controller", "hvac": "hvac_controller",
    "ev_charging": "ev_charger", "power_distribution": "power_monitor", "other": "other",
}
_BUS_KINDS: dict[str, str] = {"gb26875": "fire_alarm_component"}
# Fields that make up an entry's content (a change in any of them is a new version).
_CONTENT = ("name", "category", "kind", "profile", "location", "role", "thresholds", "enabled", "removed")


def inventory(config: EstateConfig) -> dict[str, dict[str, Any]]:
    """Device id -> inventory entry (the ``info`` of a ``DeviceRecord``) for every device and camera."""
    specs = specs_from_config(config).thresholds
    bus_kinds = {b.id: b.kind for b in config.buses}
    out: dict[str, dict[str, Any]] = {}
    for d in config.devices:
        limits = {point: _limits(spec) for (device_id, point), spec in sorted(specs.items()) if device_id == d.id}
        out[d.id] = {
            "name": d.name, "category": d.category,
            "kind": _BUS_KINDS.get(bus_kinds.get(d.bus, ""), _KINDS.get(d.category, "other")),
            "profile": d.profile, "location": _location(d.location), "role": d.role, "thresholds": limits,
            "enabled": d.enabled, "removed": False,
        }
    for c in config.cameras:
        out[c.id] = {
            "name": c.name, "category": "camera", "kind": "camera", "profile": c.model.card,
            "location": _location(c.location), "role": None, "thresholds": {}, "enabled": c.enabled, "removed": False,
        }
    return out


FIRE_CATEGORIES = frozenset({"fire_pressure", "fire_level"})


def field_completeness(config: EstateConfig) -> tuple[int, int, int]:
    """(required inventory fields filled, required fields, devices) over the current devices and cameras.

    Required of every entry: name, category, kind, profile or model, building, floor; of a fire
    pressure or level device also its role (seed 004 8.3.3 asks for the most unfavourable point to
    be known). The ``inventory.field_completeness`` indicator is the ratio (seed 000 5.4 sets 98 % for
    basic-information fields).
    """
    filled = required = 0
    entries = inventory(config)
    for entry in entries.values():
        loc = entry["location"]
        checks = [entry["name"], entry["category"], entry["kind"], entry["profile"], loc["building"], loc["floor"]]
        if entry["category"] in FIRE_CATEGORIES:
            checks.append(entry["role"])
        required += len(checks)
        filled += sum(1 for value in checks if value not in (None, ""))
    return filled, required, len(entries)


def _location(loc: Any) -> dict[str, str | None]:
    return {"building": loc.building, "unit": loc.unit, "floor": loc.floor, "room": loc.room}


def _limits(spec: Any) -> dict[str, Any]:
    return {"low": spec.low, "high": spec.high, "hysteresis": spec.hysteresis, "min_duration_s": spec.min_duration_s,
            "valid_min": spec.valid_min, "valid_max": spec.valid_max, "unit": upload_unit(spec.unit)}


def changes(current: dict[str, dict[str, Any]], known: dict[str, dict[str, Any]],
            now: Any) -> list[DeviceRecord]:
    """The new versions that bring ``known`` (latest payload per device) in line with ``current``. Pure."""
    out: list[DeviceRecord] = []
    for device_id, entry in current.items():
        before = known.get(device_id)
        if before is not None and {k: before.get(k) for k in _CONTENT} == entry:
            continue
        version = int(before["version"]) + 1 if before is not None else 1
        out.append(DeviceRecord(device_id, version, now, entry))
    for device_id, before in sorted(known.items()):
        if device_id in current or before.get("removed"):
            continue
        gone = {k: before.get(k) for k in _CONTENT}
        gone.update(enabled=False, removed=True)
        out.append(DeviceRecord(device_id, int(before["version"]) + 1, now, gone))
    return out


async def sync_inventory(store: Store, config: EstateConfig, clock: Clock | None = None) -> list[DeviceRecord]:
    """Write the inventory versions the configuration calls for; returns them (with their ids)."""
    now = (clock or SystemClock()).now()
    records = changes(inventory(config), await store.latest_devices(), now)
    if not records:
        return []
    ids = await store.append_devices(records)
    added = sum(1 for r in records if r.version == 1)
    removed = sum(1 for r in records if r.info.get("removed"))
    log.info("inventory: %d new device version(s): %d new, %d changed, %d removed", len(records), added,
             len(records) - added - removed, removed)
    return [DeviceRecord(r.device_id, r.version, r.ts, r.info, i) for r, i in zip(records, ids, strict=True)]
