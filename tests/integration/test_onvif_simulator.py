"""The ONVIF driver against the camera simulator over real sockets on 127.0.0.1.

Device information, profiles, stream and snapshot URIs with WS-UsernameToken digest auth; a
camera whose clock is an hour off; wrong credentials; an XXE payload in both directions (a hostile
camera's reply, and a request to the simulator); WS-Discovery by multicast and unicast on a
chosen port; snapshots behind HTTP digest; and a camera that is not there at all.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from drivers.camera.rtsp import RtspFrameSource
from drivers.camera.snapshot import SnapshotFrameSource
from drivers.onvif.client import OnvifAuthError, OnvifClient
from drivers.onvif.discovery import probe
from edge.cameras import camera_source
from edge.config.cameras import CameraConfig
from edge.errors import DeviceProtocolError
from edge.processes import held_ports
from simulators.camera.sim import CameraSimulator, SimCameraSpec
from tests.helpers.platform import free_port
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

PASSWORD = "Cam-pa55"


def free_udp_port() -> int:
    with held_ports() as free:
        return free(socket.SOCK_DGRAM)


@pytest.fixture
async def sim() -> AsyncIterator[CameraSimulator]:
    simulator = CameraSimulator(
        [SimCameraSpec("lane1", "lane_a7_park", clock_offset_s=3600.0, fps=2),
         SimCameraSpec("evil", "door_b2_motorcycle", hostile=True, fps=2)],
        rtsp_port=free_port(), discovery_port=free_udp_port(), username="admin", password=PASSWORD,
    )
    async with simulator:
        yield simulator


def port(sim: CameraSimulator, cam: str) -> int:
    return sim.cameras[cam].service.port


async def test_device_media_and_uris(sim: CameraSimulator) -> None:
    async with OnvifClient("lane1", "127.0.0.1", port(sim, "lane1"), "admin", PASSWORD) as client:
        info = await client.device_information()
        profiles = await client.profiles()
        stream = await client.stream_uri(profiles[0].token)
        snapshot = await client.snapshot_uri(profiles[0].token)
    assert (info.manufacturer, info.serial) == ("EstateSim", "SIM-lane1")
    assert [(p.token, p.encoding, p.width, p.height) for p in profiles] == [("main", "H264", 1168, 750)]
    assert stream == sim.rtsp.url("lane1")
    assert snapshot.endswith("/onvif/snapshot/lane1.jpg")
    ops = sim.cameras["lane1"].service.requests
    assert {"GetDeviceInformation", "GetProfiles", "GetStreamUri", "GetSnapshotUri"} <= set(ops)
    assert sim.cameras["lane1"].service.auth_failures == 0


async def test_camera_clock_an_hour_ahead_is_measured_and_compensated(sim: CameraSimulator) -> None:
    async with OnvifClient("lane1", "127.0.0.1", port(sim, "lane1"), "admin", PASSWORD) as client:
        assert client.clock_offset_s is not None and abs(client.clock_offset_s - 3600) < 2
        await client.device_information()  # authenticated: only works with camera-time tokens
        assert abs(await client.measure_clock_offset() - 3600) < 1.5


async def test_wrong_password_is_an_auth_error(sim: CameraSimulator) -> None:
    async with OnvifClient("lane1", "127.0.0.1", port(sim, "lane1"), "admin", "guess") as client:
        with pytest.raises(OnvifAuthError, match="credentials refused"):
            await client.device_information()


async def test_xxe_reply_from_a_hostile_camera_is_refused(sim: CameraSimulator) -> None:
    async with OnvifClient("evil", "127.0.0.1", port(sim, "evil"), "admin", PASSWORD) as client:
        with pytest.raises(DeviceProtocolError, match="DTD or entities") as info:
            await client.device_information()
    hostname = socket.gethostname()
    assert hostname not in str(info.value)


async def test_xxe_request_to_the_simulator_is_refused(sim: CameraSimulator) -> None:
    payload = (
        '<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl">&x;</GetSystemDateAndTime>'
        "</s:Body></s:Envelope>"
    )
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"{sim.cameras['lane1'].service.base_url}/onvif/device_service", content=payload)
    assert reply.status_code == 400
    assert "refused" in reply.text and "root:" not in reply.text


async def test_ws_discovery_multicast_and_unicast_on_a_chosen_port(sim: CameraSimulator) -> None:
    assert sim.discovery_port is not None
    found = await probe(timeout=0.8, port=sim.discovery_port, interface="127.0.0.1")
    by_name = {d.scope_value("name"): d for d in found}
    assert set(by_name) == {"lane1", "evil"}
    assert by_name["lane1"].endpoint == sim.endpoint("lane1")
    assert by_name["lane1"].xaddrs == (f"http://127.0.0.1:{port(sim, 'lane1')}/onvif/device_service",)
    unicast = await probe(timeout=0.5, port=sim.discovery_port, host="127.0.0.1")
    assert {d.endpoint for d in unicast} == {d.endpoint for d in found}


async def test_snapshots_behind_http_digest(sim: CameraSimulator) -> None:
    url = f"{sim.cameras['lane1'].service.base_url}/onvif/snapshot/lane1.jpg"
    async with SnapshotFrameSource(url, username="admin", password=PASSWORD, interval_s=0.2) as source:
        first = await source.next_frame(0, timeout=5)
        second = await source.next_frame(first.seq if first else 0, timeout=5)
    assert first is not None and second is not None and second.seq > first.seq
    assert first.image.shape == (750, 1168, 3) and first.image.dtype == np.uint8
    async with SnapshotFrameSource(url, username="admin", password="guess", interval_s=0.2) as bad:
        assert await bad.next_frame(0, timeout=0.8) is None
        status = bad.status()
    assert not status.connected and "401" in (status.last_error or "")


async def test_unreachable_camera_reports_offline_and_keeps_retrying() -> None:
    cam = CameraConfig.model_validate({"id": "gone", "name": "gone", "location": {"building": "1"},
                                       "host": "127.0.0.1", "port": free_port(), "username": "admin",
                                       "password": "x", "timeout_s": 1})
    sink = RecordingSink()
    source = camera_source(cam, backoff_max_s=0.3)
    task = asyncio.create_task(source.run(sink))
    # Every failed attempt is reported (edge.availability): two reports show it kept retrying.
    await eventually(lambda: len(sink.statuses) >= 2, what="two failed connection attempts reported")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.statuses and not sink.statuses[0].online
    assert "cannot connect" in (sink.statuses[0].error or "")
    reachable = [r.value for r in sink.readings_seen if r.point == "reachable"]
    assert len(reachable) >= 2 and set(reachable) == {0.0}  # retried, still down


# -- interop seen on third-party cameras (issue 11, point 7) ----------------------------------------


@pytest.fixture
async def strict() -> AsyncIterator[CameraSimulator]:
    """Cameras that want a login for everything: one refusing with a SOAP fault, one with HTTP 401
    (and Basic-only snapshots); clocks 40 s off, within what WS-Security tolerates."""
    simulator = CameraSimulator(
        [SimCameraSpec("fault", "lane_a7_park", fps=2, clock_needs_auth=True, clock_offset_s=40.0),
         SimCameraSpec("http401", "door_b2_motorcycle", fps=2, clock_needs_auth=True, clock_offset_s=-40.0,
                       auth_failure_status=401, http_auth="basic", sub_size=(320, 214))],
        rtsp_port=free_port(), username="admin", password=PASSWORD,
    )
    async with simulator:
        yield simulator


@pytest.mark.parametrize(("cam", "offset"), [("fault", 40.0), ("http401", -40.0)])
async def test_clock_checked_on_cameras_that_want_a_login_for_it(strict: CameraSimulator, cam: str,
                                                                  offset: float) -> None:
    async with OnvifClient(cam, "127.0.0.1", port(strict, cam), "admin", PASSWORD) as client:
        assert client.clock_offset_s is not None and abs(client.clock_offset_s - offset) < 2
        assert (await client.device_information()).serial == f"SIM-{cam}"
        assert abs(await client.measure_clock_offset() - offset) < 2
    assert "GetSystemDateAndTime" in strict.cameras[cam].service.requests


async def test_wrong_password_is_an_auth_error_when_the_camera_answers_401(strict: CameraSimulator) -> None:
    with pytest.raises(OnvifAuthError, match="credentials refused"):
        async with OnvifClient("http401", "127.0.0.1", port(strict, "http401"), "admin", "guess"):
            pass
    with pytest.raises(OnvifAuthError, match="credentials refused"):
        async with OnvifClient("fault", "127.0.0.1", port(strict, "fault"), "admin", "guess"):
            pass


async def test_snapshots_with_http_basic_and_a_refused_login(strict: CameraSimulator) -> None:
    url = f"{strict.cameras['http401'].service.base_url}/onvif/snapshot/http401.jpg"
    async with SnapshotFrameSource(url, username="admin", password=PASSWORD, interval_s=0.2) as source:
        frame = await source.next_frame(0, timeout=5)
    assert frame is not None and frame.image.shape == (426, 640, 3)
    async with SnapshotFrameSource(url, username="admin", password="guess", interval_s=0.2) as bad:
        assert await bad.next_frame(0, timeout=0.8) is None
        status = bad.status()
    assert not status.connected and "authentication refused" in (status.last_error or "")


async def test_ready_means_a_snapshot_can_be_served(strict: CameraSimulator) -> None:
    """The simulator was just started by the fixture: the very first snapshot is a picture."""
    service = strict.cameras["fault"].service
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", PASSWORD)) as http:
        reply = await http.get(f"{service.base_url}{service.media.snapshot_path}")
    assert reply.status_code == 200 and reply.content[:2] == b"\xff\xd8"


async def test_scopes_hostname_sources_interfaces_and_the_sub_stream(strict: CameraSimulator) -> None:
    async with OnvifClient("http401", "127.0.0.1", port(strict, "http401"), "admin", PASSWORD) as client:
        scopes = await client.scopes()
        hostname = await client.hostname()
        profiles = await client.profiles()
        sub_uri = await client.stream_uri("sub")
        assert client._camera is not None  # the library's own calls parse the simulator's replies
        device = await client._camera.create_devicemgmt_service()
        interfaces = await device.GetNetworkInterfaces()
        media = await client._camera.create_media_service()
        sources = await media.GetVideoSources()
    assert "onvif://www.onvif.org/name/http401" in scopes
    assert hostname == "cam-http401"
    assert [(p.token, p.width, p.height) for p in profiles] == [("main", 640, 426), ("sub", 320, 214)]
    assert sub_uri == strict.rtsp.url("http401_sub")
    assert interfaces[0].Info.Name == "eth0" and interfaces[0].IPv4.Config.Manual[0].Address == "127.0.0.1"
    assert (sources[0].Resolution.Width, sources[0].Resolution.Height) == (640, 426)


async def test_the_analysed_stream_is_asked_for_the_analysis_rate(strict: CameraSimulator) -> None:
    async with OnvifClient("http401", "127.0.0.1", port(strict, "http401"), "admin", PASSWORD) as client:
        assert await client.limit_frame_rate("sub", 5) == 2  # already slower: left alone
        assert await client.limit_frame_rate("sub", 1) == 1
        profiles = {p.token: p.fps for p in await client.profiles()}
        with pytest.raises(DeviceProtocolError, match="FrameRateLimit must be") as refused:
            await client.limit_frame_rate("main", 0)
        assert not isinstance(refused.value, OnvifAuthError)
    assert profiles == {"main": 2.0, "sub": 1.0}
    assert strict.cameras["http401"].service.rate_changes == [("sub", 1)]
    # The sub-stream now carries one frame a second, while the main stream keeps its two.
    url = strict.rtsp.url("http401_sub", credentials=True)
    async with RtspFrameSource(url, max_fps=5, open_timeout_s=10, read_timeout_s=5, name="rate") as source:
        assert await source.next_frame(0, timeout=15) is not None
        start, grabbed = time.monotonic(), source.grabbed
        await asyncio.sleep(4.0)  # measures the frame rate over a window: a test of time itself
        rate = (source.grabbed - grabbed) / (time.monotonic() - start)
    assert 0.5 <= rate <= 1.5
