"""The configured devices as the panel lists them: index, online state, search and filters.

A device's state combines the driver's last word (``DeviceStatus`` via the pipeline) with how
fresh its data is: a device is *offline* when its driver said so, *online* when it produced data
(or an online report) within three poll intervals (at least 60 s), and *unknown* otherwise (never
heard from since the panel started, or silent without a driver verdict). Disabled devices are
*disabled*. 2,000 devices filter in well under a millisecond, so this is plain Python over the
config, not SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from edge.config import EstateConfig
from edge.config.cameras import CameraConfig
from edge.config.devices import DeviceConfig
from edge.panel.live import LiveValues

STATES: tuple[str, ...] = ("online", "offline", "unknown", "disabled")


@dataclass(frozen=True, slots=True)
class DeviceView:
    config: DeviceConfig
    state: str
    last_seen_us: int | None
    since_us: int | None
    error: str | None

    @property
    def id(self) -> str:
        return self.config.id


class DeviceIndex:
    """Lookups over one config version (rebuilt when the config changes)."""

    def __init__(self, config: EstateConfig | None) -> None:
        self.config = config
        self.devices: list[DeviceConfig] = list(config.devices) if config else []
        self.cameras: list[CameraConfig] = list(config.cameras) if config else []
        self.by_id: dict[str, DeviceConfig] = {d.id: d for d in self.devices}
        self.camera_by_id: dict[str, CameraConfig] = {c.id: c for c in self.cameras}

    @cached_property
    def buildings(self) -> list[str]:
        return sorted({d.location.building for d in self.devices}, key=_natural)

    @cached_property
    def categories(self) -> list[str]:
        return sorted({d.category for d in self.devices})

    @cached_property
    def building_of(self) -> dict[str, str]:
        mapping = {d.id: d.location.building for d in self.devices}
        mapping.update({c.id: c.location.building for c in self.cameras})
        return mapping

    @cached_property
    def names(self) -> dict[str, str]:
        mapping = {d.id: d.name for d in self.devices}
        mapping.update({c.id: c.name for c in self.cameras})
        return mapping

    def ids_matching(self, text: str) -> list[str]:
        """Device and camera ids whose id, name or location contains ``text`` (case-insensitive)."""
        needle = text.casefold()
        out = [d.id for d in self.devices if needle in _haystack(d)]
        out += [c.id for c in self.cameras if needle in f"{c.id} {c.name}".casefold()]
        return out


def _natural(text: str) -> tuple[int, str]:
    digits = "".join(ch for ch in text if ch.isdigit())
    return (int(digits) if digits else 1 << 30, text)


def _haystack(d: DeviceConfig) -> str:
    loc = d.location
    return " ".join(filter(None, (d.id, d.name, loc.building, loc.unit, loc.floor, loc.room, d.profile,
                                  d.category, d.sub_item))).casefold()


def device_view(device: DeviceConfig, live: LiveValues, now_us: int) -> DeviceView:
    status = live.status(device.id)
    seen = live.last_seen_us(device.id)
    if not device.enabled:
        return DeviceView(device, "disabled", seen, None, None)
    if status is not None and not status.online:
        return DeviceView(device, "offline", seen, status.since_us, status.error)
    freshest = max(filter(None, (seen, status.ts_us if status else None)), default=None)
    window_us = int(max(3 * device.poll_interval_s, 60) * 1e6)
    if freshest is not None and now_us - freshest <= window_us:
        return DeviceView(device, "online", seen, status.since_us if status else None, None)
    return DeviceView(device, "unknown", seen, status.since_us if status else None, None)


def filter_devices(index: DeviceIndex, live: LiveValues, now_us: int, *, q: str = "", building: str = "",
                   category: str = "", state: str = "") -> list[DeviceView]:
    needle = q.strip().casefold()
    out = []
    for device in index.devices:
        if building and device.location.building != building:
            continue
        if category and device.category != category:
            continue
        if needle and needle not in _haystack(device):
            continue
        view = device_view(device, live, now_us)
        if state and view.state != state:
            continue
        out.append(view)
    return out
