"""A simulated device: a register image built from the same profile the gateway decodes with.

Values come from the device's ``ValueModel`` in engineering units and are encoded by inverting
the profile's decoding steps (unit conversion, ratios, decimals, scale, offset, byte and word
order), so a profile that decodes the simulator's registers correctly decodes the real meter the
profile was written from. The image is rebuilt at most every ``refresh_s`` of real time.

Registers inside a read that no point covers answer 0, as most meters do; ``illegal_ranges`` and
the primary addresses of points served at an ``alternate`` answer exception 0x02, like firmware
that lacks them. FC3 and FC4 read the same image when the profile defines only one of them (the
CHINT meters answer both).

Coils (FC1) and discrete inputs (FC2) are a bit image beside the registers: a ``bit`` point's value
is 1 when it is 0.5 or more, and the answer packs the requested bits LSB first (``codec.pack_bits``);
inputs no point covers read 0. A device whose profile has no bit points answers FC1/FC2 with
exception 0x01 (illegal function), as a meter does; more than 2,000 bits is 0x03 (illegal value).

``answer(fc, address, count)`` decides what goes back, per the current behaviour: data, an
exception, silence (offline), a late answer (slow) or a corrupted frame.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from drivers.modbus.codec import BIT_FUNCTION_CODES, MAX_READ_BITS, DataType, encode_value, pack_bits
from drivers.modbus.profile import Profile
from edge.units import convert
from simulators.modbus.models import ValueModel, model_for
from simulators.modbus.scenario import Behaviour, SimDeviceSpec

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str  # "data" | "exception" | "silent" | "corrupt" (bad CRC / byte count) | "short" (truncated) | "garbage"
    data: bytes = b""  # register bytes for "data" and the faulty kinds
    code: int = 0  # exception code
    delay: float = 0.0  # seconds to wait before answering


class SimClock:
    """Simulated wall time: ``start`` plus real elapsed seconds times ``time_scale``."""

    def __init__(self, start: datetime, time_scale: float, mono0: float) -> None:
        self.start = start
        self.time_scale = time_scale
        self.mono0 = mono0

    def at(self, mono: float) -> datetime:
        return self.start + timedelta(seconds=(mono - self.mono0) * self.time_scale)


class SimDevice:
    def __init__(
        self, spec: SimDeviceSpec, unit: int, device_id: str, profile: Profile, clock: SimClock, seed: int,
        refresh_s: float = 0.2,
    ) -> None:
        self.spec = spec
        self.id = device_id
        self.unit = unit
        self.profile = profile
        self.clock = clock
        self.rng = random.Random(f"{seed}:{device_id}")
        self.model: ValueModel = model_for(profile, dict(spec.model), self.rng)
        self.fixed = dict(spec.registers)
        self.behaviour: Behaviour = spec.behaviour
        self.behaviour_until: float | None = None
        self.refresh_s = refresh_s
        self.requests: deque[tuple[int, int, int]] = deque(maxlen=1000)
        self.request_count = 0
        self.answered = 0
        self._images: dict[int, dict[int, bytes]] = {}
        self._bits: dict[int, dict[int, int]] = {}  # FC1 / FC2: address -> 0 | 1
        self._built_at: float | None = None
        self._last_sim: datetime | None = None
        self._illegal: list[tuple[int, int]] = [tuple(r) for r in spec.illegal_ranges]  # type: ignore[misc]
        self._address: dict[str, int] = {}
        for name, point in profile.points.items():
            if name in spec.alternates and point.alternates:
                self._address[name] = point.alternates[0]
                self._illegal.append((point.address, point.address + point.registers - 1))
            else:
                self._address[name] = point.address
        self.values: dict[str, float] = {}

    # ------------------------------------------------------------------ behaviour

    def set_behaviour(self, behaviour: Behaviour, until: float | None) -> None:
        self.behaviour = behaviour
        self.behaviour_until = until

    def _current_behaviour(self, now: float) -> Behaviour:
        if self.behaviour_until is not None and now >= self.behaviour_until:
            self.behaviour = Behaviour()
            self.behaviour_until = None
        return self.behaviour

    # ------------------------------------------------------------------ image

    def _rebuild(self, now: float) -> None:
        sim_ts = self.clock.at(now)
        dt_h = 0.0 if self._last_sim is None else max(0.0, (sim_ts - self._last_sim).total_seconds() / 3600)
        self._last_sim = sim_ts
        values = self.model.values(sim_ts, dt_h, now)
        values.update(self.fixed)
        self.values = values
        images: dict[int, dict[int, bytes]] = {}
        bits: dict[int, dict[int, int]] = {}
        derived: dict[str, float] = {}
        raws: dict[str, float] = {}
        for name in self.profile.resolution_order:
            spec = self.profile.points[name]
            fc, byte_order, word_order = self.profile.spec_order(spec)
            value = values.get(name, 0.0)
            derived[name] = value
            if spec.type is DataType.BIT:
                bits.setdefault(fc, {})[self._address[name]] = 1 if value >= 0.5 else 0
                continue
            unit = spec.unit
            source_unit = spec.device_unit or unit
            if spec.unit_from:
                source_unit = spec.unit_codes.get(int(derived.get(spec.unit_from, 0)), unit)
            if source_unit != unit:
                value = convert(value, unit, source_unit)
            for ref in spec.scale_by:
                factor = derived.get(ref, 1.0)
                value = value / factor if factor else 0.0
            if spec.decimals_from:
                value *= 10 ** int(derived.get(spec.decimals_from, 0))
            raw = (value - spec.offset) / spec.scale if spec.scale else 0.0
            if spec.offset_from:
                raw -= raws.get(spec.offset_from, 0.0)
            raws[name] = raw
            wire = encode_value(raw, spec.type, byte_order, word_order)
            image = images.setdefault(fc, {})
            base = self._address[name]
            for i in range(0, len(wire), 2):
                image[base + i // 2] = wire[i : i + 2]
        self._images = images
        self._bits = bits
        self._built_at = now

    def image(self, function_code: int, now: float) -> dict[int, bytes] | None:
        if self._built_at is None or now - self._built_at >= self.refresh_s:
            self._rebuild(now)
        image = self._images.get(function_code)
        if image is None and len(self._images) == 1:
            image = next(iter(self._images.values()))
        return image

    def value(self, point: str, now: float) -> float:
        self.image(3, now)
        return self.values.get(point, 0.0)

    # ------------------------------------------------------------------ answering

    def answer(self, function_code: int, address: int, count: int, now: float) -> Answer:
        self.request_count += 1
        self.requests.append((function_code, address, count))
        behaviour = self._current_behaviour(now)
        if behaviour.mode == "offline":
            return Answer("silent")
        if behaviour.mode == "exception":
            return Answer("exception", code=behaviour.code)
        if function_code not in (1, 2, 3, 4):
            return Answer("exception", code=ILLEGAL_FUNCTION)
        last = address + count - 1
        for lo, hi in self._illegal:
            if address <= hi and last >= lo:
                return Answer("exception", code=ILLEGAL_ADDRESS)
        if function_code in BIT_FUNCTION_CODES:
            if not 1 <= count <= MAX_READ_BITS:
                return Answer("exception", code=ILLEGAL_VALUE)
            self.image(function_code, now)
            if not self._bits:
                return Answer("exception", code=ILLEGAL_FUNCTION)
            bit_image = self._bits.get(function_code)
            if bit_image is None:
                return Answer("exception", code=ILLEGAL_ADDRESS)
            data = pack_bits([bit_image.get(a, 0) for a in range(address, address + count)])
        else:
            image = self.image(function_code, now)
            if image is None:
                return Answer("exception", code=ILLEGAL_ADDRESS)
            zero = b"\x00\x00"
            data = b"".join([image.get(a, zero) for a in range(address, address + count)])
        self.answered += 1
        if behaviour.mode in ("corrupt", "short", "garbage") and self.rng.random() < behaviour.probability:
            if behaviour.mode == "garbage":
                data = bytes(self.rng.randrange(256) for _ in range(len(data) + 3))
            return Answer(behaviour.mode, data=data)
        return Answer("data", data=data, delay=behaviour.delay if behaviour.mode == "slow" else 0.0)
