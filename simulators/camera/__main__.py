"""Run the camera simulator: ``python -m simulators.camera --camera lane1=lane_a7_park@18081 ...``.

Prints one JSON line on stdout once every service listens (camera ids, ONVIF ports, RTSP and
snapshot URIs, WS-Discovery endpoints), then serves until interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys

from simulators.camera.scenarios import SCENARIOS
from simulators.camera.sim import CameraSimulator, SimCameraSpec


def _size(value: str) -> tuple[int, int]:
    width, _, height = value.partition("x")
    return int(width), int(height)


def parse_camera(text: str) -> SimCameraSpec:
    """``ID=SCENARIO@ONVIF_PORT`` with optional ``,scale=F,fps=N,offset=S,main=WxH,sub=WxH,snapshot_auth=basic,
    clock_auth=1,refuse=401,noise=SIGMA,bitrate=SCALE``."""
    head, *opts = text.split(",")
    try:
        cam_id, rest = head.split("=", 1)
        name, port = rest.split("@", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ID=SCENARIO@PORT[,option=value...], got {text!r}") from None
    if name not in SCENARIOS:
        raise argparse.ArgumentTypeError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    spec = SimCameraSpec(cam_id, name, int(port))
    for opt in opts:
        key, _, value = opt.partition("=")
        if key == "scale":
            spec.time_scale = float(value)
        elif key == "fps":
            spec.fps = int(value)
        elif key == "offset":
            spec.clock_offset_s = float(value)
        elif key in ("main", "sub"):
            setattr(spec, f"{key}_size", _size(value))
        elif key == "snapshot_auth":
            spec.http_auth = value
        elif key == "clock_auth":
            spec.clock_needs_auth = value not in ("0", "false", "no")
        elif key == "refuse":
            spec.auth_failure_status = int(value)
        elif key == "noise":
            spec.noise = float(value)
        elif key == "bitrate":
            spec.bitrate_scale = float(value)
        else:
            raise argparse.ArgumentTypeError(f"unknown camera option {key!r}")
    return spec


async def run(args: argparse.Namespace) -> None:
    sim = CameraSimulator(
        args.camera, host=args.host, rtsp_port=args.rtsp_port, discovery_port=args.discovery_port,
        username=args.user, password=args.password, rtsp_auth=not args.no_rtsp_auth,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sim:
        info = {
            cam_id: {
                "scenario": cam.spec.scenario,
                "onvif": f"{cam.service.base_url}/onvif/device_service",
                "onvif_port": cam.service.port,
                "rtsp": cam.service.media.stream_uri,
                "profiles": {p.token: {"rtsp": p.stream_uri, "width": p.width, "height": p.height}
                             for p in cam.service.media.profiles or ()},
                "snapshot": f"{cam.service.base_url}{cam.service.media.snapshot_path}",
                "endpoint": sim.endpoint(cam_id),
                "zones": [z.as_config() for z in cam.scenario.zones],
            }
            for cam_id, cam in sim.cameras.items()
        }
        print(json.dumps({"ready": True, "cameras": info}), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.camera", description=__doc__.splitlines()[0])
    parser.add_argument("--camera", action="append", type=parse_camera, required=True,
                        help="ID=SCENARIO@ONVIF_PORT[,scale=F,fps=N,offset=S,main=WxH,sub=WxH,snapshot_auth=basic,"
                        "clock_auth=1,refuse=401,noise=SIGMA,bitrate=SCALE]; repeat for several cameras "
                        "(noise: sensor noise in grey levels; bitrate: x the default, about 2 Mbit/s at 720p)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rtsp-port", type=int, default=8554)
    parser.add_argument("--discovery-port", type=int, default=None, help="WS-Discovery UDP port (off if unset)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default=os.environ.get("CAMERA_SIM_PASSWORD", "admin"),
                        help="default $CAMERA_SIM_PASSWORD, else admin; the variable keeps it out of the process "
                        "list, and a value starting with '-' is read as it is")
    parser.add_argument("--no-rtsp-auth", action="store_true", help="serve RTSP without a login")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
