"""Profiles load, cite their source, and bad profiles are refused with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus.profile import SHIPPED_PROFILES_DIR, ProfileLibrary, load_profile
from edge.errors import ConfigError

REQUIRED = {
    "chint_ddsu666", "chint_dtsu666", "eastron_sdm120", "eastron_sdm630", "acrel_adl400",
    "xintai_water_meter", "generic_rs485_pressure", "generic_rs485_level",
}


def test_every_required_model_is_shipped_and_valid() -> None:
    library = ProfileLibrary()
    assert set(library.names()) >= REQUIRED
    for profile in library.load_all():
        # devices.md's sources, or (models devices.md does not cover) a public map's address, or the
        # statement that no public map exists and this is the project's documented template.
        cited = "devices.md" in profile.source or "https://" in profile.source
        assert cited or ("no public standard" in profile.source.lower() and "template" in profile.source), profile.id
        assert any(p.emit for p in profile.points.values())


def test_categories_of_the_fire_sensors() -> None:
    library = ProfileLibrary()
    assert library.get("generic_rs485_pressure").category == "fire_pressure"
    assert library.get("generic_rs485_pressure").points["pressure"].unit == "MPa"
    assert library.get("generic_rs485_level").category == "fire_level"
    assert library.get("generic_rs485_level").points["level"].unit == "m"


def test_dtsu666_declares_its_firmware_alternates() -> None:
    point = ProfileLibrary().get("chint_dtsu666").points["energy_import"]
    assert point.address == 0x401E and point.alternates == [0x101E]


def test_installer_profile_dir_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (SHIPPED_PROFILES_DIR / "eastron_sdm120.yaml").read_text(encoding="utf-8")
    (tmp_path / "my_meter.yaml").write_text(text.replace("SDM120-Modbus", "My meter"), encoding="utf-8")
    monkeypatch.setenv("EDGE_PROFILES_DIR", str(tmp_path))
    library = ProfileLibrary()
    assert library.get("my_meter").model == "My meter"
    assert library.get("eastron_sdm120").model == "SDM120-Modbus"
    # A path works too.
    assert ProfileLibrary().get(str(tmp_path / "my_meter.yaml")).id == "my_meter"


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="chint_ddsu666"):
        ProfileLibrary().get("no_such_meter")


def test_bad_profile_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model: X\nvendor: Y\nsource: devices.md\ncategory: electricity\npoints:\n"
        "  volts: {address: 0, type: float32, unit: V}\n"
        "  amps: {address: 2, type: float33, unit: A}\n"
        "  watts: {address: 4, type: float32, unit: furlongs}\n"
        "  scaled: {address: 6, type: int16, unit: W, scale_by: [missing]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    problems = "\n".join(info.value.problems)
    assert f"{bad}:7: points.amps.type" in problems
    assert f"{bad}:8: points.watts.unit" in problems and "furlongs" in problems


def test_reference_errors_and_cycles(tmp_path: Path) -> None:
    bad = tmp_path / "cyc.yaml"
    bad.write_text(
        "model: X\nvendor: Y\nsource: devices.md\ncategory: other\npoints:\n"
        "  a: {address: 0, type: int16, decimals_from: b}\n"
        "  b: {address: 1, type: int16, decimals_from: a}\n"
        "  c: {address: 2, type: int16, scale_by: [nope]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    assert any("unknown point 'nope'" in p for p in info.value.problems)


def test_incompatible_unit_codes_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "units.yaml"
    bad.write_text(
        "model: X\nvendor: Y\nsource: devices.md\ncategory: other\npoints:\n"
        "  code: {address: 0, type: uint16, emit: false}\n"
        "  p: {address: 1, type: int16, unit: MPa, unit_from: code, unit_codes: {0: V}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="invalid profile") as info:
        load_profile(bad)
    assert any("cannot convert" in p for p in info.value.problems)
