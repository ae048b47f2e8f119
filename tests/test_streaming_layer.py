"""A layer fed one step at a time (eval mode) runs the streaming step kernel: bitwise the same as
the whole sequence, and as a training-mode forward of that one step."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn

LAYERS = {
    "rnn_relu_2layer": lambda: fastrnn.RNN(12, 20, 2, nonlinearity="relu", seed=0),
    "gru": lambda: fastrnn.GRU(12, 20, seed=0),
    "gru_reset_before_batch_first": lambda: fastrnn.GRU(
        12, 20, reset_after=False, batch_first=True, seed=0
    ),
    "lstm_peephole_3layer": lambda: fastrnn.LSTM(12, 20, 3, peephole=True, seed=0),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_step_by_step_equals_the_whole_sequence(name, dtype):
    m = LAYERS[name]().eval()
    m.inference_dtype = dtype
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 4, 12)).astype(np.float32)
    if m.batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    whole, state = m(x)
    outs, st = [], None
    for t in range(9):
        xt = x[:, t : t + 1] if m.batch_first else x[t : t + 1]
        y, st = m(xt, st)
        outs.append(y)
    stepped = np.concatenate(outs, axis=1 if m.batch_first else 0)
    np.testing.assert_array_equal(stepped, whole)
    for a, b in zip(
        st if isinstance(st, tuple) else (st,), state if isinstance(state, tuple) else (state,)
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_one_step_eval_equals_one_step_training_forward(bidirectional):
    m = fastrnn.LSTM(8, 16, 2, bidirectional=bidirectional, seed=0)
    x = np.random.default_rng(2).standard_normal((1, 3, 8)).astype(np.float32)
    h0 = (
        np.random.default_rng(3)
        .standard_normal((2 * (1 + bidirectional), 3, 16))
        .astype(np.float32)
    )
    trained = m.train()(x, (h0, h0 * 0.5))
    evaluated = m.eval()(x, (h0, h0 * 0.5))
    np.testing.assert_array_equal(evaluated[0], trained[0])
    np.testing.assert_array_equal(evaluated[1][0], trained[1][0])
    np.testing.assert_array_equal(evaluated[1][1], trained[1][1])
    with pytest.raises(RuntimeError):  # eval forwards keep nothing for backward
        m.backward(np.ones_like(evaluated[0]))
    x1 = x[:, 0]  # unbatched (T=1, I)
    np.testing.assert_array_equal(m(x1[None, 0])[0], m(x[:, :1])[0][:, 0])


# --- one eval-mode step in one call (_C.stack_step) ----------------------------------------------

CELLS = {  # layer, and the cell that is its one step (same parameters)
    "lstm": (lambda **kw: fastrnn.LSTM(12, 20, **kw), lambda **kw: fastrnn.LSTMCell(12, 20, **kw)),
    "lstm_peephole": (
        lambda **kw: fastrnn.LSTM(12, 20, peephole=True, **kw),
        lambda **kw: fastrnn.LSTMCell(12, 20, peephole=True, **kw),
    ),
    "gru": (lambda **kw: fastrnn.GRU(12, 20, **kw), lambda **kw: fastrnn.GRUCell(12, 20, **kw)),
    "gru_reset_before": (
        lambda **kw: fastrnn.GRU(12, 20, reset_after=False, **kw),
        lambda **kw: fastrnn.GRUCell(12, 20, reset_after=False, **kw),
    ),
    "rnn_relu_no_bias": (
        lambda **kw: fastrnn.RNN(12, 20, nonlinearity="relu", bias=False, **kw),
        lambda **kw: fastrnn.RNNCell(12, 20, nonlinearity="relu", bias=False, **kw),
    ),
}


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("mode", ["float32", "float64", "int8"])
def test_layer_fed_one_step_at_a_time_equals_the_cell(name, mode):
    dtype = "float64" if mode == "float64" else "float32"
    make_layer, make_cell = CELLS[name]
    m = make_layer(dtype=dtype, seed=0).eval()
    cell = make_cell(dtype=dtype, seed=1).eval()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in m.state_dict().items()})
    if mode == "int8":
        m, cell = fastrnn.quantize_dynamic(m), fastrnn.quantize_dynamic(cell)
    x = np.random.default_rng(4).standard_normal((6, 3, 12)).astype(dtype)
    st, cs = None, None
    for t in range(6):
        y, st = m(x[t : t + 1], st)
        cs = cell(x[t], cs)
        for a, b in zip(
            st if isinstance(st, tuple) else (st,), cs if isinstance(cs, tuple) else (cs,)
        ):
            np.testing.assert_array_equal(a[0], b)
        np.testing.assert_array_equal(y[0], cs[0] if isinstance(cs, tuple) else cs)


def _states(m, B, rng, batched=True):
    n = m.num_layers * (2 if m.bidirectional else 1)
    shape = (n, B, m.hidden_size) if batched else (n, m.hidden_size)
    h = rng.standard_normal(shape).astype(m.dtype)
    return (h, 0.5 * h) if isinstance(m, fastrnn.LSTM) else h


LAYOUTS = [
    dict(num_layers=1),
    dict(num_layers=3),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=1, bidirectional=True, batch_first=True),
    dict(num_layers=2, batch_first=True, dtype="float64"),
]


@pytest.mark.parametrize("cls", [fastrnn.LSTM, fastrnn.GRU, fastrnn.RNN])
@pytest.mark.parametrize("kw", LAYOUTS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("batched", [True, False])
def test_one_step_in_one_call_equals_the_general_path(cls, kw, batched, monkeypatch):
    """Every layout (stacked, bidirectional, batch-first, unbatched, float64) in one _C call,
    equal to the general path (a training-mode forward of the same step), with and without
    initial states; the general path is not entered."""
    m = cls(12, 20, seed=0, **kw)
    rng = np.random.default_rng(5)
    B = 3 if batched else 1
    x = rng.standard_normal((B, 1, 12) if m.batch_first else (1, B, 12)).astype(m.dtype)
    if not batched:
        x = x.reshape(1, 12)
    hx = _states(m, B, rng, batched)
    want = [m.train()(x), m(x, hx)]
    monkeypatch.setattr(type(m), "_run", lambda *a: pytest.fail("took the general path"))
    m.eval()
    got = [m(x), m(x, hx)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g[0], w[0])
        for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (g[1], w[1]))):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="eval mode"):  # nothing kept for backward
        m.backward(np.ones_like(got[0][0]))


def test_one_step_accepts_what_the_general_path_accepts():
    """States as a list, torch tensors, Fortran-ordered or non-contiguous arrays, h0=/c0=
    keywords: the same results as plain arrays (the general path converts them)."""
    torch = pytest.importorskip("torch")
    m = fastrnn.LSTM(12, 20, 2, seed=0).eval()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 4, 12)).astype(np.float32)
    h, c = _states(m, 4, rng)
    out, (h_n, c_n) = m(x, (h, c))
    variants = [
        m(x, [h, c]),
        m(x, (torch.from_numpy(h), torch.from_numpy(c))),
        m(torch.from_numpy(x), (h, c)),
        m(np.asfortranarray(x), (np.asfortranarray(h), c)),
        m(x, (np.ascontiguousarray(h[:, ::-1])[:, ::-1], c)),
        m(x, h0=h, c0=c),
        m(x[:, :, None, :].reshape(1, 4, 12), (h, c)),
    ]
    for o, (hn, cn) in variants:
        np.testing.assert_array_equal(np.asarray(o), out)
        np.testing.assert_array_equal(np.asarray(hn), h_n)
        np.testing.assert_array_equal(np.asarray(cn), c_n)


def _bad_calls():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 12)).astype(np.float32)
    h = np.zeros((1, 2, 20), np.float32)
    return {
        "x-float64": (fastrnn.LSTM, (x.astype(np.float64),)),
        "x-int": (fastrnn.GRU, (x.astype(np.int32),)),
        "x-wrong-I": (fastrnn.LSTM, (x[:, :, :5],)),
        "x-4d": (fastrnn.GRU, (x[None],)),
        "x-empty-batch": (fastrnn.RNN, (x[:, :0],)),
        "h0-wrong-B": (fastrnn.GRU, (x, h[:, :1])),
        "h0-float64": (fastrnn.RNN, (x, h.astype(np.float64))),
        "h0-unbatched-for-batched-x": (fastrnn.GRU, (x, h[:, 0])),
        "c0-wrong-H": (fastrnn.LSTM, (x, (h, h[:, :, :3]))),
        "hx-not-a-tuple": (fastrnn.LSTM, (x, h)),
        "hx-three": (fastrnn.LSTM, (x, (h, h, h))),
        "hx-None-pair-bad": (fastrnn.LSTM, (x, (None, "c"))),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_one_step_errors_are_the_general_paths(case):
    """A bad argument to an eval-mode step raises what the training-mode forward of the same
    step raises (the general path's checks), word for word."""
    cls, args = _bad_calls()[case]
    m = cls(12, 20, seed=0)
    with pytest.raises((TypeError, ValueError)) as general:
        m.train()(*args)
    with pytest.raises(general.type) as streamed:
        m.eval()(*args)
    assert str(streamed.value) == str(general.value)


def test_one_step_propagates_nan():
    m = fastrnn.LSTM(12, 20, 2, seed=0).eval()
    x = np.random.default_rng(8).standard_normal((1, 3, 12)).astype(np.float32)
    x[0, 1, 4] = np.nan
    out, (h_n, c_n) = m(x)
    assert np.isnan(out[0, 1]).all() and np.isfinite(out[0, [0, 2]]).all()
    assert np.isnan(h_n[:, 1]).all() and np.isnan(c_n[:, 1]).all()
    assert np.isfinite(h_n[:, [0, 2]]).all()


def test_stack_step_rejects_what_would_read_out_of_bounds():
    """_C.stack_step's own checks (the last line of defence under the Python checks)."""
    from fastrnn import _C

    a = fastrnn.LSTM(12, 20, 2, seed=0)._c_weights()
    g = fastrnn.GRU(20, 20, seed=0)._c_weights()
    d = fastrnn.LSTM(12, 20, dtype="float64", seed=0)._c_weights()
    x = np.zeros((1, 2, 12), np.float32)
    h = np.zeros((2, 2, 20), np.float32)
    assert _C.stack_step(a, x, h, h)[1][0].shape == (2, 2, 20)
    bad = [
        (ValueError, [], x, None, None),  # no layers
        (TypeError, [a[0][0]], x, None, None),  # not a list of lists
        (ValueError, [a[0], []], x, None, None),  # a layer without directions
        (ValueError, [a[1], a[0]], x, None, None),  # input sizes do not stack
        (ValueError, [a[0], g[0]], x, None, None),  # cells differ
        (TypeError, [a[0], d[0]], x, None, None),  # dtypes differ
        (ValueError, a, x[:, :, :4], None, None),
        (ValueError, a, np.zeros((2, 2, 12), np.float32), None, None),  # T = 2
        (ValueError, a, x[0, 0], None, None),  # 1-D
        (TypeError, a, x.astype(np.float64), None, None),
        (ValueError, a, x, h[:1], None),
        (TypeError, a, x, None, [[0.0]]),
        (ValueError, g, np.zeros((1, 2, 20), np.float32), None, h[:1]),  # c0 for a GRU
    ]
    for err, w, xx, h0, c0 in bad:
        with pytest.raises(err):
            _C.stack_step(w, xx, h0, c0)


SEQUENCE_VS_STEPS = {
    "lstm_peephole": lambda dtype: fastrnn.LSTM(12, 37, peephole=True, dtype=dtype, seed=2),
    "gru": lambda dtype: fastrnn.GRU(12, 37, dtype=dtype, seed=2),
    "gru_reset_before": lambda dtype: fastrnn.GRU(12, 37, reset_after=False, dtype=dtype, seed=2),
    "rnn_tanh": lambda dtype: fastrnn.RNN(12, 37, dtype=dtype, seed=2),
    "lstm_no_bias": lambda dtype: fastrnn.LSTM(12, 37, bias=False, dtype=dtype, seed=2),
}


@pytest.mark.parametrize("name", list(SEQUENCE_VS_STEPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_steps_equal_the_sequence_bitwise_on_every_isa(isa, name, dtype):
    """The streaming step (its input projection inside the step, per hidden-unit block, plus
    the biases) and the sequence (one GEMM for every step's input projection) give the same
    bits on every SIMD path, including the blocks' tails (H = 37) and every bias rule."""
    m = SEQUENCE_VS_STEPS[name](dtype).eval()
    x = np.random.default_rng(9).standard_normal((5, 3, 12)).astype(dtype)
    whole, state = m(x)
    st, outs = None, []
    for t in range(5):
        y, st = m(x[t : t + 1], st)
        outs.append(y)
    np.testing.assert_array_equal(np.concatenate(outs), whole)
    for a, b in zip(
        st if isinstance(st, tuple) else (st,), state if isinstance(state, tuple) else (state,)
    ):
        np.testing.assert_array_equal(a, b)
