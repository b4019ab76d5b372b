"""Each enabled camera as a running source: acquisition (``drivers.camera``) joined to analysis (``edge.vision``).

App layer, like ``edge.app``: the one place that knows both halves. The driver takes any
``FrameAnalyser``; the vision stage never learns where its frames come from. Training frame
collection (``edge.training.collect``) is plugged in here too, so the vision library does not
import the training tools either.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

from drivers.camera.source import CameraSource, FrameSourceFactory, default_frame_source
from edge.clock import Clock
from edge.config import EstateConfig
from edge.config.cameras import CameraConfig
from edge.config.privacy import EvidenceBlur
from edge.training.collect import FrameCollector
from edge.vision.camera import CameraAnalyser
from edge.vision.detector import Detector
from edge.vision.pipeline import FrameObserver
from models.registry import ModelRegistry

VisionCamera = CameraSource[CameraAnalyser]


def camera_source(
    camera: CameraConfig,
    *,
    clock: Clock | None = None,
    registry: ModelRegistry | None = None,
    detector: Detector | None = None,
    frame_source_factory: FrameSourceFactory = default_frame_source,
    executor: ThreadPoolExecutor | None = None,
    backoff_max_s: float = 60.0,
    tz: tzinfo = UTC,
    collector: FrameObserver | None = None,
    blur: EvidenceBlur | None = None,
) -> VisionCamera:
    """One camera: its acquisition source with a vision analyser (the tests' and the daemon's way in).

    ``blur`` is the camera's privacy policy under the estate's (``EstateConfig.evidence_blur``).
    """
    analyser = CameraAnalyser(camera, registry=registry, detector=detector, executor=executor, tz=tz,
                              collector=collector, blur=blur)
    return CameraSource(camera, analyser, clock=clock, frame_source_factory=frame_source_factory,
                        backoff_max_s=backoff_max_s)


def build_camera_sources(config: EstateConfig, *, clock: Clock | None = None,
                         registry: ModelRegistry | None = None) -> list[VisionCamera]:
    """One source per enabled camera (the camera counterpart of ``drivers.registry.build_sources``).

    Model cards, class names and weights are checked when each source starts (that needs files),
    and a problem there escapes ``run`` as a ``ConfigError`` naming the camera and zone.
    """
    tz = ZoneInfo(config.estate.timezone)
    collector = FrameCollector.from_config(config.training, config.store.path) if config.training.collect else None
    return [camera_source(c, clock=clock, registry=registry, tz=tz, collector=collector, blur=config.evidence_blur(c))
            for c in config.cameras if c.enabled]
