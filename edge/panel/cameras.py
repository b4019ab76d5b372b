"""Cameras in the panel: the latest frame with zones and detections, and saving zones to the config.

The frame comes from the daemon's ``snapshot`` hook (the vision pipeline's latest analysed frame,
in the pixels zones are defined in). Without the hook, or before the first frame, the newest
evidence image stored for the camera is shown instead (flagged as such: it is annotated and may be
scaled, so the zone editor is not offered on it).

Saving zones rewrites only ``cameras[<id>].zones`` in the YAML (see ``yaml_edit``), keeping each
existing zone's other settings (anchor, classes, entry line, dwell) unless its kind changed and a
setting no longer applies; then the whole file is validated and saved with a backup
(``ConfigFiles.save``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from edge.config.cameras import CameraConfig, ZoneConfig
from edge.panel.config_files import ConfigFiles, SaveResult
from edge.panel.hooks import CameraFrame, FrameDetection, PanelHooks
from edge.panel.yaml_edit import set_camera_field
from edge.store import Store

_KIND_ONLY = {"entry_line": "ebike_entry", "dwell_s": "fire_lane"}


@dataclass(frozen=True, slots=True)
class CameraView:
    config: CameraConfig
    frame: CameraFrame | None
    source: str | None  # "live" (hook), "evidence" (stored evidence image) or None
    evidence_name: str | None = None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF marker, or None if it is not a baseline/progressive JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _detections(data: dict[str, Any]) -> tuple[FrameDetection, ...]:
    boxes = data.get("boxes")
    if not isinstance(boxes, list):
        box = data.get("box")
        boxes = [box] if isinstance(box, dict) else []
    out = []
    for b in boxes:
        try:
            out.append(FrameDetection(str(b.get("label", "")), float(b.get("score", 0.0)), float(b["x1"]),
                                      float(b["y1"]), float(b["x2"]), float(b["y2"])))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return tuple(out)


async def latest_evidence(store: Store, camera_id: str) -> tuple[int, str, dict[str, Any]] | None:
    """(time, picture file name, data) of the camera's newest event with a picture, or None."""
    found = await store.records.latest_evidence(camera_id)
    return None if found is None else (found.ts_us, found.evidence_path, found.data)


async def camera_view(store: Store, hooks: PanelHooks, camera: CameraConfig) -> CameraView:
    if hooks.snapshot is not None:
        frame = await hooks.snapshot(camera.id)
        if frame is not None:
            return CameraView(camera, frame, "live")
    found = await latest_evidence(store, camera.id)
    if found is None:
        return CameraView(camera, None, None)
    ts_us, name, data = found
    path = store.evidence_file(name)
    if path is None:
        return CameraView(camera, None, None)
    size = jpeg_size(path.read_bytes()[:65536]) or (0, 0)
    frame = CameraFrame(b"", size[0], size[1], ts_us, _detections(data))
    return CameraView(camera, frame, "evidence", name)


def zones_document(existing: list[ZoneConfig], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The YAML form of the edited zones, keeping each kept zone's other settings where they still apply."""
    before = {z.id: z for z in existing}
    out = []
    for zone in new:
        doc: dict[str, Any] = {"id": zone["id"], "kind": zone["kind"]}
        if zone.get("name"):
            doc["name"] = zone["name"]
        doc["polygon"] = [[_px(p["x"]), _px(p["y"])] for p in zone["points"]]
        old = before.get(zone["id"])
        if old is not None:
            kept = old.model_dump(mode="json", exclude_defaults=True, exclude={"id", "kind", "name", "polygon"})
            for key, value in kept.items():
                if _KIND_ONLY.get(key, zone["kind"]) == zone["kind"]:
                    doc[key] = value
        out.append(doc)
    return out


def _px(value: float) -> float | int:
    rounded = round(float(value), 1)
    return int(rounded) if rounded.is_integer() else rounded


async def save_zones(files: ConfigFiles, camera: CameraConfig, zones: list[dict[str, Any]]) -> SaveResult:
    """Rewrite this camera's zones in the config file (validated, backed up). Raises ConfigError/YamlEditError."""
    text = files.read_text()
    new_text = set_camera_field(text, camera.id, "zones", zones_document(list(camera.zones), zones))
    return await files.save(new_text)
