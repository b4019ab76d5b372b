"""The camera simulator as the demo runs it (``python -m simulators.camera``), read by a snapshot-mode camera."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cameras import camera_source
from edge.config.cameras import CameraConfig
from tests.helpers.platform import free_port
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually_async

REPO = Path(__file__).resolve().parents[2]


async def test_cli_serves_cameras_and_a_snapshot_camera_reads_them() -> None:
    """The password comes from the environment, as the demo passes it: never on the command line (``ps``
    shows it), and a generated one may start with "-", which argparse once took for an option (the demo
    failed to start its camera simulator about once in 64 runs)."""
    onvif_port = free_port()
    password = "-pw_from_env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.camera", "--rtsp-port", str(free_port()), "--user", "admin",
         "--camera", f"CAM-LOBBY=door_b2_motorcycle@{onvif_port},fps=4",
         "--camera", f"CAM-LIFT=lift_b1_ebike@{free_port()}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "CAMERA_SIM_PASSWORD": password},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        ready = json.loads(line)
        assert ready["ready"] is True and set(ready["cameras"]) == {"CAM-LOBBY", "CAM-LIFT"}
        lobby = ready["cameras"]["CAM-LOBBY"]
        assert lobby["onvif_port"] == onvif_port and lobby["rtsp"].endswith("/CAM-LOBBY")
        assert lobby["zones"][0]["kind"] == "ebike_entry" and lobby["zones"][0]["entry_line"]

        cfg = CameraConfig.model_validate({
            "id": "CAM-LOBBY", "name": "lobby", "location": {"building": "2"}, "host": "127.0.0.1",
            "port": onvif_port, "username": "admin", "password": password,
            "stream": {"mode": "snapshot", "snapshot_interval_s": 0.25}, "zones": lobby["zones"],
            "health": {"interval_s": 0.5},
        })
        sink = RecordingSink()
        source = camera_source(cfg)
        task = asyncio.create_task(source.run(sink))

        async def analysed_and_healthy() -> bool:
            alive = [r.value for r in sink.readings_seen if r.point == "stream_alive"]
            return bool(sink.statuses) and bool(alive) and await source.analyser.latest_view() is not None

        await eventually_async(analysed_and_healthy, timeout=30, what="a health report and an analysed frame")
        view = await source.analyser.latest_view()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # edge.availability: each healthy check is reported until the camera counts as online.
        assert sink.statuses and all(s.online for s in sink.statuses)
        assert [r.value for r in sink.readings_seen if r.point == "stream_alive"][-1] == 1.0
        assert view is not None and (view.width, view.height) == (640, 426)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
