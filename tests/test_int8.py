"""int8 weight-quantized inference: `fastrnn.quantize_dynamic(model, dtype="int8")` and
`inference_dtype="int8"`. W_ih and W_hh are quantized per output row (symmetric, scale =
max|row| / 127); the products widen int8 to float32 and multiply the sums by the row scales;
states and outputs stay float32.

The kernels are checked against tests/reference.py (float64) run on the same dequantized
weights, computed here in NumPy from the float32 parameters; against the float32 model (the
quantization error, bounded); the SIMD paths against the scalar one; and for the properties the
float32 kernels have (batch composition, streaming == whole sequence)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import reference

import fastrnn
from fastrnn import _C

LAYERS = [
    ("rnn_tanh", lambda: fastrnn.RNN(24, 40, seed=0)),
    ("rnn_relu", lambda: fastrnn.RNN(24, 40, nonlinearity="relu", seed=0)),
    ("gru", lambda: fastrnn.GRU(24, 40, seed=0)),
    ("gru_reset_before", lambda: fastrnn.GRU(24, 40, reset_after=False, seed=0)),
    ("lstm", lambda: fastrnn.LSTM(24, 40, seed=0)),
    ("lstm_peephole", lambda: fastrnn.LSTM(24, 40, peephole=True, seed=0)),
    (
        "lstm_peephole_bi_2layer",
        lambda: fastrnn.LSTM(24, 40, 2, bidirectional=True, peephole=True, seed=0),
    ),
    ("gru_bi_2layer_nobias", lambda: fastrnn.GRU(24, 40, 2, bias=False, bidirectional=True)),
]
IDS = [n for n, _ in LAYERS]

CELLS = [
    ("rnn_tanh", lambda: fastrnn.RNNCell(24, 40, seed=0)),
    ("rnn_relu", lambda: fastrnn.RNNCell(24, 40, nonlinearity="relu", seed=0)),
    ("gru", lambda: fastrnn.GRUCell(24, 40, seed=0)),
    ("gru_reset_before", lambda: fastrnn.GRUCell(24, 40, reset_after=False, seed=0)),
    ("lstm", lambda: fastrnn.LSTMCell(24, 40, seed=0)),
    ("lstm_peephole", lambda: fastrnn.LSTMCell(24, 40, peephole=True, seed=0)),
]
CELL_IDS = [n for n, _ in CELLS]


def dequantized(w: np.ndarray) -> np.ndarray:
    """The weights the int8 kernels multiply by, in float64 (exact: an int8 times a float32)."""
    w = np.asarray(w, np.float32)
    scale = np.abs(w).max(axis=1) / np.float32(127)  # float32, as the kernels compute it
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(w / safe[:, None]), -127, 127)
    q[scale == 0] = 0
    return q.astype(np.float64) * scale.astype(np.float64)[:, None]


def reference_layer(m, x: np.ndarray, lengths=None) -> np.ndarray:
    """tests/reference.py in float64, layer by layer and direction by direction, over the
    dequantized weights of fastrnn layer `m` (x: [T, B, I])."""
    sd = m.state_dict()
    inp = x.astype(np.float64)
    for k in range(m.num_layers):
        outs = []
        for d in range(2 if m.bidirectional else 1):
            sfx = f"_l{k}" + ("_reverse" if d else "")

            def get(name, sfx=sfx):
                return sd[name + sfx] if name + sfx in sd else None

            y, _, _, _ = reference.forward(
                m._cell, inp, None, None,
                dequantized(sd["weight_ih" + sfx]), dequantized(sd["weight_hh" + sfx]),
                get("bias_ih"), get("bias_hh"), get("peephole"), lengths=lengths, reverse=d == 1,
            )  # fmt: skip
            outs.append(y)
        inp = np.concatenate(outs, axis=-1)
    return inp


def inputs(T: int, B: int, I: int = 24, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((T, B, I)).astype(np.float32)


@pytest.mark.parametrize("name,make", LAYERS, ids=IDS)
def test_layer_matches_reference_on_dequantized_weights(isa, name, make):
    m = make()
    q = fastrnn.quantize_dynamic(m)
    x = inputs(12, 3)
    lengths = np.array([12, 7, 1])
    y = q(x, lengths=lengths)[0]
    want = reference_layer(m, x, lengths)
    scale = np.abs(want).max()
    err = np.abs(y - want).max() / scale
    assert err <= 1e-5, f"{name} on {isa}: relative error {err:.3g} vs the dequantized reference"
    # ... and the weights really are quantized: the float32 model gives other numbers
    full = reference_layer_float(m, x, lengths)
    assert np.abs(full - want).max() / scale > 1e-4


def reference_layer_float(m, x, lengths):
    """The float32 model itself (eval), for the comparison above."""
    return m.eval()(x, lengths=lengths)[0].astype(np.float64)


@pytest.mark.parametrize("name,make", CELLS, ids=CELL_IDS)
def test_cell_matches_reference_on_dequantized_weights(isa, name, make):
    c = make()
    q = fastrnn.quantize_dynamic(c)
    sd = c.state_dict()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 24)).astype(np.float32)
    h = rng.standard_normal((5, 40)).astype(np.float32) * 0.5
    is_lstm = "lstm" in name
    cs = rng.standard_normal((5, 40)).astype(np.float32) if is_lstm else None
    out = q(x, (h, cs)) if is_lstm else q(x, h)
    h1 = out[0] if is_lstm else out
    want_h, want_c = reference.step(
        c._cell, x.astype(np.float64), h.astype(np.float64),
        None if cs is None else cs.astype(np.float64),
        dequantized(sd["weight_ih"]), dequantized(sd["weight_hh"]),
        sd.get("bias_ih"), sd.get("bias_hh"), sd.get("peephole"),
    )  # fmt: skip
    assert np.abs(h1 - want_h).max() / np.abs(want_h).max() <= 1e-5
    if is_lstm:
        assert np.abs(out[1] - want_c).max() / np.abs(want_c).max() <= 1e-5


@pytest.mark.parametrize("name,make", LAYERS, ids=IDS)
def test_error_vs_float32_over_100_steps(isa, name, make, record_property):
    m = make().eval()
    x = inputs(100, 2)
    full = m(x)[0]
    q = fastrnn.quantize_dynamic(m)
    y = q(x)[0]
    err = float(np.abs(y - full).max() / np.abs(full).max())
    record_property("int8_relative_error", err)
    print(f"{name} [{isa}]: int8 vs float32 relative error {err:.3g}")
    assert 0 < err <= 2e-2, f"relative error {err:.3g}"


@pytest.mark.parametrize("name,make", LAYERS, ids=IDS)
def test_simd_paths_equal_scalar(isa, name, make):
    q = fastrnn.quantize_dynamic(make())
    x = inputs(20, 5)
    got = q(x)[0]
    before = _C.backends()["active"]
    _C.set_isa("scalar")
    try:
        q._invalidate()
        want = q(x)[0]
    finally:
        _C.set_isa(before)
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()


@pytest.mark.parametrize("name,make", LAYERS, ids=IDS)
def test_row_does_not_depend_on_batch(isa, name, make):
    q = fastrnn.quantize_dynamic(make())
    x = inputs(9, 16, seed=3)
    lengths = np.array([9, 3, 9, 1, 8, 9, 2, 9, 5, 9, 9, 4, 9, 7, 6, 9])
    big = q(x, lengths=lengths)[0]
    for rows in ([0], [1, 4], [2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]):
        small = q(x[:, rows], lengths=lengths[rows])[0]
        assert np.array_equal(small, big[:, rows]), rows


@pytest.mark.parametrize("name,make", LAYERS[:6], ids=IDS[:6])
def test_streaming_steps_equal_whole_sequence(isa, name, make):
    q = fastrnn.quantize_dynamic(make())
    x = inputs(15, 2, seed=4)
    whole, last = q(x)  # last: h_n, or (h_n, c_n) for the LSTM
    state = None
    for t in range(x.shape[0]):
        out, state = q(x[t : t + 1], state)
        assert np.array_equal(out[0], whole[t]), t
    if isinstance(last, tuple):
        assert all(np.array_equal(a, b) for a, b in zip(state, last))
    else:
        assert np.array_equal(state, last)


@pytest.mark.parametrize("k", range(len(CELLS)), ids=CELL_IDS)
def test_cell_steps_equal_layer_sequence(isa, k):
    name, make_cell = CELLS[k]
    _, make_layer = LAYERS[k]
    layer = make_layer()
    cell = make_cell()
    cell.load_state_dict({key.removesuffix("_l0"): v for key, v in layer.state_dict().items()})
    ql, qc = fastrnn.quantize_dynamic(layer), fastrnn.quantize_dynamic(cell)
    x = inputs(10, 3, seed=5)
    whole = ql(x)[0]
    h = np.zeros((3, 40), np.float32)
    c = np.zeros((3, 40), np.float32)
    for t in range(10):
        if "lstm" in name:
            h, c = qc(x[t], (h, c))
        else:
            h = qc(x[t], h)
        assert np.array_equal(h, whole[t]), t


def test_original_untouched():
    m = fastrnn.LSTM(24, 40, 2, seed=0)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    x = inputs(30, 2)
    want = m.eval()(x)[0]
    m.train()
    q = fastrnn.quantize_dynamic(m)
    assert q is not m and q.inference_dtype == "int8" and not q.training
    assert m.inference_dtype == "float32" and m.training
    for k, v in m.state_dict().items():
        assert np.array_equal(v, before[k]) and v is not q.state_dict()[k]
    assert np.array_equal(m.eval()(x)[0], want)
    assert not np.array_equal(q(x)[0], want)
    y, h = m.train()(x)
    m.backward(np.ones_like(y))  # the original still trains


def test_quantized_copy_runs_inference_only():
    q = fastrnn.quantize_dynamic(fastrnn.GRU(24, 40, seed=0))
    x = inputs(5, 2)
    y, _ = q(x)
    with pytest.raises(RuntimeError, match="quantize_dynamic"):
        q.backward(np.ones_like(y))
    q.train()
    with pytest.raises(RuntimeError, match=r"GRU\.forward: .*quantize_dynamic"):
        q(x)
    cell = fastrnn.quantize_dynamic(fastrnn.LSTMCell(24, 40, seed=0))
    h, c = cell(x[0])
    with pytest.raises(RuntimeError, match="quantize_dynamic"):
        cell.backward(np.ones_like(h), np.ones_like(c))
    cell.train()
    with pytest.raises(RuntimeError, match="quantize_dynamic"):
        cell(x[0])
    # back to float32: trains again
    cell.inference_dtype = "float32"
    cell(x[0])


class _Tagger(fastrnn.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = fastrnn.LSTM(24, 40, bidirectional=True, seed=0)
        self.cell = fastrnn.GRUCell(80, 40, seed=1)
        self.out = fastrnn.nn.Linear(40, 5, seed=2)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(self.cell(y[-1]))


def test_toolkit_model():
    model = _Tagger()
    q = fastrnn.quantize_dynamic(model)
    assert q.rnn.inference_dtype == "int8" and q.cell.inference_dtype == "int8"
    assert model.rnn.inference_dtype == "float32" and model.cell.inference_dtype == "float32"
    assert np.array_equal(q.out.weight, model.out.weight)
    x = inputs(8, 3)
    rnn, cell = fastrnn.quantize_dynamic(model.rnn), fastrnn.quantize_dynamic(model.cell)
    want = model.out(cell(rnn(x)[0][-1]))
    assert np.array_equal(q(x), want)
    full = model.eval()(x)
    assert 0 < np.abs(q(x) - full).max() <= 2e-2 * np.abs(full).max()


def test_inference_dtype_switches():
    m = fastrnn.GRU(24, 40, seed=0).eval()
    x = inputs(10, 2)
    full = m(x)[0]
    m.inference_dtype = "int8"
    assert m.inference_dtype == "int8"
    i8 = m(x)[0]
    m.inference_dtype = "bfloat16"
    assert m.inference_dtype == "bfloat16"
    assert not np.array_equal(m(x)[0], i8)
    m.inference_dtype = "int8"
    assert np.array_equal(m(x)[0], i8)
    m.inference_dtype = "float32"
    assert np.array_equal(m(x)[0], full)
    assert copy.deepcopy(fastrnn.quantize_dynamic(m)).inference_dtype == "int8"


def test_zero_rows_and_zero_weights():
    m = fastrnn.RNN(24, 40, seed=0).eval()
    w = m.state_dict()
    w["weight_hh_l0"][:5] = 0
    w["weight_ih_l0"][3] = 0
    m.load_state_dict(w)
    q = fastrnn.quantize_dynamic(m)
    x = inputs(6, 2)
    y = q(x)[0]
    assert np.all(np.isfinite(y))
    assert np.abs(y - reference_layer(m, x)).max() <= 1e-5 * np.abs(y).max()


@pytest.mark.parametrize("dtype", ["int4", "float16", "uint8", 8, None, "bfloat16"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="dtype: expected 'int8'"):
        fastrnn.quantize_dynamic(fastrnn.LSTM(4, 4), dtype=dtype)


def test_accepted_dtype_spellings():
    for dtype in ("int8", np.int8, "qint8"):
        assert fastrnn.quantize_dynamic(fastrnn.RNN(4, 4), dtype=dtype).inference_dtype == "int8"


def test_bad_models():
    with pytest.raises(TypeError, match="model: expected a fastrnn layer"):
        fastrnn.quantize_dynamic(object())
    with pytest.raises(ValueError, match="holds no recurrent layer"):
        fastrnn.quantize_dynamic(fastrnn.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="float32"):
        fastrnn.quantize_dynamic(fastrnn.LSTM(4, 4, dtype="float64"))
    with pytest.raises(ValueError, match="needs a float32 module"):
        fastrnn.GRUCell(4, 4, dtype="float64").inference_dtype = "int8"
    with pytest.raises(ValueError, match="inference_dtype: expected"):
        fastrnn.LSTM(4, 4).inference_dtype = "int4"
    w = _C.Weights("gru", np.zeros((6, 3)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="float32"):
        w.i8 = True


@pytest.mark.parametrize(
    "make", [lambda: fastrnn.LSTM(13, 300, seed=0), lambda: fastrnn.GRU(13, 300, seed=0)]
)
def test_wide_layer_rows_and_threads_independent(isa, make):
    """H=300: the product runs its k loop in L1-sized chunks at more rows than one register tile;
    a row's bits depend neither on that nor on the thread count."""
    q = fastrnn.quantize_dynamic(make())
    x = inputs(6, 20, I=13, seed=6)
    before = fastrnn.get_num_threads()
    try:
        fastrnn.set_num_threads(2)
        big = q(x)[0]
        fastrnn.set_num_threads(1)
        assert np.array_equal(q(x)[0], big)
        assert np.array_equal(q(x[:, 7:8])[0], big[:, 7:8])
    finally:
        fastrnn.set_num_threads(before)
    want = reference_layer(make(), x)
    assert np.abs(big - want).max() <= 1e-5 * np.abs(want).max()
