"""Payload -> readings for one message kind of a profile: pure, no I/O, compiled once per profile.

Failure contract: ``decode`` either returns every reading of the message or raises
``PayloadError`` with a ``kind`` (``utf8``, ``json``, ``type``, ``missing``, ``unit``, ``hex``,
``timestamp``, ``quality``) and a message naming the point and selector. A message is decoded
all or nothing: a payload with one wrong-typed member is suspect as a whole and is parked by the
source, never half-stored.

Hex payload layout (``encoding: hex``): the payload text (or the JSON member ``hex_select``) is an
even-length hex string, optionally ``0x``-prefixed, with spaces allowed between bytes::

    offset: 0      1      2      3 ...
           +------+------+------+------
           | u8   | u16 (big/little) | ...   each point: (offset, type, byte_order, bit)
           +------+------+------+------
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.mqtt.profile import HexField, MessageSpec, PointSpec, TimestampSpec
from drivers.mqtt.selector import MISSING, Selector, SelectorError, compile_selector
from edge.records import Quality, Reading
from edge.units import UnitError, convert

_HEX_FORMATS: dict[str, tuple[str, int]] = {
    "uint8": ("B", 1), "int8": ("b", 1), "uint16": ("H", 2), "int16": ("h", 2),
    "uint32": ("I", 4), "int32": ("i", 4), "float32": ("f", 4),
}
_QUALITY_WORDS: dict[str, Quality] = {
    "good": Quality.GOOD, "ok": Quality.GOOD, "0": Quality.GOOD, "192": Quality.GOOD,
    "uncertain": Quality.UNCERTAIN, "1": Quality.UNCERTAIN,
    "bad": Quality.BAD, "fault": Quality.BAD, "error": Quality.BAD, "2": Quality.BAD,
}
_EPOCH_MS_ABOVE = 1e11  # 1e11 s is the year 5138; 1e11 ms is 1973


class PayloadError(ValueError):
    """A payload that cannot become readings; ``kind`` classifies it for the parking counters."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class _Point:
    name: str
    spec: PointSpec
    select: Selector | None
    unit_select: Selector | None
    quality_select: Selector | None
    hex_struct: struct.Struct | None
    hex_mask: int | None
    plain: bool  # no unit from the payload, no unit conversion, no quality member of its own


class MessageDecoder:
    """Decodes the payloads of one ``MessageSpec`` into readings in canonical units."""

    def __init__(self, spec: MessageSpec) -> None:
        self.spec = spec
        self._points = tuple(_compile_point(name, p) for name, p in spec.points.items())
        self._hex_select = compile_selector(spec.hex_select) if spec.hex_select else None
        self._quality_select = compile_selector(spec.quality_select) if spec.quality_select else None
        self._ts = spec.timestamp
        self._ts_select = compile_selector(spec.timestamp.select) if spec.timestamp else None
        self._ts_zone = ZoneInfo(spec.timestamp.timezone) if spec.timestamp else None

    def decode(self, device_id: str, payload: bytes, received: datetime) -> list[Reading]:
        """Every reading of ``payload`` (at least one), or ``PayloadError``."""
        spec = self.spec
        if spec.encoding == "hex" and self._hex_select is None:
            return self._from_hex(device_id, _text(payload).strip(), received, Quality.GOOD)
        text = _text(payload)
        if spec.encoding == "number":
            point = self._points[0]
            value = _value(point, text.strip(), from_text=True)
            return [_reading(device_id, point, value, point.spec.unit, received, Quality.GOOD)]
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError("json", f"not JSON: {exc}") from None
        try:
            ts = self._timestamp(document, received)
            quality = _quality(self._quality_select, document, Quality.GOOD)
            if self._hex_select is not None:
                hex_text = self._hex_select.select(document)
                if not isinstance(hex_text, str):
                    raise PayloadError("hex" if hex_text is MISSING else "type",
                                       f"{self._hex_select.text}: expected a hex string, got {_shown(hex_text)}")
                return self._from_hex(device_id, hex_text, ts, quality)
            return self._from_json(device_id, document, ts, quality)
        except SelectorError as exc:
            raise PayloadError("type", str(exc)) from None

    def _from_json(self, device_id: str, document: Any, ts: datetime, quality: Quality) -> list[Reading]:
        out: list[Reading] = []
        for point in self._points:
            assert point.select is not None
            raw = point.select.select(document)
            if raw is MISSING or raw is None:
                if point.spec.optional:
                    continue
                raise PayloadError("missing", f"point {point.name}: nothing at {point.select.text}")
            if point.plain:  # the common case, inlined: a number, or a word of the point's map
                kind = type(raw)
                spec = point.spec
                if kind is int or kind is float:
                    value = raw * spec.scale + spec.offset if math.isfinite(raw) else None
                else:
                    value = spec.map.get(raw) if kind is str else None
                    value = None if value is None else value * spec.scale + spec.offset
                if value is not None:
                    low, high = spec.valid_min, spec.valid_max
                    bad = (low is not None and value < low) or (high is not None and value > high)
                    out.append(Reading(device_id, point.name, value, spec.unit, ts, Quality.BAD if bad else quality))
                    continue
            value = _value(point, raw, from_text=False)
            unit = point.spec.device_unit or point.spec.unit
            if point.unit_select is not None:
                found = point.unit_select.select(document)
                if isinstance(found, str):
                    unit = found
                elif found is not MISSING:
                    raise PayloadError("type", f"point {point.name}: unit at {point.unit_select.text} is {_shown(found)}")
            out.append(_reading(device_id, point, value, unit, ts, _quality(point.quality_select, document, quality)))
        if not out:
            raise PayloadError("missing", "no point of the message is present")
        return out

    def _from_hex(self, device_id: str, hex_text: str, ts: datetime, quality: Quality) -> list[Reading]:
        cleaned = hex_text.removeprefix("0x").removeprefix("0X").replace(" ", "")
        try:
            data = bytes.fromhex(cleaned)
        except ValueError:
            raise PayloadError("hex", f"not a hex string: {hex_text[:40]!r}") from None
        out: list[Reading] = []
        for point in self._points:
            field = point.spec.hex
            assert field is not None and point.hex_struct is not None
            if field.offset + point.hex_struct.size > len(data):
                if point.spec.optional:
                    continue
                last = field.offset + point.hex_struct.size - 1
                raise PayloadError("hex", f"point {point.name}: needs bytes {field.offset}..{last} of a {len(data)}-byte payload")
            (raw,) = point.hex_struct.unpack_from(data, field.offset)
            if point.hex_mask is not None:
                raw = 1 if int(raw) & point.hex_mask else 0
            value = _value(point, raw, from_text=False)
            out.append(_reading(device_id, point, value, point.spec.device_unit or point.spec.unit, ts, quality))
        return out

    def _timestamp(self, document: Any, received: datetime) -> datetime:
        if self._ts_select is None:
            return received
        assert self._ts is not None and self._ts_zone is not None
        raw = self._ts_select.select(document)
        if raw is MISSING or raw is None:
            return received
        return parse_timestamp(raw, self._ts, self._ts_zone)


def parse_timestamp(raw: Any, spec: TimestampSpec, zone: ZoneInfo) -> datetime:
    """A payload timestamp as aware UTC; ``PayloadError('timestamp')`` when it is not one."""
    fmt = spec.format
    if isinstance(raw, int | float) and not isinstance(raw, bool) and fmt != "iso8601":
        if not math.isfinite(raw):
            raise PayloadError("timestamp", f"{spec.select}: {raw!r} is not a time")
        seconds = raw / 1000 if fmt == "epoch_ms" or (fmt == "auto" and raw > _EPOCH_MS_ABOVE) else raw
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError("timestamp", f"{spec.select}: {raw!r} is out of range") from None
    if isinstance(raw, str) and fmt in ("auto", "iso8601"):
        try:
            parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError("timestamp", f"{spec.select}: {raw[:40]!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(UTC)
    raise PayloadError("timestamp", f"{spec.select}: expected a {fmt} timestamp, got {_shown(raw)}")


def _compile_point(name: str, spec: PointSpec) -> _Point:
    hex_struct = hex_mask = None
    if spec.hex is not None:
        hex_struct, hex_mask = _hex_layout(spec.hex)
    return _Point(
        name, spec,
        compile_selector(spec.select) if spec.select else None,
        compile_selector(spec.unit_select) if spec.unit_select else None,
        compile_selector(spec.quality_select) if spec.quality_select else None,
        hex_struct, hex_mask,
        plain=spec.unit_select is None and spec.quality_select is None and spec.device_unit in (None, spec.unit),
    )


def _hex_layout(field: HexField) -> tuple[struct.Struct, int | None]:
    code, _ = _HEX_FORMATS[field.type]
    order = ">" if field.byte_order == "big" else "<"
    return struct.Struct(order + code), (1 << field.bit) if field.bit is not None else None


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("utf8", f"not UTF-8 (byte {exc.start}: {payload[exc.start:exc.start + 4]!r})") from None


def _value(point: _Point, raw: Any, *, from_text: bool) -> float:
    spec = point.spec
    if isinstance(raw, bool):
        value = 1.0 if raw else 0.0
        mapped = spec.map.get("true" if raw else "false")
        value = mapped if mapped is not None else value
    elif isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        mapped = spec.map.get(raw) if spec.map else None
        if mapped is None and spec.map:
            mapped = spec.map.get(raw.strip().lower())
        if mapped is not None:
            value = mapped
        elif from_text:
            try:
                value = float(raw)
            except ValueError:
                raise PayloadError("type", f"point {point.name}: {raw[:40]!r} is not a number") from None
        else:
            where = point.select.text if point.select else "payload"
            raise PayloadError("type", f"point {point.name}: {where} is a string {raw[:40]!r}, not a number"
                                       + (f" or one of {sorted(spec.map)}" if spec.map else ""))
    else:
        where = point.select.text if point.select else "payload"
        raise PayloadError("type", f"point {point.name}: {where} is {_shown(raw)}, not a number")
    if not math.isfinite(value):
        raise PayloadError("type", f"point {point.name}: {value!r} is not a finite number")
    return value * spec.scale + spec.offset


def _reading(device_id: str, point: _Point, value: float, unit: str, ts: datetime, quality: Quality) -> Reading:
    spec = point.spec
    if unit != spec.unit:
        try:
            value = convert(value, unit, spec.unit)
        except UnitError as exc:
            raise PayloadError("unit", f"point {point.name}: {exc}") from None
    if (spec.valid_min is not None and value < spec.valid_min) or (spec.valid_max is not None and value > spec.valid_max):
        quality = Quality.BAD
    return Reading(device_id, point.name, value, spec.unit, ts, quality)


def _quality(selector: Selector | None, document: Any, default: Quality) -> Quality:
    if selector is None:
        return default
    raw = selector.select(document)
    if raw is MISSING or raw is None:
        return default
    if isinstance(raw, bool):
        return Quality.GOOD if raw else Quality.BAD
    found = _QUALITY_WORDS.get(str(raw).strip().lower()) if isinstance(raw, str | int) else None
    if found is None:
        raise PayloadError("quality", f"{selector.text}: unknown quality {_shown(raw)}")
    return max(found, default)


def _shown(value: Any) -> str:
    if value is MISSING:
        return "nothing"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
