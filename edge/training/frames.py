"""The frames kept for labelling, one JPEG and one JSON sidecar each, under ``<training dir>/frames/<camera>/``.

Why files and not the SQLite store: a frame is 50-200 kB of JPEG that the trainer reads thousands of
times and the panel serves as an image; the sidecar JSON (reason, the model's proposals, the
installer's boxes, the split) is small and is rewritten whole, atomically, on every save. Nothing else
writes these folders, and one lock serialises this process's writers.

Quota policy (written down because it decides what is lost): when the frames of all cameras pass
the quota, the oldest *unlabelled* frames that the collector kept on its own go first, then the oldest
unlabelled frames staff marked (false / missed alarms); labelled frames are never evicted by the
collector, because they cost an installer's time. A store full of labelled frames refuses new ones.

The hold-out split is a pure function of the frame id (a hash), so it is stable as frames arrive
and a frame never moves between the training and the validation split.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from edge.training.classes import SITE_CLASSES
from edge.training.errors import TrainingError

Reason = Literal["zone_occupied", "near_threshold", "false_alarm", "missed_alarm", "manual"]
REASONS: tuple[str, ...] = ("zone_occupied", "near_threshold", "false_alarm", "missed_alarm", "manual")
STAFF_REASONS = frozenset({"false_alarm", "missed_alarm", "manual"})
MAX_BOXES = 300
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def safe_id(value: str, what: str) -> str:
    """``value`` if it is safe as one path component, else ``TrainingError`` naming ``what``."""
    if not _SAFE_ID.match(value):
        raise TrainingError(f"{what} {value!r} is not a safe identifier (letters, digits, '_', '.', '-')")
    return value


@dataclass(frozen=True, slots=True)
class LabelBox:
    """One box in frame pixels with a site class name."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    score: float | None = None  # set on model proposals, None on boxes a person drew or confirmed

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"x1": round(self.x1, 1), "y1": round(self.y1, 1), "x2": round(self.x2, 1),
                               "y2": round(self.y2, 1), "label": self.label}
        if self.score is not None:
            out["score"] = round(self.score, 3)
        return out


@dataclass(slots=True)
class FrameRecord:
    """The sidecar of one kept frame."""

    frame_id: str
    camera_id: str
    reason: str
    ts: str
    width: int
    height: int
    size_bytes: int
    model: str = ""
    proposals: list[LabelBox] = field(default_factory=list)
    boxes: list[LabelBox] | None = None  # None until someone labelled the frame (an empty list is "nothing here")
    labelled_by: str | None = None
    labelled_at: str | None = None
    note: str = ""

    @property
    def labelled(self) -> bool:
        return self.boxes is not None

    def split(self, holdout_fraction: float) -> Literal["train", "holdout"]:
        return split_of(self.frame_id, holdout_fraction)

    def to_json(self) -> dict[str, Any]:
        return {
            "frame_id": self.frame_id, "camera_id": self.camera_id, "reason": self.reason, "ts": self.ts,
            "width": self.width, "height": self.height, "size_bytes": self.size_bytes, "model": self.model,
            "proposals": [b.as_dict() for b in self.proposals],
            "boxes": None if self.boxes is None else [b.as_dict() for b in self.boxes],
            "labelled_by": self.labelled_by, "labelled_at": self.labelled_at, "note": self.note,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FrameRecord:
        def boxes(items: Iterable[dict[str, Any]]) -> list[LabelBox]:
            return [LabelBox(float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"]), str(b["label"]),
                             None if b.get("score") is None else float(b["score"])) for b in items]

        return cls(
            frame_id=str(raw["frame_id"]), camera_id=str(raw["camera_id"]), reason=str(raw["reason"]),
            ts=str(raw["ts"]), width=int(raw["width"]), height=int(raw["height"]),
            size_bytes=int(raw["size_bytes"]), model=str(raw.get("model", "")),
            proposals=boxes(raw.get("proposals") or []),
            boxes=None if raw.get("boxes") is None else boxes(raw["boxes"]),
            labelled_by=raw.get("labelled_by"), labelled_at=raw.get("labelled_at"), note=str(raw.get("note", "")),
        )


def split_of(frame_id: str, holdout_fraction: float) -> Literal["train", "holdout"]:
    """Hold-out membership from the id's hash: stable, about ``holdout_fraction`` of the frames."""
    value = int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:4], "big") / 2**32
    return "holdout" if value < holdout_fraction else "train"


def validate_boxes(raw: Sequence[dict[str, Any]], width: int, height: int, where: str) -> list[LabelBox]:
    """Boxes from the panel, checked: known class, finite, inside the frame (clipped by at most 2 px), not empty."""
    if len(raw) > MAX_BOXES:
        raise TrainingError(f"{where}: {len(raw)} boxes, at most {MAX_BOXES}")
    out: list[LabelBox] = []
    for index, item in enumerate(raw):
        place = f"{where}: box {index}"
        label = item.get("label")
        if label not in SITE_CLASSES:
            raise TrainingError(f"{place}: unknown class {label!r} (known: {', '.join(SITE_CLASSES)})")
        try:
            x1, y1, x2, y2 = (float(item[k]) for k in ("x1", "y1", "x2", "y2"))
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"{place}: x1, y1, x2, y2 must be numbers") from exc
        if not all(map(_finite, (x1, y1, x2, y2))):
            raise TrainingError(f"{place}: coordinates must be finite")
        if x1 < -2 or y1 < -2 or x2 > width + 2 or y2 > height + 2:
            raise TrainingError(f"{place}: ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) is outside the "
                                f"{width}x{height} frame")
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise TrainingError(f"{place}: the box is empty or under 2 px")
        out.append(LabelBox(x1, y1, x2, y2, str(label)))
    return out


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class FrameStore:
    """Kept frames and their labels on disk, bounded by ``quota_bytes``."""

    def __init__(self, root: Path, quota_bytes: int) -> None:
        self.root = Path(root) / "frames"
        self.quota_bytes = quota_bytes
        self._lock = threading.Lock()
        self._sizes: dict[tuple[str, str], int] | None = None

    # ---------------------------------------------------------------------------------------- paths
    def _dir(self, camera_id: str) -> Path:
        return self.root / safe_id(camera_id, "camera id")

    def image_path(self, camera_id: str, frame_id: str) -> Path:
        return self._dir(camera_id) / f"{safe_id(frame_id, 'frame id')}.jpg"

    def _meta_path(self, camera_id: str, frame_id: str) -> Path:
        return self._dir(camera_id) / f"{safe_id(frame_id, 'frame id')}.json"

    # ---------------------------------------------------------------------------------------- reading
    def cameras(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _SAFE_ID.match(p.name))

    def frames(self, camera_id: str | None = None) -> list[FrameRecord]:
        """Sidecars of one camera (or all), oldest first. An unreadable sidecar is skipped, not fatal."""
        out: list[FrameRecord] = []
        for camera in [camera_id] if camera_id else self.cameras():
            directory = self._dir(camera)
            if not directory.is_dir():
                continue
            for meta in sorted(directory.glob("*.json")):
                try:
                    out.append(FrameRecord.from_json(json.loads(meta.read_text(encoding="utf-8"))))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        out.sort(key=lambda r: (r.ts, r.frame_id))
        return out

    def get(self, camera_id: str, frame_id: str) -> FrameRecord:
        path = self._meta_path(camera_id, frame_id)
        try:
            return FrameRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise KeyError(f"camera {camera_id}: no frame {frame_id}") from exc
        except (OSError, ValueError, TypeError) as exc:
            raise TrainingError(f"{path}: unreadable frame sidecar: {exc}") from exc

    def used_bytes(self) -> int:
        with self._lock:
            return sum(self._index().values())

    # ---------------------------------------------------------------------------------------- writing
    def add(self, camera_id: str, jpeg: bytes, *, reason: str, width: int, height: int, model: str = "",
            proposals: Sequence[LabelBox] = (), ts: datetime | None = None, note: str = "") -> FrameRecord | None:
        """Keep one frame; returns its record, or None when the quota is full of labelled frames."""
        if reason not in REASONS:
            raise TrainingError(f"camera {camera_id}: unknown collection reason {reason!r}")
        if not jpeg.startswith(b"\xff\xd8"):
            raise TrainingError(f"camera {camera_id}: frame is not a JPEG")
        when = ts or datetime.now(UTC)
        stem = f"{when.strftime('%Y%m%dT%H%M%S%f')}-{hashlib.sha256(jpeg).hexdigest()[:8]}"
        with self._lock:
            index = self._index()
            frame_id, n = stem, 1
            while (camera_id, frame_id) in index:  # the same picture offered twice at one instant
                n += 1
                frame_id = f"{stem}-{n}"
            record = FrameRecord(frame_id, camera_id, reason, when.isoformat(), width, height, len(jpeg), model,
                                 list(proposals), note=note)
            if not self._make_room(index, len(jpeg), staff=reason in STAFF_REASONS):
                return None
            directory = self._dir(camera_id)
            directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.image_path(camera_id, frame_id), jpeg)
            _write_atomic(self._meta_path(camera_id, frame_id), json.dumps(record.to_json()).encode())
            index[(camera_id, frame_id)] = len(jpeg)
        return record

    def save_labels(self, camera_id: str, frame_id: str, boxes: list[LabelBox], *, user: str) -> FrameRecord:
        """Store an installer's boxes for a frame (an empty list says "nothing of interest here")."""
        with self._lock:
            record = self.get(camera_id, frame_id)
            record.boxes = list(boxes)
            record.labelled_by = user
            record.labelled_at = datetime.now(UTC).isoformat()
            _write_atomic(self._meta_path(camera_id, frame_id), json.dumps(record.to_json()).encode())
            return record

    def delete(self, camera_id: str, frame_id: str) -> None:
        with self._lock:
            self._remove(self._index(), camera_id, frame_id)

    # ---------------------------------------------------------------------------------------- quota
    def _index(self) -> dict[tuple[str, str], int]:
        if self._sizes is None:
            sizes: dict[tuple[str, str], int] = {}
            for camera in self.cameras():
                for image in self._dir(camera).glob("*.jpg"):
                    sizes[(camera, image.stem)] = image.stat().st_size
            self._sizes = sizes
        return self._sizes

    def _remove(self, index: dict[tuple[str, str], int], camera_id: str, frame_id: str) -> None:
        self.image_path(camera_id, frame_id).unlink(missing_ok=True)
        self._meta_path(camera_id, frame_id).unlink(missing_ok=True)
        index.pop((camera_id, frame_id), None)

    def _make_room(self, index: dict[tuple[str, str], int], incoming: int, *, staff: bool) -> bool:
        used = sum(index.values())
        if used + incoming <= self.quota_bytes:
            return True
        victims: list[tuple[int, str, str, str]] = []
        for record in self.frames():
            if record.labelled:
                continue
            rank = 1 if record.reason in STAFF_REASONS else 0
            if rank == 1 and not staff:
                continue  # an automatic frame never pushes out one that staff asked to keep
            victims.append((rank, record.ts, record.camera_id, record.frame_id))
        for _, _, camera_id, frame_id in sorted(victims):
            used -= index.get((camera_id, frame_id), 0)
            self._remove(index, camera_id, frame_id)
            if used + incoming <= self.quota_bytes:
                return True
        return False
