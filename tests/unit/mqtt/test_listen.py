"""The listen tool's pure parts: which topic filters MQTT accepts, and the bounded payload preview."""

from __future__ import annotations

import re

import pytest

from drivers.mqtt.listen import PREVIEW_BYTES, TopicFilterError, check_filter, preview


@pytest.mark.parametrize("topic_filter", ["#", "+", "estate/+/smoke/#", "a/b/c", "+/+/status", "设备/温度", "/leading"])
def test_valid_filters_pass(topic_filter: str) -> None:
    assert check_filter(topic_filter) == topic_filter


@pytest.mark.parametrize(("topic_filter", "rule"), [
    ("", "empty"), ("a/#/b", "'#'"), ("a#", "'#'"), ("a/b#", "'#'"), ("a+/b", "'+'"), ("a/+b", "'+'"),
    ("a\x00b", "NUL"), ("x" * 1025, "bytes"),
])
def test_invalid_filters_name_the_rule(topic_filter: str, rule: str) -> None:
    with pytest.raises(TopicFilterError, match=re.escape(rule)):
        check_filter(topic_filter)


def test_preview_keeps_the_start_as_text_or_hex() -> None:
    assert preview(b'{"alarm": "smoke"}') == '{"alarm": "smoke"}'
    assert preview(bytes([0, 1, 0xFF])) == "hex:0001ff"
    long_text = ("温度" * 200).encode()  # 3-byte characters cut at the preview's end: the partial one is dropped
    shown = preview(long_text)
    assert shown == "温度" * (PREVIEW_BYTES // 6) + "温" and len(shown.encode()) <= PREVIEW_BYTES
    binary = bytes(range(256)) * 10
    assert preview(binary) == "hex:" + binary[:PREVIEW_BYTES].hex()
