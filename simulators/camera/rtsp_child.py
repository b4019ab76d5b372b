"""RTSP server child process: live JPEG frames in on stdin, H.264 over RTSP out (GStreamer).

Runs under Debian's ``/usr/bin/python3``, the interpreter ``python3-gi`` is built for (a venv on
another Python cannot import ``gi``; see /work/shared/docs/tried-here.md), so it uses only ``gi``
and the standard library. The parent (``simulators.camera.rtsp.RtspServerProcess``) renders the
scenario frames and writes them here; this process only encodes and serves, like a camera's
encoder chip behind its sensor.

Mounts: ``--mount NAME:WIDTHxHEIGHT:FPS`` (repeatable) serves ``rtsp://HOST:PORT/NAME``. Each mount
is a *shared* media (all clients see the same live stream, as with a real camera) whose pipeline is::

    appsrc (image/jpeg, live, leaky: keeps the newest 2) ! jpegdec ! videoconvert ! I420
      ! x264enc (zerolatency, ultrafast, keyframe every second) ! rtph264pay config-interval=1

Stdin protocol, repeated: 1 byte mount index, 4 bytes big-endian length, then that many JPEG bytes.
Frames for a mount nobody is watching are dropped. Prints ``READY <port>`` once listening and exits
when stdin closes (the parent died or stopped it).
"""

from __future__ import annotations

import argparse
import struct
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


class Mount:
    def __init__(self, name: str, width: int, height: int, fps: int) -> None:
        self.name = name
        self.width = width
        self.height = height
        self.fps = fps
        self.appsrc: Gst.Element | None = None
        self.lock = threading.Lock()

    def launch(self) -> str:
        caps = f"image/jpeg,width={self.width},height={self.height},framerate={self.fps}/1"
        return (
            f'( appsrc name=src is-live=true do-timestamp=true format=time block=false max-buffers=2 '
            f'leaky-type=downstream caps="{caps}" ! jpegdec ! videoconvert ! video/x-raw,format=I420 '
            f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={self.fps} bitrate=2000 "
            f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )

    def on_configure(self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        appsrc = element.get_child_by_name("src")
        with self.lock:
            self.appsrc = appsrc
        media.connect("unprepared", self.on_unprepared)

    def on_unprepared(self, _media: GstRtspServer.RTSPMedia) -> None:
        with self.lock:
            self.appsrc = None

    def push(self, jpeg: bytes) -> None:
        with self.lock:
            appsrc = self.appsrc
        if appsrc is None:
            return
        buffer = Gst.Buffer.new_wrapped(jpeg)
        buffer.duration = Gst.SECOND // self.fps
        appsrc.emit("push-buffer", buffer)


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
    for spec in args.mount:
        name, size, fps = spec.split(":")
        width, height = (int(v) for v in size.split("x"))
        mount = Mount(name, width, height, int(fps))
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(mount.launch())
        factory.set_shared(True)
        factory.connect("media-configure", mount.on_configure)
        mount_points.add_factory(f"/{name}", factory)
        mounts.append(mount)
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
