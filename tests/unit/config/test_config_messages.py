"""Config problems as installers read them: an unknown key names the key meant at its place (through nested
models, lists and tagged unions); a reference problem is listed once."""

from __future__ import annotations

import pytest

from edge.config import SecretStore, validate_document
from edge.config.estate import EstateConfig
from edge.config.unknown_keys import keys_at, unknown_key_message
from edge.config.yaml_loader import load_located
from edge.errors import ConfigError

BASE = """\
estate: {id: EST-1, name: 测试, gateway_id: GW-1}
platform: {url: "https://127.0.0.1:9", client_id: c, enabled: false}
buses:
  - {kind: synthetic, id: syn}
  - {kind: modbus_tcp, id: tcp, host: 127.0.0.1}
devices:
  - {id: D-1, name: 电表, bus: syn, category: electricity, location: {building: 1栋}}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_document(load_located(text, "estate.yaml"), SecretStore.from_file(None))
    return caught.value.problems


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("location: {building: 1栋}}", "location: {building: 1栋}, poll_interval: 5}",
     "estate.yaml:7: devices[0].poll_interval: unknown key 'poll_interval'; did you mean 'poll_interval_s'?"),
    ("gateway_id: GW-1}", "gateway_id: GW-1, timezon: Asia/Shanghai}",
     "estate.yaml:1: estate.timezon: unknown key 'timezon'; did you mean 'timezone'?"),
    ("{kind: modbus_tcp, id: tcp, host: 127.0.0.1}", "{kind: modbus_tcp, id: tcp, host: 127.0.0.1, portt: 502}",
     "estate.yaml:5: buses[1].portt: unknown key 'portt'; did you mean 'port'?"),
    ("location: {building: 1栋}}", "location: {building: 1栋, flor: '3'}}",
     "estate.yaml:7: devices[0].location.flor: unknown key 'flor'; did you mean 'floor'?"),
])
def test_a_typo_names_the_key_meant_at_its_place(old: str, new: str, expected: str) -> None:
    assert _problems(BASE.replace(old, new)) == [expected]


def test_a_key_like_nothing_lists_the_keys_of_a_small_section() -> None:
    problems = _problems(BASE.replace("{kind: synthetic, id: syn}", "{kind: synthetic, id: syn, colour: red}"))
    assert problems == ["estate.yaml:4: buses[0].colour: unknown key 'colour' (known here: fail_devices, id, kind, seed)"]
    assert "Extra inputs are not permitted" not in " ".join(problems)


def test_a_key_valid_elsewhere_is_not_suggested_where_it_is_not() -> None:
    # 'seed' belongs to the synthetic bus, not to a Modbus TCP bus: no suggestion from the wrong member.
    message = unknown_key_message(EstateConfig, ("buses", 1, "modbus_tcp", "sed"))
    assert "seed" not in message and message.startswith("unknown key 'sed'")


def test_a_location_the_walk_cannot_follow_gives_no_guess() -> None:
    assert keys_at(EstateConfig, ("buses", 0, "no_such_kind")) is None
    assert unknown_key_message(EstateConfig, ("buses", 0, "no_such_kind", "x")) == "unknown key 'x'"


def test_a_missing_bus_is_reported_once() -> None:
    problems = _problems(BASE.replace("bus: syn,", "bus: nope,"))
    assert problems == ["estate.yaml:7: devices[0].bus: no bus with id 'nope' (known: syn, tcp)"]
