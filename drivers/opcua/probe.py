"""The OPC-UA "test device" read: one session, every node of the device read once, with its status."""

from __future__ import annotations

import time
from pathlib import Path

from asyncua import ua

from drivers.opcua.driver import OpcUaSource
from drivers.opcua.nodeid import NodeIdError
from edge.config.buses import OpcUaBusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.probes import DeviceProbe, ProbeValue


async def probe_opcua_device(bus: OpcUaBusConfig, device: DeviceConfig, *, certificate_dir: Path,
                             application_uri: str) -> DeviceProbe:
    started = time.perf_counter()
    try:
        source = OpcUaSource(bus, [device], certificate_dir=certificate_dir, application_uri=application_uri)
    except ConfigError as exc:
        return DeviceProbe(device.id, ok=False, error="; ".join(exc.problems))
    refs = source.devices[device.id].refs
    try:
        client = await source.new_client()
        async with client:
            namespaces = await client.get_namespace_array()
            try:
                nodes = {point: client.get_node(ref.resolve(namespaces)) for point, ref in refs.items()}
            except NodeIdError as exc:
                return DeviceProbe(device.id, ok=False, error=str(exc), duration_ms=_ms(started))
            values = await client.read_attributes(list(nodes.values()), ua.AttributeIds.Value)
    except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
        return DeviceProbe(device.id, ok=False, error=f"{bus.endpoint}: {type(exc).__name__}: {exc}", duration_ms=_ms(started))
    out: list[ProbeValue] = []
    bad: list[str] = []
    for (point, _node), data in zip(nodes.items(), values, strict=True):
        spec = source.devices[device.id].profile.points[point]
        raw = data.Value.Value if data.Value is not None else None
        status = data.StatusCode.name if data.StatusCode is not None else "Good"
        if data.StatusCode is not None and not data.StatusCode.is_good():
            bad.append(f"{point}: {status}")
        out.append(ProbeValue(point, raw if isinstance(raw, int | float | str) or raw is None else str(raw),
                              spec.device_unit or spec.unit, raw=f"{refs[point]} {status}"))
    return DeviceProbe(device.id, ok=not bad, values=tuple(out), error="; ".join(bad) or None, duration_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
