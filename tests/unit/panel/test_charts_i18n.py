"""Server-drawn SVG charts and the zh/en catalogues."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.panel.charts import line_chart, nice_ticks
from edge.panel.i18n import catalog, pick_language, translator
from edge.panel.live import Bucket

TZ = ZoneInfo("Asia/Shanghai")
H = 3_600_000_000


def _bucket(start: int, value: float) -> Bucket:
    return Bucket(start, value - 1, value + 1, value, value, 3)


def test_nice_ticks_cover_the_range() -> None:
    ticks = nice_ticks(0.07, 1.23)
    assert ticks[0] <= 0.07 and ticks[-1] >= 1.23 and len(ticks) <= 8
    assert nice_ticks(5.0, 5.0)[0] <= 5.0
    assert nice_ticks(float("nan"), 1.0) == []


def test_chart_breaks_the_line_at_gaps_and_escapes_text() -> None:
    start = 1_700_000_000 * 1_000_000
    width = 300_000_000
    buckets = [_bucket(start + i * width, 10 + i) for i in range(5)]
    buckets += [_bucket(start + (20 + i) * width, 20) for i in range(3)]  # after a gap
    svg = str(line_chart(buckets, start_us=start, end_us=start + 24 * H, bucket_us=width, tz=TZ, unit="MPa",
                         title="<b>x</b>", limits=[("low", 9.0)]))
    assert svg.count("<polyline") == 2 and svg.count("<polygon") == 2
    assert "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg
    assert 'class="limit"' in svg and ">MPa<" in svg
    assert re.search(r">\d\d:00<", svg)  # hour ticks in local time


def test_empty_chart_says_so() -> None:
    svg = str(line_chart([], start_us=0, end_us=7 * 24 * H, bucket_us=H, tz=TZ, unit="", title="t",
                         empty_text="无数据"))
    assert "无数据" in svg and "<polyline" not in svg


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = catalog("zh"), catalog("en")
    assert set(zh) == set(en)
    for key in zh:
        assert set(re.findall(r"{(\w+)}", zh[key])) == set(re.findall(r"{(\w+)}", en[key])), key


def test_every_key_the_templates_use_exists() -> None:
    templates = Path(__file__).resolve().parents[3] / "edge" / "panel" / "templates"
    keys = {k for f in templates.glob("*.html") for k in re.findall(r"t\('([a-z_.0-9]+)'[,)]", f.read_text())}
    assert len(keys) > 150
    assert sorted(keys - set(catalog("zh"))) == []


def test_translator_falls_back_and_formats() -> None:
    t = translator("zh")
    assert t("nav.alarms") == "告警" and translator("en")("nav.alarms") == "Alarms"
    assert t("pager.page", page=2, pages=5) == "第 2 / 5 页"
    assert t("no.such.key") == "no.such.key"
    assert pick_language("en", "zh") == "en" and pick_language("fr", "zh") == "zh" and pick_language(None, "en") == "en"
