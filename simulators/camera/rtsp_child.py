"""RTSP server child process: live JPEG frames in on stdin, H.264 over RTSP out (GStreamer).

Runs under Debian's ``/usr/bin/python3``, the interpreter ``python3-gi`` is built for (a venv on
another Python cannot import ``gi``; see /work/shared/docs/tried-here.md), so it uses only ``gi``
and the standard library. The parent (``simulators.camera.rtsp.RtspServerProcess``) renders the
scenario frames and writes them here; this process only encodes and serves, like a camera's
encoder chip behind its sensor.

Mounts: ``--mount NAME:WIDTHxHEIGHT:FPS[:BITRATE_SCALE]`` (repeatable) serves ``rtsp://HOST:PORT/NAME``. Each mount
is a *shared* media (all clients see the same live stream, as with a real camera) whose pipeline is::

    appsrc (image/jpeg, live, leaky: keeps the newest 2) ! jpegdec ! videoconvert ! I420
      ! x264enc (zerolatency, superfast, keyframe every second) ! rtph264pay config-interval=1

``superfast``, not ``ultrafast``: ultrafast switches off CABAC and the deblocking filter, which is
most of what decoding a real camera's H.264 costs, so a gateway benchmarked on it would look
several times cheaper than on any real camera (cameras' encoders use both).

Timestamps are set here, not by ``do-timestamp``: each frame gets the pipeline's running time
when it arrives, forced strictly above the previous frame's (frames written back to back, or a
clock read racing the streaming thread, would otherwise tie), so the stream's timestamps are
monotonic as a real camera's are and a reader never sees time run backwards.

A key frame is forced once a second of stream time (a downstream force-key-unit event), so a
client joining a stream whose rate was lowered through ONVIF still starts within a second, as
cameras keep their GOP in seconds. x264's own key-frame limit is set to three seconds of frames, a
backstop that never fires first: with both at one second, x264 placed its key frame one frame before
the forced one whenever arrival jitter pushed a second past ``fps`` frames, and the stream carried
key frames in pairs 0.1 s apart, which no camera sends.

Authentication: with ``SIM_RTSP_CREDENTIALS`` (``user\npassword``) in the environment, every
mount needs that user (RTSP Digest authentication), as on a real camera.

Stdin protocol, repeated: 1 byte mount index, 4 bytes big-endian length, then that many JPEG bytes.
Frames for a mount nobody is watching are dropped. Prints ``READY <port>`` once listening and exits
when stdin closes (the parent died or stopped it).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer, GstVideo  # noqa: E402


class Mount:
    def __init__(self, name: str, width: int, height: int, fps: int, bitrate_scale: float = 1.0) -> None:
        self.name = name
        self.bitrate_scale = bitrate_scale
        self.width = width
        self.height = height
        self.fps = fps
        self.appsrc: Gst.Element | None = None
        self.lock = threading.Lock()
        self.last_pts: int | None = None
        self.last_key: int | None = None

    def bitrate(self) -> int:
        """kbit/s a camera would spend: about 2 Mbit/s at 720p, scaled by pixel count (>= 256), x the mount's scale."""
        return max(256, round(2000 * self.width * self.height / (1280 * 720) * self.bitrate_scale))

    def launch(self) -> str:
        caps = f"image/jpeg,width={self.width},height={self.height},framerate={self.fps}/1"
        return (
            f'( appsrc name=src is-live=true do-timestamp=false format=time block=false max-buffers=2 '
            f'leaky-type=downstream caps="{caps}" ! jpegdec ! videoconvert ! video/x-raw,format=I420 '
            f"! x264enc tune=zerolatency speed-preset=superfast key-int-max={self.fps * 3} bitrate={self.bitrate()} "
            f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )

    def on_configure(self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        appsrc = element.get_child_by_name("src")
        with self.lock:
            self.appsrc = appsrc
            self.last_pts = self.last_key = None
        media.connect("unprepared", self.on_unprepared)

    def on_unprepared(self, _media: GstRtspServer.RTSPMedia) -> None:
        with self.lock:
            self.appsrc = None

    def push(self, jpeg: bytes) -> None:
        with self.lock:
            appsrc = self.appsrc
            if appsrc is None:
                return
            clock = appsrc.get_clock()
            if clock is None:  # the pipeline is not playing yet: nobody can see this frame
                return
            pts = clock.get_time() - appsrc.get_base_time()
            if self.last_pts is not None and pts <= self.last_pts:
                pts = self.last_pts + 1
            self.last_pts = pts
            # Half a frame of slack: frames arrive with jitter, and a GOP of "one second" must stay
            # ``fps`` frames, not flip between fps and fps + 1 as arrival times wobble around 1 s.
            key = self.last_key is None or pts - self.last_key >= Gst.SECOND - Gst.SECOND // (2 * self.fps)
            if key:
                self.last_key = pts
        if key:
            appsrc.send_event(GstVideo.video_event_new_downstream_force_key_unit(
                Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, True, 0))
        buffer = Gst.Buffer.new_wrapped(jpeg)
        buffer.pts = buffer.dts = pts
        buffer.duration = Gst.SECOND // self.fps
        appsrc.emit("push-buffer", buffer)


def require_login(server: GstRtspServer.RTSPServer, factories: list[GstRtspServer.RTSPMediaFactory]) -> bool:
    """Protect every mount with the user in ``SIM_RTSP_CREDENTIALS``, if set; True when protected."""
    raw = os.environ.get("SIM_RTSP_CREDENTIALS")
    if not raw:
        return False
    user, _, password = raw.partition("\n")
    token = GstRtspServer.RTSPToken.new()
    token.set_string("media.factory.role", "viewer")
    auth = GstRtspServer.RTSPAuth()
    # Digest, as cameras do; the GI binding takes one method, not the BASIC | DIGEST bit mask.
    auth.add_digest(user, password, token)
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    server.set_auth(auth)
    role = Gst.Structure.new_from_string(
        "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    )
    for factory in factories:
        factory.add_role_from_structure(role)
    return True


def read_frames(mounts: list[Mount], loop: GLib.MainLoop) -> None:
    stream = sys.stdin.buffer
    header = struct.Struct(">BI")
    try:
        while True:
            raw = stream.read(header.size)
            if len(raw) < header.size:
                break
            index, length = header.unpack(raw)
            body = stream.read(length)
            if len(body) < length:
                break
            if index < len(mounts):
                mounts[index].push(body)
    finally:
        loop.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", required=True, help="NAME:WIDTHxHEIGHT:FPS")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mount_points = server.get_mount_points()
    mounts: list[Mount] = []
    factories: list[GstRtspServer.RTSPMediaFactory] = []
    for spec in args.mount:
        name, size, fps, *scale = spec.split(":")
        width, height = (int(v) for v in size.split("x"))
        mount = Mount(name, width, height, int(fps), float(scale[0]) if scale else 1.0)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(mount.launch())
        factory.set_shared(True)
        factory.connect("media-configure", mount.on_configure)
        mount_points.add_factory(f"/{name}", factory)
        mounts.append(mount)
        factories.append(factory)
    require_login(server, factories)
    if server.attach(None) == 0:
        print(f"FAILED cannot listen on {args.host}:{args.port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    threading.Thread(target=read_frames, args=(mounts, loop), daemon=True).start()
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
