"""The Python API's contract beyond the numbers: names, shapes, copies, modes, layouts, aliases.

The numbers themselves are checked in test_layers_torch.py and test_layers_reference.py; bad
input in test_bad_input.py. Nothing here needs torch.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

import fastrnn

T, B, I, H = 5, 3, 4, 6


def rnd(*shape: int, dtype: Any = np.float32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_module_functions() -> None:
    assert fastrnn.__version__ == "0.1.0"
    b = fastrnn.backends()
    assert b["active"] in b["compiled"]
    before = fastrnn.get_num_threads()
    try:
        fastrnn.set_num_threads(1)
        assert fastrnn.get_num_threads() == 1
        fastrnn.set_num_threads(np.int64(2))
        assert fastrnn.get_num_threads() == 2
    finally:
        fastrnn.set_num_threads(before)


# (constructor, expected state_dict names and shapes)
NAMES = [
    (lambda: fastrnn.RNN(I, H), {"weight_ih_l0": (H, I), "weight_hh_l0": (H, H),
                                 "bias_ih_l0": (H,), "bias_hh_l0": (H,)}),
    (lambda: fastrnn.GRU(I, H, bias=False, num_layers=2),
     {"weight_ih_l0": (3 * H, I), "weight_hh_l0": (3 * H, H),
      "weight_ih_l1": (3 * H, H), "weight_hh_l1": (3 * H, H)}),
    (lambda: fastrnn.LSTM(I, H, num_layers=2, bidirectional=True),
     {f"{w}_l{k}{s}": shape
      for k in range(2) for s in ("", "_reverse")
      for w, shape in [("weight_ih", (4 * H, I if k == 0 else 2 * H)), ("weight_hh", (4 * H, H)),
                       ("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))]}),
    (lambda: fastrnn.LSTM(I, H, bidirectional=True, peephole=True),
     {f"{w}_l0{s}": shape
      for s in ("", "_reverse")
      for w, shape in [("weight_ih", (4 * H, I)), ("weight_hh", (4 * H, H)),
                       ("bias_ih", (4 * H,)), ("bias_hh", (4 * H,)), ("peephole", (3 * H,))]}),
    (lambda: fastrnn.GRUCell(I, H), {"weight_ih": (3 * H, I), "weight_hh": (3 * H, H),
                                     "bias_ih": (3 * H,), "bias_hh": (3 * H,)}),
    (lambda: fastrnn.LSTMCell(I, H, bias=False, peephole=True),
     {"weight_ih": (4 * H, I), "weight_hh": (4 * H, H), "peephole": (3 * H,)}),
]  # fmt: skip


@pytest.mark.parametrize("make, names", NAMES)
def test_state_dict_names_shapes_and_torch_order(make: Any, names: dict) -> None:
    sd = make().state_dict()
    assert {k: v.shape for k, v in sd.items()} == names
    # torch's order: layer by layer, forward direction before reverse, w_ih, w_hh, b_ih, b_hh.
    assert list(sd) == list(names)


def test_init_is_seeded_uniform_and_dtype_independent() -> None:
    a = fastrnn.LSTM(I, H, num_layers=2, peephole=True, seed=1).state_dict()
    b = fastrnn.LSTM(I, H, num_layers=2, peephole=True, seed=1, dtype="float64").state_dict()
    c = fastrnn.LSTM(I, H, num_layers=2, peephole=True, seed=2).state_dict()
    bound = 1 / np.sqrt(H)
    for k in a:
        assert a[k].dtype == np.float32 and b[k].dtype == np.float64
        np.testing.assert_array_equal(a[k], b[k].astype(np.float32))
        assert not np.array_equal(a[k], c[k])
        assert np.abs(b[k]).max() <= bound and np.abs(b[k]).max() > 0.5 * bound


def test_state_dict_and_load_state_dict_copy() -> None:
    m = fastrnn.GRU(I, H, seed=0)
    x = rnd(T, B, I)
    out = m(x)[0]
    sd = m.state_dict()
    sd["weight_hh_l0"][:] = 0  # a copy: the layer is unchanged
    np.testing.assert_array_equal(m(x)[0], out)
    m.load_state_dict(sd)  # now it changes...
    changed = m(x)[0]
    assert not np.array_equal(changed, out)
    sd["weight_hh_l0"][:] = 1  # ...and loading copied too
    np.testing.assert_array_equal(m(x)[0], changed)


def test_load_state_dict_casts_to_the_layer_dtype() -> None:
    m64 = fastrnn.LSTM(I, H, seed=0, dtype="float64")
    m32 = fastrnn.LSTM(I, H, seed=1)
    m32.load_state_dict(m64.state_dict())
    assert all(v.dtype == np.float32 for v in m32.state_dict().values())
    x = rnd(T, B, I, dtype=np.float64)
    np.testing.assert_allclose(m32(x.astype(np.float32))[0], m64(x)[0], atol=1e-5)
    ints = {k: np.ones(v.shape, np.int32) for k, v in m32.state_dict().items()}
    m32.load_state_dict(ints)
    assert all((v == 1).all() for v in m32.state_dict().values())


def test_load_state_dict_strict_false_reports_what_it_skipped() -> None:
    m = fastrnn.GRU(I, H, seed=0)
    before = m.state_dict()
    res = m.load_state_dict({"bias_ih_l0": np.zeros(3 * H), "junk": np.zeros(1)}, strict=False)
    assert res.unexpected_keys == ["junk"]
    assert set(res.missing_keys) == set(before) - {"bias_ih_l0"}
    after = m.state_dict()
    assert not after["bias_ih_l0"].any()
    np.testing.assert_array_equal(after["weight_ih_l0"], before["weight_ih_l0"])


@pytest.mark.parametrize("cls", [fastrnn.RNN, fastrnn.GRU, fastrnn.LSTM])
def test_grads_have_the_state_dict_names_and_shapes(cls: type) -> None:
    m = cls(I, H, num_layers=2, bidirectional=True, bias=False, seed=0)
    assert m.grads == {}
    out = m(rnd(T, B, I))[0]
    m.backward(np.ones_like(out))
    sd = m.state_dict()
    assert list(m.grads) == list(sd)
    assert all(m.grads[k].shape == v.shape and m.grads[k].dtype == v.dtype for k, v in sd.items())


@pytest.mark.parametrize("cls", [fastrnn.RNN, fastrnn.GRU, fastrnn.LSTM])
def test_layouts_batch_first_and_unbatched(cls: type) -> None:
    lstm = cls is fastrnn.LSTM
    m = cls(I, H, num_layers=2, bidirectional=True, seed=0)
    mb = cls(I, H, num_layers=2, bidirectional=True, batch_first=True, seed=0)
    x, h0, d_out = rnd(T, B, I), rnd(4, B, H, seed=1), rnd(T, B, 2 * H, seed=2)
    hx = (h0, h0) if lstm else h0
    out, hn = m(x, hx)
    dx, dhx = m.backward(d_out)
    out_b, hn_b = mb(x.transpose(1, 0, 2), hx)
    dx_b, dhx_b = mb.backward(d_out.transpose(1, 0, 2))
    assert out_b.shape == (B, T, 2 * H) and dx_b.shape == (B, T, I)
    np.testing.assert_array_equal(out_b, out.transpose(1, 0, 2))
    np.testing.assert_array_equal(dx_b, dx.transpose(1, 0, 2))
    states = [*hn, *dhx] if lstm else [hn, dhx]
    states_b = [*hn_b, *dhx_b] if lstm else [hn_b, dhx_b]
    for a, b in zip(states, states_b):
        assert a.shape == (4, B, H)  # states are never batch-first
        np.testing.assert_array_equal(a, b)
    # Unbatched (T, I) is batch B=1 without the axis, whatever batch_first says.
    for layer in (m, mb):
        o1, hn1 = layer(x[:, 1], (h0[:, 1], h0[:, 1]) if lstm else h0[:, 1])
        d1 = layer.backward(d_out[:, 1])
        assert o1.shape == (T, 2 * H) and d1[0].shape == (T, I)
        np.testing.assert_array_equal(o1, out[:, 1])
        np.testing.assert_array_equal(hn1[0] if lstm else hn1, (hn[0] if lstm else hn)[:, 1])


def test_keyword_aliases_for_initial_states() -> None:
    x, h0, c0 = rnd(T, B, I), rnd(1, B, H, seed=1), rnd(1, B, H, seed=2)
    g = fastrnn.GRU(I, H, seed=0)
    np.testing.assert_array_equal(g(x, h0=h0)[0], g(x, h0)[0])
    m = fastrnn.LSTM(I, H, seed=0)
    want = m(x, (h0, c0))[0]
    np.testing.assert_array_equal(m(x, h0=h0, c0=c0)[0], want)
    np.testing.assert_array_equal(m(x, h0=(h0, c0))[0], want)
    np.testing.assert_array_equal(m(x, [h0, c0])[0], want)
    assert not np.array_equal(m(x, (h0, None))[0], want)
    with pytest.raises(TypeError):
        m(x, (h0, c0), h0=h0)


def test_lengths_accept_any_integer_sequence() -> None:
    m = fastrnn.RNN(I, H, seed=0)
    x = rnd(T, B, I)
    want = m(x, lengths=np.array([5, 2, 3]))[0]
    for lengths in (
        [5, 2, 3],
        (5, 2, 3),
        np.array([5, 2, 3], np.int32),
        np.array([5, 2, 3], np.uint8),
    ):
        np.testing.assert_array_equal(m(x, lengths=lengths)[0], want)
    assert not want[2:, 1].any() and want[:2, 1].all()
    np.testing.assert_array_equal(m(x[:, 0], lengths=3)[0], m(x[:, 0:1], lengths=[3])[0][:, 0])


def test_train_eval_modes() -> None:
    m = fastrnn.LSTM(I, H, num_layers=2, seed=0)
    assert m.training
    assert m.eval() is m and not m.training
    x = rnd(T, B, I)
    out_eval = m(x)[0]
    with pytest.raises(RuntimeError, match="eval"):
        m.backward(out_eval)
    m.train()
    np.testing.assert_array_equal(m(x)[0], out_eval)
    m.backward(out_eval)  # fine after a training forward


def test_dropout_only_in_training_and_warns_with_one_layer() -> None:
    with pytest.warns(UserWarning, match="dropout"):
        fastrnn.GRU(I, H, dropout=0.5)
    m = fastrnn.GRU(I, H, num_layers=2, dropout=0.5, seed=0)
    x = rnd(T, B, I)
    a, b = m(x)[0], m(x)[0]
    assert not np.array_equal(a, b)  # a new mask each forward
    m.eval()
    np.testing.assert_array_equal(m(x)[0], m(x)[0])


def test_repr() -> None:
    assert repr(fastrnn.LSTM(4, 6)) == "LSTM(4, 6)"
    r = repr(
        fastrnn.GRU(4, 6, num_layers=2, bidirectional=True, reset_after=False, dtype="float64")
    )
    assert r == "GRU(4, 6, num_layers=2, bidirectional=True, reset_after=False, dtype='float64')"
    assert repr(fastrnn.RNNCell(4, 6, bias=False)) == "RNNCell(4, 6, bias=False)"


@pytest.mark.parametrize("dtype", ["float32", np.float64, None])
def test_dtype_spellings(dtype: Any) -> None:
    m = fastrnn.RNN(I, H, dtype=dtype)
    assert m.dtype == (np.float32 if dtype is None else np.dtype(dtype))


def test_functional_context_and_grads() -> None:
    x, w_ih, w_hh = rnd(T, B, I), rnd(3 * H, I, seed=1), rnd(3 * H, H, seed=2)
    y, h_n, ctx = fastrnn.gru_forward(x, None, w_ih, w_hh)
    assert ctx is None and y.shape == (T, B, H) and h_n.shape == (B, H)
    y, h_n, ctx = fastrnn.gru_forward(x, None, w_ih, w_hh, need_grad=True)
    assert "gru" in repr(ctx)
    first = fastrnn.gru_backward(ctx, np.ones_like(y))
    again = fastrnn.gru_backward(ctx, np.ones_like(y))  # a context may be reused
    np.testing.assert_array_equal(first[0], again[0])
    assert set(first[2]) == {"w_ih", "w_hh"}  # no biases were given
    h1 = fastrnn.gru_cell(x[0], None, w_ih, w_hh)
    np.testing.assert_allclose(h1, y[0], rtol=1e-6, atol=1e-6)
    h1u = fastrnn.gru_cell(x[0, 0], None, w_ih, w_hh)
    np.testing.assert_allclose(h1u, y[0, 0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make", [lambda: fastrnn.LSTM(I, H, num_layers=2, peephole=True), lambda: fastrnn.GRUCell(I, H)]
)
def test_pickle_and_deepcopy(make: Any) -> None:
    m = make()
    x = rnd(T, B, I) if hasattr(m, "num_layers") else rnd(B, I)
    want = m(x)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        got = clone(x)
        for g, w in zip(
            got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]
        ):
            np.testing.assert_array_equal(
                np.asarray(g[0] if isinstance(g, tuple) else g),
                np.asarray(w[0] if isinstance(w, tuple) else w),
            )
