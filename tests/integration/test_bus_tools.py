"""The installer tools for MQTT, BLE and OPC-UA buses through the panel's API and pages, against real parts.

A real Mosquitto (started by the ``mqtt_broker`` fixture on free ports), the pump-room PLC as a real
asyncua server started by the test, and the running sources (``MqttSource``, ``BleSource``,
``OpcUaSource``) behind ``drivers.bus_tools.DriverBusTools``, which the panel reaches through its
hook exactly as the daemon wires it. The Bluetooth radio is the one part that cannot run here (no
adapter, no BlueZ): the BLE source's scanner replays recorded advertisement bytes through the
scanner interface (``simulators.ble.ReplayScanner``); everything after the scanner is the real source.

The panel runs in-process over ASGI with its real middleware, sessions and CSRF checks, on a real
SQLite store.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from drivers.ble.driver import BleSource
from drivers.bus_tools import DriverBusTools
from drivers.mqtt.driver import MqttSource
from drivers.opcua.driver import OpcUaSource, client_identity
from drivers.opcua.nodeid import parse_node_ref
from drivers.opcua.security import CERT_NAME
from edge.clock import SystemClock
from edge.config import EstateConfig, load_config
from edge.panel import PanelHooks, create_app
from edge.panel.roles import Role
from edge.store import Store
from simulators.ble.replay import RECORDINGS, ReplayScanner, load_recording
from simulators.mqtt.broker import MosquittoBroker
from simulators.mqtt.devices import SimDevice, smoke_up
from simulators.mqtt.farm import MqttDeviceFarm
from simulators.opcua.server import NAMESPACE, PumpRoomPlc
from tests.helpers.panel import PASSWORD, cheap_passwords, csrf_from, panel_settings
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

PV_MAC = "A4:C1:38:12:34:56"
SMOKE_TOPIC = "estate/t/smoke/1"


def write_estate(tmp: Path, mqtt_port: int, opcua_endpoint: str) -> tuple[Path, Path]:
    doc: dict[str, Any] = {
        "estate": {"id": "EST-TOOLS", "name": "阳光花园", "gateway_id": "GW-TOOLS", "timezone": "Asia/Shanghai"},
        "platform": {"url": "https://127.0.0.1:9", "client_id": "gateway", "client_secret": "x", "enabled": False},
        "store": {"path": str(tmp / "edge.db"), "evidence_dir": str(tmp / "evidence")},
        "panel": {"language": "zh"},
        "buses": [
            {"kind": "mqtt", "id": "nb", "host": "127.0.0.1", "port": mqtt_port, "backoff_initial_s": 0.1,
             "backoff_max_s": 0.5},
            {"kind": "ble", "id": "ble0", "adapter": "hci0", "min_interval_s": 0,
             "replay": str(RECORDINGS / "pump_room.jsonl")},
            {"kind": "opcua", "id": "plc", "endpoint": opcua_endpoint, "timeout_s": 2.0, "backoff_initial_s": 0.1,
             "backoff_max_s": 0.5},
        ],
        "devices": [
            {"id": "smoke-1", "name": "1栋烟感", "bus": "nb", "profile": "nbiot_smoke_detector", "category": "other",
             "location": {"building": "1栋"}, "options": {"topic": SMOKE_TOPIC}},
            {"id": "th-1", "name": "水泵房温湿度", "bus": "ble0", "category": "environment",
             "location": {"building": "地下室", "room": "水泵房"}, "options": {"mac": PV_MAC}},
            {"id": "pr-1", "name": "消防泵房PLC", "bus": "plc", "profile": "pump_room_plc", "category": "water_supply",
             "location": {"building": "地下室", "room": "消防泵房"}, "options": {"prefix": "PumpRoom1"},
             "poll_interval_s": 0.2},
        ],
    }
    config_path = tmp / "estate.yaml"
    config_path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    secrets_path = tmp / "secrets.yaml"
    secrets_path.write_text("{}\n", encoding="utf-8")
    secrets_path.chmod(0o600)
    return config_path, secrets_path




@dataclass
class Rig:
    client: httpx.AsyncClient
    app: Any
    config: EstateConfig
    broker: MosquittoBroker
    plc: PumpRoomPlc
    mqtt: MqttSource
    ble: BleSource
    opcua: OpcUaSource
    sink: RecordingSink
    csrf: str = ""

    async def login(self, role: Role = Role.ADMIN, client: httpx.AsyncClient | None = None) -> str:
        client = client or self.client
        name = f"{role.value}-user"
        users = self.app.state.panel.users
        if await users.by_name(name) is None:
            await users.create(name, PASSWORD, role)
        page = await client.get("/login")
        done = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf_from(page.text)})
        assert done.status_code == 303
        return str((await client.get("/api/v1/me")).json()["csrf_token"])


@pytest.fixture
async def rig(tmp_path: Path, mqtt_broker: MosquittoBroker) -> AsyncIterator[Rig]:
    async with PumpRoomPlc(tmp_path / "plc") as plc:
        config_path, secrets_path = write_estate(tmp_path, mqtt_broker.port, plc.endpoint)
        config = load_config(config_path, secrets_path)
        buses = {b.id: b for b in config.buses}
        devices = {d.bus: d for d in config.devices}
        mqtt = MqttSource(buses["nb"], [devices["nb"]], client_id="tools-test-gw")  # type: ignore[arg-type]
        records = load_recording(RECORDINGS / "pump_room.jsonl")
        ble = BleSource(buses["ble0"], [devices["ble0"]],  # type: ignore[arg-type]  # the replay as fast as taken
                        scanner_factory=lambda _bus: ReplayScanner(records))
        folder, uri = client_identity(buses["plc"], config)  # type: ignore[arg-type]
        opcua = OpcUaSource(buses["plc"], [devices["plc"]], certificate_dir=folder, application_uri=uri)  # type: ignore[arg-type]
        sink = RecordingSink()
        sources = [mqtt, ble, opcua]
        tasks = [asyncio.create_task(s.run(sink)) for s in sources]
        hooks = PanelHooks(bus_tools=DriverBusTools(lambda: config, lambda: sources))
        try:
            await mqtt.session.wait_connected()
            await opcua.wait_connected()
            async with Store(tmp_path / "edge.db", evidence_dir=tmp_path / "evidence", maintenance_interval_s=0,
                             batch_max_delay_ms=1) as store:
                app = create_app(store, config_path, secrets_path, clock=SystemClock(), hooks=hooks,
                                 settings=panel_settings(), passwords=cheap_passwords(), backlog_ttl_s=0)
                async with (app.router.lifespan_context(app),
                            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel.test",
                                              timeout=90) as client):
                    rig = Rig(client, app, config, mqtt_broker, plc, mqtt, ble, opcua, sink)
                    rig.csrf = await rig.login()
                    yield rig
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def publisher(port: int) -> MqttDeviceFarm:
    return MqttDeviceFarm("127.0.0.1", port, [SimDevice("1", "smoke", SMOKE_TOPIC)], client_id="tools-test-farm").start()


async def test_mqtt_listen_shows_what_arrives_and_leaves_the_source_alone(rig: Rig) -> None:
    farm = publisher(rig.broker.port)
    try:
        farm.publish(f"{SMOKE_TOPIC}/status", b"online", retain=True)
        farm.publish(f"{SMOKE_TOPIC}/blob", b"x" * 100_000)  # before the listen: only retained ones come back
        stop = threading.Event()

        def keep_publishing() -> None:  # the device keeps reporting while the installer listens
            sim = SimDevice("1", "smoke", SMOKE_TOPIC)
            while not stop.is_set():
                topic, payload = smoke_up(sim, __import__("datetime").datetime.now(__import__("datetime").UTC))
                farm.publish(topic, payload)
                farm.publish(f"{SMOKE_TOPIC}/big", bytes(range(256)) * 400, wait=True)  # 100 kB, not UTF-8
                stop.wait(0.05)

        thread = threading.Thread(target=keep_publishing, daemon=True)
        connects_before = rig.mqtt.session.connects
        thread.start()
        try:
            response = await rig.client.post("/api/v1/tools/mqtt-listen", headers={"x-csrf-token": rig.csrf}, json={
                "bus_id": "nb", "topic_filter": f"{SMOKE_TOPIC}/#", "seconds": 20, "max_messages": 6})
        finally:
            stop.set()
            thread.join(10)
    finally:
        farm.stop()
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["error"] is None and result["stopped_by"] == "count" and len(result["messages"]) == 6
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for message in result["messages"]:
        by_topic.setdefault(message["topic"], []).append(message)
    status = by_topic[f"{SMOKE_TOPIC}/status"][0]
    assert status["retained"] is True and status["preview"] == "online"
    assert f"{SMOKE_TOPIC}/blob" not in by_topic  # not retained: published before the listen, not heard
    up = by_topic[f"{SMOKE_TOPIC}/up"][0]
    assert '"alarm"' in up["preview"] and up["size"] == len(up["preview"].encode())
    big = by_topic[f"{SMOKE_TOPIC}/big"][0]
    assert big["size"] == 102_400 and big["preview"].startswith("hex:000102") and len(big["preview"]) == 4 + 2 * 256
    # The gateway's own session was not touched (a listener with its client id would have kicked it off).
    assert rig.mqtt.session.connects == connects_before and rig.mqtt.session.connected
    await eventually(lambda: ("smoke-1", "battery") in rig.sink.latest(), what="the source still storing readings")


async def test_mqtt_listen_refuses_bad_input_and_reports_an_unreachable_broker(rig: Rig) -> None:
    headers = {"x-csrf-token": rig.csrf}
    bad = (await rig.client.post("/api/v1/tools/mqtt-listen", headers=headers,
                                 json={"bus_id": "nb", "topic_filter": "a/#/b", "seconds": 1})).json()
    assert bad["error"] == "bad_filter" and "'#'" in bad["detail"]
    unknown = (await rig.client.post("/api/v1/tools/mqtt-listen", headers=headers,
                                     json={"bus_id": "plc", "topic_filter": "#", "seconds": 1})).json()
    assert unknown["error"] == "no_bus"
    too_long = await rig.client.post("/api/v1/tools/mqtt-listen", headers=headers,
                                     json={"bus_id": "nb", "topic_filter": "#", "seconds": 600})
    assert too_long.status_code == 422
    rig.broker.stop()
    try:
        down = (await rig.client.post("/api/v1/tools/mqtt-listen", headers=headers,
                                      json={"bus_id": "nb", "topic_filter": "#", "seconds": 2})).json()
    finally:
        rig.broker.start()
    assert down["error"] == "unreachable" and str(rig.broker.port) in down["detail"]


async def test_listen_form_needs_csrf_and_the_installer_role(rig: Rig) -> None:
    form = {"bus_id": "nb", "topic_filter": f"{SMOKE_TOPIC}/status", "seconds": "5", "max_messages": "1"}
    refused = await rig.client.post("/tools/mqtt-listen", data=form)
    assert refused.status_code == 403
    farm = publisher(rig.broker.port)
    try:
        farm.publish(f"{SMOKE_TOPIC}/status", b"online", retain=True)
    finally:
        farm.stop()
    done = await rig.client.post("/tools/mqtt-listen", data={**form, "csrf_token": rig.csrf})
    assert done.status_code == 303 and done.headers["location"] == "/tools#mqtt-listen"
    page = (await rig.client.get("/tools")).text
    table = page[page.index('id="listen-messages"'):]
    assert f"{SMOKE_TOPIC}/status" in table and ">online<" in table and "保留消息" in table
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://panel.test") as other:
        csrf = await rig.login(Role.OPERATOR, other)
        staff = await other.post("/tools/mqtt-listen", data={**form, "csrf_token": csrf})
        assert staff.status_code == 403
        assert (await other.get("/api/v1/tools/ble-scan")).status_code == 403
    assert "tools.mqtt_listen" in {e.action for e in await rig.app.state.panel.audit.search()}


async def test_ble_scan_list_from_replayed_advertisements(rig: Rig) -> None:
    await eventually(lambda: rig.ble.advertisements >= 10, what="the whole recording replayed")
    scans = (await rig.client.get("/api/v1/tools/ble-scan")).json()
    assert [s["bus_id"] for s in scans] == ["ble0"] and scans[0]["replay"] == "pump_room.jsonl"
    entries = {e["address"]: e for e in scans[0]["entries"]}
    pv = entries[PV_MAC]
    assert pv["device_id"] == "th-1" and pv["format"] == "pvvx" and -100 < pv["rssi"] < 0 and pv["count"] >= 2
    assert pv["last_seen_us"] is not None
    assert len(entries) >= 3 and any(e["device_id"] is None for e in entries.values())  # unconfigured advertisers too
    page = (await rig.client.get("/tools")).text
    section = page[page.index('id="ble-scan"'):page.index('id="opcua-browse"')]
    assert PV_MAC in section and 'href="/devices/th-1"' in section and str(pv["rssi"]) in section
    assert 'id="ble-replay-ble0"' in section and "回放录制数据" in section  # a replay is labelled as one


async def test_opcua_browse_gives_ids_the_config_takes(rig: Rig) -> None:
    headers = {"x-csrf-token": rig.csrf}
    result = (await rig.client.post("/api/v1/tools/opcua-browse", headers=headers,
                                    json={"bus_id": "plc", "root": "i=85", "max_depth": 4})).json()
    assert result["error"] is None and not result["truncated"]
    by_path = {n["path"]: n for n in result["nodes"]}
    current = by_path["PumpRoom1.Pump1.Current"]
    assert current["node_id"] == f"nsu={NAMESPACE};s=PumpRoom1.Pump1.Current"
    assert current["node_class"] == "Variable" and current["data_type"] == "Double" and current["value"] == "18.5"
    assert parse_node_ref(current["node_id"]).uri == NAMESPACE  # copied into a profile as is
    below = (await rig.client.post("/api/v1/tools/opcua-browse", headers=headers, json={
        "bus_id": "plc", "root": f"nsu={NAMESPACE};s=PumpRoom1.Pump2", "max_depth": 1})).json()
    assert sorted(n["path"] for n in below["nodes"]) == ["Current", "Frequency", "Running"]
    by_index = (await rig.client.post("/api/v1/tools/opcua-browse", headers=headers,
                                      json={"bus_id": "plc", "root": "ns=2;s=PumpRoom1"})).json()
    assert by_index["error"] == "bad_node" and "URI" in by_index["detail"]
    missing = (await rig.client.post("/api/v1/tools/opcua-browse", headers=headers,
                                     json={"bus_id": "plc", "root": f"nsu={NAMESPACE};s=NoSuchRoom"})).json()
    assert missing["error"] == "bad_node"
    capped = (await rig.client.post("/api/v1/tools/opcua-browse", headers=headers,
                                    json={"bus_id": "plc", "max_depth": 4, "max_nodes": 3})).json()
    assert len(capped["nodes"]) == 3 and capped["truncated"]
    done = await rig.client.post("/tools/opcua-browse", data={"bus_id": "plc", "root": "i=85", "max_depth": "4",
                                                              "csrf_token": rig.csrf})
    assert done.status_code == 303
    page = (await rig.client.get("/tools")).text
    table = page[page.index('id="browse-nodes"'):]
    assert f"nsu={NAMESPACE};s=PumpRoom1.Pump1.Current" in table and "变量" in table


async def test_opcua_browse_of_a_stopped_server_is_a_result(rig: Rig) -> None:
    await rig.plc.stop()
    result = (await rig.client.post("/api/v1/tools/opcua-browse", headers={"x-csrf-token": rig.csrf},
                                    json={"bus_id": "plc"})).json()
    assert result["error"] == "unreachable" and rig.plc.endpoint.split("/")[2] in result["detail"]


async def test_devices_page_shows_each_devices_last_message(rig: Rig) -> None:
    farm = publisher(rig.broker.port)
    try:
        farm.report("1")
    finally:
        farm.stop()
    await eventually(lambda: rig.mqtt.devices["smoke-1"].last_topic is not None, what="the smoke report")
    await eventually(lambda: rig.ble.sensors["th-1"].advertisements > 0, what="the sensor's advertisement")
    await eventually(lambda: rig.opcua.devices["pr-1"].last_point is not None, what="a PLC value")
    page = (await rig.client.get("/devices")).text
    shown = dict(re.findall(r'data-kind="(\w+)"[^>]*>(.*?)</span>\s*(?:<br>|</td>)', page, re.S))
    assert set(shown) == {"mqtt", "ble", "opcua"}
    assert f"{SMOKE_TOPIC}/" in shown["mqtt"] and "&#34;battery&#34;" in shown["mqtt"]
    assert "pvvx" in shown["ble"] and "信号强度" in shown["ble"] and "回放录制数据" in shown["ble"]
    assert f"nsu={NAMESPACE};s=PumpRoom1." in shown["opcua"]
    device = (await rig.client.get("/devices/smoke-1")).text
    assert 'id="last-message"' in device and f"{SMOKE_TOPIC}/" in device


async def test_one_listen_or_browse_at_a_time(rig: Rig) -> None:
    """A listen holds the tools for its duration; a second request is refused at once (API 409, page: a message)."""
    headers = {"x-csrf-token": rig.csrf}
    first = asyncio.create_task(rig.client.post("/api/v1/tools/mqtt-listen", headers=headers, json={
        "bus_id": "nb", "topic_filter": "nobody/publishes/here", "seconds": 3, "max_messages": 1}))
    await eventually(lambda: getattr(rig.app.state, "bus_tool_lock", None) is not None
                     and rig.app.state.bus_tool_lock.locked(), what="the first listen running")
    second = await rig.client.post("/api/v1/tools/opcua-browse", headers=headers, json={"bus_id": "plc"})
    assert second.status_code == 409
    page_post = await rig.client.post("/tools/mqtt-listen", data={"bus_id": "nb", "topic_filter": "#", "seconds": "5",
                                                                  "csrf_token": rig.csrf})
    assert page_post.status_code == 303
    page = (await rig.client.get("/tools")).text
    assert '<span id="listen-error">另一个监听或浏览正在进行，请稍后再试。</span>' in page and "None" not in page
    done = (await first).json()
    assert done["stopped_by"] == "time" and done["messages"] == [] and done["error"] is None


async def test_opcua_client_certificate_for_the_plcs_trust_list(rig: Rig) -> None:
    """The certificate the PLC must trust: the very one the running source presents, shown and downloadable."""
    import hashlib

    api = await rig.client.get("/api/v1/tools/opcua-certificate", params={"bus_id": "plc"})
    assert api.status_code == 200
    shown = api.json()
    assert shown["error"] is None
    # The file the bus's sessions present once its security policy asks for one (this bus runs without).
    cert_file = rig.opcua.certificate_dir / CERT_NAME
    assert hashlib.sha1(cert_file.read_bytes(), usedforsecurity=False).hexdigest() == shown["thumbprint_sha1"]
    assert shown["application_uri"] == rig.opcua.application_uri == "urn:estate-edge:GW-TOOLS:plc"
    assert shown["pem"].startswith("-----BEGIN CERTIFICATE-----\n")
    download = await rig.client.get("/tools/opcua-certificate/plc.der")
    assert download.status_code == 200 and download.headers["content-type"] == "application/pkix-cert"
    assert hashlib.sha1(download.content, usedforsecurity=False).hexdigest() == shown["thumbprint_sha1"]
    assert download.content == cert_file.read_bytes()
    # Shown again: the same certificate (made once, kept), not a new one the PLC would not trust.
    again = (await rig.client.get("/api/v1/tools/opcua-certificate", params={"bus_id": "plc"})).json()
    assert again["thumbprint_sha1"] == shown["thumbprint_sha1"]
    # The page: a form post (CSRF-checked), then the thumbprint and the download link on /tools.
    refused = await rig.client.post("/tools/opcua-certificate", data={"bus_id": "plc"})
    assert refused.status_code == 403
    done = await rig.client.post("/tools/opcua-certificate", data={"bus_id": "plc", "csrf_token": rig.csrf})
    assert done.status_code == 303
    page = (await rig.client.get("/tools")).text
    section = page[page.index('id="opcua-certificate"'):page.index('id="opcua-browse"')]
    assert shown["thumbprint_sha1"] in section and "/tools/opcua-certificate/plc.der" in section
    assert "OPC-UA 客户端证书" in section
    # An unknown bus is a result, not a crash; a viewer may not see or download it.
    unknown = (await rig.client.get("/api/v1/tools/opcua-certificate", params={"bus_id": "nope"})).json()
    assert unknown["error"] == "no_bus"
    viewer = httpx.AsyncClient(transport=rig.client._transport, base_url="http://panel.test")
    async with viewer:
        await rig.login(Role.VIEWER, viewer)
        assert (await viewer.get("/tools/opcua-certificate/plc.der")).status_code == 403
