"""A trainable JAX copy of an ONNX detector graph, rebuilt from the ONNX file's own initialisers.

Why an interpreter and not a hand-written network: the shipped YOLOX-Nano is the only source of trained
weights we may use (Apache-2.0; nothing is fetched), and replaying its graph node by node guarantees that
the trainable model computes exactly what onnxruntime computes on the gateway. Training changes only the
initialisers; ``export_onnx`` writes them back into the same graph, so the inference side
(``edge.vision.detector``) loads a fine-tuned model with no code change, only a new card.

Supported operators are the ones a YOLOX export uses (opset 11): Conv, Sigmoid, Mul, Add, Concat, Slice,
MaxPool, Resize (nearest), Reshape, Transpose. Any other operator is refused with ``TrainingError``
naming the node, at load time rather than half-way through a night of training.

``logits=True`` skips the Sigmoid nodes that feed the detection head's concatenations, so the loss sees
objectness and class logits (numerically stable BCE) while the exported graph keeps its sigmoids.
``retarget_classes`` swaps the 80 COCO classes of the classification convolutions for the product's own
classes, each started from a COCO row where one is similar (e-bike from motorcycle) so the head starts
trained, which ``docs/tried-here.md`` found essential.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.training.errors import TrainingError

# jax and jnp are exported: the other training modules take them from here, behind the friendly import error.
__all__ = ["DEPTHWISE_AS_SHIFTS", "SUPPORTED_OPS", "DetectorGraph", "Node", "jax", "jnp"]

try:  # the training stack is the optional extra estate-edge[train]
    import jax
    import jax.numpy as jnp
    import onnx
    from onnx import numpy_helper
except ImportError as exc:  # pragma: no cover - exercised only on a box without the extra
    raise TrainingError(
        "training needs the optional extra: pip install 'estate-edge[train]' (jax, onnx)"
    ) from exc

Params = dict[str, Any]
SUPPORTED_OPS = frozenset(
    {"Conv", "Sigmoid", "Mul", "Add", "Concat", "Slice", "MaxPool", "Resize", "Reshape", "Transpose"}
)


@dataclass(frozen=True, slots=True)
class Node:
    """One ONNX node, reduced to what the interpreter needs."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]


@dataclass(slots=True)
class DetectorGraph:
    """An ONNX detector split into static structure (nodes, constants) and trainable parameters.

    ``params`` holds every float initialiser used as a Conv weight or bias (what training changes);
    ``constants`` holds the integer / shape initialisers (slice bounds, reshape targets, resize scales).
    """

    model: Any  # onnx.ModelProto, kept to write the fine-tuned weights back into the same graph
    nodes: tuple[Node, ...]
    params: Params
    constants: dict[str, NDArray[Any]]
    input_name: str
    output_name: str
    num_classes: int
    head_sigmoids: frozenset[str] = field(default_factory=frozenset)
    head_concats: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path) -> DetectorGraph:
        """Parse ``path``; refuses graphs with operators the interpreter does not implement."""
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises DecodeError / OSError variants
            raise TrainingError(f"{path}: cannot read ONNX model: {exc}") from exc
        graph = model.graph
        nodes = tuple(
            Node(
                n.op_type,
                n.name or n.output[0],
                tuple(n.input),
                tuple(n.output),
                {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute},
            )
            for n in graph.node
        )
        unsupported = sorted({f"{n.op} ({n.name})" for n in nodes if n.op not in SUPPORTED_OPS})
        if unsupported:
            raise TrainingError(f"{path}: operators the trainer does not implement: {', '.join(unsupported[:5])}")
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        conv_inputs = {name for n in nodes if n.op == "Conv" for name in n.inputs[1:]}
        params = {k: jnp.asarray(v, jnp.float32) for k, v in inits.items() if k in conv_inputs}
        constants = {k: np.asarray(v) for k, v in inits.items() if k not in conv_inputs}
        init_names = set(inits)
        inputs = [i.name for i in graph.input if i.name not in init_names]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise TrainingError(f"{path}: expected one image input and one output, got {inputs} -> "
                                f"{[o.name for o in graph.output]}")
        producers = {out: n for n in nodes for out in n.outputs}
        reshape_sources = {n.inputs[0] for n in nodes if n.op == "Reshape"}
        head_concats = tuple(n.outputs[0] for n in nodes if n.op == "Concat" and n.outputs[0] in reshape_sources)
        head_sigmoids = frozenset(
            name
            for concat in head_concats
            for name in producers[concat].inputs
            if name in producers and producers[name].op == "Sigmoid"
        )
        shape = next(constants[n.inputs[1]] for n in nodes if n.op == "Reshape")
        num_classes = int(shape[1]) - 5
        if not head_concats or num_classes < 1:
            raise TrainingError(f"{path}: not a YOLOX-layout detector (no [reg, obj, cls] head concatenation)")
        return cls(model, nodes, params, constants, inputs[0], graph.output[0].name, num_classes,
                   head_sigmoids, head_concats)

    # ---------------------------------------------------------------------------------------- classes
    def class_convs(self) -> list[tuple[str, str]]:
        """(weight, bias) names of the convolutions producing class scores, one per head level.

        The class branch is the concat input with ``num_classes`` channels; found by shape so that a
        graph whose node names differ still works.
        """
        producers = {out: n for n in self.nodes for out in n.outputs}
        found: list[tuple[str, str]] = []
        for concat in self.head_concats:
            for name in producers[concat].inputs:
                node = producers[name]
                if node.op == "Sigmoid" and name in self.head_sigmoids:
                    node = producers[node.inputs[0]]
                if node.op == "Conv" and self.params[node.inputs[1]].shape[0] == self.num_classes:
                    found.append((node.inputs[1], node.inputs[2]))
        if len(found) != len(self.head_concats):
            raise TrainingError(f"found {len(found)} class convolutions for {len(self.head_concats)} head levels")
        return found

    def retarget_classes(self, sources: Sequence[int | None], *, new_prior: float = 0.01) -> None:
        """Replace the class outputs with ``len(sources)`` new classes.

        ``sources[i]`` is the old class index whose weights start new class ``i`` (an e-bike starts as a
        motorcycle), or None for a class with no similar old one: it starts from the mean old row with
        a bias giving probability ``new_prior``, so it is neither silent nor firing everywhere.
        """
        if not sources:
            raise TrainingError("retarget_classes: at least one class is needed")
        for weight_name, bias_name in self.class_convs():
            weight = np.asarray(self.params[weight_name])
            bias = np.asarray(self.params[bias_name])
            prior_bias = float(np.log(new_prior / (1.0 - new_prior)))
            new_w = np.stack([weight[s] if s is not None else weight.mean(axis=0) for s in sources])
            new_b = np.asarray([bias[s] if s is not None else prior_bias for s in sources], np.float32)
            self.params[weight_name] = jnp.asarray(new_w, jnp.float32)
            self.params[bias_name] = jnp.asarray(new_b, jnp.float32)
        self.num_classes = len(sources)
        for node in self.nodes:
            if node.op == "Reshape":
                shape = self.constants[node.inputs[1]].copy()
                shape[1] = 5 + self.num_classes
                self.constants[node.inputs[1]] = shape

    # ---------------------------------------------------------------------------------------- forward
    def forward(self, params: Params, images: Any, *, logits: bool = False) -> Any:
        """Run the graph on NCHW float32 ``images``; returns [B, anchors, 5 + classes].

        With ``logits`` the objectness and class columns are pre-sigmoid. The Reshape targets in a
        batch-1 export are widened to the actual batch.
        """
        values: dict[str, Any] = {self.input_name: jnp.transpose(images, (0, 2, 3, 1))}
        for node in self.nodes:
            fn = _OPS[node.op]
            if logits and node.op == "Sigmoid" and node.outputs[0] in self.head_sigmoids:
                values[node.outputs[0]] = values[node.inputs[0]]
                continue
            args: list[Any] = [values[i] if i in values else params.get(i, self.constants.get(i)) for i in node.inputs]
            if node.op == "Conv":
                args[1] = jnp.transpose(args[1], (2, 3, 1, 0))  # OIHW -> HWIO
            values[node.outputs[0]] = fn(node, args)
        return values[self.output_name]

    def export_onnx(self, params: Params, path: Path) -> None:
        """Write the graph with ``params`` (and retargeted classes) as a new ONNX file at ``path``."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        replacements: dict[str, NDArray[Any]] = {k: np.asarray(v, np.float32) for k, v in params.items()}
        for node in self.nodes:
            if node.op == "Reshape":
                replacements[node.inputs[1]] = self.constants[node.inputs[1]]
        for init in model.graph.initializer:
            if init.name in replacements:
                init.CopyFrom(numpy_helper.from_array(replacements[init.name], init.name))
        del model.graph.value_info[:]  # the export's shape annotations still say 80 classes
        out = model.graph.output[0].type.tensor_type.shape
        if len(out.dim) == 3:
            out.dim[2].dim_value = 5 + self.num_classes
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx.checker.ValidationError
            raise TrainingError(f"{path}: the fine-tuned graph does not validate: {exc}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(model.SerializeToString())
        tmp.replace(path)


# -------------------------------------------------------------------------------------------- operators
# The graph is ONNX (NCHW); the interpreter runs NHWC, which XLA's CPU convolutions (depthwise ones
# above all) run several times faster. Axis numbers in node attributes are mapped through this table.
# Tensors after the head's Reshape are 3-D and keep ONNX axis numbers.
_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}
DEPTHWISE_AS_SHIFTS = True


def _axis(axis: int, ndim: int) -> int:
    return _NHWC_AXIS[axis] if ndim == 4 else axis

def _depthwise(x: Any, w: Any, stride: int, pads: Sequence[int]) -> Any:
    """A depthwise convolution as a sum of shifted products.

    XLA's CPU backend runs ``feature_group_count == channels`` convolutions (half of YOLOX-Nano's
    layers) and their gradients far slower than this fused elementwise form.
    """
    kh, kw = int(w.shape[0]), int(w.shape[1])
    x = jnp.pad(x, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3]), (0, 0)))
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = None
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride, :]
            term = patch * w[i, j, 0, :]
            out = term if out is None else out + term
    return out


def _conv(node: Node, args: list[Any]) -> Any:
    x, w = args[0], args[1]
    pads = node.attrs.get("pads", [0, 0, 0, 0])
    group = int(node.attrs.get("group", 1))
    strides = node.attrs.get("strides", [1, 1])
    if DEPTHWISE_AS_SHIFTS and group > 1 and group == x.shape[3] and w.shape[2] == 1 and strides[0] == strides[1] \
            and list(node.attrs.get("dilations", [1, 1])) == [1, 1]:
        out = _depthwise(x, w, int(strides[0]), pads)
        return out + args[2] if len(args) > 2 and args[2] is not None else out
    out = jax.lax.conv_general_dilated(
        x, w,
        window_strides=tuple(node.attrs.get("strides", [1, 1])),
        padding=((pads[0], pads[2]), (pads[1], pads[3])),
        rhs_dilation=tuple(node.attrs.get("dilations", [1, 1])),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=int(node.attrs.get("group", 1)),
    )
    if len(args) > 2 and args[2] is not None:
        out = out + args[2]
    return out


def _slice(node: Node, args: list[Any]) -> Any:
    x = args[0]
    starts, ends = np.asarray(args[1]), np.asarray(args[2])
    axes = np.asarray(args[3]) if len(args) > 3 else np.arange(len(starts))
    steps = np.asarray(args[4]) if len(args) > 4 else np.ones(len(starts), np.int64)
    index: list[slice] = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        end_i = None if end >= np.iinfo(np.int64).max // 2 else int(end)
        index[_NHWC_AXIS[int(axis)]] = slice(int(start), end_i, int(step))
    return x[tuple(index)]


def _maxpool(node: Node, args: list[Any]) -> Any:
    k = node.attrs["kernel_shape"]
    s = node.attrs.get("strides", [1, 1])
    p = node.attrs.get("pads", [0, 0, 0, 0])
    return jax.lax.reduce_window(
        args[0], -jnp.inf, jax.lax.max, (1, k[0], k[1], 1), (1, s[0], s[1], 1),
        ((0, 0), (p[0], p[2]), (p[1], p[3]), (0, 0)),
    )


def _resize(node: Node, args: list[Any]) -> Any:
    if node.attrs.get("mode", b"nearest") not in (b"nearest", "nearest"):
        raise TrainingError(f"node {node.name}: only nearest Resize is supported")
    scales = np.asarray(args[2])
    x = args[0]
    for axis in (2, 3):
        factor = float(scales[axis])
        if factor != int(factor):
            raise TrainingError(f"node {node.name}: only integer Resize scales are supported, got {factor}")
        x = jnp.repeat(x, int(factor), axis=_NHWC_AXIS[axis])
    return x


def _reshape(node: Node, args: list[Any]) -> Any:
    shape = [int(v) for v in np.asarray(args[1])]
    if shape and shape[0] == 1:
        shape[0] = args[0].shape[0]
    return jnp.transpose(args[0], (0, 3, 1, 2)).reshape(shape)  # the head's reshape is defined on NCHW


_OPS: dict[str, Callable[[Node, list[Any]], Any]] = {
    "Conv": _conv,
    "Sigmoid": lambda n, a: jax.nn.sigmoid(a[0]),
    "Mul": lambda n, a: a[0] * a[1],
    "Add": lambda n, a: a[0] + a[1],
    "Concat": lambda n, a: jnp.concatenate(a, axis=_axis(int(n.attrs["axis"]), a[0].ndim)),
    "Slice": _slice,
    "MaxPool": _maxpool,
    "Resize": _resize,
    "Reshape": _reshape,
    "Transpose": lambda n, a: jnp.transpose(a[0], n.attrs["perm"]),
}
