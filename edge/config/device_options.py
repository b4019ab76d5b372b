"""What a device's ``options:`` may hold, per bus kind: one pydantic model each, checked at load time.

A device's ``options`` are protocol settings (a Modbus TCP device's own host and port, a meter's
address, an MQTT device's topic, a BLE sensor's MAC). They used to be checked only inside each
driver, when its source was built, so a config with a misspelt option loaded, and a reload found
the problem only while swapping sources. Now each bus config model names its options model
(``device_options``), ``EstateConfig`` checks every device against its bus's model (so
``estate-edge check`` and a reload list every problem, with file and line, before anything is
swapped), and the drivers parse the same model (``parse_options``), so there is one rule and one
wording wherever the problem is found.

Checks here are the ones a config alone can decide (names, types, formats). What needs a driver's
knowledge stays in the driver: an address used twice on one line, a CJ/T 188 meter type the codec
does not know, an OPC-UA node template's placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.errors import ConfigError

OptionValue = str | int | float | bool
_MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
BLE_FORMATS = ("auto", "bthome_v2", "pvvx", "atc1441")

OptionsT = TypeVar("OptionsT", bound="DeviceOptions")


class DeviceOptions(BaseModel):
    """Options of a device on one bus kind; unknown names are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: ClassVar[str] = "this bus kind"


class NoDeviceOptions(DeviceOptions):
    """Bus kinds whose devices take no options (everything is on the bus or the profile)."""


class SyntheticDeviceOptions(NoDeviceOptions):
    protocol = "the synthetic bus"


class ModbusRtuDeviceOptions(NoDeviceOptions):
    protocol = "Modbus RTU"


class ModbusTcpDeviceOptions(DeviceOptions):
    """A device behind another converter or port than the bus's default."""

    protocol = "Modbus TCP"
    host: str | None = Field(None, min_length=1, description="Host of this device, when not the bus's.")
    port: int | None = Field(None, ge=1, le=65535, description="TCP port of this device, when not the bus's.")

    @field_validator("port", mode="before")
    @classmethod
    def _whole_port(cls, value: object) -> object:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("must be an integer 1-65535")
        return value


def _meter_address(value: object, digits: int) -> str:
    """The address as printed on the meter (YAML may have read it as a number, dropping leading zeros)."""
    if isinstance(value, bool | float) or not isinstance(value, int | str):
        raise ValueError(f"must be the meter's address, up to {digits} decimal digits")
    text = str(value).strip().upper()
    if not text or len(text) > digits or not text.isdigit():
        raise ValueError(f"must be up to {digits} decimal digits")
    return text


class Dlt645DeviceOptions(DeviceOptions):
    protocol = "DL/T 645"
    address: str = Field(description="The meter's 12-digit address, as on its label.")

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> str:
        return _meter_address(value, 12)


class Cjt188DeviceOptions(DeviceOptions):
    protocol = "CJ/T 188"
    address: str = Field(description="The meter's 14-digit address, as on its label.")
    meter_type: int | None = Field(None, ge=0, le=0xFF, description="Meter type byte (T), when not the profile's.")

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> str:
        return _meter_address(value, 14)


class Gb26875DeviceOptions(DeviceOptions):
    """A user information transmission device (``address``) or one component behind one (``uitd`` + ``component``)."""

    protocol = "GB/T 26875"
    address: int | str | None = Field(None, description="A transmission device's 6-byte address (0x... or decimal).")
    uitd: str | None = Field(None, description="The id of the transmission device this component reports through.")
    component: str | None = Field(None, description="The component's system-part address, e.g. '1-2017'.")

    @model_validator(mode="after")
    def _one_shape(self) -> Gb26875DeviceOptions:
        if self.address is not None and (self.uitd is not None or self.component is not None):
            raise ValueError("a transmission device takes only options.address")
        if self.address is None and (self.uitd is None or self.component is None):
            raise ValueError("a GB/T 26875 device needs options.address (a transmission device) or "
                             "options.uitd and options.component (one component behind it)")
        return self


class MqttDeviceOptions(DeviceOptions):
    protocol = "MQTT"
    topic: str = Field(description="The device's base topic, without wildcards.")
    offline_after_s: float | None = Field(None, description="Silence after which the device counts as offline, s.")

    @field_validator("topic")
    @classmethod
    def _base_topic(cls, value: str) -> str:
        if not value or "+" in value or "#" in value:
            raise ValueError("must be the device's base topic (no wildcards)")
        return value

    @field_validator("offline_after_s", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        return _positive_seconds(value)


class BleDeviceOptions(DeviceOptions):
    protocol = "BLE"
    mac: str = Field(description="The sensor's MAC address, e.g. A4:C1:38:12:34:56.")
    format: str = Field("auto", description=f"Advertisement format: one of {', '.join(BLE_FORMATS)}.")
    offline_after_s: float | None = Field(None, description="Silence after which the sensor counts as offline, s.")

    @field_validator("mac", mode="before")
    @classmethod
    def _mac(cls, value: object) -> str:
        text = str(value).upper().replace("-", ":") if isinstance(value, str) else ""
        if not _MAC.match(text):
            raise ValueError("must be a MAC address like A4:C1:38:12:34:56")
        return text

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: object) -> object:
        if value not in BLE_FORMATS:
            raise ValueError(f"must be one of {sorted(BLE_FORMATS)}")
        return value

    @field_validator("offline_after_s", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        return _positive_seconds(value)


class OpcUaDeviceOptions(DeviceOptions):
    """The values a profile's node templates name (``{plc}``, ``{pump}``...), plus an optional namespace URI."""

    model_config = ConfigDict(extra="allow", frozen=True)
    protocol = "OPC-UA"
    namespace: str | None = Field(None, description="Namespace URI of this device's nodes, when not the profile's.")


def _positive_seconds(value: object) -> object:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
        raise ValueError("must be a positive number of seconds")
    return value


def option_problems(model: type[DeviceOptions], options: Mapping[str, OptionValue], device_id: str,
                    *, path: str | None = None) -> list[str]:
    """Everything wrong with ``options`` for ``model``, one message each.

    Worded for the place it is read: ``path`` given (``devices[3]``), each message starts with the
    YAML path, as the config loader locates problems by file line; otherwise with ``device <id>:``,
    as a driver reports problems of its devices.
    """
    try:
        model.model_validate(dict(options))
    except ValidationError as exc:
        return _messages(exc, model, device_id, path)
    return []


def parse_options(model: type[OptionsT], device_id: str, options: Mapping[str, OptionValue]) -> OptionsT:
    """``options`` as ``model``; a ``ConfigError`` naming the device and each bad option otherwise."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        problems = _messages(exc, model, device_id, None)
        raise ConfigError(f"device {device_id}: {len(problems)} problem(s) in options", problems) from None


def _messages(exc: ValidationError, model: type[DeviceOptions], device_id: str, path: str | None) -> list[str]:
    def where(field: str | None) -> str:
        if path is None:
            return f"device {device_id}: options" + (f".{field}" if field else "")
        return f"{path}.options" + (f".{field}" if field else "") + ":"

    known = ", ".join(name for name in model.model_fields) or "no options"
    suffix = f" (device {device_id})" if path is not None else ""
    errors = exc.errors(include_url=False)
    out: list[str] = []
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and e["loc"])
    if unknown:
        head = f"{path}.options:" if path is not None else f"device {device_id}:"
        out.append(f"{head} unknown options {unknown} ({model.protocol} knows {known}){suffix}")
    for error in errors:
        if error["type"] == "extra_forbidden":
            continue
        field = str(error["loc"][0]) if error["loc"] else None
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            description = model.model_fields[field].description if field in model.model_fields else None
            out.append(f"{where(field)} is required" + (f": {description}" if description else "") + suffix)
        elif field is None:
            out.append(f"{where(None)} {message}{suffix}" if path is not None else f"device {device_id}: {message}")
        else:
            out.append(f"{where(field)} {message[:1].lower() + message[1:]}, not {error['input']!r}{suffix}")
    return out


def options_report(kinds: Mapping[str, type[DeviceOptions]], devices: list[tuple[int, Any, Any, Any]]) -> list[str]:
    """Option problems of every device whose bus is known: ``devices`` as ``(index, id, bus, options)``."""
    problems: list[str] = []
    for index, device_id, bus, options in devices:
        model = kinds.get(bus) if isinstance(bus, str) else None
        if model is None or not isinstance(options, Mapping):
            continue
        problems.extend(option_problems(model, options, str(device_id), path=f"devices[{index}]"))
    return problems
