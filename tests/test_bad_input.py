"""Bad input gets a Python exception whose message names the argument and shows expected vs given.

One table row per case from the issue's list: wrong ndim, shape or dtype; states that do not
match; lengths negative, zero, too long, of the wrong count or not integers; empty batch or
sequence; integer input; backward before forward, after an eval-mode forward or with mismatched
shapes; bad constructor arguments and state dicts; the functional forms' weights. Plus what must
NOT raise: non-contiguous and Fortran-ordered arrays (same results as contiguous) and NaN
(propagates). Nothing may crash the interpreter, `_C` called directly included.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable

import numpy as np
import pytest

import fastrnn
from fastrnn import _C

T, B, I, H = 5, 3, 4, 6
F32 = np.float32


def rnd(*shape: int, dtype: Any = F32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def gru(**kw: Any) -> fastrnn.GRU:
    return fastrnn.GRU(I, H, seed=0, **kw)


def lstm(**kw: Any) -> fastrnn.LSTM:
    return fastrnn.LSTM(I, H, seed=0, **kw)


def trained(m: Any, x: np.ndarray | None = None) -> Any:
    m(rnd(T, B, I) if x is None else x)
    return m


def reloaded(m: Any) -> Any:
    m.load_state_dict(m.state_dict())
    return m


# (id, call, exception, substrings the message must contain)
Case = tuple[str, Callable[[], Any], type, list[str]]
CASES: list[Case] = [
    # --- x: ndim, shape, dtype, empty
    ("x-1d", lambda: gru()(rnd(I)), ValueError, ["x:", "(T, B, I=4)", "(4,)"]),
    ("x-4d", lambda: gru()(rnd(T, B, 1, I)), ValueError, ["x:", "(T, B, I=4)", "(5, 3, 1, 4)"]),
    ("x-wrong-I", lambda: gru()(rnd(T, B, I + 1)), ValueError, ["x:", "I=4", "(5, 3, 5)"]),
    ("x-wrong-I-unbatched", lambda: gru()(rnd(T, I + 2)), ValueError, ["x:", "(T, I=4)", "(5, 6)"]),
    (
        "x-batch_first-layout",
        lambda: gru(batch_first=True)(rnd(B, T, I + 1)),
        ValueError,
        ["x:", "(B, T, I=4)", "(3, 5, 5)"],
    ),
    ("x-empty-batch", lambda: gru()(rnd(T, 0, I)), ValueError, ["x:", "B=0", "(5, 0, 4)"]),
    ("x-empty-steps", lambda: gru()(rnd(0, B, I)), ValueError, ["x:", "T=0", "(0, 3, 4)"]),
    ("x-empty-unbatched", lambda: lstm()(rnd(0, I)), ValueError, ["x:", "T=0", "(0, 4)"]),
    ("x-int", lambda: gru()(np.ones((T, B, I), np.int64)), TypeError, ["x:", "float32", "int64"]),
    ("x-int32", lambda: lstm()(np.ones((T, B, I), np.int32)), TypeError, ["x:", "int32"]),
    ("x-bool", lambda: gru()(np.ones((T, B, I), bool)), TypeError, ["x:", "bool"]),
    ("x-object", lambda: gru()(np.ones((T, B, I), object)), TypeError, ["x:", "object"]),
    ("x-float16", lambda: gru()(rnd(T, B, I, dtype=np.float16)), TypeError, ["x:", "float16"]),
    ("x-complex", lambda: gru()(rnd(T, B, I).astype(np.complex64)), TypeError, ["x:", "complex64"]),
    (
        "x-float64-to-float32-layer",
        lambda: lstm()(rnd(T, B, I, dtype=np.float64)),
        TypeError,
        ["x:", "float64", "float32"],
    ),
    (
        "x-float32-to-float64-layer",
        lambda: gru(dtype="float64")(rnd(T, B, I)),
        TypeError,
        ["x:", "float32", "float64"],
    ),
    ("x-None", lambda: gru()(None), TypeError, ["x:"]),
    ("x-ragged", lambda: gru()([[1.0, 2.0], [3.0]]), ValueError, ["x:"]),
    # --- states
    (
        "h0-wrong-B",
        lambda: gru()(rnd(T, B, I), rnd(1, B + 1, H)),
        ValueError,
        ["h0:", "(L*D, B, H) = (1, 3, 6)", "(1, 4, 6)"],
    ),
    (
        "h0-wrong-LD",
        lambda: gru(num_layers=2, bidirectional=True)(rnd(T, B, I), rnd(2, B, H)),
        ValueError,
        ["h0:", "(4, 3, 6)", "(2, 3, 6)"],
    ),
    (
        "h0-2d-for-batched",
        lambda: gru()(rnd(T, B, I), rnd(B, H)),
        ValueError,
        ["h0:", "(1, 3, 6)", "(3, 6)"],
    ),
    (
        "h0-3d-for-unbatched",
        lambda: gru()(rnd(T, I), rnd(1, 1, H)),
        ValueError,
        ["h0:", "(L*D, H)", "(1, 6)", "(1, 1, 6)"],
    ),
    (
        "h0-batch-first-state",
        lambda: gru(batch_first=True)(rnd(B, T, I), rnd(B, 1, H)),
        ValueError,
        ["h0:", "(1, 3, 6)", "(3, 1, 6)"],
    ),
    (
        "h0-dtype",
        lambda: gru()(rnd(T, B, I), rnd(1, B, H, dtype=np.float64)),
        TypeError,
        ["h0:", "float64", "float32"],
    ),
    ("h0-int", lambda: gru()(rnd(T, B, I), np.zeros((1, B, H), int)), TypeError, ["h0:", "int"]),
    (
        "c0-wrong-H",
        lambda: lstm()(rnd(T, B, I), (rnd(1, B, H), rnd(1, B, H + 1))),
        ValueError,
        ["c0:", "(1, 3, 6)", "(1, 3, 7)"],
    ),
    ("lstm-hx-not-tuple", lambda: lstm()(rnd(T, B, I), rnd(1, B, H)), TypeError, ["hx", "(h, c)"]),
    ("lstm-hx-triple", lambda: lstm()(rnd(T, B, I), (rnd(1, B, H),) * 3), TypeError, ["hx"]),
    # --- lengths
    (
        "lengths-zero",
        lambda: gru()(rnd(T, B, I), lengths=[5, 0, 2]),
        ValueError,
        ["lengths", "[1, T=5]", "lengths[1]=0"],
    ),
    (
        "lengths-negative",
        lambda: gru()(rnd(T, B, I), lengths=[-1, 2, 2]),
        ValueError,
        ["lengths", "[1, T=5]", "lengths[0]=-1"],
    ),
    (
        "lengths-too-long",
        lambda: lstm()(rnd(T, B, I), lengths=[5, 6, 2]),
        ValueError,
        ["lengths", "[1, T=5]", "lengths[1]=6"],
    ),
    (
        "lengths-too-few",
        lambda: gru()(rnd(T, B, I), lengths=[5, 2]),
        ValueError,
        ["lengths", "B=3", "(2,)"],
    ),
    (
        "lengths-too-many",
        lambda: gru()(rnd(T, B, I), lengths=[5, 2, 1, 1]),
        ValueError,
        ["lengths", "B=3", "(4,)"],
    ),
    ("lengths-empty", lambda: gru()(rnd(T, B, I), lengths=[]), ValueError, ["lengths", "B=3"]),
    (
        "lengths-2d",
        lambda: gru()(rnd(T, B, I), lengths=[[5, 2, 1]]),
        ValueError,
        ["lengths", "(1, 3)"],
    ),
    (
        "lengths-float",
        lambda: gru()(rnd(T, B, I), lengths=[5.0, 2.0, 1.5]),
        TypeError,
        ["lengths", "integers", "float64"],
    ),
    (
        "lengths-bool",
        lambda: gru()(rnd(T, B, I), lengths=[True, True, True]),
        TypeError,
        ["lengths", "bool"],
    ),
    ("lengths-str", lambda: gru()(rnd(T, B, I), lengths=["5", "2", "1"]), TypeError, ["lengths"]),
    # --- backward
    (
        "backward-before-forward",
        lambda: gru().backward(rnd(T, B, H)),
        RuntimeError,
        ["backward", "forward"],
    ),
    (
        "backward-after-eval-forward",
        lambda: trained(lstm().eval()).backward(rnd(T, B, H)),
        RuntimeError,
        ["eval", "train()"],
    ),
    (
        "backward-after-load_state_dict",
        lambda: reloaded(trained(gru())).backward(rnd(T, B, H)),
        RuntimeError,
        ["forward"],
    ),
    (
        "d_out-wrong-shape",
        lambda: trained(gru()).backward(rnd(T, B + 1, H)),
        ValueError,
        ["d_out:", "(T, B, D*H) = (5, 3, 6)", "(5, 4, 6)"],
    ),
    (
        "d_out-batch_first",
        lambda: trained(gru(batch_first=True), rnd(B, T, I)).backward(rnd(T, B, H)),
        ValueError,
        ["d_out:", "(B, T, D*H) = (3, 5, 6)", "(5, 3, 6)"],
    ),
    (
        "d_out-bidir-width",
        lambda: trained(gru(bidirectional=True)).backward(rnd(T, B, H)),
        ValueError,
        ["d_out:", "(5, 3, 12)", "(5, 3, 6)"],
    ),
    (
        "d_out-dtype",
        lambda: trained(gru()).backward(rnd(T, B, H, dtype=np.float64)),
        TypeError,
        ["d_out:", "float64", "float32"],
    ),
    (
        "d_h_n-wrong-shape",
        lambda: trained(gru()).backward(None, rnd(2, B, H)),
        ValueError,
        ["d_h_n:", "(1, 3, 6)", "(2, 3, 6)"],
    ),
    (
        "dc_n-wrong-shape",
        lambda: trained(lstm()).backward(None, (None, rnd(1, B, H + 1))),
        ValueError,
        ["dc_n:", "(1, 3, 6)", "(1, 3, 7)"],
    ),
    (
        "lstm-d_h_n-not-tuple",
        lambda: trained(lstm()).backward(None, rnd(1, B, H)),
        TypeError,
        ["d_h_n", "(h, c)"],
    ),
    # --- constructor
    ("ctor-input_size-0", lambda: fastrnn.GRU(0, H), ValueError, ["input_size", "0"]),
    ("ctor-hidden_size-negative", lambda: fastrnn.LSTM(I, -3), ValueError, ["hidden_size", "-3"]),
    ("ctor-num_layers-0", lambda: fastrnn.RNN(I, H, num_layers=0), ValueError, ["num_layers"]),
    ("ctor-hidden_size-float", lambda: fastrnn.RNN(I, 2.5), TypeError, ["hidden_size", "2.5"]),
    (
        "ctor-nonlinearity",
        lambda: fastrnn.RNN(I, H, nonlinearity="sigmoid"),
        ValueError,
        ["nonlinearity", "'tanh' or 'relu'", "sigmoid"],
    ),
    ("ctor-dtype", lambda: fastrnn.GRU(I, H, dtype="float16"), ValueError, ["dtype", "float16"]),
    ("ctor-dtype-int", lambda: fastrnn.GRU(I, H, dtype=np.int32), ValueError, ["dtype"]),
    ("ctor-dtype-junk", lambda: fastrnn.GRU(I, H, dtype="banana"), ValueError, ["dtype", "banana"]),
    (
        "ctor-dropout-1",
        lambda: fastrnn.LSTM(I, H, num_layers=2, dropout=1.0),
        ValueError,
        ["dropout", "[0, 1)", "1.0"],
    ),
    (
        "ctor-dropout-negative",
        lambda: fastrnn.LSTM(I, H, num_layers=2, dropout=-0.1),
        ValueError,
        ["dropout"],
    ),
    ("ctor-proj_size", lambda: fastrnn.LSTM(I, H, proj_size=3), NotImplementedError, ["proj_size"]),
    ("cell-ctor-hidden_size-0", lambda: fastrnn.LSTMCell(I, 0), ValueError, ["hidden_size"]),
    (
        "cell-ctor-nonlinearity",
        lambda: fastrnn.RNNCell(I, H, nonlinearity="gelu"),
        ValueError,
        ["nonlinearity"],
    ),
    # --- state dicts
    (
        "sd-missing",
        lambda: gru().load_state_dict(
            {k: v for k, v in gru().state_dict().items() if k != "bias_hh_l0"}
        ),
        KeyError,
        ["missing", "bias_hh_l0"],
    ),
    (
        "sd-unexpected",
        lambda: gru().load_state_dict({**gru().state_dict(), "bias_hh_l1": rnd(18)}),
        KeyError,
        ["unexpected", "bias_hh_l1"],
    ),
    (
        "sd-torch-into-peephole",
        lambda: lstm(peephole=True).load_state_dict(lstm().state_dict()),
        KeyError,
        ["missing", "peephole_l0"],
    ),
    (
        "sd-wrong-shape",
        lambda: gru().load_state_dict({**gru().state_dict(), "weight_hh_l0": rnd(18, 5)}),
        ValueError,
        ["weight_hh_l0", "(18, 6)", "(18, 5)"],
    ),
    (
        "sd-gate-count",
        lambda: lstm().load_state_dict({**lstm().state_dict(), "weight_ih_l0": rnd(18, 4)}),
        ValueError,
        ["weight_ih_l0", "(24, 4)", "(18, 4)"],
    ),
    (
        "sd-bool",
        lambda: gru().load_state_dict({**gru().state_dict(), "bias_ih_l0": np.ones(18, bool)}),
        TypeError,
        ["bias_ih_l0", "bool"],
    ),
    ("sd-not-a-mapping", lambda: gru().load_state_dict([1, 2]), TypeError, ["state_dict"]),
    # --- cells
    (
        "cell-x-3d",
        lambda: fastrnn.GRUCell(I, H)(rnd(1, B, I)),
        ValueError,
        ["x:", "(B, I=4)", "(1, 3, 4)"],
    ),
    ("cell-x-wrong-I", lambda: fastrnn.RNNCell(I, H)(rnd(B, I + 1)), ValueError, ["x:", "(3, 5)"]),
    ("cell-x-int", lambda: fastrnn.RNNCell(I, H)(np.ones((B, I), int)), TypeError, ["x:", "int"]),
    (
        "cell-x-float64",
        lambda: fastrnn.LSTMCell(I, H)(rnd(B, I, dtype=np.float64)),
        TypeError,
        ["x:", "float64", "float32"],
    ),
    ("cell-x-empty", lambda: fastrnn.GRUCell(I, H)(rnd(0, I)), ValueError, ["x:", "B=0"]),
    (
        "cell-hx-wrong",
        lambda: fastrnn.GRUCell(I, H)(rnd(B, I), rnd(B + 1, H)),
        ValueError,
        ["hx:", "(B, H) = (3, 6)", "(4, 6)"],
    ),
    (
        "cell-c-wrong",
        lambda: fastrnn.LSTMCell(I, H)(rnd(B, I), (rnd(B, H), rnd(B, 2))),
        ValueError,
        ["c:", "(3, 6)", "(3, 2)"],
    ),
    (
        "cell-lstm-hx-array",
        lambda: fastrnn.LSTMCell(I, H)(rnd(B, I), rnd(B, H)),
        TypeError,
        ["hx", "(h, c)"],
    ),
    # --- functional
    (
        "fn-w_hh-shape",
        lambda: fastrnn.gru_forward(rnd(T, B, I), None, rnd(3 * H, I), rnd(H, H)),
        ValueError,
        ["w_hh:", "(G*H, H)", "G=3", "(6, 6)"],
    ),
    (
        "fn-w_ih-shape",
        lambda: fastrnn.lstm_forward(rnd(T, B, I), None, None, rnd(3 * H, I), rnd(4 * H, H)),
        ValueError,
        ["w_ih:", "(24, I)", "(18, 4)"],
    ),
    (
        "fn-b_ih-shape",
        lambda: fastrnn.rnn_forward(rnd(T, B, I), None, rnd(H, I), rnd(H, H), rnd(H + 1), rnd(H)),
        ValueError,
        ["b_ih:", "(6,)", "(7,)"],
    ),
    (
        "fn-peephole-shape",
        lambda: fastrnn.lstm_forward(
            rnd(T, B, I), None, None, rnd(4 * H, I), rnd(4 * H, H), peephole=rnd(4 * H)
        ),
        ValueError,
        ["peephole:", "(18,)", "(24,)"],
    ),
    (
        "fn-x-vs-w_ih",
        lambda: fastrnn.rnn_forward(rnd(T, B, I + 1), None, rnd(H, I), rnd(H, H)),
        ValueError,
        ["x:", "I=4", "(5, 3, 5)"],
    ),
    (
        "fn-weights-dtype-mix",
        lambda: fastrnn.rnn_forward(rnd(T, B, I), None, rnd(H, I), rnd(H, H, dtype=np.float64)),
        TypeError,
        ["w_ih:", "float32", "float64"],
    ),
    (
        "fn-w_hh-int",
        lambda: fastrnn.rnn_forward(rnd(T, B, I), None, rnd(H, I), np.ones((H, H), int)),
        TypeError,
        ["w_hh:", "int"],
    ),
    (
        "fn-h0-shape",
        lambda: fastrnn.rnn_forward(rnd(T, B, I), rnd(1, B, H), rnd(H, I), rnd(H, H)),
        ValueError,
        ["h0:", "(3, 6)", "(1, 3, 6)"],
    ),
    (
        "fn-lengths",
        lambda: fastrnn.gru_forward(
            rnd(T, B, I), None, rnd(3 * H, I), rnd(3 * H, H), lengths=[1, 2, 9]
        ),
        ValueError,
        ["lengths", "T=5"],
    ),
    (
        "fn-backward-None-ctx",
        lambda: fastrnn.lstm_backward(None, rnd(T, B, H)),
        TypeError,
        ["ctx", "need_grad=True"],
    ),
    (
        "fn-backward-wrong-cell",
        lambda: fastrnn.lstm_backward(
            fastrnn.gru_forward(rnd(T, B, I), None, rnd(3 * H, I), rnd(3 * H, H), need_grad=True)[
                2
            ],
            rnd(T, B, H),
        ),
        ValueError,
        ["ctx", "gru"],
    ),
    (
        "fn-backward-dy-shape",
        lambda: fastrnn.rnn_backward(
            fastrnn.rnn_forward(rnd(T, B, I), None, rnd(H, I), rnd(H, H), need_grad=True)[2],
            rnd(T, B, H + 1),
        ),
        ValueError,
        ["dy:", "(5, 3, 6)", "(5, 3, 7)"],
    ),
    (
        "fn-cell-x",
        lambda: fastrnn.gru_cell(rnd(B, I + 1), None, rnd(3 * H, I), rnd(3 * H, H)),
        ValueError,
        ["x:", "(B, I=4)", "(3, 5)"],
    ),
    (
        "fn-cell-c",
        lambda: fastrnn.lstm_cell(rnd(B, I), None, rnd(B, H + 1), rnd(4 * H, I), rnd(4 * H, H)),
        ValueError,
        ["c:", "(3, 6)", "(3, 7)"],
    ),
    (
        "fn-one-bias",
        lambda: fastrnn.rnn_forward(rnd(T, B, I), None, rnd(H, I), rnd(H, H), rnd(H)),
        ValueError,
        ["b_hh", "both biases or neither"],
    ),
    # --- module functions
    ("set_num_threads-0", lambda: fastrnn.set_num_threads(0), ValueError, ["n", ">= 1", "0"]),
    ("set_num_threads-str", lambda: fastrnn.set_num_threads("2"), TypeError, ["n"]),
]


@pytest.mark.parametrize("call, exc, parts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_with_a_clear_message(
    call: Callable[[], Any], exc: type, parts: list[str]
) -> None:
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for part in parts:
        assert part in msg, f"{part!r} missing from the message: {msg}"


def test_backward_twice_is_allowed_and_the_same() -> None:
    m = trained(lstm(num_layers=2, bidirectional=True))
    d_out = rnd(T, B, 2 * H, seed=1)
    first = m.backward(d_out)[0]
    np.testing.assert_array_equal(first, m.backward(d_out)[0])


# --- layouts that must be accepted --------------------------------------------------------------


def _views(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as non-contiguous views and a Fortran-ordered copy."""
    strided = np.repeat(a, 2, axis=-1)[..., ::2]
    reversed_twice = np.flip(np.flip(a, axis=0).copy(), axis=0)
    return {"strided": strided, "negative-strides": reversed_twice, "fortran": np.asfortranarray(a)}


@pytest.mark.parametrize("layout", ["strided", "negative-strides", "fortran"])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm", "lstm-batch_first"])
def test_non_contiguous_inputs_give_the_same_results(kind: str, layout: str) -> None:
    bf = kind.endswith("batch_first")
    cls = {"rnn": fastrnn.RNN, "gru": fastrnn.GRU, "lstm": fastrnn.LSTM}[kind.split("-")[0]]
    m = cls(I, H, num_layers=2, bidirectional=True, batch_first=bf, seed=1)
    x, h0, c0 = rnd(B, T, I) if bf else rnd(T, B, I), rnd(4, B, H, seed=2), rnd(4, B, H, seed=3)
    d_out, dh_n = rnd(*x.shape[:2], 2 * H, seed=4), rnd(4, B, H, seed=5)
    lengths = np.array([5, 0, 2, 0, 4, 0])[::2]  # a strided view of lengths too
    lstm_ = cls is fastrnn.LSTM

    def run(
        x: np.ndarray, h0: np.ndarray, c0: np.ndarray, d_out: np.ndarray, dh_n: np.ndarray
    ) -> list:
        hx = (h0, c0) if lstm_ else h0
        m.zero_grad()  # gradients accumulate across backwards, as in torch
        out, hn = m(x, hx, lengths=np.array([5, 2, 4]))
        dx, dhx = m.backward(d_out, (dh_n, dh_n) if lstm_ else dh_n)
        grads = [g.copy() for g in m.grads.values()]
        return [out, *(hn if lstm_ else [hn]), dx, *(dhx if lstm_ else [dhx]), *grads]

    want = run(x, h0, c0, d_out, dh_n)
    v = [_views(a)[layout] for a in (x, h0, c0, d_out, dh_n)]
    assert not any(a.flags.c_contiguous for a in v)
    got = run(*v)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(m(x, lengths=lengths)[0], m(x, lengths=[5, 2, 4])[0])


def test_non_contiguous_state_dict_functional_and_cells() -> None:
    m = fastrnn.LSTM(I, H, seed=1)
    sd = m.state_dict()
    m2 = fastrnn.LSTM(I, H, seed=2)
    m2.load_state_dict({k: np.asfortranarray(v) if v.ndim == 2 else v for k, v in sd.items()})
    x = rnd(T, B, I)
    np.testing.assert_array_equal(m(x)[0], m2(x)[0])
    w_ih, w_hh = sd["weight_ih_l0"], sd["weight_hh_l0"]
    want = fastrnn.lstm_forward(x, None, None, w_ih, w_hh)[0]
    got = fastrnn.lstm_forward(
        np.asfortranarray(x), None, None, np.asfortranarray(w_ih), w_hh.T.copy().T
    )[0]
    np.testing.assert_array_equal(got, want)
    cell = fastrnn.GRUCell(I, H, seed=1)
    xb = rnd(B, I)
    np.testing.assert_array_equal(cell(np.asfortranarray(xb)), cell(xb))


# --- NaN propagates ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [fastrnn.RNN, fastrnn.GRU, fastrnn.LSTM])
def test_nan_propagates_without_crashing(cls: type) -> None:
    m = cls(I, H, num_layers=2, seed=1)
    x = rnd(T, B, I)
    x[2, 1, 0] = np.nan
    out, hn = m(x)
    h_n = hn[0] if cls is fastrnn.LSTM else hn
    assert np.isnan(out[2:, 1]).all()  # every later step of sequence 1
    assert np.isfinite(out[:2]).all() and np.isfinite(out[:, [0, 2]]).all()
    assert np.isnan(h_n[:, 1]).all() and np.isfinite(h_n[:, [0, 2]]).all()
    dx, _ = m.backward(np.ones_like(out))
    assert np.isnan(dx[:, 1]).any() and np.isfinite(dx[:, [0, 2]]).all()


def test_nan_weights_propagate() -> None:
    m = fastrnn.GRU(I, H, seed=1)
    m.load_state_dict({**m.state_dict(), "bias_ih_l0": np.full(3 * H, np.nan, F32)})
    assert np.isnan(m(rnd(T, B, I))[0]).all()


# --- _C itself raises instead of crashing ------------------------------------------------------

_W = {"w_ih": rnd(3 * H, I), "w_hh": rnd(3 * H, H), "b_ih": rnd(3 * H), "b_hh": rnd(3 * H)}


def _weights() -> Any:
    return _C.Weights("gru", **_W)


def _C_backward(dy: np.ndarray) -> Any:
    w = _weights()
    return w.backward(w.forward(rnd(T, B, I), training=True)[3], dy)


C_CASES: list[tuple[str, Callable[[], Any]]] = [
    ("unknown-cell", lambda: _C.Weights("lstm2", **_W)),
    ("gate-count", lambda: _C.Weights("lstm", **_W)),
    ("dtype-mix", lambda: _C.Weights("gru", _W["w_ih"], _W["w_hh"].astype(np.float64))),
    ("bias-shape", lambda: _C.Weights("gru", _W["w_ih"], _W["w_hh"], rnd(5))),
    ("peephole-on-gru", lambda: _C.Weights("gru", **_W, peephole=rnd(3 * H))),
    ("x-wrong-I", lambda: _weights().forward(rnd(T, B, I + 1))),
    ("x-2d", lambda: _weights().forward(rnd(T, I))),
    ("x-dtype", lambda: _weights().forward(rnd(T, B, I, dtype=np.float64))),
    ("h0-shape", lambda: _weights().forward(rnd(T, B, I), rnd(B + 1, H))),
    ("lengths-zero", lambda: _weights().forward(rnd(T, B, I), lengths=np.array([1, 0, 2]))),
    ("lengths-too-long", lambda: _weights().forward(rnd(T, B, I), lengths=np.array([1, 6, 2]))),
    ("lengths-count", lambda: _weights().forward(rnd(T, B, I), lengths=np.array([1, 2]))),
    ("backward-None-ctx", lambda: _weights().backward(None, rnd(T, B, H))),
    ("backward-dy-shape", lambda: _C_backward(rnd(T, B + 1, H))),
    ("step-shape", lambda: _weights().step(rnd(B, I), rnd(B, H + 1))),
]


@pytest.mark.parametrize("call", [c[1] for c in C_CASES], ids=[c[0] for c in C_CASES])
def test_C_raises_instead_of_crashing(call: Callable[[], Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        call()


def test_C_with_non_contiguous_x_raises_or_is_right() -> None:
    x = rnd(T, B, 2 * I)[:, :, ::2]
    try:
        got = _weights().forward(x)[0]
    except (ValueError, TypeError):
        return
    np.testing.assert_array_equal(got, _weights().forward(np.ascontiguousarray(x))[0])


def test_unpickled_arrays_with_an_equal_dtype_object_are_accepted() -> None:
    """Unpickled arrays carry a dtype equal to, but not the same object as, np.float32's."""
    m = fastrnn.LSTM(I, H, seed=0)
    x = rnd(T, B, I)
    y = pickle.loads(pickle.dumps(x))
    assert y.dtype == x.dtype and y.dtype is not x.dtype
    want = m(x)[0]
    np.testing.assert_array_equal(m(y)[0], want)
    np.testing.assert_array_equal(
        m.backward(pickle.loads(pickle.dumps(want)))[0], m.backward(want)[0]
    )
    m2 = fastrnn.LSTM(I, H, seed=1)
    m2.load_state_dict(pickle.loads(pickle.dumps(m.state_dict())))
    np.testing.assert_array_equal(m2(y)[0], want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m))(y)[0], want)
    w = pickle.loads(pickle.dumps(_W))
    np.testing.assert_array_equal(
        fastrnn.gru_forward(y, None, **w)[0], fastrnn.gru_forward(x, None, **_W)[0]
    )
    np.testing.assert_array_equal(
        fastrnn.GRUCell(I, H, seed=0)(y[0]), fastrnn.GRUCell(I, H, seed=0)(x[0])
    )


def test_C_accepts_an_equal_dtype_object() -> None:
    y = pickle.loads(pickle.dumps(rnd(T, B, I)))
    np.testing.assert_array_equal(_weights().forward(y)[0], _weights().forward(rnd(T, B, I))[0])
