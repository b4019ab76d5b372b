"""JSONPath-like selectors: the small subset device payloads need, compiled once per profile point.

Grammar (a strict subset of JSONPath; anything else is a profile error naming the selector)::

    $                      the whole document
    .name  ['name']        a member of an object (quoted form for names with dots, spaces, Chinese)
    [3]  [-1]              an element of an array (negative counts from the end)
    [?(@.key == 'v')]      the first array element whose member ``key`` equals 'v' (or a number)

Why a subset and not a JSONPath library: selectors run once per point per message (tens of
thousands a second in the ingest bench), a compiled tuple of steps is a handful of dict lookups, and
every construct here has one meaning. ``select`` returns ``MISSING`` when the path is absent (the
point may be optional) and raises ``SelectorError`` when the document's shape contradicts the path
(an index into an object), which parks the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final


class SelectorError(ValueError):
    """A selector does not parse, or the payload's shape contradicts it."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class _Key:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Filter:
    key: str
    value: str | float


_Step = _Key | _Index | _Filter

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_\u0080-\uffff][\w\u0080-\uffff-]*)
      | \[\s*'(?P<quoted>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<dquoted>(?:[^"\\]|\\.)*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*\?\(\s*@\.(?P<fkey>[A-Za-z_][\w-]*)\s*==\s*
          (?:'(?P<fstr>[^']*)'|"(?P<fdstr>[^"]*)"|(?P<fnum>-?\d+(?:\.\d+)?))\s*\)\s*\]
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled selector; ``text`` is kept for error messages."""

    text: str
    steps: tuple[_Step, ...]
    keys: tuple[str, ...] | None = None  # set when every step is a member name: the hot path

    def select(self, document: Any) -> Any:
        """The selected value, or ``MISSING``; raises ``SelectorError`` on a shape mismatch."""
        if self.keys is not None:
            node = document
            for name in self.keys:
                if type(node) is not dict:
                    return self._walk(document)  # for the error naming the step
                node = node.get(name, MISSING)
                if node is MISSING:
                    return MISSING
            return node
        return self._walk(document)

    def _walk(self, document: Any) -> Any:
        node = document
        for step in self.steps:
            if isinstance(step, _Key):
                if not isinstance(node, dict):
                    raise SelectorError(f"{self.text}: expected an object before {step.name!r}, got {_kind(node)}")
                node = node.get(step.name, MISSING)
            elif isinstance(step, _Index):
                if not isinstance(node, list):
                    raise SelectorError(f"{self.text}: expected an array before [{step.index}], got {_kind(node)}")
                if not -len(node) <= step.index < len(node):
                    return MISSING
                node = node[step.index]
            else:
                if not isinstance(node, list):
                    raise SelectorError(f"{self.text}: expected an array before the filter, got {_kind(node)}")
                node = next((item for item in node if isinstance(item, dict) and _equal(item.get(step.key), step.value)),
                            MISSING)
            if node is MISSING:
                return MISSING
        return node


def _equal(found: Any, wanted: str | float) -> bool:
    if isinstance(wanted, str):
        return isinstance(found, str) and found == wanted
    return isinstance(found, int | float) and not isinstance(found, bool) and float(found) == wanted


def _kind(node: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(node), "null" if node is None else "a number")


def compile_selector(text: str) -> Selector:
    """Compile ``text``; raises ``SelectorError`` naming the position that does not parse."""
    if not text.startswith("$"):
        raise SelectorError(f"selector {text!r} must start with '$'")
    steps: list[_Step] = []
    pos = 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SelectorError(f"selector {text!r}: cannot parse at position {pos} ({text[pos:]!r})")
        groups = match.groupdict()
        if groups["name"] is not None:
            steps.append(_Key(groups["name"]))
        elif groups["quoted"] is not None or groups["dquoted"] is not None:
            raw = groups["quoted"] if groups["quoted"] is not None else groups["dquoted"]
            steps.append(_Key(re.sub(r"\\(.)", r"\1", raw)))
        elif groups["index"] is not None:
            steps.append(_Index(int(groups["index"])))
        else:
            value: str | float
            if groups["fnum"] is not None:
                value = float(groups["fnum"])
            else:
                value = groups["fstr"] if groups["fstr"] is not None else groups["fdstr"]
            steps.append(_Filter(groups["fkey"], value))
        pos = match.end()
    keys = tuple(step.name for step in steps if isinstance(step, _Key))
    return Selector(text, tuple(steps), keys if len(keys) == len(steps) else None)
