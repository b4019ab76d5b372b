"""The daemon's side of the panel's hooks: what the installer tools can ask the running gateway.

Kept apart from both ``edge.app`` (lifecycle) and ``edge.panel`` (web): each hook is a thin
adapter from a panel question to the component that knows the answer. ``edge.panel.hooks`` declares
what the panel accepts; this module (app layer: it reaches drivers and the running gateway) wires it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from drivers.camera.source import CameraSource
from edge.clock import to_us
from edge.panel.hooks import CameraFrame, DiscoveredDevice, FrameDetection, PanelHooks
from edge.probes import DeviceProbe
from edge.vision.camera import CameraAnalyser

if TYPE_CHECKING:
    from edge.app import Gateway

DISCOVERY_TIMEOUT_S = 3.0


def build_panel_hooks(gateway: Gateway) -> PanelHooks:
    async def reload() -> Any:
        changes = await gateway.reload()
        if changes is None:
            raise RuntimeError("the saved config does not validate; the running config was kept")
        return changes

    def uplink_status() -> dict[str, Any]:
        return gateway.uplink.status() if gateway.uplink is not None else {"breaker": "disabled"}

    async def discover() -> list[DiscoveredDevice]:
        from drivers.onvif.discovery import probe

        configured = {c.host: c.id for c in (gateway.config.cameras if gateway.config else [])}
        found = await probe(timeout=DISCOVERY_TIMEOUT_S)
        return [
            DiscoveredDevice(
                address=d.sender, xaddrs=d.xaddrs, scopes=d.scopes,
                name=d.scope_value("name") or "", hardware=d.scope_value("hardware") or "",
                configured_as=configured.get(d.sender),
            )
            for d in found
        ]

    async def test_device(device_id: str) -> DeviceProbe:
        from drivers.probe import probe_device

        started = time.perf_counter()
        config = gateway.config
        if config is None or config.device(device_id) is None:
            return DeviceProbe(device_id, ok=False, error=f"no device {device_id!r} in the running config")
        running = [status.source for status in gateway.supervisor.sources.values()] if gateway.supervisor else []
        probe = await probe_device(config, device_id, running)
        if probe.duration_ms is None:
            probe = DeviceProbe(probe.device_id, probe.ok, probe.frames, probe.values, probe.error,
                                round((time.perf_counter() - started) * 1000, 1))
        return probe

    async def snapshot(camera_id: str) -> CameraFrame | None:
        status = gateway.supervisor.sources.get(f"camera:{camera_id}") if gateway.supervisor else None
        source = status.source if status else None
        if not isinstance(source, CameraSource) or not isinstance(source.analyser, CameraAnalyser):
            return None
        view = await source.analyser.latest_view()
        if view is None:
            return None
        return CameraFrame(view.jpeg, view.width, view.height, to_us(view.ts), tuple(
            FrameDetection(b.label, b.score, b.x1, b.y1, b.x2, b.y2) for b in view.boxes))

    def running_sources() -> list[object]:
        return [status.source for status in gateway.supervisor.sources.values()] if gateway.supervisor else []

    from drivers.bus_tools import DriverBusTools

    return PanelHooks(reload=reload, uplink_status=uplink_status, discover=discover, test_device=test_device,
                      snapshot=snapshot, bus_tools=DriverBusTools(lambda: gateway.config, running_sources))
