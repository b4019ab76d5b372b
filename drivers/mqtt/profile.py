"""MQTT device profiles: what a model publishes, on which topics, and how each payload maps to points.

A profile is data (one YAML file per model in ``drivers/mqtt/profiles``, or the bus's
``profiles_dir``); a device in the estate config names its profile and its base topic
(``options.topic``). Each *message* of the profile listens on ``<base topic>/<message topic>``
(``topic: ""`` is the base topic itself; MQTT wildcards ``+`` and ``#`` are allowed in the suffix)
and says how its payload is encoded:

* ``json``: points picked by JSONPath-like selectors (``drivers.mqtt.selector``); numbers,
  booleans (1/0) and strings listed in the point's ``map`` become values;
* ``number``: the payload is one plain number (or a word from ``map``), for one point;
* ``hex``: the payload (or, with ``hex_select``, a JSON member holding it, as NB-IoT platforms
  wrap a device's raw uplink) is a hex string; points are fixed-width fields at byte offsets.

Units, quality and timestamps are taken from the payload when the profile names where
(``unit_select``, ``quality_select``, ``timestamp``), and converted to the point's canonical unit.
``availability`` names the topic a device (or its broker, as a last will) publishes
online / offline on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator, model_validator

from drivers.mqtt.selector import SelectorError, compile_selector
from drivers.profile_base import ConvertedPointUnits, ProfileFinder, ProfileModel, load_profile_file
from edge.config.devices import Category

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PROFILES_DIR = "EDGE_MQTT_PROFILES_DIR"

HexType = Literal["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"]


def _check_selector(value: str) -> str:
    try:
        compile_selector(value)
    except SelectorError as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_topic(value: str) -> str:
    levels = value.split("/") if value else []
    for i, level in enumerate(levels):
        if ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+"):
            raise ValueError(f"topic {value!r}: '+' must fill a whole level and '#' must be the whole last level")
    return value


SelectorText = Annotated[str, AfterValidator(_check_selector)]
TopicSuffix = Annotated[str, AfterValidator(_check_topic)]


class HexField(ProfileModel):
    """A fixed-width field of a hex payload."""

    offset: int = Field(ge=0, le=4095, description="Byte offset of the field in the decoded payload.")
    type: HexType = Field("uint8", description="Field type.")
    byte_order: Literal["big", "little"] = Field("big", description="Byte order of multi-byte fields.")
    bit: int | None = Field(None, ge=0, le=31, description="Take only this bit of the field (0 = least significant).")


class PointSpec(ConvertedPointUnits):
    """One point of a message; exactly one of ``select`` (json) or ``hex`` (hex) says where its value is.

    ``device_unit`` is the unit the payload uses when it does not say (``unit_select``).
    """

    select: SelectorText | None = Field(None, description="JSON selector of the value, e.g. $.data.battery.")
    hex: HexField | None = Field(None, description="Field of a hex payload.")
    unit_select: SelectorText | None = Field(None, description="Selector of a unit string in the payload (converted to `unit`).")
    quality_select: SelectorText | None = Field(None, description="Selector of this point's quality (good/uncertain/bad, 0/1/2).")
    offset: float = Field(0.0, description="Added after scaling.")
    map: dict[str, float] = Field(
        default_factory=dict, description="Strings (or 'true'/'false') the device sends for this point, and their values."
    )
    optional: bool = Field(False, description="An absent value is skipped instead of parking the message.")


class TimestampSpec(ProfileModel):
    """Where the payload carries its measurement time."""

    select: SelectorText = Field(description="Selector of the timestamp.")
    format: Literal["auto", "epoch_s", "epoch_ms", "iso8601"] = Field(
        "auto", description="auto: numbers above 1e11 are milliseconds, else seconds; strings are ISO 8601."
    )
    timezone: str = Field("Asia/Shanghai", description="Zone of timestamps that carry no offset.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class MessageSpec(ProfileModel):
    """One kind of message a device publishes."""

    topic: TopicSuffix = Field("", description="Suffix below the device's base topic ('' is the base topic; + and # allowed).")
    encoding: Literal["json", "number", "hex"] = "json"
    hex_select: SelectorText | None = Field(None, description="hex encoding inside JSON: selector of the member holding the hex.")
    timestamp: TimestampSpec | None = Field(None, description="Measurement time from the payload (default: arrival).")
    quality_select: SelectorText | None = Field(None, description="Selector of the message's quality (good/uncertain/bad).")
    points: dict[str, PointSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> MessageSpec:
        problems = []
        for name, point in self.points.items():
            if self.encoding == "hex" and point.hex is None:
                problems.append(f"points.{name}: a hex message's point needs `hex`")
            if self.encoding == "json" and point.select is None:
                problems.append(f"points.{name}: a json message's point needs `select`")
            if self.encoding != "json" and (point.select or point.unit_select or point.quality_select):
                problems.append(f"points.{name}: selectors only apply to json messages")
        if self.encoding == "number" and len(self.points) != 1:
            problems.append("a number message carries exactly one point")
        if self.encoding != "json" and self.timestamp is not None and self.hex_select is None:
            problems.append("timestamp needs a JSON payload")
        if self.hex_select is not None and self.encoding != "hex":
            problems.append("hex_select applies to hex messages only")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class AvailabilitySpec(ProfileModel):
    """The topic a device, or the broker as its last will, publishes online/offline on."""

    topic: TopicSuffix = Field("status", description="Suffix below the device's base topic.")
    select: SelectorText | None = Field(None, description="For JSON payloads: selector of the state member.")
    online: list[str] = Field(default_factory=lambda: ["online", "1", "true", "up"])
    offline: list[str] = Field(default_factory=lambda: ["offline", "0", "false", "down", "lost"])


class MqttProfile(ProfileModel):
    id: str = Field("", description="Set from the file name.")
    model: str
    vendor: str
    source: str = Field(min_length=1, description="Where the payload layout comes from.")
    description: str = ""
    category: Category
    offline_after_s: float | None = Field(
        None, gt=0, description="Silence after which a device of this model is offline (its heartbeat period plus margin)."
    )
    messages: list[MessageSpec] = Field(min_length=1)
    availability: AvailabilitySpec | None = None



class MqttProfileLibrary(ProfileFinder[MqttProfile]):
    """Finds and caches MQTT profiles: ``extra_dirs``, then ``$EDGE_MQTT_PROFILES_DIR``, then the shipped ones."""

    def __init__(self, extra_dirs: Iterable[Path | str] = ()) -> None:
        super().__init__(extra_dirs, shipped=SHIPPED_PROFILES_DIR, env_var=ENV_PROFILES_DIR, load=load_profile,
                         what="MQTT ")


def load_profile(path: Path) -> MqttProfile:
    """Parse and validate one profile file; problems name the file and line."""
    return load_profile_file(path, MqttProfile, "MQTT ")
