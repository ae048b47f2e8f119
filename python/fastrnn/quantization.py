"""Weight quantization for inference: `quantize_dynamic`, as torch.ao.quantization's.

`quantize_dynamic(model, dtype="int8")` returns a copy of a recurrent layer or cell, or of a
fastrnn.nn model, whose recurrent layers and cells read int8 weights (see `inference_dtype`):
W_ih and W_hh quantized per output row, symmetric, widened to float32 in the products. States,
sums and outputs stay float32; other modules (Linear, Embedding, ...) are copied unchanged. The
copy is in eval mode and runs inference only; the original is not touched.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import numpy as np

from .nn.module import Module
from .rnn import _Precision

__all__ = ["quantize_dynamic"]

M = TypeVar("M", bound=Module)

_DTYPES = ("int8", "qint8", "torch.qint8")


def quantize_dynamic(model: M, dtype: Any = "int8") -> M:
    """A quantized copy of `model` for inference: every recurrent layer and cell inside it
    (RNN/GRU/LSTM, any layers and directions; RNNCell/GRUCell/LSTMCell) gets int8 weights.

    Parameters
    ----------
    model : fastrnn layer, cell, or fastrnn.nn.Module holding some
        float32, on the CPU. It is deep-copied; the original is not changed.
    dtype : "int8"
        The weight type (torch's `torch.qint8` and NumPy's int8 are accepted for it).

    Returns
    -------
    A deep copy of `model` in eval mode whose recurrent modules have
    `inference_dtype == "int8"`. A training-mode forward or a backward on them raises.
    """
    name = dtype if isinstance(dtype, str) else str(dtype)
    if name not in _DTYPES:
        try:
            ok = not isinstance(dtype, str) and np.dtype(dtype) == np.int8
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"dtype: expected 'int8', got {dtype!r}")
    if not isinstance(model, Module):
        raise TypeError(
            "model: expected a fastrnn layer, cell or fastrnn.nn.Module, got "
            f"{type(model).__name__}"
        )
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, _Precision)]
    if not found:
        raise ValueError(
            f"model: {type(model).__name__} holds no recurrent layer or cell "
            "(RNN, GRU, LSTM, RNNCell, GRUCell, LSTMCell) to quantize"
        )
    for n, m in found:
        where = f" ({n})" if n else ""
        if m._storage is not None or getattr(m, "_cuda_device", None) is not None:
            raise ValueError(
                f"model: {type(m).__name__}{where} lives on CUDA; int8 inference runs on the CPU "
                "(quantize a CPU float32 model)"
            )
        if m._dtype != np.float32:
            raise ValueError(
                f"model: {type(m).__name__}{where} is {m._dtype}; int8 quantization needs "
                "float32 weights"
            )
    q = copy.deepcopy(model)
    for _, copied in q.named_modules():
        if isinstance(copied, _Precision):
            copied.inference_dtype = "int8"
    q.eval()
    return q
