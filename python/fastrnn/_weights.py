"""PyTorch's parameter names, shapes, gate orders and initialization for fastrnn's layers and cells.

Layers use torch.nn.RNN/GRU/LSTM's state_dict names, cells torch.nn.RNNCell/GRUCell/LSTMCell's:

    weight_ih_l{k}[_reverse]  (G*H, I_k)   I_0 = input_size, I_k = D*H for k > 0
    weight_hh_l{k}[_reverse]  (G*H, H)
    bias_ih_l{k}[_reverse]    (G*H,)        only with bias=True
    bias_hh_l{k}[_reverse]    (G*H,)        only with bias=True
    peephole_l{k}[_reverse]   (3*H,)        LSTM with peephole=True only (not in torch)

Gate orders are PyTorch's: GRU (r, z, n), LSTM (i, f, g, o); peepholes (i, f, o), where i and f
see c_{t-1} and o sees c_t (ONNX's P semantics; ONNX itself stores P as (i, o, f)).
This module only names and initializes arrays; validation lives in _checks.py.
"""

from __future__ import annotations

import math

import numpy as np

from ._cells import GATES

# `_C.Weights` argument name -> state_dict prefix.
C_TO_TORCH = {
    "w_ih": "weight_ih",
    "w_hh": "weight_hh",
    "b_ih": "bias_ih",
    "b_hh": "bias_hh",
    "peephole": "peephole",
}


def _cell_shapes(
    cell: str, input_size: int, hidden_size: int, bias: bool, peephole: bool
) -> dict[str, tuple[int, ...]]:
    gh = GATES[cell] * hidden_size
    shapes: dict[str, tuple[int, ...]] = {"w_ih": (gh, input_size), "w_hh": (gh, hidden_size)}
    if bias:
        shapes["b_ih"] = (gh,)
        shapes["b_hh"] = (gh,)
    if peephole:
        shapes["peephole"] = (3 * hidden_size,)
    return shapes


def layer_names(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    peephole: bool,
) -> list[list[dict[str, tuple[str, tuple[int, ...]]]]]:
    """names[k][d][c_key] = (state_dict name, shape), for layer k and direction d (1 = reverse),
    in torch's state_dict order."""
    num_dirs = 2 if bidirectional else 1
    names = []
    for k in range(num_layers):
        i_k = input_size if k == 0 else num_dirs * hidden_size
        per_dir = []
        for d in range(num_dirs):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            shapes = _cell_shapes(cell, i_k, hidden_size, bias, peephole)
            per_dir.append(
                {key: (C_TO_TORCH[key] + suffix, shape) for key, shape in shapes.items()}
            )
        names.append(per_dir)
    return names


def cell_names(
    cell: str, input_size: int, hidden_size: int, bias: bool, peephole: bool
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """names[c_key] = (state_dict name, shape) for a one-step cell (torch's RNNCell names)."""
    shapes = _cell_shapes(cell, input_size, hidden_size, bias, peephole)
    return {key: (C_TO_TORCH[key], shape) for key, shape in shapes.items()}


def init_params(
    shapes: dict[str, tuple[int, ...]], hidden_size: int, rng: np.random.Generator, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """PyTorch's default: every parameter (peepholes too) ~ U(-1/sqrt(H), 1/sqrt(H)).

    Drawn in float64 and then cast, so float32 and float64 layers built with one seed agree."""
    bound = 1.0 / math.sqrt(hidden_size)
    return {
        name: rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)
        for name, shape in shapes.items()
    }
