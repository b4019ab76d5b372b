"""Device options are checked per bus kind when the config loads, and the registry has one entry per kind.

Before, a misspelt option (``prot: 503``) or a malformed meter address passed ``estate-edge check``
and was found only when the driver built its source, i.e. in the middle of a start or a reload.
Now every problem is listed with its file and line before anything starts, in one pass, and the
drivers refuse the same options with the same rule when a source is built without a config file.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from drivers.registry import kinds
from edge.config.buses import BUS_MODELS, DEVICE_OPTIONS, BusConfig, bus_kind
from edge.errors import ConfigError
from tests.helpers.config import load


def _device(device_id: str, bus: str, options: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": device_id, "name": device_id, "bus": bus, "category": "electricity",
            "location": {"building": "1栋"}, "options": options, **extra}


BUSES = [
    {"kind": "synthetic", "id": "syn"},
    {"kind": "modbus_tcp", "id": "tcp", "host": "10.0.0.5"},
    {"kind": "modbus_rtu", "id": "rtu", "port": "/dev/ttyS1"},
    {"kind": "dlt645", "id": "meters", "port": "/dev/ttyS2"},
    {"kind": "cjt188", "id": "water", "port": "/dev/ttyS3"},
    {"kind": "mqtt", "id": "nb", "host": "127.0.0.1"},
    {"kind": "ble", "id": "ble0", "adapter": "hci0"},
    {"kind": "gb26875", "id": "fire", "port": 5000},
]


def test_every_kind_is_in_the_config_union_the_models_and_the_registry() -> None:
    union = typing.get_args(typing.get_args(BusConfig)[0])
    assert set(union) == set(BUS_MODELS)
    table = kinds()
    assert set(table) == {bus_kind(m) for m in BUS_MODELS} == set(DEVICE_OPTIONS)
    for kind, entry in table.items():
        assert bus_kind(entry.config) == kind  # the entry's config model answers to its own kind
        assert DEVICE_OPTIONS[kind] is entry.config.device_options  # type: ignore[attr-defined]


def test_bad_options_of_every_kind_are_listed_with_file_and_line_at_load(tmp_path: Path) -> None:
    devices = [
        _device("ok-tcp", "tcp", {"host": "10.0.0.6", "port": 503}, profile="eastron_sdm120", unit_id=1),
        _device("typo", "tcp", {"prot": 503}, profile="eastron_sdm120", unit_id=2),
        _device("badport", "tcp", {"port": 70000}, profile="eastron_sdm120", unit_id=3),
        _device("rtu-opt", "rtu", {"host": "x"}, profile="eastron_sdm120", unit_id=4),
        _device("m-none", "meters", {}, profile="generic_household"),
        _device("m-bad", "meters", {"address": "12x"}, profile="generic_household"),
        _device("w-valve", "water", {"address": "1", "valve": 1}, profile="generic_water"),
        _device("smoke", "nb", {"topic": "nb/#"}, profile="nbiot_smoke_detector"),
        _device("th", "ble0", {"mac": "zz", "format": "weird"}),
        _device("panel", "fire", {"uitd": "u1"}),
        _device("syn-opt", "syn", {"anything": 1}),
    ]
    with pytest.raises(ConfigError) as err:
        load(tmp_path, platform_url="https://127.0.0.1:1", ca=None, extra={"buses": BUSES, "devices": devices})
    problems = err.value.problems
    text = "\n".join(problems)
    expected = [
        "devices[1].options: unknown options ['prot'] (Modbus TCP knows host, port) (device typo)",
        "devices[2].options.port: input should be less than or equal to 65535, not 70000 (device badport)",
        "devices[3].options: unknown options ['host'] (Modbus RTU knows no options) (device rtu-opt)",
        "devices[4].options.address: is required: The meter's 12-digit address, as on its label. (device m-none)",
        "devices[5].options.address: must be up to 12 decimal digits, not '12x' (device m-bad)",
        "devices[6].options: unknown options ['valve'] (CJ/T 188 knows address, meter_type) (device w-valve)",
        "devices[7].options.topic: must be the device's base topic (no wildcards), not 'nb/#' (device smoke)",
        "devices[8].options.mac: must be a MAC address like A4:C1:38:12:34:56, not 'zz' (device th)",
        "devices[8].options.format: must be one of ['atc1441', 'auto', 'bthome_v2', 'pvvx'], not 'weird' (device th)",
        "devices[9].options: a GB/T 26875 device needs options.address (a transmission device) or options.uitd and "
        "options.component (one component behind it) (device panel)",
        "devices[10].options: unknown options ['anything'] (the synthetic bus knows no options) (device syn-opt)",
    ]
    for message in expected:
        assert message in text, f"missing: {message}\n--- got:\n{text}"
    assert "ok-tcp" not in text
    # Each problem is located in the file (estate.yaml:<line>:), in file order, once.
    located = [p for p in problems if "options" in p]
    assert len(located) == len(expected) and all(p.startswith("estate.yaml:") or ".yaml:" in p.split(" ")[0]
                                                  for p in located)
    lines = [int(p.split(":")[1]) for p in located]
    assert lines == sorted(lines)


def test_good_options_load_and_reach_the_driver_typed(tmp_path: Path) -> None:
    devices = [_device("far", "tcp", {"host": "10.0.0.9", "port": 1502}, profile="eastron_sdm120", unit_id=1),
               _device("near", "tcp", {}, profile="eastron_sdm120", unit_id=2)]
    config = load(tmp_path, platform_url="https://127.0.0.1:1", ca=None,
                  extra={"buses": [BUSES[1]], "devices": devices})
    source = kinds()["modbus_tcp"].build(config.buses[0], config.devices, config)
    assert source.endpoint("far") == ("10.0.0.9", 1502)  # type: ignore[attr-defined]
    assert source.endpoint("near") == ("10.0.0.5", 502)  # type: ignore[attr-defined]
