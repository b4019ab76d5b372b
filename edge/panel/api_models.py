"""The JSON API's request and response bodies (they make the OpenAPI schema that schemathesis tests)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.panel.roles import Role


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Me(BaseModel):
    username: str
    role: Role
    csrf_token: str = Field(description="Send back as the X-CSRF-Token header on POST/PUT/PATCH/DELETE.")


class LaneBacklogOut(BaseModel):
    lane: str
    pending: int
    oldest_age_s: float | None


class BuildingOut(BaseModel):
    name: str
    devices: int
    online: int
    offline: int
    unknown: int
    disabled: int
    open_alarms: int


class IndicatorOut(BaseModel):
    code: str
    granularity: str
    period_start: str
    period_end: str
    value: float | None
    unit: str
    coverage: float
    samples: int


class OverviewOut(BaseModel):
    estate_id: str | None
    estate_name: str | None
    devices: dict[str, int]
    buildings: list[BuildingOut]
    open_alarms: int
    alarms_by_severity: dict[str, int]
    uplink_backlog: list[LaneBacklogOut]
    dead_letters: int
    uplink: dict[str, Any] | None
    indicators: list[IndicatorOut]


class LocationOut(BaseModel):
    building: str
    unit: str | None
    floor: str | None
    room: str | None


class LatestOut(BaseModel):
    point: str
    value: float
    unit: str
    quality: str
    ts: str


class DeviceOut(BaseModel):
    id: str
    name: str
    category: str
    bus: str
    profile: str | None
    location: LocationOut
    state: str
    last_seen: str | None
    error: str | None


class DeviceDetailOut(DeviceOut):
    poll_interval_s: float
    sub_item: str | None
    latest: list[LatestOut]
    thresholds: dict[str, dict[str, Any]]


class DeviceListOut(BaseModel):
    total: int
    offset: int
    limit: int
    devices: list[DeviceOut]


class BucketOut(BaseModel):
    start: str
    min: float
    max: float
    avg: float
    last: float
    n: int


class SeriesOut(BaseModel):
    device_id: str
    point: str
    range: str
    resolution: str
    buckets: list[BucketOut]


class AlarmOut(BaseModel):
    alarm_id: str
    code: str
    device_id: str | None
    device_name: str | None
    severity: str
    state: str
    is_open: bool
    message: str
    raised_at: str
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolved_at: str | None
    resolved_by: str | None
    cleared_at: str | None
    note: str
    evidence_url: str | None


class AlarmStepOut(BaseModel):
    id: str
    state: str
    ts: str
    actor: str
    message: str
    note: str
    evidence_url: str | None


class AlarmDetailOut(AlarmOut):
    data: dict[str, Any]
    steps: list[AlarmStepOut]


class AlarmListOut(BaseModel):
    total: int
    offset: int
    limit: int
    marker: str = Field(description="Changes whenever any alarm changes; poll with ?since=<marker>.")
    alarms: list[AlarmOut]


class NoteIn(_Body):
    note: str = Field("", max_length=2000, description="What was done (required to resolve).")


class ActionOut(BaseModel):
    ok: bool
    alarm_id: str
    state: str


class Point(BaseModel):
    """A polygon vertex in pixels of the camera's analysed stream (the frame the panel shows)."""

    x: float = Field(ge=0, le=20000)
    y: float = Field(ge=0, le=20000)


class ZoneIn(_Body):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    kind: Literal["fire_lane", "ebike_entry"]
    name: str | None = Field(None, max_length=64)
    points: list[Point] = Field(min_length=3, max_length=64)


class ZonesIn(_Body):
    zones: list[ZoneIn] = Field(max_length=32)


class ZoneOut(BaseModel):
    id: str
    kind: str
    name: str | None
    points: list[Point]


class DetectionOut(BaseModel):
    label: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


class CameraOut(BaseModel):
    id: str
    name: str
    building: str
    enabled: bool
    zones: list[ZoneOut]
    frame_url: str | None
    frame_width: int | None
    frame_height: int | None
    detections: list[DetectionOut]
    detections_at: str | None


class SaveOut(BaseModel):
    ok: bool
    backup: str | None
    reloaded: bool
    reload_error: str | None = None


class ProblemOut(BaseModel):
    line: int | None
    message: str


class CheckOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]


class ConfigTextIn(_Body):
    text: str = Field(max_length=16 * 1024 * 1024, description="The whole estate YAML.")


class TestDeviceIn(_Body):
    device_id: str = Field(min_length=1, max_length=64)


class FrameOut(BaseModel):
    direction: str
    hex: str
    note: str


class ProbeValueOut(BaseModel):
    point: str
    value: float | str | None
    unit: str
    raw: str


class ProbeOut(BaseModel):
    device_id: str
    ok: bool
    error: str | None
    duration_ms: float | None
    frames: list[FrameOut]
    values: list[ProbeValueOut]


class DiscoveredOut(BaseModel):
    address: str
    xaddrs: list[str]
    scopes: list[str]
    name: str
    hardware: str
    configured_as: str | None


class UserOut(BaseModel):
    username: str
    role: Role
    enabled: bool
    locked: bool
    created_at: str
    last_login_at: str | None


class UserIn(_Body):
    username: str = Field(pattern=r"^[\w.@\-]{1,64}$")
    role: Role
    password: str = Field(min_length=1, max_length=256)


class UserPatch(_Body):
    role: Role | None = None
    enabled: bool | None = None
    unlock: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=256)


class AuditOut(BaseModel):
    id: str
    ts: str
    username: str
    action: str
    target: str
    detail: dict[str, Any]
    ip: str
    ok: bool
