"""Scenario files for the Modbus simulator: which devices are served where, and what happens when.

A scenario is YAML::

    name: two buildings
    time_scale: 60          # simulated seconds per real second (load curves run 60x faster)
    start: "2026-03-02T06:00:00+08:00"   # simulated wall time at start (hour of day drives the curves)
    tcp:
      - id: b1-converter
        host: 127.0.0.1
        port: 15020          # or ports: [16000, 16019] for a farm of listeners
        devices:
          - {id: b1-main, unit_id: 1, profile: chint_dtsu666, model: {base_kw: 20, peak_kw: 90, energy: 152340}}
          - {id: m, unit_ids: [1, 100], profile: eastron_sdm630}     # 100 devices, ids m-<port>-<unit>
    rtu:
      - id: b2-rs485
        link: /tmp/estate-edge-demo/b2-rs485   # the path the gateway opens (a socat pty link)
        baudrate: 9600
        devices:
          - {id: b2-hydrant, unit_id: 3, profile: generic_rs485_pressure, model: {value: 0.32},
             registers: {unit_code: 1, decimals: 1, range_zero: 0, range_full: 1.6}}
    cues:
      - {at: 60, device: b2-hydrant, action: ramp, to: 0.05, over: 10}   # pressure drops ...
      - {at: 150, device: b2-hydrant, action: ramp, to: 0.32, over: 20}  # ... and recovers
      - {at: 30, device: b1-main, action: offline, for: 40}

Actions: ``offline``, ``slow`` (``delay`` s), ``exception`` (``code``), ``corrupt``
(``probability``), ``normal``; each with an optional ``for`` after which the device is normal
again. ``ramp`` (``to`` over ``over`` s) and ``set`` (``value``) move a point (default: the
device's main quantity); ``replace`` swaps a meter for one whose counters start at ``value``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.config.yaml_loader import dotted, load_file
from edge.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Mode = Literal["normal", "offline", "slow", "exception", "corrupt", "short", "garbage"]


class Behaviour(_Model):
    mode: Mode = "normal"
    delay: float = Field(0.0, ge=0, description="Extra answer delay in slow mode, seconds.")
    code: int = Field(4, ge=1, le=255, description="Exception code in exception mode.")
    probability: float = Field(1.0, ge=0, le=1, description="Share of answers corrupted in corrupt mode.")


class SimDeviceSpec(_Model):
    id: str = Field(min_length=1)
    profile: str
    unit_id: int | None = Field(None, ge=0, le=247)
    unit_ids: tuple[int, int] | None = Field(None, description="Inclusive range: one device per unit id.")
    model: dict[str, float | str] = Field(default_factory=dict, description="Value model parameters.")
    registers: dict[str, float] = Field(default_factory=dict, description="Fixed values of points (unit code ...).")
    alternates: list[str] = Field(default_factory=list, description="Points served at their alternate address.")
    illegal_ranges: list[tuple[int, int]] = Field(default_factory=list, description="[first, last] answered 0x02.")
    behaviour: Behaviour = Behaviour()

    @model_validator(mode="after")
    def _one_unit(self) -> SimDeviceSpec:
        if (self.unit_id is None) == (self.unit_ids is None):
            raise ValueError(f"device {self.id}: give exactly one of unit_id or unit_ids")
        if self.unit_ids is not None and not 0 <= self.unit_ids[0] <= self.unit_ids[1] <= 247:
            raise ValueError(f"device {self.id}: unit_ids must be an ascending range within 0-247")
        return self


class TcpListener(_Model):
    id: str = "tcp"
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535, description="0 picks a free port (tests).")
    ports: tuple[int, int] | None = Field(None, description="Inclusive range of ports, each serving all devices.")
    devices: list[SimDeviceSpec]

    @model_validator(mode="after")
    def _one_port(self) -> TcpListener:
        if (self.port is None) == (self.ports is None):
            raise ValueError(f"listener {self.id}: give exactly one of port or ports")
        return self


class RtuLine(_Model):
    id: str
    link: str = Field(description="Path of the pty the gateway opens (created as a symlink by socat).")
    baudrate: int = Field(9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    strict_silence: bool = Field(True, description="Drop requests sent less than t3.5 after the last frame.")
    devices: list[SimDeviceSpec]


class Cue(_Model):
    at: float = Field(ge=0, description="Seconds after the simulator starts.")
    device: str
    action: Literal["offline", "slow", "exception", "corrupt", "short", "garbage", "normal", "ramp", "set", "replace"]
    duration: float | None = Field(None, alias="for", gt=0)
    delay: float = 0.5
    code: int = 4
    probability: float = 1.0
    point: str | None = None
    to: float | None = None
    over: float = 0.0
    value: float | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Scenario(_Model):
    name: str = "scenario"
    time_scale: float = Field(1.0, gt=0)
    start: str | None = Field(None, description="ISO time the simulated day starts at (default: now).")
    seed: int = 0
    tcp: list[TcpListener] = Field(default_factory=list)
    rtu: list[RtuLine] = Field(default_factory=list)
    cues: list[Cue] = Field(default_factory=list)


def load_scenario(path: Path) -> Scenario:
    doc = load_file(path)
    try:
        return Scenario.model_validate(doc.data)
    except ValidationError as exc:
        problems = [
            f"{doc.where(tuple(e['loc']))}: {dotted(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(f"{path}: invalid scenario", problems) from None
