"""The parent side of the RTSP child: start it, feed it frames, restart it, stop it.

See ``rtsp_child.py`` for why the server is a child under Debian's Python. Writes to the child's
stdin are latest-frame-only too: if the pipe is full (the child is busy encoding), the new frame
for that mount is dropped rather than queued, so a slow encoder never delays the scenario clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("rtsp_child.py")
CREDENTIALS_ENV = "SIM_RTSP_CREDENTIALS"  # "user\npassword": RTSP needs them (Basic or Digest)
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class MountSpec:
    name: str
    width: int
    height: int
    fps: int
    bitrate_scale: float = 1.0  # x the child's default bitrate for this size


class RtspServerError(RuntimeError):
    """The GStreamer RTSP child could not start (missing packages, port in use)."""


class RtspServerProcess:
    def __init__(self, port: int, mounts: list[MountSpec], host: str = "127.0.0.1",
                 python: str | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.host = host
        self.credentials = credentials
        self.port = port
        self.mounts = mounts
        self.python = python or (SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else shutil.which("python3") or "")
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._header = struct.Struct(">BI")

    def url(self, mount: str, *, credentials: bool = False) -> str:
        """The mount's RTSP URL, with the user name and password in it when ``credentials``."""
        userinfo = ""
        if credentials and self.credentials is not None:
            userinfo = f"{quote(self.credentials[0], safe='')}:{quote(self.credentials[1], safe='')}@"
        return f"rtsp://{userinfo}{self.host}:{self.port}/{mount}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout: float = 15.0) -> None:
        if self.running:
            return
        args = [str(CHILD), "--host", self.host, "--port", str(self.port)]
        for m in self.mounts:
            args += ["--mount", f"{m.name}:{m.width}x{m.height}:{m.fps}:{m.bitrate_scale:g}"]
        env = dict(os.environ)
        env.pop(CREDENTIALS_ENV, None)
        if self.credentials is not None:
            # Through the environment, not argv: a password on a command line is visible to ps.
            env[CREDENTIALS_ENV] = "\n".join(self.credentials)
        self._proc = await asyncio.create_subprocess_exec(
            self.python, *args, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await self._proc.stdout.readline()
        except TimeoutError:
            await self.stop()
            raise RtspServerError(f"RTSP child did not start within {timeout} s") from None
        text = line.decode(errors="replace").strip()
        if not text.startswith("READY"):
            err = b""
            if self._proc.stderr is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2):
                        err = await self._proc.stderr.read(4000)
            await self.stop()
            raise RtspServerError(f"RTSP child failed: {text or 'no output'} {err.decode(errors='replace')}")
        self._stderr_task = asyncio.create_task(self._drain_stderr(self._proc), name="rtsp-child-stderr")
        log.info("RTSP server listening on %s:%d (%d mounts)", self.host, self.port, len(self.mounts))

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            log.debug("rtsp child: %s", line.decode(errors="replace").rstrip())

    def send(self, index: int, jpeg: bytes) -> bool:
        """Queue one frame for mount ``index``; False (frame dropped) if the child is busy or gone."""
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None or proc.stdin.is_closing():
            return False
        transport = proc.stdin.transport
        if transport.get_write_buffer_size() > 4 * len(jpeg) + 65536:  # type: ignore[attr-defined]
            return False
        proc.stdin.write(self._header.pack(index, len(jpeg)) + jpeg)
        return True

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(3):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task
            self._stderr_task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
