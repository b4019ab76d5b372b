"""OPC-UA node ids by namespace URI, and profiles that template them per device."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import ua

from drivers.opcua.nodeid import NodeIdError, parse_node_ref, to_config_form
from drivers.opcua.profile import OpcUaProfileLibrary
from edge.errors import ConfigError

URI = "urn:estate-edge:sim:pump-room"


def test_namespace_uri_is_resolved_per_server() -> None:
    ref = parse_node_ref(f"nsu={URI};s=PumpRoom1.OutletPressure")
    assert ref.resolve(["http://opcfoundation.org/UA/", URI]) == ua.NodeId("PumpRoom1.OutletPressure", 1)
    assert ref.resolve(["http://opcfoundation.org/UA/", "urn:other", "urn:more", URI]).NamespaceIndex == 3
    with pytest.raises(NodeIdError, match="has no namespace"):
        ref.resolve(["http://opcfoundation.org/UA/"])
    assert parse_node_ref("i=2258").resolve([]) == ua.NodeId(2258, 0)
    assert parse_node_ref("i=2258", URI).uri is None  # bare numeric ids stay in namespace 0
    assert parse_node_ref("s=Level", URI).resolve(["x", URI]) == ua.NodeId("Level", 1)


def test_index_based_and_malformed_ids_are_refused() -> None:
    with pytest.raises(NodeIdError, match="not by index"):
        parse_node_ref("ns=2;s=PumpRoom1.OutletPressure")
    with pytest.raises(NodeIdError, match="needs its namespace URI"):
        parse_node_ref("s=Level")
    with pytest.raises(NodeIdError, match="not a node id"):
        parse_node_ref("PumpRoom1.OutletPressure")
    with pytest.raises(NodeIdError, match="not a GUID"):
        parse_node_ref(f"nsu={URI};g=nope")


def test_config_form_round_trips() -> None:
    namespaces = ["http://opcfoundation.org/UA/", URI]
    text = to_config_form(ua.NodeId("PumpRoom1.Pump1.Current", 1), namespaces)
    assert text == f"nsu={URI};s=PumpRoom1.Pump1.Current"
    assert parse_node_ref(text).resolve(namespaces) == ua.NodeId("PumpRoom1.Pump1.Current", 1)
    assert to_config_form(ua.NodeId(85, 0), namespaces) == "i=85"


def test_profile_templates_node_ids_per_device(tmp_path: Path) -> None:
    profile = OpcUaProfileLibrary().get("pump_room_plc")
    refs = profile.node_refs({"prefix": "PumpRoom2"})
    assert str(refs["pump1_current"]) == f"nsu={URI};s=PumpRoom2.Pump1.Current"
    assert profile.points["sump_level"].device_unit == "cm" and profile.points["sump_level"].unit == "m"
    with pytest.raises(ConfigError, match=r"needs options\.prefix"):
        profile.node_refs({})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nvendor: y\nsource: z\ncategory: other\npoints:\n  a: {node: 'ns=3;s=A', unit: furlong}\n")
    with pytest.raises(ConfigError) as err:
        OpcUaProfileLibrary([tmp_path]).get("bad")
    text = "\n".join(err.value.problems)
    assert "bad.yaml:6" in text and "unknown unit 'furlong'" in text
