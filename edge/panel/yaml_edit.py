"""Change one key of one camera in the estate YAML *in place*, leaving every other byte alone.

Why not load, modify and dump the whole document: installers keep comments, ``!secret`` tags, key
order and their own layout in this file, and PyYAML's dump would throw all of that away. Instead we
compose the document into nodes (tags such as ``!secret`` stay untouched text), find the camera's mapping and
the key's node with their marks (character offsets), and splice a freshly emitted block in place of
just that key's text. The emitter (``yaml.safe_dump``) does all quoting, so a zone name can not
inject YAML. The caller validates the whole resulting document before saving it.

Refused (``YamlEditError``, with a message naming the place): a document with no ``cameras`` list,
an unknown camera id, a camera written in flow style (``{id: a, ...}``), or a key whose value is a
YAML alias defined elsewhere (splicing would edit the anchor instead).
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlEditError(ValueError):
    """The text can not be edited safely in place; the message says where and why."""


def _get(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _content_end(node: yaml.Node) -> int:
    """Offset just past the last character that belongs to ``node`` (not the comments after it)."""
    if isinstance(node, yaml.ScalarNode):
        end = node.end_mark.index
        if node.style in ("|", ">"):  # block scalars end after their trailing line breaks
            buffer = node.end_mark.buffer or ""
            while end > node.start_mark.index and buffer[end - 1] in "\r\n":
                end -= 1
        return end
    if getattr(node, "flow_style", False) or not node.value:
        return node.end_mark.index
    if isinstance(node, yaml.MappingNode):
        return _content_end(node.value[-1][1])
    return _content_end(node.value[-1])


def _emit(key: str, value: Any, indent: int) -> str:
    """``key: value`` as block YAML whose continuation lines are indented by ``indent`` spaces."""
    text = yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100)
    lines = text.rstrip("\n").split("\n")
    return "\n".join([lines[0]] + [" " * indent + line for line in lines[1:]])


def set_camera_field(text: str, camera_id: str, key: str, value: Any) -> str:
    """Return ``text`` with ``cameras[id=camera_id].<key>`` set to ``value`` (added when missing)."""
    loader = yaml.SafeLoader(text)  # composing only: tags like !secret need no constructor
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise YamlEditError(f"the config is not valid YAML: {exc.problem}") from exc
    finally:
        loader.dispose()
    if not isinstance(root, yaml.MappingNode):
        raise YamlEditError("the config's top level is not a mapping")
    found = _get(root, "cameras")
    if found is None or not isinstance(found[1], yaml.SequenceNode):
        raise YamlEditError("the config has no 'cameras' list")
    camera = None
    for index, item in enumerate(found[1].value):
        if isinstance(item, yaml.MappingNode):
            id_node = _get(item, "id")
            if id_node is not None and isinstance(id_node[1], yaml.ScalarNode) and id_node[1].value == camera_id:
                camera = (index, item)
                break
    if camera is None:
        raise YamlEditError(f"no camera with id {camera_id!r} in the config")
    index, node = camera
    where = f"cameras[{index}] (line {node.start_mark.line + 1})"
    if node.flow_style:
        raise YamlEditError(f"{where} is written in flow style {{...}}; rewrite it as a block to edit it here")
    existing = _get(node, key)
    if existing is not None:
        key_node, value_node = existing
        start, end = key_node.start_mark.index, _content_end(value_node)
        if value_node.start_mark.index < start or end > _content_end(node):
            raise YamlEditError(f"{where}.{key} is a YAML alias; replace it by hand")
        eol = text.find("\n", end)
        eol = len(text) if eol < 0 else eol
        return text[:start] + _emit(key, value, key_node.start_mark.column) + text[eol:]
    last: tuple[yaml.Node, yaml.Node] = node.value[-1]
    last_key, last_value = last
    indent = last_key.start_mark.column
    end = _content_end(last_value)
    eol = text.find("\n", end)
    if eol < 0:
        return text + "\n" + " " * indent + _emit(key, value, indent) + "\n"
    return text[:eol + 1] + " " * indent + _emit(key, value, indent) + "\n" + text[eol + 1:]
