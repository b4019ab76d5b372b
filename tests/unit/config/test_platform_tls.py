"""Issue 10, defect 9: the platform link is HTTPS with certificate verification (seed 000 7.2.2).

``http://`` and ``verify_tls: false`` are refused, with the file and line, unless the config says
``platform.lab_mode_insecure: true``; the daemon then warns at every start and the panel shows a
banner on every page.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

BASE = """\
estate:
  id: EST-1
  name: 阳光花园
  gateway_id: GW-1
platform:
  url: {url}
  client_id: gw
{extra}"""


def _write(tmp_path: Path, url: str = "https://platform.example", extra: str = "") -> Path:
    path = tmp_path / "estate.yaml"
    path.write_text(BASE.format(url=url, extra=extra), encoding="utf-8")
    return path


def test_plain_http_platform_url_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "http://platform.example")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problem = "\n".join(info.value.problems)
    assert f"{path}:6: platform.url" in problem
    assert "https" in problem and "lab_mode_insecure" in problem


def test_turning_off_certificate_verification_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, extra="  verify_tls: false\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problem = "\n".join(info.value.problems)
    assert f"{path}:8: platform.verify_tls" in problem and "lab_mode_insecure" in problem


@pytest.mark.parametrize("url", ["ftp://platform.example", "ws://platform.example", "HTTP://platform.example"])
def test_other_insecure_schemes_are_refused_too(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, url))


def test_lab_switch_allows_both_explicitly(tmp_path: Path) -> None:
    path = _write(tmp_path, "http://127.0.0.1:8000", "  verify_tls: false\n  lab_mode_insecure: true\n")
    config = load_config(path)
    assert config.platform.lab_mode_insecure and str(config.platform.url).startswith("http://")


def test_lab_switch_alone_changes_nothing_for_https(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path))
    assert not config.platform.lab_mode_insecure and config.platform.verify_tls


def test_check_command_refuses_http(tmp_path: Path) -> None:
    path = _write(tmp_path, "http://platform.example")
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"{path}:6: platform.url" in result.stderr
    assert "Traceback" not in result.stderr


async def test_lab_mode_is_logged_as_a_warning_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from edge.app import Gateway

    extra = (f"  lab_mode_insecure: true\n  enabled: false\nstore:\n  path: {tmp_path / 'edge.db'}\n"
             f"  evidence_dir: {tmp_path / 'evidence'}\npanel:\n  enabled: false\n")
    path = _write(tmp_path, "http://127.0.0.1:9", extra)
    gateway = Gateway(path)
    caplog.set_level(logging.WARNING)
    gateway.request_stop()  # stops as soon as it is up
    await gateway.run(install_signals=False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "lab_mode_insecure" in r.getMessage()]
    assert warnings, [r.getMessage() for r in caplog.records]
