"""Browse an OPC-UA server for commissioning: what variables it has, as config-ready node ids.

The installer points the panel's browse tool at a PLC and copies node ids from the answer into a
profile; they come out namespace-independent (``nsu=<uri>;s=...``, see ``drivers.opcua.nodeid``),
with the browse path, data type and current value so the right variable is easy to pick. The walk
is bounded (``max_depth``, ``max_nodes``) because a PLC's address space can hold tens of thousands
of nodes; the standard ``Server`` object is skipped unless it is the root asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asyncua import Client, Node, ua

from drivers.opcua.nodeid import parse_node_ref, to_config_form

_SERVER_OBJECT = ua.NodeId(ua.Int32(ua.ObjectIds.Server))


@dataclass(frozen=True, slots=True)
class BrowseEntry:
    node_id: str  # namespace-independent, ready for a profile
    path: str  # browse names from the root, dot-separated
    node_class: str  # Object, Variable, ...
    data_type: str | None  # for variables
    value: Any  # for variables: the current value (None when unreadable)


async def browse(endpoint: str, *, root: str = "i=85", max_depth: int = 4, max_nodes: int = 2000,
                 timeout_s: float = 5.0, client: Client | None = None) -> list[BrowseEntry]:
    """Walk the address space below ``root`` (default: the Objects folder), breadth first."""
    own = client is None
    client = client or Client(endpoint, timeout=timeout_s)
    if own:
        await client.connect()
    try:
        namespaces = await client.get_namespace_array()
        start = client.get_node(parse_node_ref(root).resolve(namespaces))
        await start.read_node_class()  # a root the server lacks raises BadNodeIdUnknown instead of browsing nothing
        out: list[BrowseEntry] = []
        frontier: list[tuple[Node, str, int]] = [(start, "", 0)]
        while frontier and len(out) < max_nodes:
            node, path, depth = frontier.pop(0)
            for child in await node.get_children():
                if child.nodeid == _SERVER_OBJECT and node.nodeid != _SERVER_OBJECT:
                    continue
                name = (await child.read_browse_name()).Name
                child_path = f"{path}.{name}" if path else name
                node_class = await child.read_node_class()
                data_type = value = None
                if node_class == ua.NodeClass.Variable:
                    try:
                        value = await child.read_value()
                        data_type = (await child.read_data_type_as_variant_type()).name
                    except (ua.UaError, ValueError):
                        value = None
                out.append(BrowseEntry(to_config_form(child.nodeid, namespaces), child_path, node_class.name, data_type, value))
                if len(out) >= max_nodes:
                    break
                if depth + 1 < max_depth and node_class == ua.NodeClass.Object:
                    frontier.append((child, child_path, depth + 1))
        return out
    finally:
        if own:
            await client.disconnect()
