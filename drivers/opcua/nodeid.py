"""Namespace-independent node ids: ``nsu=<namespace uri>;s=<id>`` in the config, resolved per session.

Why not ``ns=2;s=...``: a namespace *index* is the position of the URI in the server's namespace
array, which a PLC may reorder when its project is rebuilt or a module is added; a config written
against ``ns=2`` then silently reads another variable. The URI is stable, so the config names it and
the source looks the index up in the namespace array after every (re)connect.

Accepted forms (identifier types ``s`` string, ``i`` numeric, ``g`` GUID, ``b`` base64 opaque)::

    nsu=urn:vendor:plc;s=PumpRoom.Pump1.Current
    i=2258                      namespace 0 (the OPC-UA standard nodes), which never moves
    s=PumpRoom.Pump1.Current    only inside a profile that sets ``namespace`` (the default URI);
                                a bare ``i=`` stays namespace 0 even there

``ns=<n>;...`` is refused with a message saying why.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from asyncua import ua

Kind = Literal["s", "i", "g", "b"]
_KINDS: dict[str, Kind] = {"s": "s", "i": "i", "g": "g", "b": "b"}  # the regex's [sigb], as the Literal

_FORM = re.compile(r"^(?:nsu=(?P<uri>[^;]+);)?(?P<kind>[sigb])=(?P<ident>.+)$", re.DOTALL)


class NodeIdError(ValueError):
    """A node id that is not in a namespace-independent form, or whose namespace the server lacks."""


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node id by namespace URI (``None``: namespace 0)."""

    uri: str | None
    kind: Kind
    identifier: str

    def __str__(self) -> str:
        head = f"nsu={self.uri};" if self.uri is not None else ""
        return f"{head}{self.kind}={self.identifier}"

    def resolve(self, namespaces: list[str]) -> ua.NodeId:
        """The ``ua.NodeId`` for this session's namespace array; ``NodeIdError`` if the URI is absent."""
        if self.uri is None:
            index = 0
        else:
            try:
                index = namespaces.index(self.uri)
            except ValueError:
                raise NodeIdError(f"{self}: the server has no namespace {self.uri!r}") from None
        # asyncua's own marker types (str / int / UUID / bytes subclasses) as NodeId's annotations ask
        namespace = ua.Int16(index)
        if self.kind == "s":
            return ua.NodeId(ua.String(self.identifier), namespace, ua.NodeIdType.String)
        if self.kind == "i":
            return ua.NodeId(ua.Int32(int(self.identifier)), namespace, ua.NodeIdType.Numeric)
        if self.kind == "g":
            return ua.NodeId(ua.Guid(self.identifier), namespace, ua.NodeIdType.Guid)
        return ua.NodeId(ua.ByteString(base64.b64decode(self.identifier)), namespace, ua.NodeIdType.ByteString)


def parse_node_ref(text: str, default_uri: str | None = None) -> NodeRef:
    """Parse a config node id; relative forms (no ``nsu=``) take ``default_uri`` when given."""
    text = text.strip()
    if text.startswith("ns="):
        raise NodeIdError(f"{text!r}: give the namespace by URI (nsu=<uri>;...), not by index: indices change "
                          "when the server's project changes")
    match = _FORM.match(text)
    if match is None:
        raise NodeIdError(f"{text!r} is not a node id (expected nsu=<uri>;s=<name>, or i=<number> for namespace 0)")
    kind = _KINDS[match["kind"]]
    ident = match["ident"]
    if kind == "i" and not ident.isdigit():
        raise NodeIdError(f"{text!r}: a numeric identifier must be digits")
    if kind == "g":
        try:
            uuid.UUID(ident)
        except ValueError:
            raise NodeIdError(f"{text!r}: not a GUID") from None
    uri = match["uri"] or (default_uri if kind != "i" else None)  # bare i=... is always namespace 0
    if uri is None and kind != "i":
        raise NodeIdError(f"{text!r}: a string, GUID or opaque id needs its namespace URI (nsu=<uri>;...)")
    return NodeRef(uri, kind, ident)


def to_config_form(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """A server ``NodeId`` in the namespace-independent form the config takes (for browse results)."""
    kinds: dict[ua.NodeIdType, Kind] = {ua.NodeIdType.String: "s", ua.NodeIdType.Guid: "g", ua.NodeIdType.ByteString: "b"}
    kind = kinds.get(node_id.NodeIdType, "i")
    ident = node_id.Identifier
    text = base64.b64encode(ident).decode() if isinstance(ident, bytes) else str(ident)
    ref = NodeRef(namespaces[node_id.NamespaceIndex] if node_id.NamespaceIndex else None, kind, text)
    return str(ref)
