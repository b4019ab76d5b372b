"""The OPC-UA source against the pump-room PLC simulator (a real asyncua server started by each test).

Covers: Basic256Sha256 with the client certificate generated on first use and kept, subscriptions
with deadband, a server restart that also moves the namespace index (reconnect, node ids resolved
again, subscription recreated), the polling fallback on a server that refuses subscriptions,
status codes as quality, a missing node, and browsing for commissioning.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua

from drivers.opcua.browse import browse
from drivers.opcua.driver import OpcUaSource
from edge.config.buses import OpcUaBusConfig
from edge.config.devices import DeviceConfig
from edge.records import Quality
from simulators.opcua.server import NAMESPACE, PumpRoomPlc
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

# Each test takes under 20 s; a hang (CI once spent 300 s in the pinning test) fails in 90.
pytestmark = pytest.mark.timeout(90)


def bus(endpoint: str, **kw: Any) -> OpcUaBusConfig:
    base: dict[str, Any] = {"kind": "opcua", "id": "pr", "endpoint": endpoint, "timeout_s": 2.0,
                            "backoff_initial_s": 0.1, "backoff_max_s": 0.5}
    return OpcUaBusConfig.model_validate({**base, **kw})


def device(device_id: str, prefix: str, poll_s: float = 0.1) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "id": device_id, "name": device_id, "bus": "pr", "profile": "pump_room_plc", "category": "water_supply",
        "location": {"building": "地下室", "room": "消防泵房"}, "options": {"prefix": prefix}, "poll_interval_s": poll_s,
    })




@contextlib.asynccontextmanager
async def running(source: OpcUaSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        await asyncio.wait_for(source.wait_connected(), 20)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def values(sink: RecordingSink, point: str) -> list[float]:
    return [r.value for r in sink.of("pr1", point)]


async def test_secure_subscription_with_deadband_and_a_restart_that_moves_the_namespace(tmp_path: Path) -> None:
    port_holder = PumpRoomPlc(tmp_path / "plc")
    source = OpcUaSource(bus(port_holder.endpoint, security_policy="Basic256Sha256"), [device("pr1", "PumpRoom1")],
                         certificate_dir=tmp_path / "store" / "opcua", application_uri="urn:estate-edge:test:pr")
    sink = RecordingSink()
    async with port_holder as plc, running(source, sink):
        first_cert = source.certificate
        assert first_cert is not None and first_cert.cert_file.is_file()
        assert (first_cert.key_file.stat().st_mode & 0o777) == 0o600
        await eventually(lambda: len(sink.latest()) == 10, what="every point's initial value")
        assert values(sink, "outlet_pressure") == [0.32]
        assert source.stats["mode"] == "subscribe"
        assert source.stats["deadband_items"] == 7 and source.stats["plain_items"] == 3
        assert sink.latest()[("pr1", "sump_level")].value == pytest.approx(0.35)  # 35 cm -> m
        await plc.write("PumpRoom1", "OutletPressure", 0.3212)  # inside the 0.002 MPa deadband
        await plc.write("PumpRoom1", "OutletPressure", 0.05)  # a real drop
        await eventually(lambda: values(sink, "outlet_pressure")[-1:] == [0.05], what="the pressure drop")
        assert 0.3212 not in values(sink, "outlet_pressure")
        assert {s.online for s in sink.statuses} == {True}

        # The PLC restarts with another module's namespace registered first: our URI moves index.
        old_index = source.stats["namespaces"][NAMESPACE]
        await plc.stop()
        await eventually(lambda: any(not s.online for s in sink.statuses), what="offline after the PLC stopped")
        restarted = PumpRoomPlc(tmp_path / "plc", port=plc.port, extra_namespaces=("urn:vendor:io-module",))
        async with restarted:
            await eventually(lambda: source.connected and source.connects == 2, what="reconnect")
            assert source.stats["namespaces"][NAMESPACE] == old_index + 1
            await restarted.write("PumpRoom1", "Pump1.Current", 31.5)
            await eventually(lambda: values(sink, "pump1_current")[-1:] == [31.5], what="a value after the restart")
            assert sink.statuses[-1].online
        assert source.certificate is not None
        assert source.certificate.thumbprint_sha1 == first_cert.thumbprint_sha1  # kept, not remade
    offline = next(s for s in sink.statuses if not s.online)
    assert "OPC-UA session" in (offline.error or "")


async def test_polling_fallback_status_quality_and_a_missing_node(tmp_path: Path) -> None:
    async with PumpRoomPlc(tmp_path / "plc", subscriptions=False) as plc:
        source = OpcUaSource(bus(plc.endpoint), [device("pr1", "PumpRoom1"), device("pr9", "PumpRoom9")],
                             certificate_dir=tmp_path / "opcua", application_uri="urn:estate-edge:test:poll")
        sink = RecordingSink()
        async with running(source, sink):
            assert source.stats["mode"] == "poll" and source.certificate is None
            await eventually(lambda: len(values(sink, "fire_pool_level")) >= 2, what="two polls")
            await plc.write("PumpRoom1", "FirePoolLevel", 3.1, status=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
            await eventually(lambda: source.stats["devices"]["pr1"]["bad_status"] > 0, what="a counted Bad status")
            assert "BadSensorFailure" in source.stats["devices"]["pr1"]["last_error"]
            assert 3.1 not in values(sink, "fire_pool_level")  # a Bad value never becomes a reading
            await plc.write("PumpRoom1", "FirePoolLevel", 2.9, status=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue))
            await eventually(lambda: sink.of("pr1", "fire_pool_level")[-1].quality == Quality.UNCERTAIN, what="uncertain")
    missing = [s for s in sink.statuses if s.device_id == "pr9"]
    assert missing and not missing[0].online and "PumpRoom9" in (missing[0].error or "")
    assert "BadNodeIdUnknown" in (missing[0].error or "")
    assert not sink.of("pr9", "outlet_pressure")
    assert next(s.online for s in sink.statuses if s.device_id == "pr1") is True


async def test_browse_lists_namespace_independent_ids(tmp_path: Path) -> None:
    async with PumpRoomPlc(tmp_path / "plc", extra_namespaces=("urn:vendor:io-module",)) as plc:
        entries = await browse(plc.endpoint, max_depth=4)
    by_path = {e.path: e for e in entries}
    current = by_path["PumpRoom1.Pump1.Current"]
    assert current.node_id == f"nsu={NAMESPACE};s=PumpRoom1.Pump1.Current"
    assert current.node_class == "Variable" and current.data_type == "Double" and current.value == 18.5
    assert by_path["PumpRoom1.Pump1"].node_class == "Object"
    assert not any(e.path.startswith("Server") for e in entries)


async def test_probe_reads_every_node_once(tmp_path: Path) -> None:
    from drivers.opcua.probe import probe_opcua_device

    async with PumpRoomPlc(tmp_path / "plc") as plc:
        good = await probe_opcua_device(bus(plc.endpoint), device("pr1", "PumpRoom1"), certificate_dir=tmp_path / "c",
                                        application_uri="urn:estate-edge:test:probe")
        missing = await probe_opcua_device(bus(plc.endpoint), device("pr9", "PumpRoom9"), certificate_dir=tmp_path / "c",
                                           application_uri="urn:estate-edge:test:probe")
    assert good.ok and {v.point: v.value for v in good.values}["pump1_current"] == 18.5
    assert {v.point: v.unit for v in good.values}["sump_level"] == "cm"  # as the PLC holds it
    assert not missing.ok and "BadNodeIdUnknown" in (missing.error or "")


async def test_a_server_without_deadband_filters_gets_plain_monitored_items(tmp_path: Path) -> None:
    async with PumpRoomPlc(tmp_path / "plc", deadband=False) as plc:
        source = OpcUaSource(bus(plc.endpoint), [device("pr1", "PumpRoom1")], certificate_dir=tmp_path / "opcua",
                             application_uri="urn:estate-edge:test:nodeadband")
        sink = RecordingSink()
        async with running(source, sink):
            assert source.stats["mode"] == "subscribe"
            assert source.stats["deadband_items"] == 0 and source.stats["plain_items"] == 10
            await eventually(lambda: len(sink.latest()) == 10, what="initial values")
            await plc.write("PumpRoom1", "OutletPressure", 0.3205)  # no deadband now: even a small change arrives
            await eventually(lambda: values(sink, "outlet_pressure")[-1:] == [0.3205], what="the small change")


async def test_the_server_certificate_is_pinned_after_first_use(tmp_path: Path) -> None:
    first = PumpRoomPlc(tmp_path / "plc-a")
    source = OpcUaSource(bus(first.endpoint, security_policy="Basic256Sha256"), [device("pr1", "PumpRoom1")],
                         certificate_dir=tmp_path / "opcua", application_uri="urn:estate-edge:test:pin")
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        async with first:
            await asyncio.wait_for(source.wait_connected(), 20)
            assert source.pinned_server_certificate.is_file()
            pinned = source.pinned_server_certificate.read_bytes()
        # Another server (its own, new certificate) now answers on the same address.
        async with PumpRoomPlc(tmp_path / "plc-b", port=first.port):
            await eventually(lambda: "pinned" in (source.last_error or ""), what="a refused impostor")
            assert not source.connected
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert source.pinned_server_certificate.read_bytes() == pinned  # not replaced by the new server's
    assert source.connects == 1
