"""Topic filters -> subscribers: exact topics by dict lookup, wildcard filters matched level by level.

Why not one loop over every filter: a farm of thousands of devices on exact topics would cost a
scan per message; exact topics (the common case: one topic per device and message kind) are a
single dict lookup, and only filters with ``+`` or ``#`` are matched one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 section 4.7 matching (``+`` one level, ``#`` the rest, ``$`` topics not by wildcards)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels) or (level != "+" and level != t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)


class TopicRouter(Generic[T]):
    """Maps a received topic to every target whose filter matches it."""

    def __init__(self) -> None:
        self._exact: dict[str, list[T]] = {}
        self._wild: list[tuple[str, T]] = []

    def add(self, topic_filter: str, target: T) -> None:
        if "+" in topic_filter or "#" in topic_filter:
            self._wild.append((topic_filter, target))
        else:
            self._exact.setdefault(topic_filter, []).append(target)

    def route(self, topic: str) -> Sequence[T]:
        exact = self._exact.get(topic, ())
        if not self._wild:
            return exact
        return [*exact, *(target for topic_filter, target in self._wild if matches(topic_filter, topic))]

    @property
    def filters(self) -> list[str]:
        """Every distinct filter, for SUBSCRIBE."""
        return sorted({*self._exact, *(f for f, _ in self._wild)})
