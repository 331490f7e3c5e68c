"""The int8 form of an exported encoder: int8 activations per token, smoothed channels.

Every linear layer of the fp32 graph (a MatMul by a 2-D weight, or by the transpose of
one, as a tied output layer is; and where asked, a Gemm by one plus its bias, as
exported GPT-2 layers are) becomes ONNX Runtime's `MatMulIntegerToFloat`, fed as
follows:

- Activations are quantised per token at run time: each row of the layer's input
  gets its own scale (its largest magnitude over 127), around the fixed zero point
  128. A message's scores therefore never depend on the messages batched with it.
  ONNX Runtime's own dynamic quantisation shares one scale across the whole batch,
  so a message's scores move with its neighbours.
- Weights are symmetric per output channel, with 7 bits (±63). On x86 CPUs without
  VNNI, ONNX Runtime multiplies uint8 by int8 with an instruction that saturates
  int16 sums of two products: 2 * 255 * 63 stays below 32,767, so the integer
  products are exact there. Full 8-bit weights overflow on those CPUs.
- SmoothQuant (Xiao et al., 2023): where a layer reads a layer normalisation's
  output (whose few outlier channels would otherwise set every token's scale), each
  input channel k is divided by s_k = max|x_k|^a / max|W_k|^(1-a), its peak
  measured on training messages, and row k of the weight is multiplied by s_k. The
  product is unchanged. Layers that read one input (query, key and value) share its
  smoothing and its quantisation.

a = 0.75 was chosen on validation splits (the demo's and CLINC150's): 0.5 lost
0.3-1 point of accuracy there, and 0.75 and 0.85 stayed within 0.1 point of fp32.
Smoothing the other layers' inputs too (attention output, second feed-forward
layer) gave the same accuracy on CLINC150's validation split (95.84 against 95.81,
fp32 95.87) and cost two more passes over their activations.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SMOOTHING = 0.75  # a, above
CALIBRATION_MESSAGES = 512
CALIBRATION_BATCH = 32
WEIGHT_LEVELS = 63  # 7-bit symmetric weights: exact on CPUs without VNNI (see above)
ACTIVATION_LEVELS = 127
ZERO_POINT = 128
MICROSOFT_DOMAIN = "com.microsoft"
MATMUL, MATMUL_AND_GEMM = ("MatMul",), ("MatMul", "Gemm")  # which operators are layers
DESCRIPTION = (
    "int8: activations per token at run time (zero point 128), 7-bit weights per output "
    f"channel, SmoothQuant channel scales (alpha {SMOOTHING}) measured on training messages"
)


def calibration_batches(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> list[dict[str, np.ndarray]]:
    """Token batches of up to `CALIBRATION_MESSAGES` of `texts`, taken at an even stride so
    that every part of the list (often grouped by intent) is represented."""
    stride = max(1, len(texts) // CALIBRATION_MESSAGES)
    sample = list(texts[::stride][:CALIBRATION_MESSAGES])
    return [
        dict(
            tokenizer(
                sample[start : start + CALIBRATION_BATCH],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="np",
            )
        )
        for start in range(0, len(sample), CALIBRATION_BATCH)
    ]


@dataclass(frozen=True)
class LinearLayer:
    """One `x @ W (+ b)` of the graph: its node, W as a K by N array, and the name of b."""

    node: Any
    weight: np.ndarray
    bias: str | None = None  # a Gemm's third input, added after the integer product


def linear_layers(model: object, operators: Collection[str] = MATMUL) -> list[LinearLayer]:
    """Each MatMul of the graph by a 2-D weight or the transpose of one, and, when
    `operators` has "Gemm", each Gemm by a 2-D weight whose scales are one (as exporters
    write `x @ W + b`). An encoder's classification head is a Gemm: left out by default,
    its logits stay fp32."""
    from onnx import numpy_helper

    matrices = {init.name: init for init in model.graph.initializer if len(init.dims) == 2}
    transposed = {  # a transposed weight is a weight too (a tied output layer's)
        node.output[0]: node.input[0]
        for node in model.graph.node
        if node.op_type == "Transpose"
        and node.input[0] in matrices
        and _attribute(node, "perm", [1, 0]) == [1, 0]
    }

    def weight(name: str) -> np.ndarray:
        if name in transposed:
            return weight(transposed[name]).T
        return numpy_helper.to_array(matrices[name]).astype(np.float32)

    layers = []
    for node in model.graph.node:
        known = len(node.input) > 1 and (node.input[1] in matrices or node.input[1] in transposed)
        if node.op_type == "MatMul" and len(node.input) == 2 and known:
            layers.append(LinearLayer(node, weight(node.input[1])))
        elif node.op_type == "Gemm" and "Gemm" in operators and known and _plain_gemm(node):
            found = weight(node.input[1])
            found = found.T if _attribute(node, "transB", 0) else found
            bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
            layers.append(LinearLayer(node, found, bias))
    return layers


def _plain_gemm(node: Any) -> bool:
    """A Gemm computing `A @ B + C` exactly: no scales and A not transposed."""
    return (
        _attribute(node, "alpha", 1.0) == 1.0
        and _attribute(node, "beta", 1.0) == 1.0
        and not _attribute(node, "transA", 0)
    )


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return list(value) if name == "perm" else value
    return default


def channel_peaks(
    source: Path, batches: Iterable[Mapping[str, np.ndarray]], only: set[str] | None = None
) -> dict[str, np.ndarray]:
    """The largest magnitude of each input channel of each linear layer (or of those whose
    input is named in `only`), over the real (unpadded) tokens of `batches` run through the
    fp32 graph at `source`."""
    import onnx
    import onnxruntime

    model = onnx.load(str(source))
    inputs = sorted({layer.node.input[0] for layer in linear_layers(model)})
    inputs = [name for name in inputs if only is None or name in only]
    if not inputs:
        return {}
    for name in inputs:
        output = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        model.graph.output.append(output)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    feeds_names = [node.name for node in session.get_inputs()]
    peaks: dict[str, np.ndarray] = {}
    for batch in batches:
        feeds = {name: np.asarray(batch[name], np.int64) for name in feeds_names}
        real = np.asarray(batch["attention_mask"]).astype(bool)
        for name, values in zip(inputs, session.run(inputs, feeds), strict=True):
            peak = np.abs(values[real]).max(axis=0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks


def quantise(
    source: Path,
    target: Path,
    batches: Sequence[Mapping[str, np.ndarray]] = (),
    operators: Collection[str] = MATMUL,
) -> int:
    """Write the int8 form of the fp32 graph at `source` to `target`; return how many
    linear layers (of `operators`, see `linear_layers`) it quantised. Without calibration
    `batches`, channels are not smoothed."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    peaks = channel_peaks(source, batches, _normalised(model)) if batches else {}
    found = linear_layers(model, operators)
    layers = {layer.node.output[0]: layer for layer in found}  # output names are unique
    readers: dict[str, list[np.ndarray]] = {}  # each input's layers' weights
    for layer in found:
        readers.setdefault(layer.node.input[0], []).append(layer.weight)
    nodes, initializers = [], _shared_constants()
    quantised: dict[str, _QuantisedInput] = {}
    for node in graph.node:
        layer = layers.get(node.output[0]) if node.output else None
        if layer is None:
            nodes.append(node)
            continue
        source_name = node.input[0]
        if source_name not in quantised:
            prefix = f"int8_{len(nodes)}_"  # unique: the list only grows
            quantised[source_name] = _quantised_input(
                source_name, readers[source_name], peaks.get(source_name), prefix
            )
            nodes += quantised[source_name].nodes
            initializers += quantised[source_name].constants
        layer_nodes, layer_constants = _integer_product(
            layer, quantised[source_name], f"int8_{len(nodes)}_"
        )
        nodes += layer_nodes
        initializers += layer_constants
    del graph.node[:]
    graph.node.extend(_needed(nodes, {output.name for output in graph.output}))
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + initializers)
    if not any(opset.domain == MICROSOFT_DOMAIN for opset in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(MICROSOFT_DOMAIN, 1))
    onnx.save(model, str(target))
    return len(layers)


def _needed(nodes: list, outputs: set[str]) -> list:
    """`nodes` without those whose results nothing reads any more (the transpose of a
    weight now quantised, say), in their order. A graph with subgraphs (If, Loop), whose
    nodes may read outer values unnamed in their inputs, is left whole."""
    if any(attribute.g.node or attribute.graphs for node in nodes for attribute in node.attribute):
        return list(nodes)
    kept = list(nodes)
    while True:
        read = outputs | {name for node in kept for name in node.input}
        fewer = [node for node in kept if any(output in read for output in node.output)]
        if len(fewer) == len(kept):
            return kept
        kept = fewer


def smoothing_scales(peaks: np.ndarray, weight: np.ndarray, alpha: float = SMOOTHING) -> np.ndarray:
    """SmoothQuant's per-input-channel divisor of the activations (and multiplier of the
    weight's rows)."""
    weight_peaks = np.maximum(np.abs(weight).max(axis=1), 1e-5)
    return np.maximum(np.maximum(peaks, 1e-5) ** alpha / weight_peaks ** (1 - alpha), 1e-5)


def quantised_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 7-bit int8 codes of `weight` (K by N) and their scale per output column."""
    scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / WEIGHT_LEVELS
    codes = np.clip(np.round(weight / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
    return codes, scale.astype(np.float32)


def _shared_constants() -> list:
    from onnx import numpy_helper

    constants = {
        "int8_last_axis": np.array([-1], np.int64),
        "int8_per_level": np.array(1 / ACTIVATION_LEVELS, np.float32),
        "int8_smallest_peak": np.array(1e-10, np.float32),
        "int8_one": np.array(1.0, np.float32),
        "int8_activation_zero": np.array(ZERO_POINT, np.uint8),
        "int8_weight_zero": np.array(0, np.int8),
    }
    return [numpy_helper.from_array(value, name) for name, value in constants.items()]


def _normalised(model: object) -> set[str]:
    """The outputs of layer normalisations: the activations with outlier channels."""
    return {
        output
        for node in model.graph.node
        if node.op_type == "LayerNormalization"
        for output in node.output
    }


@dataclass(frozen=True)
class _QuantisedInput:
    """One layer input's int8 codes and per-token scales, and the nodes that make them."""

    codes: str
    scale: str
    smoothing: np.ndarray | None  # the divisor per channel; the readers' weights take it
    nodes: list
    constants: list


def _quantised_input(
    source: str, weights: list[np.ndarray], peaks: np.ndarray | None, prefix: str
) -> _QuantisedInput:
    """Smooth `source` (for all its readers' `weights` at once) and quantise it per token."""
    from onnx import helper, numpy_helper

    nodes, constants = [], []

    def add(op: str, inputs: list[str], output: str, **attributes: object) -> str:
        name = prefix + output
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    smoothing = None
    if peaks is not None:
        smoothing = smoothing_scales(peaks, np.concatenate(weights, axis=1)).astype(np.float32)
        constants.append(numpy_helper.from_array(1 / smoothing, prefix + "smoothing"))
        source = add("Mul", [source, prefix + "smoothing"], "smoothed")
    # Each token is divided by its own peak magnitude, then coded on 127 levels around 128;
    # the product is multiplied back by the peak (and the weight's scale over 127).
    peak = add(
        "ReduceMax", [add("Abs", [source], "magnitude"), "int8_last_axis"], "peak", keepdims=1
    )
    scale = add("Max", [peak, "int8_smallest_peak"], "scale")
    codes = add(
        "QuantizeLinear",
        [add("Div", [source, scale], "scaled"), "int8_per_level", "int8_activation_zero"],
        "codes",
    )
    return _QuantisedInput(codes, scale, smoothing, nodes, constants)


def _integer_product(
    layer: LinearLayer, quantised: _QuantisedInput, prefix: str
) -> tuple[list, list]:
    """The nodes and constants replacing one `x @ W (+ b)` (its output keeps its name)."""
    from onnx import helper, numpy_helper

    weight, output = layer.weight, layer.node.output[0]
    if quantised.smoothing is not None:
        weight = weight * quantised.smoothing[:, None]
    codes, weight_scale = quantised_weight(weight)
    constants = [
        numpy_helper.from_array(codes, prefix + "weight"),
        numpy_helper.from_array(weight_scale / ACTIVATION_LEVELS, prefix + "weight_scale"),
    ]
    product = prefix + "product"
    scaled = output if layer.bias is None else prefix + "scaled"
    nodes = [
        helper.make_node(
            "MatMulIntegerToFloat",
            [
                quantised.codes,
                prefix + "weight",
                "int8_one",
                prefix + "weight_scale",
                "int8_activation_zero",
                "int8_weight_zero",
            ],
            [product],
            name=product,
            domain=MICROSOFT_DOMAIN,
        ),
        helper.make_node("Mul", [product, quantised.scale], [scaled], name=prefix + "out"),
    ]
    if layer.bias is not None:
        nodes.append(helper.make_node("Add", [scaled, layer.bias], [output], name=prefix + "bias"))
    return nodes, constants
