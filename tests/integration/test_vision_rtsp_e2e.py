"""The whole camera chain live: WS-Discovery -> ONVIF (clock offset, stream URI) -> RTSP -> vision -> events.

The fire-lane story (simulators/camera/scenarios.py ``lane_a7_park``) is played 20 times faster
(``time_scale`` 0.05: the car stands 1.6-11.6 s into each 19 s loop) with dwell, hold and the
other timings scaled the same way, over the simulator's real RTSP server. Run twice: a camera
with only a main stream, and one with a half-size sub-stream, which the gateway picks by itself
(it still fills the 416 px model input), scaling the zones drawn on the main stream to it. Either
way the analysed profile is asked (ONVIF) for the analysis rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from edge.cameras import camera_source
from edge.config.cameras import CameraConfig
from edge.processes import held_ports
from simulators.camera.sim import CameraSimulator, SimCameraSpec
from tests.helpers.platform import free_port
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

SCALE = 0.05


def free_udp_port() -> int:
    with held_ports() as free:
        return free(socket.SOCK_DGRAM)


@pytest.mark.slow
@pytest.mark.parametrize("sub_size", [None, (584, 376)], ids=["main-only", "sub-stream"])
async def test_fire_lane_alarm_over_discovery_onvif_and_rtsp(sub_size: tuple[int, int] | None) -> None:
    spec = SimCameraSpec("lane1", "lane_a7_park", time_scale=SCALE, fps=10, clock_offset_s=-45.0,
                         sub_size=sub_size)
    async with CameraSimulator([spec], rtsp_port=free_port(), discovery_port=free_udp_port(),
                               username="admin", password="pw") as sim:
        cfg = CameraConfig.model_validate({
            "id": "lane1", "name": "3栋北侧消防通道", "location": {"building": "3"},
            "discovery": {"endpoint": sim.endpoint("lane1"), "port": sim.discovery_port, "interface": "127.0.0.1",
                          "timeout_s": 0.5},
            "username": "admin", "password": "pw", "fps": 5,
            "zones": [z.as_config() for z in sim.cameras["lane1"].scenario.zones],
            "analytics": {"dwell_s": 120 * SCALE, "hold_s": 60 * SCALE, "min_presence_s": 10 * SCALE,
                          "exit_grace_s": 5 * SCALE, "track_max_gap_s": 1.0},
            "gating": {"heartbeat_s": 0.5, "settle_s": 0.5}, "stream": {"request_fps": True},
            "health": {"interval_s": 1.0},
        })
        sink = RecordingSink()
        source = camera_source(cfg)
        task = asyncio.create_task(source.run(sink))
        try:
            with contextlib.suppress(AssertionError):  # what did happen is asserted below, with the codes seen
                await eventually(lambda: any(e.code == "fire.lane_cleared" for e in sink.events_seen), timeout=40,
                                 what="fire.lane_cleared")
            view = await source.analyser.latest_view()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    codes = [e.code for e in sink.events_seen if e.code.startswith("fire.")]
    assert codes == ["fire.lane_blocked", "fire.lane_cleared"]
    blocked = sink.events_seen[0]
    assert blocked.data["label"] == "car" and blocked.evidence and blocked.evidence[:2] == b"\xff\xd8"
    assert any(s.online for s in sink.statuses)
    offsets = [r.value for r in sink.readings_seen if r.point == "clock_offset_s"]
    assert offsets and abs(offsets[-1] + 45) < 2
    alive = [r.value for r in sink.readings_seen if r.point == "stream_alive"]
    assert alive[-1] == 1.0
    # Zones as analysed: drawn on the 1168 x 750 main stream, halved on the sub-stream.
    drawn = max(p[0] for p in cfg.zones[0].polygon)
    analysed = float(source.analyser.pipeline.zones[0].polygon[:, 0].max()) if source.analyser.pipeline else 0.0
    assert analysed == pytest.approx(drawn / 2 if sub_size else drawn, rel=0.01)
    assert view is not None and (view.width, view.height) == (1168, 750)  # the panel sees main-stream pixels
    # The analysed profile was asked for the analysis rate (5 of the camera's 10 fps).
    assert sim.cameras["lane1"].service.rate_changes == [("sub" if sub_size else "main", 5)]
