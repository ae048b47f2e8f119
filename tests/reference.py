"""Plain NumPy reference for the fastrnn cells: forward, backward and one step.

This file is written to be read, not to be fast. It loops over time, does one matrix
product per step, and spells every formula out. Each backward line has a comment that
quotes the forward line it differentiates. Tests check it against float64 finite
differences and, when torch can be imported, against torch.nn.RNN/GRU/LSTM. The compiled
module is then tested against this file.

It is not part of the installed package, and it checks its inputs only as much as its
tests need.

Conventions (see csrc/fastrnn.h and docs/architecture.md). Dimension letters: T steps, B batch,
I input, H hidden, G gates (1 RNN, 3 GRU, 4 LSTM). Weights and gate orders follow PyTorch:
w_ih [G*H, I], w_hh [G*H, H], b_ih [G*H], b_hh [G*H]; GRU gates (r, z, n), LSTM gates
(i, f, g, o). The LSTM peephole is [3*H] in order (i, f, o): i and f see c_{t-1}, and o
sees c_t.

Cells:
    rnn_tanh, rnn_relu  h' = act(W_ih x + b_ih + W_hh h + b_hh)
    gru                 reset-after (PyTorch, cuDNN):  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    gru_reset_before    original (Keras reset_after=False, ONNX linear_before_reset=0):
                        n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
    lstm                PyTorch's LSTM, with optional peepholes

Variable lengths: sequence b runs only for steps 0..lengths[b]-1. With reverse=True it
runs them from lengths[b]-1 down to 0. After its last step its state stops changing, so
h_n[b] is the state after that step. y is zero at t >= lengths[b].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastrnn._cells import CELL_NAMES as CELLS
from fastrnn._cells import GATES

Array = np.ndarray
Params = dict[str, Array]  # w_ih, w_hh, b_ih, b_hh, peephole (zeros stand in for absent ones)
StepCache = dict[str, Array]


def _sigmoid(a: Array) -> Array:
    # Same as 1 / (1 + exp(-a)). This form cannot overflow, and it keeps the dtype of a.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


# ----------------------------------------------------------------------------------------
# rnn_tanh, rnn_relu


def _rnn_cell_forward(
    cell: str, p: Params, x: Array, h: Array, c: Array | None
) -> tuple[Array, Array | None, StepCache]:
    # x [B, I], h [B, H]
    a = x @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]  # [B, H]
    h1 = np.tanh(a) if cell == "rnn_tanh" else np.maximum(a, 0)  # [B, H]
    return h1, None, {"x": x, "h": h, "a": a, "h1": h1}


def _rnn_cell_backward(
    cell: str, p: Params, s: StepCache, dh1: Array, dc1: Array | None
) -> tuple[Array, Array, Array | None, dict[str, Array]]:
    # h1 = tanh(a)  or  h1 = max(a, 0)
    if cell == "rnn_tanh":
        da = dh1 * (1 - s["h1"] ** 2)  # [B, H]
    else:
        da = dh1 * (s["a"] > 0)
    # a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    dx = da @ p["w_ih"]  # [B, I]
    dh = da @ p["w_hh"]  # [B, H]
    grads = {
        "w_ih": da.T @ s["x"],
        "w_hh": da.T @ s["h"],
        "b_ih": da.sum(axis=0),
        "b_hh": da.sum(axis=0),
    }
    return dx, dh, None, grads


# ----------------------------------------------------------------------------------------
# gru (reset-after, PyTorch and cuDNN)


def _gru_cell_forward(
    cell: str, p: Params, x: Array, h: Array, c: Array | None
) -> tuple[Array, Array | None, StepCache]:
    # x [B, I], h [B, H]
    ai_r, ai_z, ai_n = np.split(x @ p["w_ih"].T + p["b_ih"], 3, axis=1)  # 3 x [B, H]
    ah_r, ah_z, ah_n = np.split(h @ p["w_hh"].T + p["b_hh"], 3, axis=1)  # 3 x [B, H]
    r = _sigmoid(ai_r + ah_r)
    z = _sigmoid(ai_z + ah_z)
    n = np.tanh(ai_n + r * ah_n)
    h1 = (1 - z) * n + z * h
    return h1, None, {"x": x, "h": h, "ah_n": ah_n, "r": r, "z": z, "n": n}


def _gru_cell_backward(
    cell: str, p: Params, s: StepCache, dh1: Array, dc1: Array | None
) -> tuple[Array, Array, Array | None, dict[str, Array]]:
    r, z, n, h = s["r"], s["z"], s["n"], s["h"]
    # h1 = (1 - z) * n + z * h
    dn = dh1 * (1 - z)
    dz = dh1 * (h - n)
    dh = dh1 * z
    # n = tanh(ai_n + r * ah_n)
    dai_n = dn * (1 - n**2)
    dr = dai_n * s["ah_n"]
    dah_n = dai_n * r
    # z = sigmoid(ai_z + ah_z)
    da_z = dz * z * (1 - z)
    # r = sigmoid(ai_r + ah_r)
    da_r = dr * r * (1 - r)
    dai = np.concatenate([da_r, da_z, dai_n], axis=1)  # [B, 3H]
    dah = np.concatenate([da_r, da_z, dah_n], axis=1)  # [B, 3H]
    # ai = x @ w_ih.T + b_ih,  ah = h @ w_hh.T + b_hh
    dx = dai @ p["w_ih"]  # [B, I]
    dh = dh + dah @ p["w_hh"]  # [B, H]
    grads = {
        "w_ih": dai.T @ s["x"],
        "w_hh": dah.T @ h,
        "b_ih": dai.sum(axis=0),
        "b_hh": dah.sum(axis=0),
    }
    return dx, dh, None, grads


# ----------------------------------------------------------------------------------------
# gru_reset_before (original GRU, Keras reset_after=False, ONNX linear_before_reset=0)


def _gru_reset_before_cell_forward(
    cell: str, p: Params, x: Array, h: Array, c: Array | None
) -> tuple[Array, Array | None, StepCache]:
    # x [B, I], h [B, H]
    H = h.shape[1]
    w_hrz, w_hn = p["w_hh"][: 2 * H], p["w_hh"][2 * H :]  # [2H, H], [H, H]
    b_hrz, b_hn = p["b_hh"][: 2 * H], p["b_hh"][2 * H :]  # [2H], [H]
    ai_r, ai_z, ai_n = np.split(x @ p["w_ih"].T + p["b_ih"], 3, axis=1)  # 3 x [B, H]
    ah_r, ah_z = np.split(h @ w_hrz.T + b_hrz, 2, axis=1)  # 2 x [B, H]
    r = _sigmoid(ai_r + ah_r)
    z = _sigmoid(ai_z + ah_z)
    rh = r * h
    ah_n = rh @ w_hn.T + b_hn
    n = np.tanh(ai_n + ah_n)
    h1 = (1 - z) * n + z * h
    return h1, None, {"x": x, "h": h, "rh": rh, "r": r, "z": z, "n": n}


def _gru_reset_before_cell_backward(
    cell: str, p: Params, s: StepCache, dh1: Array, dc1: Array | None
) -> tuple[Array, Array, Array | None, dict[str, Array]]:
    r, z, n, h = s["r"], s["z"], s["n"], s["h"]
    H = h.shape[1]
    w_hrz, w_hn = p["w_hh"][: 2 * H], p["w_hh"][2 * H :]
    # h1 = (1 - z) * n + z * h
    dn = dh1 * (1 - z)
    dz = dh1 * (h - n)
    dh = dh1 * z
    # n = tanh(ai_n + ah_n)
    da_n = dn * (1 - n**2)  # gradient of both ai_n and ah_n
    # ah_n = rh @ w_hn.T + b_hn
    drh = da_n @ w_hn
    # rh = r * h
    dr = drh * h
    dh = dh + drh * r
    # z = sigmoid(ai_z + ah_z)
    da_z = dz * z * (1 - z)
    # r = sigmoid(ai_r + ah_r)
    da_r = dr * r * (1 - r)
    da_rz = np.concatenate([da_r, da_z], axis=1)  # [B, 2H]
    dai = np.concatenate([da_r, da_z, da_n], axis=1)  # [B, 3H]
    # ai = x @ w_ih.T + b_ih,  (ah_r, ah_z) = h @ w_hrz.T + b_hrz
    dx = dai @ p["w_ih"]  # [B, I]
    dh = dh + da_rz @ w_hrz  # [B, H]
    grads = {
        "w_ih": dai.T @ s["x"],
        "w_hh": np.concatenate([da_rz.T @ h, da_n.T @ s["rh"]], axis=0),
        "b_ih": dai.sum(axis=0),
        "b_hh": dai.sum(axis=0),
    }
    return dx, dh, None, grads


# ----------------------------------------------------------------------------------------
# lstm (PyTorch's, plus optional peepholes; a zero peephole is no peephole)


def _lstm_cell_forward(
    cell: str, p: Params, x: Array, h: Array, c: Array | None
) -> tuple[Array, Array | None, StepCache]:
    # x [B, I], h [B, H], c [B, H]
    assert c is not None
    a = x @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]  # [B, 4H]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # 4 x [B, H]
    p_i, p_f, p_o = np.split(p["peephole"], 3)  # 3 x [H]
    i = _sigmoid(a_i + p_i * c)
    f = _sigmoid(a_f + p_f * c)
    g = np.tanh(a_g)
    c1 = f * c + i * g
    o = _sigmoid(a_o + p_o * c1)
    tanh_c1 = np.tanh(c1)
    h1 = o * tanh_c1
    cache = {"x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o, "c1": c1, "tanh_c1": tanh_c1}
    return h1, c1, cache


def _lstm_cell_backward(
    cell: str, p: Params, s: StepCache, dh1: Array, dc1: Array | None
) -> tuple[Array, Array, Array | None, dict[str, Array]]:
    assert dc1 is not None
    i, f, g, o, c, c1, tanh_c1 = s["i"], s["f"], s["g"], s["o"], s["c"], s["c1"], s["tanh_c1"]
    p_i, p_f, p_o = np.split(p["peephole"], 3)
    # h1 = o * tanh_c1
    do = dh1 * tanh_c1
    dc1 = dc1 + dh1 * o * (1 - tanh_c1**2)
    # o = sigmoid(a_o + p_o * c1)
    da_o = do * o * (1 - o)
    dc1 = dc1 + da_o * p_o
    # c1 = f * c + i * g
    df = dc1 * c
    di = dc1 * g
    dg = dc1 * i
    dc = dc1 * f
    # g = tanh(a_g)
    da_g = dg * (1 - g**2)
    # f = sigmoid(a_f + p_f * c)
    da_f = df * f * (1 - f)
    dc = dc + da_f * p_f
    # i = sigmoid(a_i + p_i * c)
    da_i = di * i * (1 - i)
    dc = dc + da_i * p_i
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # [B, 4H]
    # a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    dx = da @ p["w_ih"]  # [B, I]
    dh = da @ p["w_hh"]  # [B, H]
    grads = {
        "w_ih": da.T @ s["x"],
        "w_hh": da.T @ s["h"],
        "b_ih": da.sum(axis=0),
        "b_hh": da.sum(axis=0),
        "peephole": np.concatenate(
            [(da_i * c).sum(axis=0), (da_f * c).sum(axis=0), (da_o * c1).sum(axis=0)]
        ),
    }
    return dx, dh, dc, grads


_CELL_FORWARD = {
    "rnn_tanh": _rnn_cell_forward,
    "rnn_relu": _rnn_cell_forward,
    "gru": _gru_cell_forward,
    "gru_reset_before": _gru_reset_before_cell_forward,
    "lstm": _lstm_cell_forward,
}
_CELL_BACKWARD = {
    "rnn_tanh": _rnn_cell_backward,
    "rnn_relu": _rnn_cell_backward,
    "gru": _gru_cell_backward,
    "gru_reset_before": _gru_reset_before_cell_backward,
    "lstm": _lstm_cell_backward,
}


# ----------------------------------------------------------------------------------------
# public API


def _params(
    cell: str,
    dtype: np.dtype,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None,
    b_hh: Array | None,
    peephole: Array | None,
) -> Params:
    """Cast everything to dtype. Zeros stand in for missing biases and peepholes."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    if peephole is not None and cell != "lstm":
        raise ValueError(f"peephole is for lstm only, got cell {cell!r}")
    G, H = GATES[cell], w_hh.shape[1]
    if w_ih.shape[0] != G * H or w_hh.shape != (G * H, H):
        raise ValueError(f"{cell}: w_ih must be [{G}*H, I] and w_hh [{G}*H, H] with H = {H}")
    zeros = np.zeros(G * H, dtype)
    p = {
        "w_ih": np.asarray(w_ih, dtype),
        "w_hh": np.asarray(w_hh, dtype),
        "b_ih": zeros if b_ih is None else np.asarray(b_ih, dtype),
        "b_hh": zeros if b_hh is None else np.asarray(b_hh, dtype),
    }
    if cell == "lstm":
        p["peephole"] = np.zeros(3 * H, dtype) if peephole is None else np.asarray(peephole, dtype)
    return p


def step(
    cell: str,
    x: Array,
    h: Array,
    c: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    peephole: Array | None = None,
) -> tuple[Array, Array | None]:
    """One step of the cell.

    Parameters
    ----------
    x : [B, I]
    h : [B, H]
    c : [B, H] for lstm (None means zeros); None for the other cells.
    w_ih : [G*H, I]
    w_hh : [G*H, H]
    b_ih, b_hh : [G*H] or None (zeros)
    peephole : [3*H] in order (i, f, o), lstm only, or None

    Returns
    -------
    h1 : [B, H]
    c1 : [B, H] for lstm, else None
    """
    dtype = np.asarray(x).dtype
    p = _params(cell, dtype, w_ih, w_hh, b_ih, b_hh, peephole)
    x, h = np.asarray(x, dtype), np.asarray(h, dtype)
    if cell == "lstm":
        c = np.zeros_like(h) if c is None else np.asarray(c, dtype)
    elif c is not None:
        raise ValueError(f"c is for lstm only, got cell {cell!r}")
    h1, c1, _ = _CELL_FORWARD[cell](cell, p, x, h, c)
    return h1, c1


def forward(
    cell: str,
    x: Array,
    h0: Array | None,
    c0: Array | None,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    peephole: Array | None = None,
    lengths: Array | None = None,
    reverse: bool = False,
) -> tuple[Array, Array, Array | None, dict[str, Any]]:
    """Run the cell over a batch of sequences. Computes in the dtype of x.

    Parameters
    ----------
    x : [T, B, I]
    h0 : [B, H] or None (zeros)
    c0 : [B, H] or None (zeros); lstm only
    w_ih : [G*H, I]
    w_hh : [G*H, H]
    b_ih, b_hh : [G*H] or None (zeros)
    peephole : [3*H] in order (i, f, o), lstm only, or None
    lengths : [B] ints in [1, T], or None (all T)
    reverse : if True, sequence b goes from step lengths[b]-1 down to 0

    Returns
    -------
    y : [T, B, H], zero at t >= lengths[b]
    h_n : [B, H], each sequence's state after its own last step
    c_n : [B, H] for lstm, else None
    cache : what `backward` needs
    """
    x = np.asarray(x)
    dtype = x.dtype
    T, B, _ = x.shape
    p = _params(cell, dtype, w_ih, w_hh, b_ih, b_hh, peephole)
    H = p["w_hh"].shape[1]
    if lengths is None:
        lengths = np.full(B, T, np.int64)
    lengths = np.asarray(lengths, np.int64)
    if lengths.shape != (B,) or lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must be [B={B}] ints in [1, T={T}], got {lengths}")
    h = np.zeros((B, H), dtype) if h0 is None else np.asarray(h0, dtype)
    if cell == "lstm":
        c = np.zeros((B, H), dtype) if c0 is None else np.asarray(c0, dtype)
    elif c0 is not None:
        raise ValueError(f"c0 is for lstm only, got cell {cell!r}")
    else:
        c = None

    batch = np.arange(B)
    y = np.zeros((T, B, H), dtype)
    steps = []
    for s in range(T):
        # Step s of sequence b reads time index t[b]. A sequence that has ended stops at its
        # last state; its t[b] = 0 is a dummy read and its results are thrown away.
        active = s < lengths  # [B]
        t = np.where(active, lengths - 1 - s if reverse else s, 0)  # [B]
        h1, c1, step_cache = _CELL_FORWARD[cell](cell, p, x[t, batch], h, c)
        keep = active[:, None]  # [B, 1]
        h = np.where(keep, h1, h)
        if c is not None:
            c = np.where(keep, c1, c)
        y[t[active], batch[active]] = h[active]
        steps.append((t, active, step_cache))

    cache = {
        "cell": cell,
        "params": p,
        "shape": (T, B, x.shape[2], H),
        "dtype": dtype,
        "steps": steps,
        "has_bias": (b_ih is not None, b_hh is not None),
        "has_peephole": peephole is not None,
    }
    return y, h, c, cache


def backward(
    cell: str,
    cache: dict[str, Any],
    dy: Array | None,
    dh_n: Array | None,
    dc_n: Array | None = None,
) -> tuple[Array, Array, Array | None, dict[str, Array | None]]:
    """Gradients of a scalar loss through `forward`.

    Parameters
    ----------
    cache : from `forward`
    dy : [T, B, H] or None (zeros); entries at t >= lengths[b] are ignored
    dh_n : [B, H] or None (zeros)
    dc_n : [B, H] or None (zeros); lstm only

    Returns
    -------
    dx : [T, B, I], zero at t >= lengths[b]
    dh0 : [B, H]
    dc0 : [B, H] for lstm, else None
    grads : dict with "w_ih" [G*H, I], "w_hh" [G*H, H], "b_ih" [G*H], "b_hh" [G*H],
        "peephole" [3*H]; None where forward got None
    """
    if cell != cache["cell"]:
        raise ValueError(f"cache is from cell {cache['cell']!r}, not {cell!r}")
    p, dtype = cache["params"], cache["dtype"]
    T, B, I, H = cache["shape"]
    dy = np.zeros((T, B, H), dtype) if dy is None else np.asarray(dy, dtype)
    dh = np.zeros((B, H), dtype) if dh_n is None else np.asarray(dh_n, dtype)
    if cell == "lstm":
        dc = np.zeros((B, H), dtype) if dc_n is None else np.asarray(dc_n, dtype)
    else:
        dc = None

    batch = np.arange(B)
    dx = np.zeros((T, B, I), dtype)
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    for s in reversed(range(T)):
        t, active, step_cache = cache["steps"][s]
        keep = active[:, None]  # [B, 1]
        # y[t[b], b] = h[b] for active b
        dh = dh + np.where(keep, dy[t, batch], 0)
        # h = where(keep, h1, h): active rows flow into the cell, ended rows pass through
        dh1 = np.where(keep, dh, 0)
        dc1 = None if dc is None else np.where(keep, dc, 0)
        dx_s, dh_prev, dc_prev, step_grads = _CELL_BACKWARD[cell](cell, p, step_cache, dh1, dc1)
        dx[t[active], batch[active]] = dx_s[active]
        dh = np.where(keep, dh_prev, dh)
        if dc is not None:
            dc = np.where(keep, dc_prev, dc)
        for name, value in step_grads.items():
            grads[name] += value

    has_b_ih, has_b_hh = cache["has_bias"]
    result: dict[str, Array | None] = {
        "w_ih": grads["w_ih"],
        "w_hh": grads["w_hh"],
        "b_ih": grads["b_ih"] if has_b_ih else None,
        "b_hh": grads["b_hh"] if has_b_hh else None,
        "peephole": grads["peephole"] if cache["has_peephole"] else None,
    }
    return dx, dh, dc, result
