"""Unknown config keys: say which key was meant ("did you mean 'poll_interval_s'?").

Pydantic alone says "Extra inputs are not permitted".

Every section forbids extra keys, so a typo is an error; the helpful part is naming the key that
is valid *at that place*. The place is found by walking the pydantic models along the error's raw
location, which still holds the tags pydantic adds for union members (``buses[0].<kind>``): a
discriminated union is entered through the member whose ``kind`` literal is the tag. A location
the walk cannot follow gives no suggestion, never a wrong one.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

# How alike a typo and a key must be (difflib ratio) to be suggested.
CUTOFF = 0.6
# Up to this many keys are listed when none is alike.
LIST_AT_MOST = 12


def _members(tp: Any) -> list[Any]:
    """The concrete types behind ``Annotated``, ``Optional`` and unions."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(tp) for m in _members(arg) if m is not type(None)]
    return [tp]


def _step(tp: Any, part: str | int) -> Any | None:
    """The type one location step below ``tp``, or None when the walk cannot tell."""
    for member in _members(tp):
        origin = get_origin(member)
        if isinstance(part, int) and origin in (list, tuple, set, frozenset):
            return get_args(member)[0] if get_args(member) else None
        if isinstance(part, str) and origin is dict:
            return get_args(member)[1] if len(get_args(member)) == 2 else None
        if (isinstance(part, str) and isinstance(member, type) and issubclass(member, BaseModel)
                and part in member.model_fields):
            return member.model_fields[part].annotation
    if isinstance(part, str):  # a union member's tag: its discriminator value or its class name
        for member in _members(tp):
            if isinstance(member, type) and issubclass(member, BaseModel):
                kind = member.model_fields.get("kind")
                tags = set(get_args(kind.annotation)) if kind is not None and get_origin(kind.annotation) is Literal else set()
                if part in tags or part == member.__name__:
                    return member
    return None


def keys_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str] | None:
    """The keys a mapping at raw location ``loc`` (the unknown key's parent) accepts, or None if not known."""
    tp: Any = root
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    models = [m for m in _members(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) != 1:
        return None
    model = models[0]
    return sorted(field.alias or name for name, field in model.model_fields.items())


def unknown_key_message(root: type[BaseModel], raw_loc: tuple[str | int, ...]) -> str:
    """``unknown key 'poll_interval'; did you mean 'poll_interval_s'?`` for an ``extra_forbidden`` error."""
    key = str(raw_loc[-1])
    known = keys_at(root, raw_loc[:-1])
    if not known:
        return f"unknown key {key!r}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=CUTOFF)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    if len(known) <= LIST_AT_MOST:
        return f"unknown key {key!r} (known here: {', '.join(known)})"
    return f"unknown key {key!r}"
