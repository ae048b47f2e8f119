"""fastrnn.onnx: export checked by onnxruntime, load checked by onnxruntime and by ONNX's own
operator test cases (regenerated from the installed onnx package)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastrnn
from fastrnn import nn

onnx = pytest.importorskip("onnx", reason="the onnx extra (in the test extra) is not installed")
ort = pytest.importorskip(
    "onnxruntime", reason="the onnx extra (in the test extra) is not installed"
)
from onnx import TensorProto, helper  # noqa: E402

import fastrnn.onnx as fonnx  # noqa: E402

RNG = np.random.default_rng(0)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def randn(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


LAYERS = {
    "rnn_tanh": (fastrnn.RNN, {}),
    "rnn_relu": (fastrnn.RNN, {"nonlinearity": "relu"}),
    "gru": (fastrnn.GRU, {}),
    "gru_reset_before": (fastrnn.GRU, {"reset_after": False}),
    "lstm": (fastrnn.LSTM, {}),
    "lstm_peephole": (fastrnn.LSTM, {"peephole": True}),
}


# --- export -> onnxruntime -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize(
    "num_layers, bidirectional, batch_first, bias",
    [
        (1, False, False, True),
        (2, True, False, True),
        (2, False, True, False),
        (1, True, True, True),
    ],
)
def test_export_layer_matches_onnxruntime(name, num_layers, bidirectional, batch_first, bias):
    cls, kw = LAYERS[name]
    m = cls(5, 6, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
            bias=bias, seed=1, **kw).eval()  # fmt: skip
    T, B, LD = 7, 4, num_layers * (2 if bidirectional else 1)
    x = randn(B, T, 5) if batch_first else randn(T, B, 5)
    lengths = np.array([7, 3, 1, 5])
    h0, c0 = randn(LD, B, 6), randn(LD, B, 6)
    sess = session(fonnx.export(m, lengths=True, initial_state=True))
    feeds = {"x": x, "lengths": lengths, "h0": h0}
    if cls is fastrnn.LSTM:
        feeds["c0"] = c0
        out, (h_n, c_n) = m(x, (h0, c0), lengths=lengths)
        want = [out, h_n, c_n]
    else:
        want = list(m(x, h0, lengths=lengths))
    got = sess.run(None, feeds)
    assert [o.name for o in sess.get_outputs()] == ["output", "h_n", "c_n"][: len(want)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
def test_export_nn_layer_without_optional_inputs(cls, tmp_path):
    m = cls(3, 5, num_layers=2, seed=2).eval()
    path = tmp_path / "m.onnx"
    fonnx.export(m, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = randn(6, 2, 3)
    got = sess.run(None, {"x": x})
    out, state = m(x)
    np.testing.assert_allclose(got[0], out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], state[0] if cls is nn.LSTM else state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "cell",
    [
        fastrnn.RNNCell(4, 3, nonlinearity="relu", seed=0),
        fastrnn.GRUCell(4, 3, seed=0),
        fastrnn.GRUCell(4, 3, reset_after=False, seed=0),
        fastrnn.LSTMCell(4, 3, seed=0),
        fastrnn.LSTMCell(4, 3, peephole=True, seed=0),
        nn.GRUCell(4, 3, seed=0),
        nn.LSTMCell(4, 3, bias=False, seed=0),
    ],
    ids=repr,
)
def test_export_cell_matches_onnxruntime(cell):
    x, h, c = randn(2, 4), randn(2, 3), randn(2, 3)
    if hasattr(cell, "train"):
        cell.eval()
    sess = session(fonnx.export(cell))
    if "LSTM" in type(cell).__name__:
        want = cell(x, (h, c))
        got = sess.run(None, {"x": x, "h": h, "c": c})
    else:
        want = (cell(x, h),)
        got = sess.run(None, {"x": x, "h": h})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_export_feed_forward_and_softmax():
    m = nn.Sequential(nn.Embedding(11, 6, seed=0), nn.Linear(6, 8, seed=1), nn.Tanh(),
                      nn.Dropout(0.3), nn.Linear(8, 5, seed=2), nn.ReLU(), nn.Linear(5, 4, bias=False, seed=3),
                      nn.Sigmoid()).eval()  # fmt: skip
    ids = RNG.integers(0, 11, size=(3, 7))
    got = session(fonnx.export(m)).run(None, {"input": ids})[0]
    np.testing.assert_allclose(got, m(ids), rtol=1e-5, atol=1e-6)
    probs = session(fonnx.export(m, softmax=True)).run(["probs"], {"input": ids})[0]
    np.testing.assert_allclose(probs, nn.softmax(m(ids)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_export_language_model(cell):
    lm = fastrnn.models.RNNLanguageModel(13, 6, 8, num_layers=2, cell=cell, dropout=0.2, seed=0)
    lm.eval()
    tokens = RNG.integers(0, 13, size=(3, 5))
    state = lm.init_state(3)
    if cell == "lstm":
        state = (randn(2, 3, 8), randn(2, 3, 8))
    else:
        state = randn(2, 3, 8)
    logits, new_state = lm(tokens, state)
    sess = session(fonnx.export(lm, initial_state=True))
    feeds = {"tokens": tokens}
    if cell == "lstm":
        feeds.update(h0=state[0], c0=state[1])
        want = [logits, *new_state]
    else:
        feeds["h0"] = state
        want = [logits, new_state]
    for g, w in zip(sess.run(None, feeds), want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    probs = session(fonnx.export(lm, softmax=True)).run(["probs"], {"tokens": tokens})[0]
    np.testing.assert_allclose(probs, nn.softmax(lm(tokens)[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_export_seq2seq_encoder(cell):
    m = fastrnn.models.Seq2Seq(11, 9, embedding_dim=6, hidden_size=5, num_layers=2,
                               decoder_hidden_size=7, cell=cell, seed=0).eval()  # fmt: skip
    src = RNG.integers(4, 11, size=(3, 6))
    lens = np.array([6, 2, 4])
    state = m.init_state(src, lens)
    keys, s0 = session(fonnx.export(m, lengths=True)).run(None, {"src": src, "src_lengths": lens})
    np.testing.assert_allclose(s0, state["h"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keys, state["values"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="a Seq2Seq exports its encoder"):
        fonnx.export(m, softmax=True)


def test_export_float64():
    m = fastrnn.GRU(3, 4, dtype="float64", seed=0).eval()
    model = fonnx.export(m)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.DOUBLE
    back = fonnx.load(model)
    assert back.dtype == np.float64
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)


def test_export_errors():
    with pytest.raises(TypeError, match="model: fastrnn.onnx.export has no ONNX form for"):
        fonnx.export(nn.Sequential(nn.Linear(2, 2), nn.DotAttention(2)))
    with pytest.raises(TypeError, match="model: expected a fastrnn layer"):
        fonnx.export(object())
    with pytest.raises(ValueError, match="opset: expected an int >= 14"):
        fonnx.export(fastrnn.GRU(2, 2), opset=11)
    with pytest.raises(ValueError, match="a cell always takes its state"):
        fonnx.export(fastrnn.GRUCell(2, 2), lengths=True)


# --- ONNX node -> fastrnn ------------------------------------------------------------------------


def onnx_node_model(op, I, H, *, direction="forward", layout=0, bias=True, peephole=False,
                    lengths=False, initial=False, dtype=np.float32, **attrs):  # fmt: skip
    """A one-node ONNX model with random weights as initializers; returns (model, weights)."""
    D = 2 if direction == "bidirectional" else 1
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = {"W": randn(D, G * H, I, dtype=dtype), "R": randn(D, G * H, H, dtype=dtype) * 0.5}
    if bias:
        inits["B"] = randn(D, 2 * G * H, dtype=dtype)
    if peephole:
        inits["P"] = randn(D, 3 * H, dtype=dtype)
    names = ["X", "W", "R", "B" if bias else "", "seq" if lengths else "", "h0" if initial else ""]
    if op == "LSTM":
        names += ["c0" if initial else "", "P" if peephole else ""]
    while names[-1] == "":
        names.pop()
    state_shape = ["B", D, H] if layout else [D, "B", H]
    inputs = [helper.make_tensor_value_info("X", elem, ["B", "T", I] if layout else ["T", "B", I])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("seq", TensorProto.INT32, ["B"]))
    if initial:
        inputs.append(helper.make_tensor_value_info("h0", elem, state_shape))
        if op == "LSTM":
            inputs.append(helper.make_tensor_value_info("c0", elem, state_shape))
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(
        op, names, outs, hidden_size=H, direction=direction, layout=layout, **attrs
    )
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info(o, elem, ["a", "b", "c", "d"][: 3 + (o == "Y")]) for o in outs],
        [onnx.numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


LOAD_CASES = [
    (op, direction, layout, extra)
    for op, extra in [("RNN", {}), ("RNN", {"activations": ["Relu"]}), ("GRU", {}),
                      ("GRU", {"linear_before_reset": 1}), ("LSTM", {}), ("LSTM", {"peephole": True})]
    for direction, layout in itertools.product(["forward", "reverse", "bidirectional"], [0, 1])
]  # fmt: skip


@pytest.mark.parametrize("op, direction, layout, extra", LOAD_CASES)
def test_load_matches_onnxruntime(op, direction, layout, extra):
    extra = dict(extra)
    if direction == "bidirectional" and "activations" in extra:
        extra["activations"] = extra["activations"] * 2
    peephole = extra.pop("peephole", False)
    I, H, T, B = 3, 5, 6, 4
    D = 2 if direction == "bidirectional" else 1
    model = onnx_node_model(op, I, H, direction=direction, peephole=peephole,
                            lengths=True, initial=True, **extra)  # fmt: skip
    X = randn(T, B, I)
    seq = np.array([6, 2, 1, 4], np.int32)
    feeds = {"X": X, "seq": seq, "h0": randn(D, B, H)}
    if op == "LSTM":
        feeds["c0"] = randn(D, B, H)
    want = session(model).run(None, feeds)
    if layout:
        # onnxruntime runs layout=0 only: the same node with layout=1 must give the same
        # outputs with batch and time (X, Y) and batch and direction (states) swapped.
        for a in model.graph.node[0].attribute:
            if a.name == "layout":
                a.i = 1
        X = X.transpose(1, 0, 2)
        feeds = {k: v.transpose(1, 0, 2) if v.ndim == 3 else v for k, v in feeds.items()}
        want = [want[0].transpose(2, 0, 1, 3)] + [w.transpose(1, 0, 2) for w in want[1:]]
    layer = fonnx.load(model)
    assert layer.batch_first == bool(layout)
    got = fonnx.run(layer, X, seq, feeds["h0"], feeds.get("c0"))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_load_without_bias_lengths_or_states(op):
    model = onnx_node_model(op, 2, 3, bias=False, direction="bidirectional")
    X = randn(5, 2, 2)
    want = session(model).run(None, {"X": X})
    got = fonnx.run(fonnx.load(model), X)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _backend_cases():
    """ONNX's own operator test cases for RNN, GRU and LSTM (test_rnn_*, test_gru_*, test_lstm_*),
    generated by the installed onnx package exactly as its backend test data is."""
    import onnx.backend.test.case.node as node_cases
    from onnx.backend.test.case.node import gru, lstm, rnn  # noqa: F401  (importing registers them)

    return [
        c
        for c in node_cases._NodeTestCases
        if c.model.graph.node[0].op_type in ("RNN", "GRU", "LSTM")
    ]


BACKEND_CASES = _backend_cases()


def test_backend_cases_cover_every_operator():
    ops = {c.model.graph.node[0].op_type for c in BACKEND_CASES}
    assert ops == {"RNN", "GRU", "LSTM"} and len(BACKEND_CASES) >= 15


@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: c.name)
def test_onnx_backend_case(case):
    node = case.model.graph.node[0]
    ((inputs, outputs),) = case.data_sets
    names = [n for n in node.input if n]
    feeds = dict(zip(names, inputs))
    layer = fonnx.load(case.model, values=feeds)
    slots = list(node.input) + [""] * 8
    got = fonnx.run(
        layer,
        feeds[slots[0]],
        feeds.get(slots[4]) if slots[4] else None,
        feeds.get(slots[5]) if slots[5] else None,
        feeds.get(slots[6]) if node.op_type == "LSTM" and slots[6] else None,
    )
    got_by_name = dict(zip(["Y", "Y_h", "Y_c"], got))
    out_names = [n for n in node.output if n]
    assert len(out_names) == len(outputs)
    for name, want in zip(out_names, outputs):
        slot = ["Y", "Y_h", "Y_c"][list(node.output).index(name)]
        np.testing.assert_allclose(got_by_name[slot], want, rtol=case.rtol, atol=1e-6)


def test_round_trip_export_load():
    m = fastrnn.LSTM(4, 3, bidirectional=True, peephole=True, seed=5)
    back = fonnx.load(fonnx.export(m))
    assert back.bidirectional and back.peephole
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    two = fonnx.export(fastrnn.GRU(4, 3, num_layers=2, seed=0))
    with pytest.raises(ValueError, match="node: the graph has 2 recurrent nodes"):
        fonnx.load(two)
    assert fonnx.load(two, node=1).input_size == 3


@pytest.mark.parametrize(
    "op, attrs, name",
    [
        ("LSTM", {"clip": 3.0}, "clip"),
        ("LSTM", {"input_forget": 1}, "input_forget"),
        ("GRU", {"activations": ["HardSigmoid", "Tanh"]}, "activations"),
        ("RNN", {"activations": ["Sigmoid"]}, "activations"),
        ("RNN", {"activations": ["Tanh"], "activation_alpha": [1.0]}, "activation_alpha"),
    ],
)
def test_load_unsupported_attributes_name_them(op, attrs, name):
    model = onnx_node_model(op, 2, 3, **attrs)
    with pytest.raises(ValueError, match=f"attribute {name}=.* is not supported"):
        fonnx.load(model)


def test_load_errors():
    model = onnx_node_model("GRU", 2, 3)
    model.graph.initializer.pop()  # B
    model.graph.initializer.pop()  # R
    with pytest.raises(ValueError, match="input R .* is neither an initializer nor a Constant"):
        fonnx.load(model)
    with pytest.raises(TypeError, match="model: expected a path, bytes or onnx.ModelProto"):
        fonnx.load(3.5)
    with pytest.raises(ValueError, match="node: no recurrent node named 'x'"):
        fonnx.load(onnx_node_model("GRU", 2, 3), node="x")


def test_reversed_lengths_checked():
    layer = fonnx.load(onnx_node_model("RNN", 2, 3, direction="reverse"))
    assert isinstance(layer, fonnx.Reversed)
    with pytest.raises(ValueError, match=r"lengths: expected 2 integers in \[1, 4\]"):
        layer(randn(4, 2, 2), None, [5, 1])
