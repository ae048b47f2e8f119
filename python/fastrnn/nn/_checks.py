"""Validation and error messages of fastrnn.nn and fastrnn.models, in one place.

Each check names the argument and says what was expected against what was given, in the style of
fastrnn/_checks.py (whose array checks are reused here). Checks look at values only where a value
can corrupt state silently: token ids out of range, masks with nothing to attend to, non-finite
losses. This module does no computation.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import _checks as _base

float_array = _base.float_array
to_numpy = _base.to_numpy
positive_int = _base.positive_int
dtype_arg = _base.dtype_arg
contiguous = _base.contiguous


def _shape(shape: Any) -> str:
    return str(tuple(int(n) for n in shape))


def probability(name: str, p: Any) -> float:
    """A dropout-like probability in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name}: expected a number in [0, 1), got {p!r}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {p}")
    return float(p)


def nonnegative(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(float(x)) or x < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {x!r}")
    return float(x)


def positive(name: str, x: Any) -> float:
    if (
        isinstance(x, bool)
        or not isinstance(x, numbers.Real)
        or not np.isfinite(float(x))
        or x <= 0
    ):
        raise ValueError(f"{name}: expected a finite number > 0, got {x!r}")
    return float(x)


def choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")
    return str(value)


def token_ids(
    name: str, ids: Any, num_embeddings: int, ndim: tuple[int, ...] | None = None
) -> np.ndarray:
    """Integer ids in [0, num_embeddings) as a C-contiguous int64 array.

    Out-of-range ids are an IndexError (PyTorch's type for this case) naming the first offending
    position, since a silent wrap-around (NumPy's negative indexing) would train the wrong row."""
    try:
        arr = np.asarray(to_numpy(ids))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: could not convert to an array of token ids: {e}") from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer token ids, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(
            f"{name}: expected a {want} array of token ids, got shape {_shape(arr.shape)}"
        )
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= num_embeddings:
            bad = np.argwhere((arr < 0) | (arr >= num_embeddings))[0]
            where = tuple(int(i) for i in bad)
            raise IndexError(
                f"{name}: token id {int(arr[where])} at position {where if len(where) > 1 else where[0]} "
                f"is out of range [0, {num_embeddings})"
            )
    return np.ascontiguousarray(arr, dtype=np.int64)


def features(
    name: str, x: Any, size: int, dtype: np.dtype, letters: str = "(..., F)"
) -> np.ndarray:
    """A float array of the module's dtype whose last dimension is `size`."""
    x = float_array(name, x, dtype, "the module's dtype")
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(
            f"{name}: expected an array {letters.replace('F', str(size))} (last dimension {size}), "
            f"got shape {_shape(x.shape)}"
        )
    return x


def same_shape(name: str, g: Any, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    g = float_array(name, g, dtype, "the module's dtype")
    if g.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {_shape(shape)} ({what}), got {_shape(g.shape)}")
    return g


def no_forward(owner: str) -> RuntimeError:
    return RuntimeError(
        f"{owner}.backward: no forward to differentiate; call forward in training mode first "
        "(eval-mode forwards keep nothing for backward)"
    )


def lengths(name: str, lens: Any, batch: int, steps: int) -> np.ndarray:
    """Per-sequence lengths: B integers in [1, steps]."""
    try:
        arr = np.asarray(to_numpy(lens))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: could not convert to an array: {e}") from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(
            f"{name}: expected {batch} lengths (one per sequence, B={batch}), got shape {_shape(arr.shape)}"
        )
    bad = np.flatnonzero((arr < 1) | (arr > steps))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: each must be in [1, {steps}], got {name}[{i}]={int(arr[i])}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def finite_loss(loss: float, where: str) -> None:
    if not np.isfinite(loss):
        raise FloatingPointError(
            f"loss is {loss} {where}; stopped before the optimizer step, so the parameters are "
            "unchanged. Lower the learning rate, clip gradients (clip_grad_norm=...) or check the "
            "input for NaN/inf"
        )
