"""Issue 10, defect 8: ``estate-edge check`` finds what ``run`` would die on, with the config's file and line.

A missing ``platform.ca_bundle`` passed ``check`` and ``run`` then died with a raw FileNotFoundError.
Now every file the config names is checked (CA bundles hold certificates, certificate and key load
as a pair, camera models exist and match their cards), and timeouts that do not fit a shared line's
poll periods are warnings (printed apart; ``--strict`` fails on them too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config.files_check import WRITTEN_PATHS, check_config, path_fields
from simulators.platform.tls import make_tls_files

REPO = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("EDGE_MODELS_DIR", REPO.parent / "shared" / "models"))


def _doc(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "estate": {"id": "EST-1", "name": "阳光花园", "gateway_id": "GW-1"},
        "platform": {"url": "https://platform.example", "client_id": "gw"},
        "store": {"path": str(tmp_path / "var" / "edge.db"), "evidence_dir": str(tmp_path / "var" / "evidence")},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return doc


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "estate.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text)


def _check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", "check", str(path), *extra], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EDGE_MODELS_DIR": str(MODELS)})


# --------------------------------------------------------------------------------------------- the reported case


def test_missing_ca_bundle_fails_check_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(tmp_path, platform={"ca_bundle": "certs/platform-ca.pem"}))
    result = _check(path)
    assert result.returncode == 1, result.stdout
    line = _line(path, "ca_bundle")
    assert f"{path}:{line}: platform.ca_bundle: file not found: {tmp_path / 'certs' / 'platform-ca.pem'}" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_a_ca_bundle_without_certificates_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    report = check_config(_write(tmp_path, _doc(tmp_path, platform={"ca_bundle": "ca.pem"})))
    assert any("platform.ca_bundle" in e and "no usable PEM certificate" in e for e in report.errors), report.errors


def test_a_folder_or_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ca_dir").mkdir()
    report = check_config(_write(tmp_path, _doc(tmp_path, platform={"ca_bundle": "ca_dir"})))
    assert any("is a folder, not a file" in e for e in report.errors)
    if os.geteuid() != 0:  # root reads anything
        secret = tmp_path / "ca.pem"
        shutil.copy(make_tls_files(tmp_path / "tls").ca_cert, secret)
        secret.chmod(0)
        report = check_config(_write(tmp_path, _doc(tmp_path, platform={"ca_bundle": "ca.pem"})))
        assert any("not readable" in e for e in report.errors)


def test_a_good_config_passes(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    path = _write(tmp_path, _doc(tmp_path, platform={"ca_bundle": str(tls.ca_cert)},
                                 panel={"tls_cert": "tls/server.pem", "tls_key": "tls/server.key"}))
    result = _check(path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "warning" not in result.stderr


# --------------------------------------------------------------------------------------------- TLS material


def test_panel_certificate_and_key_must_exist_and_match(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    other = make_tls_files(tmp_path / "other")
    missing = check_config(_write(tmp_path, _doc(tmp_path, panel={"tls_cert": "nope.pem", "tls_key": "nope.key"})))
    assert [e.split(": ", 2)[1] for e in missing.errors] == ["panel.tls_cert", "panel.tls_key"]
    mismatched = check_config(_write(tmp_path, _doc(tmp_path, panel={"tls_cert": str(tls.cert),
                                                                     "tls_key": str(other.key)})))
    assert len(mismatched.errors) == 1 and "do not load as a pair" in mismatched.errors[0]
    disabled = check_config(_write(tmp_path, _doc(tmp_path, panel={"enabled": False, "tls_cert": "nope.pem",
                                                                   "tls_key": "nope.key"})))
    assert disabled.ok  # run never opens the files of a disabled panel


def test_every_path_field_of_the_config_is_checked(tmp_path: Path) -> None:
    """The whole class: any Path field a section declares (CA bundles of notifiers too) is found and checked."""
    doc = _doc(tmp_path, platform={"ca_bundle": "a/platform.pem"},
               panel={"tls_cert": "a/panel.pem", "tls_key": "a/panel.key"},
               alarms={"notifiers": [
                   {"kind": "webhook", "id": "ops", "url": "https://hooks.example/x", "ca_bundle": "a/hook.pem"},
                   {"kind": "mqtt", "id": "bus", "host": "broker.example", "tls": True, "ca_bundle": "a/mqtt.pem"},
               ]})
    path = _write(tmp_path, doc)
    report = check_config(path)
    reported = {e.split(": ", 2)[1] for e in report.errors}
    assert report.config is not None
    expected = {".".join(str(p) for p in loc) for loc, _ in path_fields(report.config) if loc not in WRITTEN_PATHS}
    assert {"platform.ca_bundle", "panel.tls_cert", "panel.tls_key", "alarms.notifiers.0.ca_bundle",
            "alarms.notifiers.1.ca_bundle"} <= expected
    assert reported == {"platform.ca_bundle", "panel.tls_cert", "panel.tls_key", "alarms.notifiers[0].ca_bundle",
                        "alarms.notifiers[1].ca_bundle"}
    for problem in report.errors:  # each names its own line
        field = problem.split(": ", 2)[1].rsplit(".", 1)[-1]
        assert f"{path}:" in problem and int(problem.split(":")[1]) >= _line(path, field) - 10


def test_relative_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "site" / "tls")
    site = tmp_path / "site"
    doc = _doc(site, platform={"ca_bundle": "tls/ca.pem"}, panel={"tls_cert": "tls/server.pem",
                                                                  "tls_key": "tls/server.key"})
    report = check_config(_write(site, doc))
    assert report.ok, report.errors
    assert report.config is not None and report.config.panel.tls_cert == tls.cert


# --------------------------------------------------------------------------------------------- camera models

CAMERA = {"id": "cam-1", "name": "北门", "location": {"building": "1栋"}, "host": "127.0.0.1",
          "zones": [{"id": "lane", "kind": "fire_lane", "polygon": [[0, 0], [100, 0], [100, 100]]}]}


def test_camera_model_files_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_MODELS_DIR", raising=False)  # only the camera's own model.dir is searched
    good = check_config(_write(tmp_path, _doc(tmp_path, cameras=[{**CAMERA, "model": {"dir": str(MODELS)}}])))
    assert good.ok, good.errors
    empty = tmp_path / "models-empty"
    empty.mkdir()
    missing = check_config(_write(tmp_path, _doc(tmp_path, cameras=[{**CAMERA, "model": {"dir": str(empty)}}])))
    assert any("cameras[0].model.dir" in e and "not found" in e for e in missing.errors), missing.errors
    wrong = tmp_path / "models-wrong"
    wrong.mkdir()
    (wrong / "yolox_nano.onnx").write_bytes(b"\0" * 1000)
    bad = check_config(_write(tmp_path, _doc(tmp_path, cameras=[{**CAMERA, "model": {"dir": str(wrong)}}])))
    assert any("cameras[0].model.dir" in e and "refusing" in e for e in bad.errors), bad.errors
    card = check_config(_write(tmp_path, _doc(tmp_path, cameras=[{**CAMERA, "model": {"card": "no_such_model"}}])))
    assert any("cameras[0].model.card" in e and "no model card 'no_such_model'" in e for e in card.errors)


def test_zone_class_names_are_checked_against_the_card(tmp_path: Path) -> None:
    zone = {**CAMERA["zones"][0], "classes": ["car", "tank"]}  # type: ignore[index]
    report = check_config(_write(tmp_path, _doc(tmp_path, cameras=[{**CAMERA, "zones": [zone],
                                                                     "model": {"dir": str(MODELS)}}])))
    assert any("cameras[0].zones[0].classes" in e and "'tank'" in e for e in report.errors), report.errors


def test_a_disabled_camera_is_not_checked(tmp_path: Path) -> None:
    report = check_config(_write(tmp_path, _doc(tmp_path, cameras=[{**CAMERA, "enabled": False,
                                                                     "model": {"card": "no_such_model"}}])))
    assert report.ok


# --------------------------------------------------------------------------------------------- what the drivers know


def test_check_builds_the_sources_as_run_does(tmp_path: Path) -> None:
    doc = _doc(tmp_path, buses=[{"kind": "modbus_tcp", "id": "gw1", "host": "127.0.0.1"}],
               devices=[{"id": "m1", "name": "电表", "bus": "gw1", "category": "electricity", "profile": "no_such_meter",
                         "unit_id": 1, "location": {"building": "1栋"}}])
    result = _check(_write(tmp_path, doc))
    assert result.returncode == 1 and "no_such_meter" in result.stderr


# --------------------------------------------------------------------------------------------- warnings


def _rtu(tmp_path: Path, timeout_s: float, retries: int, poll_s: float, devices: int = 2) -> dict[str, Any]:
    return _doc(tmp_path, buses=[{"kind": "modbus_rtu", "id": "line-2", "port": "/dev/ttyUSB9"}],
                devices=[{"id": f"m{i}", "name": f"表{i}", "bus": "line-2", "category": "electricity",
                          "profile": "chint_ddsu666", "unit_id": i + 1, "location": {"building": "2栋"},
                          "timeout_s": timeout_s, "retries": retries, "poll_interval_s": poll_s}
                         for i in range(devices)])


def test_timeouts_longer_than_the_poll_period_on_a_shared_line_warn(tmp_path: Path) -> None:
    path = _write(tmp_path, _rtu(tmp_path, timeout_s=2, retries=2, poll_s=5))
    result = _check(path)
    assert result.returncode == 0, result.stderr  # a warning is not an error
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 2
    assert f"{path}:{_line(path, 'timeout_s: 2')}: devices[0].timeout_s" in warnings[0]
    assert "2 s × 3 = 6 s exceeds poll_interval_s 5 s" in warnings[0] and "line-2" in warnings[0]
    assert "1 other device(s)" in warnings[0]
    assert _check(path, "--strict").returncode == 1


def test_timeouts_that_fit_do_not_warn(tmp_path: Path) -> None:
    report = check_config(_write(tmp_path, _rtu(tmp_path, timeout_s=1, retries=1, poll_s=5)))
    assert report.ok and report.warnings == []


def test_a_single_connection_converter_is_a_shared_line_too(tmp_path: Path) -> None:
    doc = _doc(tmp_path, buses=[{"kind": "modbus_tcp", "id": "conv", "host": "127.0.0.1", "max_connections": 1},
                                {"kind": "modbus_tcp", "id": "wide", "host": "127.0.0.2", "max_connections": 4}],
               devices=[{"id": f"m-{bus}", "name": "表", "bus": bus, "category": "water", "profile": "chint_ddsu666",
                         "unit_id": 1, "location": {"building": "1栋"}, "timeout_s": 3, "retries": 1,
                         "poll_interval_s": 5} for bus in ("conv", "wide")])
    report = check_config(_write(tmp_path, doc))
    assert len(report.warnings) == 1 and "devices[0].timeout_s" in report.warnings[0]


def test_a_store_folder_that_cannot_be_created_warns(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the store's folder should be")
    report = check_config(_write(tmp_path, _doc(tmp_path, store={"path": str(blocker / "db" / "edge.db")})))
    assert report.ok
    assert any("store.path" in w and "is a file, not a folder" in w for w in report.warnings), report.warnings


@pytest.mark.parametrize("section", ["platform", "panel"])
def test_schema_problems_still_come_first_and_alone(tmp_path: Path, section: str) -> None:
    doc = _doc(tmp_path, **{section: {"no_such_key": 1}})
    report = check_config(_write(tmp_path, doc))
    assert report.config is None and any("no_such_key" in e for e in report.errors)
