"""Bus certificate and recording paths in the config are relative to the config file's folder, not the working directory.

An estate's folder is copied or moved as a whole (the Debian package keeps it in /etc/estate-edge;
the daemon runs with / as its working directory), so ``ca_file: certs/ca.pem`` must mean the file
beside the config. Proved end to end: the MQTT source connects to a real Mosquitto over TLS with a
client certificate using only relative paths, from another working directory, and ``check``
names a missing certificate by its resolved path.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.ble.driver import build as build_ble
from drivers.mqtt.driver import build as build_mqtt
from edge.config import load_config
from edge.config.files_check import check_config
from simulators.ble.replay import RECORDINGS
from simulators.mqtt.broker import MosquittoBroker
from tests.helpers.sink import RecordingSink


def write_estate(folder: Path, tls_port: int, *, ca: str = "certs/ca.pem", platform: bool = False) -> Path:
    doc: dict[str, Any] = {
        "estate": {"id": "EST-PATHS", "name": "阳光花园", "gateway_id": "GW-PATHS", "timezone": "Asia/Shanghai"},
        "platform": {"url": "https://127.0.0.1:9", "client_id": "gateway", "client_secret": "x", "enabled": platform,
                     "transport": "mqtt", "mqtt": {"host": "127.0.0.1", "port": tls_port, "ca_file": ca,
                                                   "cert_file": "certs/client.pem", "key_file": "certs/client.key"}},
        "store": {"path": "data/edge.db", "evidence_dir": "data/evidence"},
        "buses": [
            {"kind": "mqtt", "id": "nb", "host": "127.0.0.1", "port": tls_port, "tls": True, "ca_file": ca,
             "cert_file": "certs/client.pem", "key_file": "certs/client.key", "backoff_initial_s": 0.05},
            {"kind": "opcua", "id": "plc", "endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "Basic256Sha256",
             "certificate_dir": "opcua-client", "server_certificate": "certs/plc.der"},
            {"kind": "ble", "id": "ble0", "replay": "captures/pump_room.jsonl", "min_interval_s": 0},
        ],
        "devices": [
            {"id": "smoke-1", "name": "烟感", "bus": "nb", "profile": "nbiot_smoke_detector", "category": "other",
             "location": {"building": "1栋"}, "options": {"topic": "estate/p/smoke/1"}},
            {"id": "th-1", "name": "温湿度", "bus": "ble0", "category": "environment", "location": {"building": "泵房"},
             "options": {"mac": "A4:C1:38:12:34:56"}},
        ],
    }
    path = folder / "estate.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def estate(tmp_path: Path, mqtt_broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "etc" / "estate-edge"
    (folder / "certs").mkdir(parents=True)
    (folder / "captures").mkdir()
    tls = mqtt_broker.tls
    assert tls is not None and mqtt_broker.tls_port is not None
    for source, name in ((tls.ca, "ca.pem"), (tls.client_cert, "client.pem"), (tls.client_key, "client.key")):
        shutil.copyfile(source, folder / "certs" / name)
    (folder / "certs" / "plc.der").write_bytes(b"\x30\x00")
    shutil.copyfile(RECORDINGS / "pump_room.jsonl", folder / "captures" / "pump_room.jsonl")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the daemon's working directory is not the config's folder
    return write_estate(folder, mqtt_broker.tls_port)


async def test_relative_bus_paths_resolve_beside_the_config_and_work(estate: Path) -> None:
    folder = estate.parent
    config = load_config(estate)
    buses = {bus.id: bus for bus in config.buses}
    nb, plc, ble = buses["nb"], buses["plc"], buses["ble0"]
    assert (nb.ca_file, nb.cert_file, nb.key_file) == (  # type: ignore[union-attr]
        folder / "certs/ca.pem", folder / "certs/client.pem", folder / "certs/client.key")
    assert plc.certificate_dir == folder / "opcua-client"  # type: ignore[union-attr]
    assert plc.server_certificate == folder / "certs/plc.der"  # type: ignore[union-attr]
    assert ble.replay == folder / "captures/pump_room.jsonl"  # type: ignore[union-attr]
    mqtt = config.platform.mqtt
    assert mqtt is not None and mqtt.ca_file == folder / "certs/ca.pem" and mqtt.key_file == folder / "certs/client.key"
    assert check_config(estate).errors == []

    # The MQTT source connects over TLS with the client certificate found through those paths.
    source = build_mqtt(nb, [d for d in config.devices if d.bus == "nb"], config)
    # The BLE source replays the recording the relative path names.
    ble_source = build_ble(ble, [d for d in config.devices if d.bus == "ble0"], config)
    sink = RecordingSink()
    tasks = [asyncio.create_task(source.run(sink)), asyncio.create_task(ble_source.run(sink))]
    try:
        async with asyncio.timeout(15):
            await source.session.wait_connected()
            while ("th-1", "temperature") not in sink.latest():
                await asyncio.sleep(0.02)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert source.session.last_error is None and source.session.connects == 1


def test_check_names_a_missing_certificate_by_its_resolved_path(estate: Path) -> None:
    write_estate(estate.parent, 8883, ca="certs/missing-ca.pem", platform=True)
    errors = check_config(estate).errors
    missing = str(estate.parent / "certs" / "missing-ca.pem")
    assert any("buses[0].ca_file" in e and missing in e for e in errors), errors
    assert any("platform.mqtt.ca_file" in e and missing in e for e in errors), errors
