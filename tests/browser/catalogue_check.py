"""Is every word a page shows in the active language's catalogue? A check over the rendered text.

What counts as shown: every text node the browser renders (closed "details" folds, hidden
elements, scripts and styles are left out), the options of select boxes, placeholders and
aria-labels. Machine data marked up as such (``code``, ``pre``, ``kbd``, ``samp``: an MQTT payload,
a BLE address, an OPC-UA node id on the installer's tools) is shown verbatim by design and is not
language. What a text may consist of:

* **catalogue text** of the active language: the panel's ``edge/panel/locales/<lang>.json`` and the
  message catalogue ``edge/messages/<lang>.json`` (templates split at their placeholders, and the
  term tables);
* **proper names** the installer, a person or a device gave: estate, gateway, device, camera, zone
  and bus names and ids, state labels, profile names, user names, the fire panel's component
  descriptions, and each language's own name on the language switch (``ProperNames``);
* numbers, dates, times, units, ULIDs, addresses, URLs, file names.

Names and catalogue pieces are taken away longest first, in one list, so that a short name (a state
called 关闭) never splits a longer catalogue text (未关闭告警) and leaves half a word behind.

Whatever is left after taking those away must be punctuation or space; a letter or a Chinese
character left over is a string outside the catalogue (an English word on a Chinese page, a Chinese
word on an English page, a raw key such as ``pipe_state``), and the check names it with its page.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PANEL_LANG = {"zh-CN": "zh", "en": "en"}

# Units and symbols of the profiles and the panel (canonical spellings and the upload ASCII ones).
UNITS = ("kWh", "kvarh", "kVAh", "MWh", "kW", "kvar", "kVA", "var", "VA", "W", "V", "A", "Hz", "MPa", "kPa", "Pa",
         "bar", "m³/h", "m³", "m3/h", "m3", "L/s", "L", "°C", "℃", "%RH", "%", "mm", "cm", "m", "s", "ms", "min",
         "h", "d", "fps", "px", "dB", "lx", "ppm", "μg/m³", "mg/m³", "GB", "MB", "KB", "kB", "B", "x")

_TEXT_JS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest("script, style, template, noscript, code, pre, kbd, samp")) continue;
    if (parent.closest("svg") ? !parent.closest("svg").checkVisibility() : !parent.checkVisibility()) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll("select option")) {
    if (el.closest("select").checkVisibility() && el.textContent.trim()) out.push(el.textContent.trim());
  }
  for (const el of document.querySelectorAll("[placeholder], [aria-label]")) {
    if (!el.checkVisibility()) continue;
    for (const name of ["placeholder", "aria-label"]) {
      const value = (el.getAttribute(name) || "").trim();
      if (value) out.push(value);
    }
  }
  return out;
}"""

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_NOISE = [
    re.compile(r"\b[a-z][a-z0-9+.-]*://\S+"),  # URLs (opc.tcp://host:port/path), before the addresses in them
    re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b"),  # ULIDs (alarm ids, record ids)
    re.compile(r"\b[\w.-]+\.(?:yaml|yml|json|jsonl|pem|db|csv|jpg|png|onnx)\b"),  # file names
    re.compile(r"\b(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}\b"),  # MAC addresses
    re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?)?\b"),  # dates
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b"),  # times
    re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"),  # addresses
    re.compile(r"\b0x[0-9A-Fa-f]+\b"),  # register addresses
    re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?"),  # numbers
]


def visible_texts(page: Any) -> list[str]:
    """Every string the page shows (see the module docstring), in document order."""
    return list(page.evaluate(_TEXT_JS))


@cache
def catalogue_fragments(lang: str) -> tuple[str, ...]:
    """The literal pieces of every catalogue text of ``lang``."""
    panel = json.loads((REPO / "edge" / "panel" / "locales" / f"{PANEL_LANG[lang]}.json").read_text(encoding="utf-8"))
    messages = json.loads((REPO / "edge" / "messages" / f"{lang}.json").read_text(encoding="utf-8"))
    texts: list[str] = [*panel.values(), *messages["messages"].values()]
    for table in messages.get("terms", {}).values():
        texts.extend(table.values())
    pieces = {p.strip() for text in texts for p in _PLACEHOLDER.split(str(text))}
    return tuple(p for p in pieces if _has_word(p))


def _has_word(text: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in text)


@dataclass
class ProperNames:
    """Names people gave (config, accounts): allowed in either language."""

    names: set[str] = field(default_factory=set)

    def add(self, *values: Any) -> None:
        for value in values:
            if isinstance(value, str) and value.strip():
                self.names.add(value.strip())

    def add_language_names(self) -> None:
        from edge.panel.i18n import LANGUAGE_NAMES

        self.add(*LANGUAGE_NAMES.values())

    @classmethod
    def from_config(cls, doc: dict[str, Any], usernames: Iterable[str] = ()) -> ProperNames:
        """Names and ids from an estate config document (the YAML as loaded)."""
        out = cls()
        out.add_language_names()
        estate = doc.get("estate", {})
        out.add(estate.get("name"), estate.get("id"), estate.get("gateway_id"), *usernames)
        for bus in doc.get("buses", []):
            out.add(bus.get("id"), bus.get("host"))
        for item in [*doc.get("devices", []), *doc.get("cameras", [])]:
            out.add(item.get("id"), item.get("name"), item.get("profile"), item.get("host"))
            for value in (item.get("location") or {}).values():
                out.add(str(value))
            for rule in (item.get("states") or {}).values():
                out.add(rule.get("label"), *(str(v) for v in (rule.get("names") or {}).values()))
            for zone in item.get("zones", []):
                out.add(zone.get("id"), zone.get("name"))
        return out


def _remove(text: str, piece: str) -> str:
    if piece.isascii():  # an English piece counts only as whole words, in any letter case (sentence starts)
        before = r"(?<![A-Za-z0-9_])" if piece[0].isalnum() else ""
        after = r"(?![A-Za-z0-9_])" if piece[-1].isalnum() else ""
        return re.sub(before + re.escape(piece) + after, " ", text, flags=re.IGNORECASE)
    return text.replace(piece, " ")


@cache
def _pieces(lang: str, names: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted({*catalogue_fragments(lang), *names}, key=len, reverse=True))


def leftover(text: str, lang: str, names: ProperNames) -> str:
    """What of ``text`` is neither catalogue text, a proper name, a number, a date nor a unit ('' if nothing)."""
    rest = _NOISE[0].sub(" ", text)  # URLs first: a host name inside one is no proper name of its own
    lower = rest.lower()
    for piece in _pieces(lang, frozenset(names.names)):
        if piece.lower() in lower:
            rest = _remove(rest, piece)
    for pattern in _NOISE:
        rest = pattern.sub(" ", rest)
    for unit in sorted(UNITS, key=len, reverse=True):
        rest = _remove(rest, unit)
    return " ".join(w for w in rest.split() if _has_word(w))


def strings_outside(texts: Iterable[str], lang: str, names: ProperNames) -> list[tuple[str, str]]:
    """``(text, what is left of it)`` for every text that is not all catalogue, names and numbers."""
    out = []
    for text in dict.fromkeys(texts):
        rest = leftover(text, lang, names)
        if rest:
            out.append((text, rest))
    return out
