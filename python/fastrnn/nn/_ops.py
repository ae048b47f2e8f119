"""Matrix products of the building blocks, through fastrnn's GEMM (one thread pool).

NumPy's BLAS keeps its worker threads spinning after each product; on a small machine they take
the cores that fastrnn's recurrence threads need next (a language-model training step measured 2x
slower on 2 cores). `mm` runs the same product with fastrnn's own GEMM and threads instead, and
`mm_acc` accumulates into an existing array (gradients) without a temporary. Shapes: 2-D only;
inputs are made C-contiguous (a transposed operand is passed with its flag, not copied).
"""

from __future__ import annotations

import numpy as np

from .. import _C


def _c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def mm(
    a: np.ndarray,
    b: np.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    autocast: bool = False,
) -> np.ndarray:
    """op(a) @ op(b) for 2-D arrays of one float dtype; autocast: bfloat16 operands, float32
    sums (float32 arrays, see fastrnn.autocast)."""
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        x = a.T if trans_a else a
        y = b.T if trans_b else b
        return x @ y
    return _C.nn_matmul(_c(a), _c(b), trans_a, trans_b, autocast=autocast)  # type: ignore[no-any-return]


def mm_acc(
    out: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    autocast: bool = False,
) -> None:
    """out += op(a) @ op(b) in place (out C-contiguous, same dtype)."""
    if a.dtype != out.dtype or b.dtype != out.dtype or not out.flags.c_contiguous:
        out += mm(a, b, trans_a, trans_b, autocast)
        return
    _C.nn_matmul(_c(a), _c(b), trans_a, trans_b, out, 1.0, autocast)


def rows(x: np.ndarray) -> np.ndarray:
    """x (..., F) as a C-contiguous (N, F) matrix."""
    return _c(x).reshape(-1, x.shape[-1])
