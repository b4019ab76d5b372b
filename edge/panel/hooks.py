"""What the daemon plugs into the panel: reload, installer tools, camera frames, uplink health.

The panel never reaches into drivers, the vision pipeline or the uplink itself; the daemon passes
callables here (each optional: a panel without one shows the tool as unavailable). Their results
are the plain types below (and ``edge.probes.DeviceProbe``, a kernel type because the drivers'
probes build it), so the panel renders them without knowing the protocol behind them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge.bus_tools import BusTools
from edge.probes import DeviceProbe


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """One answer to ONVIF WS-Discovery (or another discovery protocol)."""

    address: str
    xaddrs: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    name: str = ""
    hardware: str = ""
    configured_as: str | None = None  # camera id when this address is already in the config


@dataclass(frozen=True, slots=True)
class FrameDetection:
    """One detection on a camera frame, in the frame's pixels (``edge.vision.detections.Box`` fields)."""

    label: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """The latest analysed frame of a camera as JPEG, in the pixels zones are drawn in, with its detections.

    ``ts_us``: when it was taken (microseconds since the epoch, UTC).
    """

    jpeg: bytes
    width: int
    height: int
    ts_us: int
    detections: tuple[FrameDetection, ...] = ()


ReloadHook = Callable[[], Awaitable[Any]]
TestDeviceHook = Callable[[str], Awaitable[DeviceProbe]]
DiscoverHook = Callable[[], Awaitable[list[DiscoveredDevice]]]
SnapshotHook = Callable[[str], Awaitable[CameraFrame | None]]
UplinkStatusHook = Callable[[], dict[str, Any]]


@dataclass(slots=True)
class PanelHooks:
    """Callables the daemon registers. All optional.

    reload         re-read the config file and apply it (the daemon's SIGHUP path); called after the
                   panel saved a new config; an exception is shown to the installer
    test_device    one read of one configured device, raw frames and decoded values
    discover       run ONVIF WS-Discovery on the LAN and return what answered
    snapshot       the latest frame of a camera (the vision pipeline keeps it in memory)
    uplink_status  ``Uplink.status()``: breaker state, failures, last error
    bus_tools      the MQTT listen, BLE scan and OPC-UA browse tools, and what each such device last sent
    """

    reload: ReloadHook | None = None
    test_device: TestDeviceHook | None = None
    discover: DiscoverHook | None = None
    snapshot: SnapshotHook | None = None
    uplink_status: UplinkStatusHook | None = None
    bus_tools: BusTools | None = None
