"""Gate orders: fastrnn / PyTorch (LSTM i, f, g, o; GRU r, z, n; peepholes i, f, o) against
ONNX (LSTM i, o, f, c; GRU z, r, h; peepholes P = i, o, f). Weights are (G*H, ...) row blocks."""

from __future__ import annotations

from typing import Any

import numpy as np

# ONNX block j holds fastrnn block ONNX_FROM_TORCH[kind][j] (and the other way round below)
_ONNX_FROM_TORCH = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}
_TORCH_FROM_ONNX = {"lstm": [0, 2, 3, 1], "gru": [1, 0, 2], "rnn": [0]}
_FAMILY = {
    "rnn_tanh": "rnn",
    "rnn_relu": "rnn",
    "gru": "gru",
    "gru_reset_before": "gru",
    "lstm": "lstm",
}


def _blocks(a: np.ndarray, order: list[int]) -> np.ndarray:
    parts = np.split(np.asarray(a), len(order), axis=0)
    return np.concatenate([parts[j] for j in order], axis=0)


def onnx_weight(kind: str, w: np.ndarray) -> np.ndarray:
    """fastrnn w_ih / w_hh (G*H, K) -> the ONNX W / R block of one direction (G*H, K)."""
    return _blocks(w, _ONNX_FROM_TORCH[_FAMILY[kind]])


def onnx_bias(kind: str, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """fastrnn b_ih, b_hh (G*H,) -> ONNX B of one direction (2*G*H,) = [Wb, Rb]."""
    order = _ONNX_FROM_TORCH[_FAMILY[kind]]
    return np.concatenate([_blocks(b_ih, order), _blocks(b_hh, order)])


def onnx_peephole(p: np.ndarray) -> np.ndarray:
    """fastrnn peephole (3*H,) in (i, f, o) -> ONNX P (i, o, f); the swap is its own inverse."""
    return _blocks(p, [0, 2, 1])


def torch_weight(family: str, w: np.ndarray) -> np.ndarray:
    """ONNX W / R of one direction (G*H, K) -> fastrnn's gate order."""
    return _blocks(w, _TORCH_FROM_ONNX[family])


def torch_bias(family: str, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ONNX B of one direction (2*G*H,) -> fastrnn (b_ih, b_hh)."""
    wb, rb = np.split(np.asarray(b), 2)
    order = _TORCH_FROM_ONNX[family]
    return _blocks(wb, order), _blocks(rb, order)


torch_peephole = onnx_peephole


def cell_kind(m: Any, required: bool = True) -> str | None:
    """The recurrence of a fastrnn layer or cell ("rnn_tanh", "rnn_relu", "gru",
    "gru_reset_before", "lstm"), or None for anything else (an error with `required`)."""
    from .. import nn, rnn

    classes = {  # GRU before RNN: nn.GRUCell subclasses nn.RNNCell
        "LSTM": (rnn.LSTM, rnn.LSTMCell, nn.LSTM, nn.LSTMCell),
        "GRU": (rnn.GRU, rnn.GRUCell, nn.GRU, nn.GRUCell),
        "RNN": (rnn.RNN, rnn.RNNCell, nn.RNN, nn.RNNCell),
    }
    family = next((f for f, cls in classes.items() if isinstance(m, cls)), None)
    if family is None:
        if required:
            raise TypeError(f"model: expected a fastrnn RNN, GRU or LSTM, got {type(m).__name__}")
        return None
    if family == "LSTM":
        if getattr(m, "proj_size", 0):
            raise ValueError("model: LSTM projections (proj_size) have no ONNX LSTM form")
        return "lstm"
    inner = getattr(m, "_layer", m)
    name = getattr(inner, "_cell", None)  # the kernel name the layer runs
    if name in _FAMILY and _FAMILY[name] == family.lower():
        return str(name)
    if family == "GRU":
        return "gru" if getattr(m, "reset_after", True) else "gru_reset_before"
    return "rnn_" + str(getattr(m, "nonlinearity", "tanh"))
