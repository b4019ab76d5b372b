"""The demo's run plan, without starting it: no fixed port or host-wide path survives from the shipped
config, the banner names every port and path, and it promises a setup token only when no account exists."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from edge.demo import (
    BLE_RECORDING,
    DEMO_CONFIG,
    DemoPorts,
    _protocol_simulators,
    demo_document,
    print_banner,
    write_demo_config,
    write_modbus_scenario,
)


def _ports_and_paths(value: object) -> list[object]:
    if isinstance(value, dict):
        return [v for k, item in value.items() for v in (_ports_and_paths(item) if k not in ("port", "path",
                "evidence_dir", "ca_bundle", "url") else [item])]
    if isinstance(value, list):
        return [v for item in value for v in _ports_and_paths(item)]
    return []


def test_every_port_and_path_is_this_runs_own(tmp_path: Path) -> None:
    ports = DemoPorts.pick()
    chosen = [ports.panel, ports.platform, ports.modbus_tcp, ports.gb26875, ports.rtsp, ports.onvif_lane,
              ports.onvif_lobby, ports.mqtt, ports.opcua]
    assert len(set(chosen)) == len(chosen)
    doc = demo_document(tmp_path, ports)
    shipped = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8").replace("!secret ", ""))
    fixed = {v for v in _ports_and_paths(shipped) if isinstance(v, int)}
    for value in _ports_and_paths(doc):
        if isinstance(value, int):
            assert value not in fixed or value in chosen, value
        elif "://" in str(value):
            assert f":{ports.platform}" in str(value)
        else:
            assert str(value).startswith(str(tmp_path)), value
    scenario = yaml.safe_load(write_modbus_scenario(tmp_path, ports).read_text(encoding="utf-8"))
    assert [c["port"] for c in scenario["tcp"]] == [ports.modbus_tcp]


@pytest.mark.parametrize("has_account", [False, True])
def test_the_banner_names_every_port_and_promises_a_token_only_without_an_account(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], has_account: bool) -> None:
    if has_account:
        with sqlite3.connect(tmp_path / "estate-edge.db") as db:
            db.execute("CREATE TABLE panel_users (username TEXT)")
            db.execute("INSERT INTO panel_users VALUES ('admin')")
    ports = DemoPorts.pick()
    print_banner(tmp_path, ports, demo_document(tmp_path, ports), tmp_path / "estate.yaml")
    out = capsys.readouterr().out
    printed = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)}
    assert printed == {ports.panel, ports.platform, ports.modbus_tcp, ports.gb26875, ports.rtsp, ports.onvif_lane,
                       ports.onvif_lobby, ports.discovery_udp, ports.mqtt, ports.opcua}
    assert "BLE PUMP-BLE (replay, no radio):" in out and str(tmp_path / "ble-replay.jsonl") in out
    assert ("setup token" in out) is not has_account
    assert ("log in with the panel account" in out) is has_account


@pytest.mark.parametrize("mqtt", [True, False])
def test_one_mqtt_ble_and_opcua_device_each_at_this_runs_ports(tmp_path: Path, mqtt: bool) -> None:
    """The demo estate has one device of each: MQTT through the run's Mosquitto (left out, with its bus, when
    mosquitto is not installed), BLE replaying a copy of the recording in the run's folder, the pump-room PLC."""
    from edge.config import load_config

    ports = DemoPorts.pick()
    config_path, secrets_path = write_demo_config(tmp_path, ports, mqtt=mqtt)
    config = load_config(config_path, secrets_path)
    kinds = {bus.kind: bus for bus in config.buses}
    assert ("mqtt" in kinds) is mqtt
    if mqtt:
        assert kinds["mqtt"].port == ports.mqtt  # type: ignore[union-attr]
        assert [d.id for d in config.devices if d.bus == kinds["mqtt"].id] == ["B4-SMOKE-01"]
    assert not any(d.profile == "nbiot_smoke_detector" for d in config.devices) or mqtt
    replay = kinds["ble"].replay  # type: ignore[union-attr]
    assert replay == tmp_path / "ble-replay.jsonl" and replay.read_bytes() == BLE_RECORDING.read_bytes()
    assert kinds["opcua"].endpoint == f"opc.tcp://127.0.0.1:{ports.opcua}/estate-edge/pump-room"  # type: ignore[union-attr]
    assert {d.id for d in config.devices if d.bus in (kinds["ble"].id, kinds["opcua"].id)} == {"PR-TH-01", "PR-PLC-01"}
    names = [name for name, _args, _ready in _protocol_simulators(demo_document(tmp_path, ports, mqtt=mqtt), tmp_path)]
    assert ("mqtt-sim" in names) is mqtt and "opcua-sim" in names


def test_the_demo_clock_is_on_only_in_the_demo_and_the_banner_says_so(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's config turns the demo clock on (estate.demo allows it); the shipped example does not."""
    from edge.config import load_config
    from edge.demo import DEMO_INDICATOR_PERIOD_S

    ports = DemoPorts.pick()
    config_path, secrets_path = write_demo_config(tmp_path, ports)
    config = load_config(config_path, secrets_path)
    assert config.estate.demo and config.indicators.demo_period_s == DEMO_INDICATOR_PERIOD_S <= 60
    shipped = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8").replace("!secret ", ""))
    assert "demo" not in shipped["estate"] and "demo_period_s" not in shipped.get("indicators", {})
    print_banner(tmp_path, ports, demo_document(tmp_path, ports), config_path)
    assert f"every {DEMO_INDICATOR_PERIOD_S} s, marked dimensions.demo=running_hour" in capsys.readouterr().out
