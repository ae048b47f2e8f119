"""Stacked, bidirectional layers built from tests/reference.py, for cells torch lacks.

Plain composition of reference.forward/backward, written independently of python/fastrnn/rnn.py
so that tests compare two implementations of the stacking: layer k > 0 reads layer k-1's output,
directions are concatenated (forward, reverse) on the feature axis, dropout masks multiply each
layer's output except the last. Everything is time-major here: x (T, B, I), states (L*D, B, H).
Parameters use PyTorch's state_dict names (plus peephole_l{k}[_reverse]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from reference import backward, forward

KEYS = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh",
        "peephole": "peephole"}  # fmt: skip


def _suffix(k: int, d: int) -> str:
    return f"_l{k}" + ("_reverse" if d else "")


def stacked_forward(
    cell: str,
    params: dict[str, np.ndarray],
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    lengths: np.ndarray | None,
    num_layers: int,
    num_dirs: int,
    masks: list[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[Any]]:
    """out (T, B, D*H), h_n (L*D, B, H), c_n or None, caches for stacked_backward."""
    inp = x
    h_n, c_n, caches = [], [], []
    for k in range(num_layers):
        ys = []
        for d in range(num_dirs):
            j = k * num_dirs + d
            w = {key: params.get(name + _suffix(k, d)) for key, name in KEYS.items()}
            y, h, c, cache = forward(
                cell, inp, None if h0 is None else h0[j], None if c0 is None else c0[j],
                lengths=lengths, reverse=d == 1, **w,
            )  # fmt: skip
            ys.append(y)
            h_n.append(h)
            c_n.append(c)
            caches.append(cache)
        inp = np.concatenate(ys, axis=2)
        if masks is not None and masks[k] is not None:
            inp = inp * masks[k]
    c_out = np.stack(c_n) if cell == "lstm" else None
    return inp, np.stack(h_n), c_out, caches


def stacked_backward(
    cell: str,
    caches: list[Any],
    d_out: np.ndarray | None,
    dh_n: np.ndarray | None,
    dc_n: np.ndarray | None,
    num_layers: int,
    num_dirs: int,
    hidden_size: int,
    masks: list[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """dx (T, B, I), dh0 (L*D, B, H), dc0 or None, grads under state_dict names."""
    H = hidden_size
    dy = d_out
    dh0: dict[int, np.ndarray] = {}
    dc0: dict[int, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    for k in reversed(range(num_layers)):
        if masks is not None and masks[k] is not None and dy is not None:
            dy = dy * masks[k]
        dx = None
        for d in range(num_dirs):
            j = k * num_dirs + d
            dy_d = None if dy is None else dy[:, :, d * H : (d + 1) * H]
            dx_d, dh, dc, g = backward(
                cell, caches[j], dy_d, None if dh_n is None else dh_n[j],
                None if dc_n is None else dc_n[j],
            )  # fmt: skip
            dh0[j], dc0[j] = dh, dc
            for key, value in g.items():
                if value is not None:
                    grads[KEYS[key] + _suffix(k, d)] = value
            dx = dx_d if dx is None else dx + dx_d
        dy = dx
    n = num_layers * num_dirs
    assert dy is not None
    dc_out = np.stack([dc0[j] for j in range(n)]) if cell == "lstm" else None
    return dy, np.stack([dh0[j] for j in range(n)]), dc_out, grads
