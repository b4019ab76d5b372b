"""``python -m simulators.mqtt --start-broker``: the device farm starts its own Mosquitto and publishes through it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drivers.mqtt.payload import MessageDecoder
from drivers.mqtt.profile import MqttProfileLibrary

REPO = Path(__file__).resolve().parents[2]


def test_farm_cli_publishes_decodable_reports(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.mqtt", "--start-broker", str(tmp_path / "broker"), "--interval", "0.1",
         "--smoke", "1", "--leak", "0", "--lift", "1", "--duration", "20"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    got: list[paho.MQTTMessage] = []
    arrived = threading.Event()
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines == ["DEVICE smoke-1 nbiot_smoke_detector estate/demo/smoke/1",
                         "DEVICE lift-1 lift_box_json estate/demo/lift/1", "READY"]
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="cli-test")

        def on_message(_c: object, _u: object, message: paho.MQTTMessage) -> None:
            got.append(message)
            if {m.topic for m in got} >= {"estate/demo/smoke/1/up", "estate/demo/lift/1/report"}:
                arrived.set()

        client.on_message = on_message
        client.on_connect = lambda c, *_: c.subscribe("estate/demo/#", qos=1)
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert arrived.wait(10), f"reports did not arrive ({[m.topic for m in got]})"
        client.disconnect()
        client.loop_stop()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    library = MqttProfileLibrary()
    smoke = next(m for m in got if m.topic == "estate/demo/smoke/1/up")
    lift = next(m for m in got if m.topic == "estate/demo/lift/1/report")
    now = datetime.now(UTC)
    assert {r.point for r in MessageDecoder(library.get("nbiot_smoke_detector").messages[0]).decode("s", smoke.payload, now)} \
        >= {"alarm", "battery", "signal_rsrp_dbm"}
    assert {r.point for r in MessageDecoder(library.get("lift_box_json").messages[0]).decode("l", lift.payload, now)} \
        >= {"floor", "running", "motor_current"}
    with pytest.raises(OSError):  # the farm stopped its own broker with itself
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
