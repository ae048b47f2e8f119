"""fastrnn's layers, cells and functional forms against tests/reference.py.

This is where the cells torch lacks are checked (the reset-before GRU and the peephole LSTM),
over stacking, directions, layouts, lengths and initial states; the torch cells run through the
same table too. The reference runs in float64 on the very values the layer holds, so a float32
layer is held to a relative error of 1e-5 of each result's largest magnitude. Dropout between
layers, which no reference reproduces draw for draw, is checked by finite differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from layer_reference import stacked_backward, stacked_forward
from reference import backward as ref_backward
from reference import forward as ref_forward
from reference import step as ref_step

import fastrnn

# name -> (layer class, cell class, constructor kwargs, reference cell)
VARIANTS = {
    "rnn_tanh": (fastrnn.RNN, fastrnn.RNNCell, {"nonlinearity": "tanh"}, "rnn_tanh"),
    "rnn_relu": (fastrnn.RNN, fastrnn.RNNCell, {"nonlinearity": "relu"}, "rnn_relu"),
    "gru": (fastrnn.GRU, fastrnn.GRUCell, {}, "gru"),
    "gru_reset_before": (fastrnn.GRU, fastrnn.GRUCell, {"reset_after": False}, "gru_reset_before"),
    "lstm": (fastrnn.LSTM, fastrnn.LSTMCell, {}, "lstm"),
    "lstm_peephole": (fastrnn.LSTM, fastrnn.LSTMCell, {"peephole": True}, "lstm"),
}
NO_TORCH = ["gru_reset_before", "lstm_peephole"]
DTYPES = ["float32", "float64"]

CONFIGS: list[dict[str, Any]] = [
    {"id": "basic"},
    {"id": "h0-lengths", "h0": True, "lengths": True},
    {"id": "2layers-bidir-h0", "L": 2, "bidir": True, "h0": True},
    {"id": "2layers-bidir-lengths", "L": 2, "bidir": True, "lengths": True},
    {
        "id": "batch_first-bidir-lengths-h0",
        "batch_first": True,
        "bidir": True,
        "lengths": True,
        "h0": True,
    },
    {"id": "no-bias-2layers", "bias": False, "L": 2, "h0": True},
    {"id": "unbatched-bidir", "unbatched": True, "bidir": True, "h0": True},
    {"id": "grad-h_n-only", "grad_out": False, "lengths": True, "bidir": True},
    {"id": "wide", "T": 3, "B": 5, "I": 33, "H": 19, "bidir": True, "lengths": True, "h0": True},
]
DEFAULTS = {
    "T": 5, "B": 3, "I": 4, "H": 6, "L": 1, "bidir": False, "batch_first": False, "bias": True, "h0": False,
    "lengths": False, "unbatched": False, "grad_out": True,
}  # fmt: skip


def assert_close(name: str, got: Any, want: Any, dtype: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != reference {want.shape}"
    rtol = 1e-5 if dtype == "float32" else 1e-10
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-3)
    err = float(np.abs(got.astype(np.float64) - want).max(initial=0.0))
    assert err <= rtol * scale, f"{name}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["id"] for c in CONFIGS])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_layer_matches_reference(variant: str, cfg: dict[str, Any], dtype: str) -> None:
    cfg = {**DEFAULTS, **cfg}
    if cfg["unbatched"]:
        cfg["B"] = 1
    layer_cls, _, kw, cell = VARIANTS[variant]
    T, B, I, H, L = cfg["T"], cfg["B"], cfg["I"], cfg["H"], cfg["L"]
    D = 2 if cfg["bidir"] else 1
    lstm = cell == "lstm"
    m = layer_cls(
        I, H, num_layers=L, bias=cfg["bias"], batch_first=cfg["batch_first"],
        bidirectional=cfg["bidir"], dtype=dtype, seed=7, **kw,
    )  # fmt: skip
    rng = np.random.default_rng(8)
    r = lambda *shape: rng.standard_normal(shape).astype(dtype)
    x, d_out = r(T, B, I), (r(T, B, D * H) if cfg["grad_out"] else None)
    h0 = r(L * D, B, H) if cfg["h0"] else None
    c0 = r(L * D, B, H) if cfg["h0"] and lstm else None
    dh_n, dc_n = r(L * D, B, H), (r(L * D, B, H) if lstm else None)
    lengths = rng.integers(1, T + 1, size=B) if cfg["lengths"] else None

    # The reference: float64, time-major, batched.
    f64 = lambda a: None if a is None else a.astype(np.float64)
    params = {k: f64(v) for k, v in m.state_dict().items()}
    if "peephole" in kw:
        assert sum(k.startswith("peephole_l") for k in params) == L * D
    want_out, want_h, want_c, caches = stacked_forward(
        cell, params, f64(x), f64(h0), f64(c0), lengths, L, D
    )
    want_dx, want_dh0, want_dc0, want_grads = stacked_backward(
        cell, caches, f64(d_out), f64(dh_n), f64(dc_n), L, D, H
    )

    # The layer, in its own layout.
    def to_layout(a: np.ndarray | None, seq: bool) -> np.ndarray | None:
        if a is None:
            return None
        if cfg["unbatched"]:
            return a[:, 0]
        return a.transpose(1, 0, 2) if seq and cfg["batch_first"] else a

    hx: Any = (to_layout(h0, False), to_layout(c0, False)) if lstm else to_layout(h0, False)
    if lstm and h0 is None:
        hx = None
    out, hn = m(to_layout(x, True), hx, lengths=lengths)
    g_hn: Any = (to_layout(dh_n, False), to_layout(dc_n, False)) if lstm else to_layout(dh_n, False)
    dx, dhx = m.backward(to_layout(d_out, True), g_hn)
    (h_n, c_n), (dh0, dc0) = (hn, dhx) if lstm else ((hn, None), (dhx, None))

    assert out.dtype == np.dtype(dtype)
    assert_close("out", out, to_layout(want_out, True), dtype)
    assert_close("h_n", h_n, to_layout(want_h, False), dtype)
    assert_close("dx", dx, to_layout(want_dx, True), dtype)
    assert_close("dh0", dh0, to_layout(want_dh0, False), dtype)
    if lstm:
        assert_close("c_n", c_n, to_layout(want_c, False), dtype)
        assert_close("dc0", dc0, to_layout(want_dc0, False), dtype)
    grads = m.grads
    assert list(grads) == list(m.state_dict())
    assert set(grads) == set(want_grads)
    for name, g in want_grads.items():
        assert grads[name].shape == m.state_dict()[name].shape
        assert_close(f"grads[{name}]", grads[name], g, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cell_matches_reference(variant: str, dtype: str) -> None:
    _, cell_cls, kw, cell = VARIANTS[variant]
    c = cell_cls(4, 6, dtype=dtype, seed=3, **kw)
    p = {k: v.astype(np.float64) for k, v in c.state_dict().items()}
    w = {"w_ih": p["weight_ih"], "w_hh": p["weight_hh"], "b_ih": p["bias_ih"], "b_hh": p["bias_hh"],
             "peephole": p.get("peephole")}  # fmt: skip
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((3, 2, 4)).astype(dtype)
    state: Any = None
    h = np.zeros((2, 6))
    cc = np.zeros((2, 6)) if cell == "lstm" else None
    for x in xs:
        state = c(x, state)
        h, cc = ref_step(cell, x.astype(np.float64), h, cc, **w)
        if cell == "lstm":
            assert_close("h1", state[0], h, dtype)
            assert_close("c1", state[1], cc, dtype)
        else:
            assert_close("h1", state, h, dtype)
    # unbatched (I,) -> (H,)
    one = c(xs[0, 0])
    first = one[0] if cell == "lstm" else one
    assert first.shape == (6,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("variant", NO_TORCH + ["rnn_relu"])
def test_functional_matches_reference(variant: str, reverse: bool, dtype: str) -> None:
    _, _, kw, cell = VARIANTS[variant]
    T, B, I, H = 6, 4, 3, 5
    G = {"rnn_relu": 1, "gru_reset_before": 3, "lstm_peephole": 4}[variant]
    rng = np.random.default_rng(5)
    r = lambda *shape: (0.5 * rng.standard_normal(shape)).astype(dtype)
    x, h0, c0 = r(T, B, I), r(B, H), r(B, H)
    w = {"w_ih": r(G * H, I), "w_hh": r(G * H, H), "b_ih": r(G * H), "b_hh": r(G * H)}
    if variant == "lstm_peephole":
        w["peephole"] = r(3 * H)
    lengths = np.array([6, 1, 3, 5])
    dy, dh_n, dc_n = r(T, B, H), r(B, H), r(B, H)
    f64 = {k: v.astype(np.float64) for k, v in w.items()}
    lstm = cell == "lstm"
    want = ref_forward(cell, x.astype(np.float64), h0.astype(np.float64),
                       c0.astype(np.float64) if lstm else None, **f64, lengths=lengths,
                       reverse=reverse)  # fmt: skip
    want_b = ref_backward(cell, want[3], dy.astype(np.float64), dh_n.astype(np.float64),
                          dc_n.astype(np.float64) if lstm else None)  # fmt: skip
    if variant == "lstm_peephole":
        y, h_n, c_n, ctx = fastrnn.lstm_forward(
            x, h0, c0, w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"], peephole=w["peephole"],
            lengths=lengths, reverse=reverse, need_grad=True,
        )  # fmt: skip
        dx, dh0, dc0, grads = fastrnn.lstm_backward(ctx, dy, dh_n, dc_n)
        assert_close("c_n", c_n, want[2], dtype)
        assert_close("dc0", dc0, want_b[2], dtype)
    else:
        fwd, bwd = (
            (fastrnn.gru_forward, fastrnn.gru_backward)
            if variant == "gru_reset_before"
            else (fastrnn.rnn_forward, fastrnn.rnn_backward)
        )
        y, h_n, ctx = fwd(x, h0, **w, **kw, lengths=lengths, reverse=reverse, need_grad=True)
        dx, dh0, grads = bwd(ctx, dy, dh_n)
    assert_close("y", y, want[0], dtype)
    assert_close("h_n", h_n, want[1], dtype)
    assert_close("dx", dx, want_b[0], dtype)
    assert_close("dh0", dh0, want_b[1], dtype)
    assert set(grads) == set(w)
    for name, g in grads.items():
        assert_close(name, g, want_b[3][name], dtype)


@pytest.mark.parametrize("variant", ["gru_reset_before", "lstm_peephole", "rnn_tanh"])
def test_dropout_backward_matches_finite_differences(variant: str) -> None:
    """A layer built with one seed draws the same masks, so forward is a deterministic function of
    x; backward must be its derivative, mask included."""
    layer_cls, _, kw, _cell = VARIANTS[variant]

    def make() -> Any:
        return layer_cls(3, 4, num_layers=3, dropout=0.4, bidirectional=True, dtype="float64",
                         seed=11, **kw)  # fmt: skip

    rng = np.random.default_rng(12)
    x, v = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 3))
    d_out = rng.standard_normal((5, 2, 8))
    m = make()
    out = m(x)[0]
    dx = m.backward(d_out)[0]
    assert not np.array_equal(out, make().eval()(x)[0]), "dropout changed nothing in training"
    np.testing.assert_array_equal(out, make()(x)[0])  # same seed, same masks

    def f(x: np.ndarray) -> float:
        return float((make()(x)[0] * d_out).sum())

    eps = 1e-6
    fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    assert abs(fd - float((dx * v).sum())) <= 1e-6 * max(1.0, abs(fd))
