"""Vision pipeline latency, and what one camera really costs the gateway, measured over RTSP.

    python bench/vision_bench.py [--quick]

1. **Latency** (one thread, gating off so every frame is inferred): per frame of the real top-down
   lot clip (a1, 768x432; the frames are JPEG-encoded first, as a snapshot or a decoded stream
   delivers them), the whole pipeline: JPEG decode, grey thumbnail, letterbox, onnxruntime
   inference, YOLOX decoding, class-aware NMS, group merge, tracking and zone analytics. Next to it,
   in the same run and interleaved frame by frame, inference alone (``Detector.infer`` on the same
   frames' prepared tensors): ``vision_pipeline_overhead_pct`` = (pipeline p50 - inference p50) /
   inference p50.
2. **Capacity, measured.** The camera simulator runs as its own process (``python -m
   simulators.camera``) and serves a camera at a real camera's frame rate, 15 fps, as a 1280x720
   main stream and a 640x360 sub-stream (H.264 over RTSP with a login). The gateway's own reader
   (``RtspFrameSource``: every frame decoded, one per second handed on) feeds one
   ``CameraPipeline`` (motion gating on, 1 analysed frame/s), in this process and nothing else. CPU
   comes from /proc (``time.process_time``: every thread of this process, FFmpeg's decoder threads
   included) over a measured window after a warm-up; the pipeline's own share is measured in its
   thread (``time.thread_time``), the rest is the reader: decoding every frame the camera sends.
   Two scenes: ``lane_a7_park`` (a mostly still estate street: a car arrives and stands; the gate
   passes few frames) and ``lane_a4_traffic`` (real traffic footage: the gate passes nearly every
   frame, the worst case).

   **Realistic streams.** A scene rendered from one photo has no sensor noise, and decoding costs
   what the stream's bits cost: the headline streams carry a camera sensor's temporal noise
   (``noise=3.5`` grey levels, fresh every frame) at twice the simulator's factory bitrate
   (``bitrate=2``: 4 Mbit/s at 720p, 1 Mbit/s at 640x360, what installers set for a sharper
   picture; the factory setting is the lower bound). The old noise-free stream at the factory
   bitrate is measured in the same run as the ``baseline=`` of each headline figure.

   - ``vision_camera_cpu_pct[_still|_main|_key|_1fps]``: % of one core per camera on the busy
     scene's sub-stream (``_still``: the still street; ``_main``: the 720p main stream; ``_key``:
     the reader decoding key frames only, ``stream.key_frames_only``; ``_1fps``: after the camera
     was asked, ONVIF ``stream.request_fps``, to send 1 frame/s);
   - ``vision_decode_ms_per_frame[...]``: reader CPU per streamed frame (per decoded frame for
     ``_key``);
   - ``vision_cameras_per_box[...]``: 2 cores x 75 % (25 % head-room) / the cost per camera; the
     headline is the busy sub-stream with every frame decoded (the worst case a box must carry);
   - ``vision_decode_ms_per_frame_real_footage_<size>``: CPU per frame to decode the shared ``a1``
     clip (real camera H.264), the check that the simulator's streams cost what real ones do;
   - ``vision_reader_cpu_pct_read_all`` / ``_grab`` / ``_key``: the reader alone (no pipeline) on
     the busy sub-stream: ``read()`` of every frame, the gateway's ``grab()`` of every frame with
     ``retrieve()`` of one a second, and key frames only.

Prints ``BENCH <name> <value> <unit> [baseline=] [target=]``; the whole run takes about 120 s
(``--quick``: about 80 s). It never fails on speed. The machine is shared: figures move by tens of
percent between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("EDGE_MODELS_DIR", str(REPO.parent / "shared" / "models"))

from drivers.camera.frames import Frame  # noqa: E402
from drivers.camera.rtsp import FFMPEG_OPTIONS, RtspFrameSource, redact, with_credentials  # noqa: E402
from drivers.onvif.client import OnvifClient  # noqa: E402
from edge.config.cameras import CameraConfig  # noqa: E402
from edge.vision.detector import Detector  # noqa: E402
from edge.vision.pipeline import CameraPipeline  # noqa: E402
from edge.vision.preprocess import Letterboxer  # noqa: E402
from models.registry import ModelRegistry  # noqa: E402
from simulators.camera.scenarios import scenario  # noqa: E402

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def bench(name: str, value: float, unit: str, baseline: float | None = None, target: float | None = None) -> None:
    line = f"BENCH {name} {value:.2f} {unit}" if isinstance(value, float) else f"BENCH {name} {value} {unit}"
    if baseline is not None:
        line += f" baseline={baseline:.2f}" if isinstance(baseline, float) else f" baseline={baseline}"
    if target is not None:
        line += f" target={target:g}"
    print(line, flush=True)


def camera(name: str, gating: bool, fps: float) -> CameraConfig:
    story = scenario(name)
    return CameraConfig.model_validate({
        "id": "bench", "name": "bench", "location": {"building": "b"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1/bench"}, "fps": fps, "gating": {"enabled": gating},
        "zones": [z.as_config() for z in story.zones],
    })


def jpegs(name: str, fps: float, seconds: float) -> list[bytes]:
    story = scenario(name)
    out = []
    for i in range(int(seconds * fps)):
        ok, buf = cv2.imencode(".jpg", story.render(i / fps), [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        out.append(buf.tobytes())
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency(detector: Detector, frames: list[bytes], repeats: int) -> tuple[list[float], list[float]]:
    pipeline = CameraPipeline(camera("lane_a1_topdown", gating=False, fps=1), detector)
    boxer = Letterboxer(detector.card.input)
    tensors = [boxer(cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR))[0].copy() for f in frames]
    for f in frames[:5]:  # warm-up: session arena, caches
        pipeline.process(cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR), 0.0, EPOCH)
        detector.infer(tensors[0])
    whole: list[float] = []
    alone: list[float] = []
    t = 0.0
    for _ in range(repeats):
        for jpeg, tensor in zip(frames, tensors, strict=True):
            t += 1.0
            start = time.perf_counter()
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            pipeline.process(image, t, EPOCH + timedelta(seconds=t))
            whole.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            detector.infer(tensor)
            alone.append((time.perf_counter() - start) * 1e3)
    return whole, alone


@dataclass
class StreamCost:
    cpu_pct: float  # % of one core for this camera: reader + pipeline (+ the event loop's share)
    decode_ms: float  # reader CPU per frame the camera sent
    pipeline_ms: float  # pipeline CPU per analysed frame
    grabbed_fps: float
    analysed: int
    inferred_share: float


async def measure_stream(url: str, cam: CameraConfig, detector: Detector, warm_s: float, window_s: float,
                         *, key_frames_only: bool = False) -> StreamCost:
    """Run the gateway's reader and one pipeline on ``url``; CPU over ``window_s`` after ``warm_s``."""
    source = RtspFrameSource(url, max_fps=cam.fps, open_timeout_s=10, read_timeout_s=5, name="bench",
                             key_frames_only=key_frames_only)
    pipeline = CameraPipeline(cam, detector)
    loop = asyncio.get_running_loop()
    pipeline_cpu = 0.0
    analysed = inferred = 0

    def analyse(frame: Frame) -> bool:
        nonlocal pipeline_cpu
        start = time.thread_time()
        result = pipeline.process(frame.image, frame.mono, frame.ts)
        pipeline_cpu += time.thread_time() - start
        return result.inferred

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-vision") as pool:
        async with source:
            first = await source.next_frame(0, timeout=30)
            if first is None:
                raise RuntimeError(f"no frame from {redact(url)}: {source.status().last_error}")
            seq = first.seq
            began = time.monotonic()
            mark: tuple[float, float, int, float, int, int] | None = None
            while True:
                now = time.monotonic()
                if mark is None and now - began >= warm_s:
                    mark = (now, time.process_time(), source.grabbed, pipeline_cpu, analysed, inferred)
                if mark is not None and now - mark[0] >= window_s:
                    break
                frame = await source.next_frame(seq, timeout=5)
                if frame is None:
                    continue
                seq = frame.seq
                hit = await loop.run_in_executor(pool, analyse, frame)
                analysed += 1
                inferred += int(hit)
            wall = time.monotonic() - mark[0]
            cpu = time.process_time() - mark[1]
            grabbed = source.grabbed - mark[2]
            pipe = pipeline_cpu - mark[3]
            n_analysed, n_inferred = analysed - mark[4], inferred - mark[5]
    return StreamCost(
        cpu_pct=cpu / wall * 100.0, decode_ms=(cpu - pipe) / max(grabbed, 1) * 1e3,
        pipeline_ms=pipe / max(n_analysed, 1) * 1e3, grabbed_fps=grabbed / wall, analysed=n_analysed,
        inferred_share=n_inferred / max(n_analysed, 1),
    )


def reader_cpu(url: str, mode: str, warm_s: float, window_s: float) -> float:
    """% of a core for the reader alone: ``read`` every frame, or the gateway's reader (``grab``/``key``)."""
    if mode == "read":
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_OPTIONS)
        capture = cv2.VideoCapture(url, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000])
        try:
            began = time.monotonic()
            while time.monotonic() - began < warm_s:
                capture.read()
            start, cpu = time.monotonic(), time.process_time()
            while time.monotonic() - start < window_s:
                capture.read()
            return (time.process_time() - cpu) / (time.monotonic() - start) * 100.0
        finally:
            capture.release()

    async def run() -> float:
        async with RtspFrameSource(url, max_fps=1.0, open_timeout_s=10, read_timeout_s=5, name="bench-reader",
                                   key_frames_only=mode == "key") as source:
            await source.next_frame(0, timeout=30)
            await asyncio.sleep(warm_s)
            start, cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(window_s)
            return (time.process_time() - cpu) / (time.monotonic() - start) * 100.0

    return asyncio.run(run())


REALISTIC = "noise=3.5,bitrate=2"  # sensor noise, an installer's bitrate (see the module docstring)
SYNTHETIC = ""  # the noise-free scene at the simulator's factory bitrate: the old figure, as baseline


@contextlib.contextmanager
def simulator(name: str, scene: str, main: str, sub: str | None, stream: str = REALISTIC
              ) -> Iterator[tuple[dict[str, str], int]]:
    """The camera simulator CLI serving one camera; yields (profile token -> RTSP URL with login, ONVIF port)."""
    onvif_port = free_port()
    options = f"{name}={scene}@{onvif_port},fps=15,main={main}" + (f",sub={sub}" if sub else "")
    options += f",{stream}" if stream else ""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.camera", "--rtsp-port", str(free_port()), "--user", "bench",
         "--password", "bench-pw", "--camera", options],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        profiles = ready["cameras"][name]["profiles"]
        yield {token: with_credentials(p["rtsp"], "bench", "bench-pw") for token, p in profiles.items()}, onvif_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def limit_rate(onvif_port: int, fps: int) -> None:
    async with OnvifClient("bench", "127.0.0.1", onvif_port, "bench", "bench-pw") as client:
        await client.limit_frame_rate("main", fps)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_camera(scene: str, size: tuple[int, int]) -> CameraConfig:
    """The scene's zones, scaled from the scenario's own size to the stream's (as the gateway does)."""
    story = scenario(scene)
    cfg = camera(scene, gating=True, fps=1.0)
    return cfg.model_copy(update={"zones_size": (story.width, story.height)}) if (story.width, story.height) != size \
        else cfg


def real_footage_decode_ms(path: Path) -> tuple[float, str]:
    """CPU per frame (all threads) to decode a real camera clip from the shared media, as the reader does.

    The check on the simulator's streams: a real H.264 recording at its own size and bitrate, decoded
    with the same OpenCV/FFmpeg build (grab + retrieve of every frame), no network in between.
    """
    capture = cv2.VideoCapture(str(path))
    size = f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    frames, started = 0, time.process_time()
    while capture.grab():
        capture.retrieve()
        frames += 1
    spent = time.process_time() - started
    capture.release()
    return (spent * 1000.0 / frames if frames else float("nan")), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (about 30 s)")
    args = parser.parse_args()
    began = time.perf_counter()
    registry = ModelRegistry()
    card = registry.card("yolox_nano")
    detector = Detector(card, registry.resolve(card), intra_op_threads=1)

    # 1. Latency on real frames of the a1 clip with a car standing in the lane.
    lat_frames = jpegs("lane_a1_topdown", 1.0, 60 if args.quick else 120)
    whole, alone = latency(detector, lat_frames, repeats=1)
    p50, p95, i50, i95 = pct(whole, 50), pct(whole, 95), pct(alone, 50), pct(alone, 95)
    bench("vision_inference_p50_ms", i50, "ms")
    bench("vision_inference_p95_ms", i95, "ms")
    bench("vision_pipeline_p50_ms", p50, "ms", baseline=i50)
    bench("vision_pipeline_p95_ms", p95, "ms", baseline=i95)
    bench("vision_pipeline_overhead_pct", (p50 - i50) / i50 * 100.0, "%", target=25)

    # 1b. Decode cost of real footage (the a1 clip: H.264 from a real camera), next to the streams below.
    footage = Path(os.environ.get("EDGE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "media"
    clip = footage / "a1_intel_car-detection.mp4"
    if clip.exists():
        real_ms, real_size = real_footage_decode_ms(clip)
        bench(f"vision_decode_ms_per_frame_real_footage_{real_size}", real_ms, "ms")

    # 2. Capacity over real RTSP streams through the gateway's reader.
    warm, window = (2.0, 5.0) if args.quick else (3.0, 7.0)
    costs: dict[str, StreamCost] = {}
    busy = stream_camera("lane_a4_traffic", (640, 360))
    with simulator("synthetic", "lane_a4_traffic", "640x360", None, SYNTHETIC) as (urls, _):
        costs["synthetic"] = asyncio.run(measure_stream(urls["main"], busy, detector, warm, window))
    with simulator("still", "lane_a7_park", "1280x720", "640x360") as (urls, _):
        costs["still"] = asyncio.run(measure_stream(urls["sub"], stream_camera("lane_a7_park", (640, 360)),
                                                    detector, warm, window))
    reader: dict[str, float] = {}
    with simulator("busy", "lane_a4_traffic", "1280x720", "640x360") as (urls, _):
        costs["busy"] = asyncio.run(measure_stream(urls["sub"], busy, detector, warm, window))
        costs["main"] = asyncio.run(measure_stream(urls["main"], stream_camera("lane_a4_traffic", (1280, 720)),
                                                   detector, warm, window))
        costs["key"] = asyncio.run(measure_stream(urls["sub"], busy, detector, warm, window, key_frames_only=True))
        for mode in ("read", "grab", "key"):
            reader[mode] = reader_cpu(urls["sub"], mode, 1.0, window / 2)
    with simulator("busy1", "lane_a4_traffic", "640x360", None) as (urls, onvif_port):
        asyncio.run(limit_rate(onvif_port, 1))  # stream.request_fps: the camera sends what is analysed
        costs["1fps"] = asyncio.run(measure_stream(urls["main"], busy, detector, warm, window))
    base = costs["synthetic"]
    budget = 2 * 100.0 * 0.75  # two cores, 25 % head-room
    for key, suffix in (("busy", ""), ("still", "_still"), ("main", "_main"), ("key", "_key"), ("1fps", "_1fps")):
        c = costs[key]
        headline = key == "busy"
        bench(f"vision_camera_cpu_pct{suffix}", c.cpu_pct, "% per camera", baseline=base.cpu_pct if headline else None)
        bench(f"vision_decode_ms_per_frame{suffix}", c.decode_ms, "ms", baseline=base.decode_ms if headline else None)
        bench(f"vision_pipeline_ms_per_analysed_frame{suffix}", c.pipeline_ms, "ms")
        bench(f"vision_gated_inferred_share{suffix}", c.inferred_share * 100.0, "%")
        bench(f"vision_stream_fps{suffix}", c.grabbed_fps, "fps")
        bench(f"vision_cameras_per_box{suffix}", int(budget // c.cpu_pct), "cameras",
              baseline=int(budget // base.cpu_pct) if headline else None, target=24 if headline else None)
    bench("vision_reader_cpu_pct_read_all", reader["read"], "% per camera")
    bench("vision_reader_cpu_pct_grab", reader["grab"], "% per camera", baseline=reader["read"])
    bench("vision_reader_cpu_pct_key", reader["key"], "% per camera", baseline=reader["grab"])
    bench("vision_bench_wall_s", time.perf_counter() - began, "s", target=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
