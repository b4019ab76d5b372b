"""Staff-visible words of stored records in the viewer's language: messages, point names, details.

Why: the store keeps each alarm's and event's message as rendered when it happened, in the estate's
language (``estate.language``), next to its ``message_code`` and ``params`` (``edge.messages``). A
viewer who switched the panel to English must not read the Chinese text, nor a Chinese viewer an
English one: the panel renders the message again from code and params, in the viewer's language,
with the estate's device labels. Rows without a code (written before messages had codes) keep
their stored text: it is all there is.

Points read as their catalogue names (``terms.point``: ``pressure`` -> 压力 / pressure) with the unit
the profile gives them; a point the catalogue does not know stays its key, which the browser tests'
catalogue check reports. Technical detail (``data``: track ids, detector classes, errors) is for
engineers: the templates show it folded under "details", without the reserved message key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from edge import messages
from edge.store.codec import MESSAGE_KEY

if TYPE_CHECKING:
    from edge.config import EstateConfig

PANEL_TO_MESSAGES = {"zh": "zh-CN", "en": "en"}
_LABELS: dict[int, tuple[EstateConfig, dict[str, str]]] = {}  # id(config) -> (config, labels): one entry, rebuilt on reload


def labels_of(config: EstateConfig | None) -> dict[str, str]:
    """Device and camera id -> what staff call it, for the config in force (cached per config object)."""
    if config is None:
        return {}
    cached = _LABELS.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    labels = messages.labels_from_config(config)
    _LABELS.clear()
    _LABELS[id(config)] = (config, labels)
    return labels


class HasMessage(Protocol):
    code: str
    message: str
    message_code: str
    params: dict[str, Any]


class Wording:
    """One request's wording: the viewer's language and the estate's id -> label map."""

    def __init__(self, lang: str, labels: Mapping[str, str]) -> None:
        self.lang = PANEL_TO_MESSAGES.get(lang, messages.DEFAULT_LANGUAGE)
        self.labels = labels

    def message(self, record: HasMessage) -> str:
        """The record's message in the viewer's language (its stored text when it cannot be rendered)."""
        return self.text(record.message_code, record.params, record.message or record.code)

    def text(self, code: str, params: Mapping[str, Any] | None, stored: str) -> str:
        """``code`` rendered with ``params``, when the catalogue has it and ``params`` fill every placeholder.

        Else ``stored`` (a row from before message codes carries its code but no params).
        """
        template = messages.catalogue(self.lang).messages.get(code) if code else None
        params = params or {}
        if template is not None and all(name in params for name, _ in messages.placeholders(template)):
            return messages.render(code, params, lang=self.lang, labels=self.labels)
        return stored or messages.term("code", code, self.lang)

    def point(self, point: str, device: Any = None) -> str:
        """A point's name for staff.

        The label its state rule gives it on ``device`` (a DeviceConfig: "1栋1单元 1层防火门" for di1),
        else the catalogue's (``pressure`` -> 压力), else the key itself.
        """
        rule = (getattr(device, "states", None) or {}).get(point)
        label = getattr(rule, "label", None)
        return label or messages.term("point", point, self.lang)

    def value_names(self, point: str, device: Any = None) -> dict[str, str]:
        """Names of a state point's values, by value; {} for a measurement.

        The installer's (the state rule's ``names``), else the catalogue's for the lift box's codes
        (``direction``: 0 -> 停止 / stopped).
        """
        rule = (getattr(device, "states", None) or {}).get(point)
        names = getattr(rule, "names", None)
        if names:
            return {str(k): str(v) for k, v in names.items()}
        prefix = f"{point}."
        table = messages.catalogue(self.lang).terms.get("context", {})
        return {k[len(prefix):]: v for k, v in table.items() if k.startswith(prefix)}

    def term(self, table: str, key: str) -> str:
        """A catalogue term (``class``: ``car`` -> 小汽车); the key itself when unknown."""
        return messages.term(table, key, self.lang)

    def point_names(self) -> dict[str, str]:
        """Every point name the catalogue knows, for the page's script (new points appear live)."""
        return dict(messages.catalogue(self.lang).terms.get("point", {}))

    def code(self, code: str) -> str:
        """An alarm or event code's name for staff (``fire.lane_blocked`` -> 消防通道占用)."""
        return messages.term("code", code, self.lang)

    @staticmethod
    def details(data: Mapping[str, Any] | None) -> dict[str, Any]:
        """The technical detail of a record, without the reserved message key, for the "details" fold."""
        return {k: v for k, v in (data or {}).items() if k != MESSAGE_KEY}
