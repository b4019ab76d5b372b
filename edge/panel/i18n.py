"""Chinese (default) and English texts of the panel, from ``locales/<lang>.json``.

Keys are dotted names (``alarm.ack``); a missing key falls back to English, then to the key itself,
so a forgotten translation shows up as readable English rather than an error. Placeholders use
``str.format`` names (``{count}``). A unit test checks that both files have the same keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES: tuple[str, ...] = ("zh", "en")
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
_DIR = Path(__file__).parent / "locales"


@cache
def catalog(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    data = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


Translator = Callable[..., str]


def translator(lang: str) -> Translator:
    texts = catalog(lang if lang in LANGUAGES else "zh")
    fallback = catalog("en")

    def t(key: str, /, **values: object) -> str:
        text = texts.get(key) or fallback.get(key) or key
        if values:
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    return t


def pick_language(cookie: str | None, default: str) -> str:
    """The language cookie (the user's switch) wins, else the config default (Chinese unless changed).

    The browser's Accept-Language is ignored on purpose: control-room PCs often run English
    Windows while the staff read Chinese.
    """
    if cookie in LANGUAGES:
        return cookie
    return default if default in LANGUAGES else "zh"
