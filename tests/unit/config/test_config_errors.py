"""Config validation names every problem with its file, line and YAML path."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError, SecretsPermissionError

REPO = Path(__file__).resolve().parents[3]

BAD = """\
estate:
  id: EST-1
  name: 阳光花园
  gateway_id: GW-1
  timezone: Mars/Olympus
platform:
  url: https://127.0.0.1:8443
  client_id: gw
buses:
  - kind: synthetic
    id: syn
devices:
  - id: d1
    name: pump
    bus: syn
    category: fire_pressure
    location: {building: "1"}
    poll_interval_s: -3
  - id: d2
    name: meter
    bus: syn
    category: electricty
    location: {building: "2"}
    unknown_key: 1
"""


def test_every_problem_is_reported_with_file_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    text = "\n".join(problems)
    assert f"{path}:5: estate.timezone: unknown time zone 'Mars/Olympus'" in text
    assert f"{path}:18: devices[0].poll_interval_s" in text
    assert f"{path}:22: devices[1].category" in text
    assert f"{path}:24: devices[1].unknown_key" in text
    assert len(problems) == 4


def test_cross_references_name_the_device(tmp_path: Path) -> None:
    text = BAD.replace("Mars/Olympus", "Asia/Shanghai").replace("poll_interval_s: -3", "poll_interval_s: 3")
    text = text.replace("electricty", "electricity").replace("    unknown_key: 1\n", "")
    text = text.replace("bus: syn\n    category: fire", "bus: nope\n    category: fire")
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any("devices[0].bus: no bus with id 'nope'" in p and f"{path}:15" in p for p in info.value.problems)


def test_cross_references_are_listed_beside_field_errors(tmp_path: Path) -> None:
    # One pass of `estate-edge check` lists every problem: the root validator that checks references
    # never runs while a field is invalid, so the loader checks the raw document's references too.
    text = BAD.replace("bus: syn\n    category: fire", "bus: nope\n    category: fire")
    text += "indicators:\n  counter_points:\n    ghost: {}\n"
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert any(p.startswith(f"{path}:15: devices[0].bus: no bus with id 'nope'") for p in problems), problems
    assert any("indicators.counter_points: no device 'ghost'" in p for p in problems), problems
    assert f"{path}:18: devices[0].poll_interval_s" in "\n".join(problems)  # the field errors are still there


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text("estate:\n  id: [unclosed\n  name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:3" in info.value.problems[0] or f"{path}:2" in info.value.problems[0]


def test_check_command_exits_non_zero_and_lists_problems(tmp_path: Path) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text(BAD, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check", str(path)], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 1
    assert "4 problem(s)" in result.stderr
    assert f"{path}:18: devices[0].poll_interval_s" in result.stderr


def _secret_config(tmp_path: Path) -> Path:
    text = BAD.split("buses:")[0].replace("Mars/Olympus", "Asia/Shanghai")
    text += "  client_secret: !secret platform_client_secret\n"
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_secrets_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    config = _secret_config(tmp_path)
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("platform_client_secret: s3cr3t-value\n", encoding="utf-8")
    secrets.chmod(0o644)
    with pytest.raises(SecretsPermissionError) as info:
        load_config(config, secrets)
    assert "0644" in str(info.value) and "chmod 600" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)
    secrets.chmod(0o600)
    loaded = load_config(config, secrets)
    assert loaded.platform.client_secret is not None
    assert loaded.platform.client_secret.get_secret_value() == "s3cr3t-value"
    # The secret never shows in reprs or dumps of the config.
    assert "s3cr3t-value" not in repr(loaded) and "s3cr3t-value" not in loaded.model_dump_json()


def test_run_refuses_to_start_with_open_secrets_file(tmp_path: Path) -> None:
    config = _secret_config(tmp_path)
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("platform_client_secret: s3cr3t-value\n", encoding="utf-8")
    secrets.chmod(0o640)
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", str(config), "--secrets", str(secrets)],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "0640" in result.stderr
    assert "s3cr3t-value" not in result.stderr + result.stdout


def test_secret_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _secret_config(tmp_path)
    monkeypatch.setenv("EDGE_SECRET_PLATFORM_CLIENT_SECRET", "from-env")
    loaded = load_config(config)
    assert loaded.platform.client_secret is not None
    assert loaded.platform.client_secret.get_secret_value() == "from-env"


def test_missing_secret_is_a_located_problem(tmp_path: Path) -> None:
    config = _secret_config(tmp_path)
    os.environ.pop("EDGE_SECRET_PLATFORM_CLIENT_SECRET", None)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert f"{config}:9: platform.client_secret: secret 'platform_client_secret' not found" in info.value.problems[0]


def test_shipped_demo_config_and_schema_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from edge.config import json_schema

    committed = json.loads((REPO / "config" / "estate.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "config/estate.schema.json is stale: run `estate-edge schema -o config/estate.schema.json`"
    monkeypatch.setenv("EDGE_SECRET_PLATFORM_CLIENT_SECRET", "x")
    monkeypatch.setenv("EDGE_SECRET_CAMERA_PASSWORD", "y")
    config = load_config(REPO / "config" / "demo-estate.yaml")
    buildings = {d.location.building for d in config.devices}
    assert len(buildings) >= 2
    assert {z.kind for c in config.cameras for z in c.zones} == {"fire_lane", "ebike_entry"}
    assert stat.S_ISREG((REPO / "config" / "demo-estate.yaml").stat().st_mode)


def test_control_character_is_a_located_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text("estate:\n  id: EST-1\n  name: bad\x07name\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith(f"{path}:3: unreadable character")
