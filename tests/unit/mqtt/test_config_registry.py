"""The mqtt, opcua and ble bus kinds in an estate config: validation naming the place, and the registry's sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.ble.driver import BleSource
from drivers.mqtt.driver import MqttSource
from drivers.opcua.driver import OpcUaSource
from drivers.registry import build_sources
from edge.config.buses import MqttBusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from tests.helpers.config import load

BUSES: list[dict[str, Any]] = [
    {"kind": "mqtt", "id": "nb", "host": "127.0.0.1", "port": 1883},
    {"kind": "opcua", "id": "plc", "endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "Basic256Sha256"},
    {"kind": "ble", "id": "ble0", "adapter": "hci0"},
]
DEVICES: list[dict[str, Any]] = [
    {"id": "smoke-1", "name": "1栋烟感", "bus": "nb", "profile": "nbiot_smoke_detector", "category": "other",
     "location": {"building": "1栋"}, "options": {"topic": "nb/smoke/1"}},
    {"id": "pr1", "name": "消防泵房PLC", "bus": "plc", "profile": "pump_room_plc", "category": "water_supply",
     "location": {"building": "地下室"}, "options": {"prefix": "PumpRoom1"}},
    {"id": "th-1", "name": "配电房温湿度", "bus": "ble0", "category": "environment",
     "location": {"building": "2栋"}, "options": {"mac": "a4:c1:38:12:34:56"}},
]


def test_each_kind_builds_its_source(tmp_path: Path) -> None:
    config = load(tmp_path, platform_url="https://127.0.0.1:1", ca=None,
                  extra={"buses": BUSES, "devices": DEVICES})
    sources = {s.name: s for s in build_sources(config)}
    mqtt, opcua, ble = sources["bus:nb"], sources["bus:plc"], sources["bus:ble0"]
    assert isinstance(mqtt, MqttSource) and mqtt.session.settings.client_id == "estate-edge-GW-TEST-01-nb"
    assert mqtt.filters == ["nb/smoke/1/raw", "nb/smoke/1/status", "nb/smoke/1/up"]
    assert isinstance(opcua, OpcUaSource) and opcua.certificate_dir == tmp_path / "opcua"
    assert opcua.application_uri == "urn:estate-edge:GW-TEST-01:plc"
    assert isinstance(ble, BleSource) and ble.sensors["th-1"].mac == "A4:C1:38:12:34:56"
    assert len({s.fingerprint for s in sources.values()}) == len(sources)


@pytest.mark.parametrize(("bus", "message"), [
    ({"kind": "mqtt", "id": "nb", "host": "h", "cert_file": "c.pem"}, "cert_file and key_file go together"),
    ({"kind": "mqtt", "id": "nb", "host": "h", "ca_file": "ca.pem"}, "need tls: true"),
    ({"kind": "opcua", "id": "plc", "endpoint": "http://plc"}, "should match pattern"),
    ({"kind": "ble", "id": "ble0", "adapter": "bluetooth0"}, "should match pattern"),
])
def test_bad_bus_settings_name_the_place(tmp_path: Path, bus: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, platform_url="https://127.0.0.1:1", ca=None, extra={"buses": [bus], "devices": []})
    text = "\n".join(err.value.problems)
    assert "estate.yaml:" in text and "buses" in text and message in text


def test_device_problems_name_the_device(tmp_path: Path) -> None:
    # Options are checked when the config loads (estate-edge check, a reload), located by file and line ...
    devices = [dict(DEVICES[0], options={"topic": "nb/+/1"}), dict(DEVICES[1], options={})]
    with pytest.raises(ConfigError) as err:
        load(tmp_path, platform_url="https://127.0.0.1:1", ca=None, extra={"buses": BUSES, "devices": devices})
    text = "\n".join(err.value.problems)
    assert ("devices[0].options.topic: must be the device's base topic (no wildcards), not 'nb/+/1' (device smoke-1)"
            in text)
    assert "estate.yaml:" in text
    # ... and by the same rule, worded for the device, when a source is built without a config file.
    bus = MqttBusConfig.model_validate(BUSES[0])
    with pytest.raises(ConfigError) as err:
        MqttSource(bus, [DeviceConfig.model_validate(devices[0])], client_id="gw-test")
    assert err.value.problems == [
        "device smoke-1: options.topic must be the device's base topic (no wildcards), not 'nb/+/1'"]
    devices = [DEVICES[0], dict(DEVICES[1], options={})]
    config = load(tmp_path, platform_url="https://127.0.0.1:1", ca=None, extra={"buses": BUSES, "devices": devices})
    with pytest.raises(ConfigError) as err:
        build_sources(config)
    assert any(p.startswith("device pr1: point outlet_pressure:") and "needs options.prefix" in p for p in err.value.problems)
