"""Config check with line numbers, validated save with backups, atomic replace."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.panel.config_files import ConfigFiles, split_problem
from edge.panel.routes.tools import annotate
from tests.helpers.panel import write_panel_estate


@pytest.fixture
def files(tmp_path: Path) -> ConfigFiles:
    config, secrets = write_panel_estate(tmp_path)
    return ConfigFiles(config, secrets, keep=3)


def test_current_config_checks_clean(files: ConfigFiles) -> None:
    text, result = files.check_current()
    assert result.ok and result.config is not None and len(result.config.devices) == 4
    assert text.startswith("# estate config")


def test_problems_carry_their_line(files: ConfigFiles) -> None:
    text = files.read_text()
    for old, new, expected in (("bus: syn", "bus: nowhere", "no bus with id 'nowhere'"),
                               ("category: electricity", "category: plasma", "devices[1].category")):
        broken = text.replace(old, new, 1)
        result = files.check_text(broken, source="up.yaml")
        assert not result.ok
        line = next(i for i, content in enumerate(broken.split("\n"), 1) if new in content)
        assert any(expected in m for m in result.by_line()[line]), result.problems
        listing, general = annotate(broken, result)
        assert [entry.number for entry in listing if entry.problems] == [line] and general == []


def test_yaml_syntax_error_names_the_line(files: ConfigFiles) -> None:
    result = files.check_text("estate:\n  id: [unclosed\nplatform: {}\n", source="x.yaml")
    assert not result.ok and result.problems[0][0] is not None


def test_missing_secret_is_reported(files: ConfigFiles) -> None:
    text = files.read_text().replace("!secret platform_client_secret", "!secret nope")
    result = files.check_text(text)
    assert any("secret 'nope' not found" in msg for _line, msg in result.problems)


async def test_save_backs_up_and_replaces_atomically(files: ConfigFiles) -> None:
    original = files.read_text()
    new = original.replace("阳光花园", "阳光花园二期")
    saved = await files.save(new)
    assert saved.backup is not None and saved.backup.read_text(encoding="utf-8") == original
    assert files.read_text() == new and saved.config.estate.name == "阳光花园二期"
    assert not list(files.path.parent.glob(".*tmp*"))


async def test_invalid_config_is_refused_and_nothing_changes(files: ConfigFiles) -> None:
    original = files.read_text()
    with pytest.raises(ConfigError) as info:
        await files.save(original.replace("bus: syn", "bus: gone"))
    assert any("gone" in p for p in info.value.problems)
    assert files.read_text() == original and files.backups() == []


async def test_only_the_newest_backups_are_kept(files: ConfigFiles) -> None:
    text = files.read_text()
    for n in range(5):
        await files.save(text.replace("阳光花园", f"阳光花园{n}"))
    backups = files.backups()
    assert len(backups) == 3
    assert "阳光花园3" in backups[0].read_text(encoding="utf-8")


def test_split_problem() -> None:
    assert split_problem("a.yaml:12: devices[0].bus: no bus", "a.yaml") == (12, "devices[0].bus: no bus")
    assert split_problem("a.yaml: something", "a.yaml") == (None, "something")
    assert split_problem("secrets file gone", "a.yaml") == (None, "secrets file gone")


def test_long_files_show_only_the_lines_around_problems(files: ConfigFiles) -> None:
    text = files.read_text() + "".join(f"# filler {i}\n" for i in range(1000)) + "bogus_key: 1\n"
    result = files.check_text(text)
    listing, _general = annotate(text, result)
    assert len(listing) < 20 and any(line.problems for line in listing)
    assert any(line.number is None for line in listing)  # a gap marker


def test_control_characters_are_a_problem_not_a_crash(files: ConfigFiles) -> None:
    result = files.check_text("estate:\n  name: \x83\n")
    assert not result.ok and result.problems[0][0] == 2 and "special characters" in result.problems[0][1]


async def test_a_config_naming_a_missing_file_is_refused_like_run_refuses_it(files: ConfigFiles) -> None:
    """Issue 10, defect 8: the panel's save checks the files a config names, as ``estate-edge run`` does."""
    text = files.read_text()
    assert "  enabled: false\n" in text  # the platform section's (a disabled platform's files are never opened)
    broken = text.replace("client_id: gateway", "client_id: gateway\n  ca_bundle: certs/platform-ca.pem", 1)
    broken = broken.replace("  enabled: false\n", "  enabled: true\n", 1)
    result = files.check_text(broken, source="up.yaml")
    assert not result.ok
    line = next(i for i, content in enumerate(broken.split("\n"), 1) if "ca_bundle" in content)
    assert any("platform.ca_bundle: file not found" in m and str(files.path.parent / "certs") in m
               for m in result.by_line()[line]), result.problems
    with pytest.raises(ConfigError):
        await files.save(broken)
    assert files.read_text() == text  # the file on disk is untouched
