"""Cameras (ONVIF / RTSP / HTTP snapshots) and the analytics configured on them.

A camera is reached in one of three ways, checked in this order: explicit ``stream.rtsp_uri`` /
``stream.snapshot_uri``; else ONVIF on ``host:port`` (GetStreamUri / GetSnapshotUri of the chosen
media profile); else WS-Discovery finds the camera by its endpoint reference (``discovery``) and
ONVIF continues from the address it announced. Analytics are zones drawn in image pixels of the
camera's stream: ``fire_lane`` zones raise ``fire.lane_blocked`` for vehicles parked longer than
the dwell time, ``ebike_entry`` zones raise ``fire.ebike_entry`` for e-bikes entering.

Validators here check shape and consistency only; class names are checked against the model card
when the camera source is built (that needs the card file).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from edge.config.common import Identifier, Section
from edge.config.devices import Location

Point = tuple[float, float]


class ZoneConfig(Section):
    """A polygon in image pixels of the analysed stream, and what to watch for inside it."""

    id: Identifier = Field(description="Zone id, unique within the camera; appears in events.")
    kind: Literal["fire_lane", "ebike_entry"] = Field(
        description="fire_lane: parked vehicles; ebike_entry: e-bikes entering a lobby, lift or unit door."
    )
    name: str | None = Field(None, description="Human name shown with alarms, e.g. '3栋北侧消防通道'.")
    polygon: list[Point] = Field(
        min_length=3, max_length=64, description="Vertices (x, y) in image pixels, in drawing order."
    )
    anchor: Literal["bottom_center", "center"] = Field(
        "bottom_center",
        description="Point of a box tested against the polygon: bottom_center approximates the ground "
        "footprint for oblique cameras; center suits cameras looking straight down.",
    )
    entry_line: tuple[Point, Point] | None = Field(
        None,
        description="ebike_entry only: crossing this segment towards the zone's side counts as an entry. "
        "Without it, an e-bike appearing inside the zone counts.",
    )
    classes: list[str] | None = Field(
        None, description="Model class names this zone reacts to; default: the card's role (vehicle / ebike)."
    )
    dwell_s: float | None = Field(
        None, gt=0, le=86400, description="fire_lane only: overrides the camera's dwell time, seconds."
    )
    bicycles_are_ebikes: bool = Field(
        False,
        description="ebike_entry only: count a bicycle as an e-bike here (a COCO model cannot tell a pedal "
        "bicycle from a bicycle-shaped e-bike; say so only where pedal bicycles are not allowed in either).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ZoneConfig:
        if self.entry_line is not None and self.kind != "ebike_entry":
            raise ValueError("entry_line is only meaningful for ebike_entry zones")
        if self.dwell_s is not None and self.kind != "fire_lane":
            raise ValueError("dwell_s is only meaningful for fire_lane zones")
        if self.bicycles_are_ebikes and self.kind != "ebike_entry":
            raise ValueError("bicycles_are_ebikes is only meaningful for ebike_entry zones")
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        if min(xs) < 0 or min(ys) < 0:
            raise ValueError("polygon coordinates are image pixels and cannot be negative")
        if max(xs) - min(xs) < 2 or max(ys) - min(ys) < 2:
            raise ValueError("polygon is degenerate (less than 2 pixels wide or high)")
        return self


class AnalyticsConfig(Section):
    """Timing of the zone analytics. All durations in seconds of camera time."""

    dwell_s: float = Field(120.0, gt=0, le=86400, description="A vehicle parked longer than this blocks the lane.")
    hold_s: float = Field(60.0, ge=0, le=86400, description="The lane must stay free this long before clearing.")
    min_presence_s: float = Field(
        10.0, ge=0, le=3600,
        description="After an alarm, a vehicle keeps the lane occupied only once it has been in the zone this "
        "long (so traffic passing through does not hold the alarm open).",
    )
    exit_grace_s: float = Field(
        5.0, ge=0, le=600,
        description="A parked object missed by the detector for track_max_misses analysed frames still "
        "occupies the lane until it has been unseen this long, seconds.",
    )
    occupancy_gap_s: float = Field(
        30.0, gt=0, le=3600,
        description="A parked object hidden by passing traffic (or merged with it into one box) keeps the "
        "lane occupied at most this long without being seen on its own, seconds.",
    )
    vehicle_classes: list[str] | None = Field(
        None,
        description="Classes that block fire lanes; default: the model card's 'vehicle', 'ebike' and "
        "'bicycle' roles (a parked e-bike blocks a lane too, 004 8.3.5 b)).",
    )
    ebike_classes: list[str] | None = Field(
        None, description="Classes counted as e-bikes; default: the model card's 'ebike' role."
    )
    hard_negative_classes: list[str] | None = Field(
        None,
        description="Classes that are never e-bikes and veto an e-bike entry when seen on the same object "
        "(stroller, wheelchair, shopping trolley, mobility scooter); default: the card's 'hard_negative' role, "
        "else those of the model's classes with these names.",
    )
    ebike_vote_frames: int = Field(
        5, ge=1, le=50, description="Window of analysed frames over which an e-bike's detections are counted."
    )
    ebike_confirm_frames: int = Field(
        2, ge=1, le=50,
        description="Analysed frames within the vote window in which an object must be detected as an e-bike "
        "before it counts as an entry (per-frame recall of 0.5-0.7 still confirms within the window).",
    )
    ebike_rearm_s: float = Field(
        10.0, ge=0, le=3600,
        description="A new track overlapping an e-bike counted less than this long ago is the same entry.",
    )
    track_iou: float = Field(0.25, gt=0, lt=1, description="Minimum IoU to continue a track.")
    track_max_misses: int = Field(3, ge=1, le=100, description="Analysed frames a track may go unseen...")
    track_max_gap_s: float = Field(6.0, gt=0, le=3600, description="...and seconds, before it is dropped.")

    @model_validator(mode="after")
    def _votes_fit(self) -> AnalyticsConfig:
        if self.ebike_confirm_frames > self.ebike_vote_frames:
            raise ValueError("ebike_confirm_frames cannot exceed ebike_vote_frames (the window it is counted in)")
        return self


class RoiConfig(Section):
    """Where inference runs: the whole frame, or the crop around the zones scaled to the model input."""

    mode: Literal["full", "zones"] = Field(
        "full",
        description="zones: infer on the bounding box of all zones (plus margin) only. Helps when zones "
        "are a small part of a large frame; see docs/vision-quality.md for measurements.",
    )
    margin: float = Field(0.15, ge=0, le=2, description="Margin around the zones, as a fraction of their size.")


class GatingConfig(Section):
    """Skip inference on frames without motion inside the zones (cheap differencing on a small image)."""

    enabled: bool = True
    heartbeat_s: float = Field(
        10.0, gt=0, le=3600, description="Infer at least this often anyway, to re-check parked objects."
    )
    settle_s: float = Field(3.0, ge=0, le=600, description="Keep inferring this long after motion stops.")
    width: int = Field(160, ge=32, le=1280, description="Width the frame is downscaled to for differencing, px.")
    pixel_threshold: int = Field(18, ge=1, le=255, description="Grey-level change that counts as motion.")
    min_area: float = Field(
        0.002, gt=0, le=1, description="Fraction of the zone area that must change to count as motion."
    )


class HealthConfig(Section):
    """When a camera counts as stale, frozen or covered. Durations in seconds."""

    interval_s: float = Field(10.0, gt=0, le=3600, description="Seconds between health readings.")
    stale_after_s: float = Field(10.0, gt=0, le=3600, description="No frame for this long: stream not alive.")
    frozen_after_s: float = Field(30.0, gt=0, le=86400, description="Identical frames for this long: frozen.")
    frozen_max_diff: float = Field(
        0.15, ge=0, le=255, description="Mean grey-level difference below which two frames are identical."
    )
    covered_after_s: float = Field(10.0, gt=0, le=86400, description="Covered image for this long: covered.")
    covered_max_std: float = Field(
        6.0, ge=0, le=128, description="A frame whose grey-level standard deviation is below this is covered."
    )
    onvif_check_s: float = Field(60.0, gt=0, le=86400, description="Seconds between ONVIF reachability checks.")


class ModelRefConfig(Section):
    """Which model card the camera runs, and how."""

    card: str = Field("yolox_nano", description="Model card name (models/cards/<card>.yaml).")
    dir: str | None = Field(None, description="Directory of the weights; default $EDGE_MODELS_DIR.")
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1, description="onnxruntime execution providers, in preference order.",
    )
    intra_op_threads: int = Field(1, ge=1, le=64, description="Threads one inference may use.")
    score_threshold: float | None = Field(None, gt=0, lt=1, description="Default: the card's threshold.")


class StreamConfig(Section):
    """Where frames come from."""

    mode: Literal["rtsp", "snapshot"] = Field(
        "rtsp", description="rtsp: continuous H.264 stream; snapshot: poll a JPEG every snapshot_interval_s."
    )
    rtsp_uri: str | None = Field(None, description="Explicit RTSP URI; default: ONVIF GetStreamUri.")
    snapshot_uri: str | None = Field(None, description="Explicit snapshot URI; default: ONVIF GetSnapshotUri.")
    profile: str | None = Field(
        None,
        description="ONVIF media profile token; default: the lowest-resolution profile that still fills the "
        "model input (usually the sub-stream), zones scaled from the main stream to it.",
    )
    snapshot_interval_s: float = Field(5.0, gt=0, le=3600, description="Seconds between snapshots.")
    request_fps: bool = Field(
        False,
        description="Ask the camera (ONVIF SetVideoEncoderConfiguration, not persisted) to send the analysed "
        "profile at the analysis rate (fps, at least 1), so the gateway decodes no frames it skips. Only where "
        "no recorder uses that profile: its recordings would have the lower rate too.",
    )
    key_frames_only: bool = Field(
        False,
        description="Decode only the stream's key frames (FFmpeg discards the others before decoding): about one "
        "frame per GOP, a third of the reader's CPU on a 15 fps sub-stream (docs/vision-quality.md). Analysis then "
        "runs at most at the key-frame rate, so only where the camera's GOP is no longer than 1/fps (a fire lane "
        "analysed at 1 fps with a 1 s GOP), not for e-bike doors that vote over several frames a second.",
    )

    @model_validator(mode="after")
    def _uris(self) -> StreamConfig:
        for field, scheme in (("rtsp_uri", ("rtsp://", "rtsps://")), ("snapshot_uri", ("http://", "https://"))):
            value = getattr(self, field)
            if value is not None and not value.startswith(scheme):
                raise ValueError(f"{field} must start with {' or '.join(scheme)}")
        return self


class DiscoveryConfig(Section):
    """Find the camera by WS-Discovery instead of a fixed host."""

    endpoint: str = Field(description="The camera's endpoint reference address, e.g. 'urn:uuid:...'.")
    port: int = Field(3702, ge=1, le=65535, description="WS-Discovery UDP port.")
    host: str | None = Field(None, description="Probe this host by unicast instead of multicast.")
    interface: str = Field("0.0.0.0", description="Local IPv4 address to send multicast probes from.")
    timeout_s: float = Field(3.0, gt=0, le=60)


class PrivacyConfig(Section):
    """This camera's blurring of people (seed 000 5.5 field-level masking, 002 5.2.1.1 b) 脱敏).

    The estate decides (top-level ``privacy:``, ``edge.config.privacy``); a camera may only add
    blurring: ``true`` here blurs this camera's images even where the estate does not, ``false``
    where the estate blurs is a config error, unset follows the estate.
    """

    blur_people_upload: bool | None = Field(
        None, description="Blur people in this camera's evidence uploaded to the platform. Unset: the estate's "
        "privacy.blur_people_upload (on by default); true blurs even where the estate does not; false is "
        "refused where the estate blurs."
    )
    blur_people_local: bool | None = Field(
        None, description="Blur people in this camera's evidence kept on the box and in its live view. Unset: "
        "the estate's privacy.blur_people_local (off by default); true blurs even where the estate does not."
    )
    person_classes: list[str] | None = Field(
        None, description="Model classes that are people; default: the card's 'person' role, else 'person'."
    )


class CameraConfig(Section):
    id: Identifier
    name: str
    location: Location
    host: str | None = Field(None, description="Camera host name or IP (ONVIF).")
    port: int = Field(80, ge=1, le=65535, description="ONVIF HTTP port.")
    username: str | None = None
    password: SecretStr | None = Field(None, description="Give as `!secret <name>`.")
    enabled: bool = True
    onvif: bool = Field(True, description="Use ONVIF for stream URIs, device information, clock and health.")
    discovery: DiscoveryConfig | None = None
    stream: StreamConfig = StreamConfig()
    fps: float = Field(2.0, gt=0, le=30, description="Frames per second analysed (the rest are skipped).")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds to wait for one ONVIF or snapshot answer.")
    model: ModelRefConfig = ModelRefConfig()
    zones: list[ZoneConfig] = Field(default_factory=list)
    zones_size: tuple[int, int] | None = Field(
        None,
        description="Picture size (width, height) the zone polygons were drawn on. When the analysed stream "
        "differs, zones are scaled to it. Default: the main stream's size when the sub-stream is chosen "
        "automatically, else the analysed stream's.",
    )
    analytics: AnalyticsConfig = AnalyticsConfig()
    roi: RoiConfig = RoiConfig()
    gating: GatingConfig = GatingConfig()
    health: HealthConfig = HealthConfig()
    evidence_quality: int = Field(85, ge=30, le=100, description="JPEG quality of evidence images.")
    privacy: PrivacyConfig = PrivacyConfig()

    @model_validator(mode="after")
    def _reachable(self) -> CameraConfig:
        explicit = self.stream.snapshot_uri if self.stream.mode == "snapshot" else self.stream.rtsp_uri
        if explicit is None and not self.onvif:
            raise ValueError(f"stream.{self.stream.mode}_uri is required when onvif is false")
        if explicit is None and self.host is None and self.discovery is None:
            raise ValueError("give host (ONVIF), discovery.endpoint, or an explicit stream URI")
        ids = [z.id for z in self.zones]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        if dups:
            raise ValueError(f"zone id(s) {dups} used more than once")
        return self
