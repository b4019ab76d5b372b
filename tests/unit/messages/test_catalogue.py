"""The message catalogue: one code, the same words everywhere, Chinese by default, English available.

* every code the source says (``say("...")``, scanned with ``ast``) has a zh-CN and an en text;
* both languages have the same codes, placeholders and terms;
* no record is built with a free-text message any more (``message=`` a literal or f-string);
* a rendered zh-CN message contains no ASCII word other than units, ids and protocol names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge import messages
from edge.messages import catalogue, placeholders, render, say
from edge.records import Quality, Reading, Severity
from edge.rules import RuleEngine
from edge.rules.specs import DeviceSpec, RuleSpecs, ThresholdSpec

REPO = Path(__file__).resolve().parents[3]
SOURCES = [p for folder in ("edge", "drivers") for p in (REPO / folder).rglob("*.py")]
T0 = datetime(2026, 11, 27, tzinfo=UTC)

# ASCII that may stand in a Chinese message: units, protocol and product names, and ids (which contain
# a digit or a dash, e.g. B1-HP-01, EST-1).
UNITS = {"MPa", "kPa", "m", "m3", "kWh", "kW", "W", "V", "A", "Hz", "h", "s", "min", "degC", "L", "var", "VA",
         "kvarh"}
NAMES = {"MQTT", "Modbus", "RTU", "TCP", "ONVIF", "RTSP", "HTTPS", "JPEG"}


@pytest.fixture(autouse=True)
def default_context() -> Iterator[None]:
    messages.configure()
    yield
    messages.configure()


def said_codes() -> dict[str, list[str]]:
    """Every literal code passed to ``say`` in the source (both arms of a conditional), with where."""
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "say":
                if not node.args:
                    continue
                for code in _literal_codes(node.args[0]):
                    found.setdefault(code, []).append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def _literal_codes(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literal_codes(node.body) + _literal_codes(node.orelse)
    return []


def dynamic_codes() -> set[str]:
    """Codes chosen at run time from tables: each table's values must be in the catalogue too."""
    from drivers.gb26875.state import _STATE_CODES

    out = {code for pair in _STATE_CODES.values() for code in pair}
    cjt188 = (REPO / "drivers" / "cjt188" / "device.py").read_text(encoding="utf-8")
    out |= set(re.findall(r'"(meter\.[a-z_]+)"', cjt188))
    return out


def test_every_code_the_source_says_has_both_languages() -> None:
    codes = said_codes()
    assert len(codes) >= 40, "the scan found too few say() calls: is it still looking at the right files?"
    for lang in messages.LANGUAGES:
        missing = {code: where for code, where in codes.items() if code not in catalogue(lang).messages}
        assert not missing, f"{lang}: codes said in the source without a text: {missing}"
        assert not dynamic_codes() - set(catalogue(lang).messages), lang


def test_both_languages_have_the_same_codes_placeholders_and_terms() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert set(zh.messages) == set(en.messages)
    for code in zh.messages:
        assert sorted(placeholders(zh.messages[code])) == sorted(placeholders(en.messages[code])), code
    assert {t: set(v) for t, v in zh.terms.items()} == {t: set(v) for t, v in en.terms.items()}
    for code, text in zh.messages.items():
        for _name, filt in placeholders(text):
            assert filt is None or filt == "label" or filt in zh.terms, (code, filt)


def test_no_record_is_built_with_free_text() -> None:
    """Events, alarm steps and transitions get their message from say(), never from a string literal."""
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in
                    ("Event", "AlarmRecord", "AlarmTransition")):
                continue
            texts = [k.value for k in node.keywords if k.arg == "message"]
            if getattr(node.func, "id", None) == "Event" and len(node.args) >= 5:
                texts.append(node.args[4])
            if any(isinstance(t, ast.JoinedStr) or (isinstance(t, ast.Constant) and t.value) for t in texts):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"free-text messages: {offenders}"


def sample_params(text: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, filt in placeholders(text):
        if filt == "label":
            values[name] = "B1-HP-01"
        elif filt == "point":
            values[name] = "pressure"
        elif filt == "class":
            values[name] = "motorcycle"
        elif filt == "lane":
            values[name] = "telemetry"
        elif filt == "sub_item":
            values[name] = "lifts"
        elif filt == "category":
            values[name] = "water"
        elif filt is not None:  # any other term table: one of its keys
            values[name] = next(k for k in catalogue("zh-CN").terms[filt] if k)
        elif name == "unit":
            values[name] = "MPa"
        elif name in ("what", "zone", "description", "changes", "states", "context"):
            values[name] = "3栋北侧消防通道"
        elif name in ("bus", "address", "username", "actor", "start", "end"):
            values[name] = "B2-RS485"
        else:
            values[name] = 12.5
    return values


def test_rendered_chinese_has_no_english_words() -> None:
    labels = {"B1-HP-01": "2栋 消火栓压力 B1-HP-01"}
    for code, text in catalogue("zh-CN").messages.items():
        out = render(code, sample_params(text), "zh-CN", labels)
        assert "{" not in out, (code, out)
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9/\-]*", out)
                 if not set(w.split("/")) <= UNITS and w not in NAMES and not re.search(r"[0-9\-]", w)]
        assert not words, (code, out, words)
        english = render(code, sample_params(text), "en", labels)
        assert english != out and "{" not in english, code


def test_rendering_follows_the_estate_language_and_names_devices() -> None:
    params = {"device": "B1-HP-01", "point": "pressure", "value": 0.05, "unit": "MPa", "limit": 0.07, "held_s": 30}
    messages.configure("zh-CN", {"B1-HP-01": "2栋 消火栓压力 B1-HP-01"})
    zh = say("threshold.low", **params)
    assert zh["message"] == "2栋 消火栓压力 B1-HP-01 压力低于 0.07 MPa，已持续 30 秒（当前 0.05 MPa）"
    assert zh["message_code"] == "threshold.low" and zh["params"] == params
    messages.configure("en", {"B1-HP-01": "Building 2 hydrant B1-HP-01"})
    assert say("threshold.low", **params)["message"] == (
        "Building 2 hydrant B1-HP-01: pressure below 0.07 MPa for 30 s (now 0.05 MPa)")
    # The same code and params render in either language afterwards (the panel's language switch).
    assert render(zh["message_code"], zh["params"], "zh-CN", {}).startswith("B1-HP-01 压力低于")
    assert render("no.such_code", {}, "zh") == "no.such_code"
    assert messages.normalise_language("zh") == "zh-CN" and messages.normalise_language("en-US") == "en"


def test_labels_come_from_the_configuration() -> None:
    assert messages.device_label("B1-HP-01", "消火栓压力", "2栋") == "2栋 消火栓压力 B1-HP-01"
    assert messages.device_label("B1-EM-00", "1栋总进线电表", "1栋") == "1栋总进线电表 B1-EM-00"


def test_a_hydrant_alarm_from_the_rule_engine_reads_like_staff_speak() -> None:
    messages.configure("zh-CN", {"B1-HP-01": "2栋 消火栓压力 B1-HP-01"})
    spec = ThresholdSpec("B1-HP-01", "pressure", low=0.07, hysteresis=0.01, min_duration_s=30,
                         code_low="fire.hydrant_pressure_low", severity=Severity.CRITICAL, unit="MPa")
    engine = RuleEngine(RuleSpecs({("B1-HP-01", "pressure"): spec},
                                  {"B1-HP-01": DeviceSpec("B1-HP-01", "fire_pressure")}, {}))
    out = []
    for second in (0, 10, 20, 30):
        out += engine.evaluate(Reading("B1-HP-01", "pressure", 0.05, "MPa", T0 + timedelta(seconds=second),
                                       Quality.GOOD), T0 + timedelta(seconds=second))
    assert len(out) == 1
    raised = out[0]
    assert raised.message == "2栋 消火栓压力 B1-HP-01 压力低于 0.07 MPa，已持续 30 秒（当前 0.05 MPa）"
    assert raised.message_code == "threshold.low" and raised.params["limit"] == 0.07
    assert raised.data["since"] == "2026-11-27T00:00:00.000Z"  # Z form inside data too
