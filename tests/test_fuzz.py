"""Property-based fuzzing (hypothesis) of cells, shapes and options, in float64.

Each example draws a cell, sizes (T, B, I, H small, odd ones included), stacking, direction,
layout, bias, initial states and lengths, and compares a whole forward and backward with torch
(the cells torch has, when it is importable) or with the stacked NumPy reference
(tests/layer_reference.py) otherwise. A second property: a cell stepped T times equals a
one-layer sequence forward. FASTRNN_FUZZ_EXAMPLES sets the examples per property (default 40).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layer_reference import stacked_backward, stacked_forward

import fastrnn

try:
    import torch
except ImportError:  # the reference stands in for torch
    torch = None

# name -> (layer class, cell class, kwargs, reference cell, torch class name or None)
VARIANTS = {
    "rnn_tanh": (fastrnn.RNN, fastrnn.RNNCell, {"nonlinearity": "tanh"}, "rnn_tanh", "RNN"),
    "rnn_relu": (fastrnn.RNN, fastrnn.RNNCell, {"nonlinearity": "relu"}, "rnn_relu", "RNN"),
    "gru": (fastrnn.GRU, fastrnn.GRUCell, {}, "gru", "GRU"),
    "gru_reset_before": (
        fastrnn.GRU,
        fastrnn.GRUCell,
        {"reset_after": False},
        "gru_reset_before",
        None,
    ),
    "lstm": (fastrnn.LSTM, fastrnn.LSTMCell, {}, "lstm", "LSTM"),
    "lstm_peephole": (fastrnn.LSTM, fastrnn.LSTMCell, {"peephole": True}, "lstm", None),
}

FUZZ = settings(  # FASTRNN_FUZZ_EXAMPLES=2000 for a long run
    max_examples=int(os.environ.get("FASTRNN_FUZZ_EXAMPLES", "40")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def layer_cases(draw: Any) -> dict[str, Any]:
    c = {
        "variant": draw(st.sampled_from(sorted(VARIANTS))),
        "T": draw(st.integers(1, 6)),
        "B": draw(st.integers(1, 5)),
        "I": draw(st.integers(1, 9)),
        "H": draw(st.integers(1, 9)),
        "L": draw(st.integers(1, 2)),
        "bidir": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "h0": draw(st.booleans()),
        "grad_out": draw(st.booleans()),
        "grad_h_n": draw(st.booleans()),
        "unbatched": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }
    if c["unbatched"]:
        c["B"] = 1
    c["lengths"] = None
    if not c["unbatched"] and draw(st.booleans()):
        c["lengths"] = draw(st.lists(st.integers(1, c["T"]), min_size=c["B"], max_size=c["B"]))
    return c


def _close(name: str, got: Any, want: Any) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: {got.shape} != {want.shape}"
    scale = max(float(np.abs(want).max(initial=0.0)), 1.0)
    err = float(np.abs(got - want).max(initial=0.0))
    assert err <= 1e-9 * scale, f"{name}: max abs error {err:.3g}"


def _run_torch(c: dict[str, Any], sd: dict[str, np.ndarray], d: dict[str, Any]) -> dict[str, Any]:
    from test_layers_torch import run_torch  # torch is importable here

    _, _, kw, cell, torch_name = VARIANTS[c["variant"]]
    tm = getattr(torch.nn, torch_name)(
        c["I"], c["H"], num_layers=c["L"], bias=c["bias"], bidirectional=c["bidir"], **kw
    ).double()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    lengths = None if c["lengths"] is None else np.asarray(c["lengths"])
    return run_torch(tm, cell, {"batch_first": False, "T": c["T"]}, {**d, "lengths": lengths})


def _run_reference(
    c: dict[str, Any], sd: dict[str, np.ndarray], d: dict[str, Any]
) -> dict[str, Any]:
    cell, D = VARIANTS[c["variant"]][3], 2 if c["bidir"] else 1
    lengths = None if c["lengths"] is None else np.array(c["lengths"])
    out, h_n, c_n, caches = stacked_forward(cell, sd, d["x"], d["h0"], d["c0"], lengths, c["L"], D)
    dx, dh0, dc0, grads = stacked_backward(
        cell, caches, d["d_out"], d["dh_n"], d["dc_n"], c["L"], D, c["H"]
    )
    return {"out": out, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0, "grads": grads}


@FUZZ
@given(layer_cases())
def test_layer_matches_torch_or_reference(c: dict[str, Any]) -> None:
    layer_cls, _, kw, cell, torch_name = VARIANTS[c["variant"]]
    lstm = cell == "lstm"
    T, B, I, H, L = c["T"], c["B"], c["I"], c["H"], c["L"]
    D = 2 if c["bidir"] else 1
    m = layer_cls(I, H, num_layers=L, bias=c["bias"], batch_first=c["batch_first"],
                  bidirectional=c["bidir"], dtype="float64", seed=c["seed"], **kw)  # fmt: skip
    rng = np.random.default_rng(c["seed"])
    r = lambda *s: rng.standard_normal(s)
    d = {  # time-major and batched; converted to the layer's layout below
        "x": r(T, B, I),
        "h0": r(L * D, B, H) if c["h0"] else None,
        "c0": r(L * D, B, H) if c["h0"] and lstm else None,
        "d_out": r(T, B, D * H) if c["grad_out"] else None,
        "dh_n": r(L * D, B, H) if c["grad_h_n"] else None,
        "dc_n": r(L * D, B, H) if c["grad_h_n"] and lstm else None,
    }
    sd = m.state_dict()
    want = (_run_torch if torch is not None and torch_name else _run_reference)(c, sd, d)

    def lay(a: Any, seq: bool) -> Any:
        if a is None:
            return None
        if c["unbatched"]:
            return a[:, 0]
        return a.transpose(1, 0, 2) if seq and c["batch_first"] else a

    def unlay(a: Any, seq: bool) -> Any:  # back to time-major, batched
        if c["unbatched"]:
            return a[:, None]
        return a.transpose(1, 0, 2) if seq and c["batch_first"] else a

    if lstm:
        hx = None if d["h0"] is None else (lay(d["h0"], False), lay(d["c0"], False))
        out, (h_n, c_n) = m(lay(d["x"], True), hx, lengths=c["lengths"])
        dh = None if d["dh_n"] is None else (lay(d["dh_n"], False), lay(d["dc_n"], False))
        dx, (dh0, dc0) = m.backward(lay(d["d_out"], True), dh)
        _close("c_n", unlay(c_n, False), want["c_n"])
        if d["c0"] is not None:
            _close("dc0", unlay(dc0, False), want["dc0"])
    else:
        out, h_n = m(lay(d["x"], True), lay(d["h0"], False), lengths=c["lengths"])
        dx, dh0 = m.backward(lay(d["d_out"], True), lay(d["dh_n"], False))
    _close("out", unlay(out, True), want["out"])
    _close("h_n", unlay(h_n, False), want["h_n"])
    _close("dx", unlay(dx, True), want["dx"])
    if d["h0"] is not None:
        _close("dh0", unlay(dh0, False), want["dh0"])
    grads = m.grads
    assert set(grads) == set(sd)
    for name, g in want["grads"].items():
        _close(f"grads[{name}]", grads[name], g)


@FUZZ
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    T=st.integers(1, 5),
    B=st.integers(1, 4),
    I=st.integers(1, 9),
    H=st.integers(1, 9),
    bias=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_cell_steps_equal_a_layer_forward(
    variant: str, T: int, B: int, I: int, H: int, bias: bool, dtype: str, seed: int
) -> None:
    layer_cls, cell_cls, kw, cell, _ = VARIANTS[variant]
    m = layer_cls(I, H, bias=bias, dtype=dtype, seed=seed, **kw)
    step = cell_cls(I, H, bias=bias, dtype=dtype, **kw)
    step.load_state_dict({k[: -len("_l0")]: v for k, v in m.state_dict().items()})
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    out, hn = m.eval()(x)
    state: Any = None
    for t in range(T):
        state = step(x[t], state)
        h = state[0] if cell == "lstm" else state
        rtol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(h, out[t], rtol=rtol, atol=rtol)
    if cell == "lstm":
        np.testing.assert_allclose(state[1], hn[1][0], rtol=rtol, atol=rtol)
