import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from assistant.core.int8 import (
    CALIBRATION_MESSAGES,
    MATMUL_AND_GEMM,
    WEIGHT_LEVELS,
    calibration_batches,
    channel_peaks,
    linear_layers,
    quantise,
    quantised_weight,
    smoothing_scales,
)

VOCABULARY, WIDTH, OUTPUTS = 50, 16, 8


def _tiny_encoder(path, seed=0, normalised=True):
    """token ids -> embedding (masked) -> layer normalisation -> linear layer + bias: the
    shape of the layers the quantiser rewrites, with one outlier channel as real encoders
    have (in the normalisation's gain, or in the embedding when there is none)."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(VOCABULARY, WIDTH)).astype(np.float32)
    gain, shift = np.ones(WIDTH, np.float32), rng.normal(size=WIDTH).astype(np.float32)
    (gain if normalised else table.T)[3] *= 40  # the outlier channel
    weight = rng.normal(size=(WIDTH, OUTPUTS)).astype(np.float32)
    bias = rng.normal(size=OUTPUTS).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last"], ["mask3"]),
        helper.make_node("Mul", ["embedded", "mask3"], ["masked"]),
        helper.make_node("LayerNormalization", ["masked", "gain", "shift"], ["hidden"])
        if normalised
        else helper.make_node("Identity", ["masked"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "weight"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(gain, "gain"),
            numpy_helper.from_array(shift, "shift"),
            numpy_helper.from_array(np.array([-1], np.int64), "last"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return table, weight, bias


def _batch(rows, length=6, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCABULARY, size=(rows, length)).astype(np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _run(path, batch):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, batch)[0]


@pytest.fixture
def tiny(tmp_path):
    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    table, _, _ = _tiny_encoder(source)
    assert quantise(source, target, [_batch(32)]) == 1
    return source, target, table


def _error(source, target, batch):
    fp32 = _run(source, batch)
    return np.abs(_run(target, batch) - fp32).max() / np.abs(fp32).max()


def test_the_int8_form_stays_close_to_fp32_and_smoothing_brings_it_closer(tiny, tmp_path):
    source, target, _ = tiny
    batch = _batch(8, seed=2)
    assert 0 < _error(source, target, batch) <= 0.02  # it did quantise, and closely
    unsmoothed = tmp_path / "unsmoothed.onnx"
    quantise(source, unsmoothed)  # no calibration: no smoothing
    assert _error(source, target, batch) < _error(source, unsmoothed, batch)


def test_a_message_scores_the_same_alone_and_beside_any_other(tiny):
    _, target, table = tiny
    batch = _batch(4, seed=3)
    batched = _run(target, batch)
    loud = {name: values.copy() for name, values in batch.items()}
    loud["input_ids"][1:] = int(np.argmax(np.abs(table[:, 3])))  # the loudest token, everywhere
    beside_loud = _run(target, loud)
    alone = _run(target, {name: values[:1] for name, values in batch.items()})
    assert np.array_equal(batched[0], alone[0])
    assert np.array_equal(beside_loud[0], alone[0])


def test_integer_products_are_exact_at_the_extremes(tmp_path):
    # Every activation at its largest code and every weight at +-63: sums that overflow
    # int16 with full 8-bit weights on CPUs without VNNI.
    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    table, weight, bias = _tiny_encoder(source, normalised=False)
    quantise(source, target, [_batch(8)])  # no normalisation: nothing is smoothed
    batch = _batch(3, seed=4)
    hidden = table[batch["input_ids"]]
    scale = np.abs(hidden).max(axis=-1, keepdims=True) / 127
    codes = np.clip(np.round(hidden / scale), -127, 127)
    weight_codes, weight_scale = quantised_weight(weight)
    expected = (codes @ weight_codes.astype(np.float64)) * weight_scale * scale + bias
    assert np.allclose(_run(target, batch), expected, rtol=1e-5, atol=1e-4)


def test_weights_use_seven_bits_and_smoothing_keeps_the_product():
    rng = np.random.default_rng(5)
    weight = rng.normal(size=(WIDTH, OUTPUTS)).astype(np.float32)
    codes, scale = quantised_weight(weight)
    assert codes.dtype == np.int8 and np.abs(codes).max() == WEIGHT_LEVELS
    assert np.abs(codes * scale - weight).max() <= scale.max() / 2 + 1e-7
    activations = rng.normal(size=(5, WIDTH)).astype(np.float32)
    activations[:, 2] *= 50
    scales = smoothing_scales(np.abs(activations).max(axis=0), weight)
    smoothed = (activations / scales) @ (weight * scales[:, None])
    assert np.allclose(smoothed, activations @ weight, rtol=1e-4, atol=1e-4)
    spread = np.ptp(np.abs(activations).max(axis=0))
    assert np.ptp(np.abs(activations / scales).max(axis=0)) < spread  # outliers evened out


def test_channel_peaks_ignore_padding(tmp_path):
    source = tmp_path / "fp32.onnx"
    table, _, _ = _tiny_encoder(source, normalised=False)
    [layer] = linear_layers(onnx.load(str(source)))
    batch = _batch(2, seed=6)
    batch["attention_mask"][1, 3:] = 0
    batch["input_ids"][1, 3:] = int(np.argmax(np.abs(table[:, 3])))  # loudest, but padding
    peaks = channel_peaks(source, [batch])[layer.node.input[0]]
    real = table[batch["input_ids"][batch["attention_mask"].astype(bool)]]
    assert np.allclose(peaks, np.abs(real).max(axis=0))


def test_calibration_samples_the_whole_list_in_token_batches():
    class Tokenizer:
        def __call__(self, texts, **_):
            return {"input_ids": np.ones((len(texts), 2)), "texts": list(texts)}

    texts = [f"message {i}" for i in range(3 * CALIBRATION_MESSAGES)]
    batches = calibration_batches(Tokenizer(), texts, 16)
    sampled = [text for batch in batches for text in batch["texts"]]
    assert len(sampled) == CALIBRATION_MESSAGES
    assert sampled[0] == "message 0" and int(sampled[-1].split()[1]) > 2 * CALIBRATION_MESSAGES
    assert calibration_batches(Tokenizer(), [], 16) == []


def _tiny_decoder(path, seed=5):
    """token ids -> embedding -> Gemm with a bias (as GPT-2's exported layers are) ->
    logits by the embedding table's transpose (a tied output layer)."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(VOCABULARY, WIDTH)).astype(np.float32)
    weight = rng.normal(size=(WIDTH, WIDTH)).astype(np.float32) / 4
    bias = rng.normal(size=WIDTH).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),
        helper.make_node("Gemm", ["embedded", "weight", "bias"], ["hidden"]),
        helper.make_node("Transpose", ["table"], ["table_t"]),
        helper.make_node("MatMul", ["hidden", "table_t"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_decoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["tokens"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(value, name)
            for name, value in (("table", table), ("weight", weight), ("bias", bias))
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return table, weight, bias


def test_gemm_layers_and_tied_output_layers_are_quantised_with_their_bias(tmp_path):
    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    table, weight, bias = _tiny_decoder(source)
    assert [layer.node.op_type for layer in linear_layers(onnx.load(str(source)))] == ["MatMul"]
    layers = linear_layers(onnx.load(str(source)), MATMUL_AND_GEMM)
    assert [layer.node.op_type for layer in layers] == ["Gemm", "MatMul"]
    assert [layer.bias for layer in layers] == ["bias", None]
    assert np.array_equal(layers[1].weight, table.T)
    assert quantise(source, target, operators=MATMUL_AND_GEMM) == 2
    operations = [node.op_type for node in onnx.load(str(target)).graph.node]
    assert operations.count("MatMulIntegerToFloat") == 2
    assert "Transpose" not in operations  # nothing reads the transposed table any more
    ids = {"input_ids": np.arange(VOCABULARY, dtype=np.int64)}
    fp32, quantised = _run(source, ids), _run(target, ids)
    assert np.allclose(fp32, (table @ weight + bias) @ table.T, rtol=1e-4, atol=1e-3)
    assert 0 < np.abs(quantised - fp32).max() / np.abs(fp32).max() <= 0.03
    assert (quantised.argmax(axis=1) == fp32.argmax(axis=1)).mean() >= 0.9
