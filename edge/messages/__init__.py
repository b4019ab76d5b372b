"""The one message catalogue: staff-visible text of every alarm and event, by stable code.

Every event and alarm step carries a ``message_code`` (e.g. ``device.offline``) with ``params``
(``{"device": "B1-HP-01", "failures": 3}``), and a ``message`` rendered from them in the estate's
language (``estate.language``: ``zh-CN`` by default, ``en``). The platform payload, the panel and
the notifiers all take their words from here, so the same code reads the same everywhere and can be
re-rendered in the other language later (the panel's language switch).

Technical detail (errors, file paths, retry timers, track ids, detector classes) belongs in the
record's ``data``, never in ``params``' rendered text: staff read messages, engineers read ``data``.

Templates live in ``zh-CN.json`` and ``en.json`` beside this module::

    {"messages": {"device.offline": "{device|label} 离线：连续 {failures} 次轮询无应答", ...},
     "terms": {"point": {"pressure": "压力", ...}, "class": {"motorcycle": "电动车", ...}, ...}}

A placeholder is ``{name}`` or ``{name|filter}``. Filters:

* ``label``: a device / camera id becomes its configured place, name and id
  ("2栋 消火栓压力 B1-HP-01"), from the labels given to ``configure`` (unknown ids stay as they are);
* any table name under ``terms`` (``point``, ``class``, ``lane``, ...): the value's translation
  (a value the table does not know stays as it is);
* ``context``: what else a state alarm knows, given as ``floor=12,direction=0``, worded in the
  language ("（楼层 12，停止）" / " (floor 12, stopped)"): a named value from the ``context`` table
  (``direction.0``), else the point's name (``point`` table) and the number. A value in another form
  (a record written before) stays as it is.

Numbers are written without float noise (``0.07``, ``1234.5``, ``30``).

Failure modes: rendering never raises (it runs inside drivers and rules). An unknown code renders
as the English catalogue's text, else as the code itself; a missing parameter leaves ``{name}`` in
the text. ``tests/unit/messages`` makes sure neither happens for any code the source emits.

Why a process-wide language and label map (``configure``): records are built deep inside drivers
and rules that never see the estate configuration; the daemon sets both once at start and on every
reload, and tests that do not configure get ``zh-CN`` and bare ids.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from edge.config import EstateConfig
    from edge.config.cameras import CameraConfig
    from edge.config.devices import DeviceConfig

LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\|([a-z_]+))?\}")


class MessageFields(TypedDict):
    """The three record fields a message fills: ``Event(code=..., **say("device.offline", ...))``."""

    message: str
    message_code: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One language's templates (code -> text) and term tables (table -> key -> text)."""

    language: str
    messages: Mapping[str, str]
    terms: Mapping[str, Mapping[str, str]]


@dataclass(slots=True)
class _Context:
    language: str = DEFAULT_LANGUAGE
    labels: Mapping[str, str] | None = None


_context = _Context()


def normalise_language(lang: str | None) -> str:
    """``zh``, ``zh_CN``, ``zh-cn`` -> ``zh-CN``; ``en``, ``en-US`` -> ``en``; anything else -> the default."""
    if not lang:
        return DEFAULT_LANGUAGE
    low = lang.replace("_", "-").lower()
    if low.startswith("zh"):
        return "zh-CN"
    if low.startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


@cache
def catalogue(lang: str) -> Catalogue:
    """The catalogue of ``lang`` (one of ``LANGUAGES``); raises ``ValueError`` for another language."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown message language {lang!r}; known: {', '.join(LANGUAGES)}")
    text = resources.files(__name__).joinpath(f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return Catalogue(lang, dict(data["messages"]), {k: dict(v) for k, v in data.get("terms", {}).items()})


def configure(language: str | None = None, labels: Mapping[str, str] | None = None) -> None:
    """Set the estate's language and the id -> label map used by ``say`` (daemon start and reload)."""
    _context.language = normalise_language(language)
    _context.labels = dict(labels) if labels is not None else None


def current_language() -> str:
    return _context.language


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.6g}"
    if "e" in text:  # tiny or huge: plain decimal, trailing zeros dropped
        text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return _number(float(value))
    return "" if value is None else str(value)


def render(code: str, params: Mapping[str, Any] | None = None, lang: str | None = None,
           labels: Mapping[str, str] | None = None) -> str:
    """The text of ``code`` with ``params`` in ``lang`` (default: the configured language).

    ``labels`` maps device / camera ids to what staff call them; default: the configured map.
    """
    cat = catalogue(normalise_language(lang) if lang else _context.language)
    template = cat.messages.get(code)
    if template is None:
        template = catalogue("en").messages.get(code)
        if template is None:
            return code
    values = params or {}
    names = labels if labels is not None else (_context.labels or {})

    def substitute(match: re.Match[str]) -> str:
        name, filt = match.group(1), match.group(2)
        if name not in values:
            return match.group(0)
        value = values[name]
        if filt == "label":
            return names.get(str(value), _text(value))
        if filt == "context":
            return _context_words(_text(value), cat)
        if filt is not None:
            table = cat.terms.get(filt, {})
            return table.get(_text(value), _text(value))
        return _text(value)

    return _PLACEHOLDER.sub(substitute, template)


def _context_words(value: str, cat: Catalogue) -> str:
    """``floor=12,fault_code=5`` in the catalogue's words (see the module docstring)."""
    table = cat.terms.get("context", {})
    if not value or value in table:
        return table.get(value, value)
    items = [part.partition("=") for part in value.split(",")]
    if not all(key and sep for key, sep, _ in items):
        return value
    points = cat.terms.get("point", {})
    words = [table.get(f"{key}.{number}") or f"{points.get(key, key)} {number}" for key, _, number in items]
    return table.get("_open", " (") + table.get("_sep", ", ").join(words) + table.get("_close", ")")


def term(table: str, key: str, lang: str | None = None) -> str:
    """The name of ``key`` in a term table (``code``, ``point``, ``class`` ...); ``key`` itself when unknown."""
    cat = catalogue(normalise_language(lang) if lang else _context.language)
    return cat.terms.get(table, {}).get(key, key)


def say(code: str, /, **params: Any) -> MessageFields:
    """``message`` (rendered now, in the configured language), ``message_code`` and ``params`` for a record.

    Parameter values must be JSON scalars; anything else is stored as its ``str``.
    """
    clean = {k: v if v is None or isinstance(v, str | int | float | bool) else str(v) for k, v in params.items()}
    return {"message": render(code, clean), "message_code": code, "params": clean}


def placeholders(template: str) -> list[tuple[str, str | None]]:
    """The ``(name, filter)`` pairs a template uses (for the catalogue tests and tools)."""
    return [(m.group(1), m.group(2)) for m in _PLACEHOLDER.finditer(template)]


def device_label(device_id: str, name: str | None = None, building: str | None = None,
                 unit: str | None = None, room: str | None = None) -> str:
    """What staff call a device: its place, its name and its id ("2栋 消火栓压力 B1-HP-01").

    The building is left out when the name already starts with it ("1栋总进线电表").
    """
    place = "".join(p for p in (building, unit) if p)
    parts: list[str] = []
    if place and not (name or "").startswith(place):
        parts.append(place)
    if room and room not in (name or ""):
        parts.append(room)
    if name and name != device_id:
        parts.append(name)
    parts.append(device_id)
    return " ".join(parts)


def labels_from_config(config: EstateConfig) -> dict[str, str]:
    """Id -> label for every device and camera of the estate config (what messages name them by)."""
    out: dict[str, str] = {}
    # A list typed as the union: a tuple of both lists was joined to their common base, Section, which has
    # no id, name or location, so nothing here was checked.
    items: list[DeviceConfig | CameraConfig] = [*config.devices, *config.cameras]
    for item in items:
        loc = item.location
        out[item.id] = device_label(item.id, item.name, loc.building, loc.unit, loc.room)
    return out


__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Catalogue",
    "MessageFields",
    "catalogue",
    "configure",
    "current_language",
    "device_label",
    "labels_from_config",
    "normalise_language",
    "placeholders",
    "render",
    "say",
    "term",
]
