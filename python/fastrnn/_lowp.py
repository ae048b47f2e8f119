"""16-bit storage (bfloat16, float16) of the GPU path, on the host side: dtype names and rounding.

A layer with dtype="bfloat16" or "float16" (device="cuda" only) stores its inputs, outputs,
states, weights and gradients on the device in that type and computes in float32 (see
csrc/cuda/half.h). Its host parameters, the source of truth copied to the device, stay NumPy
float32 arrays whose values are exactly representable in the storage type: NumPy has no bfloat16,
and float32 holds every bfloat16 and float16 value exactly. They are rounded here when drawn or
loaded, like the cast of torch's `module.to(torch.bfloat16)`, so `state_dict()` shows the values
the device computes with.

Rounding is to nearest, ties to even, with Inf and NaN kept and float16 overflowing to Inf, as in
half.h; float64 values are rounded directly (no double rounding through float32). This module is
the NumPy twin of those C++ conversions: tests check one against the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STORAGE_DTYPES = ("bfloat16", "float16")


def storage_name(dtype: Any) -> str | None:
    """'bfloat16' or 'float16' for a 16-bit float dtype spec (strings, NumPy's float16, torch's
    dtypes, ml_dtypes' bfloat16), None for anything else."""
    if dtype is None:
        return None
    s = str(dtype)
    if s.startswith("torch."):
        s = s[len("torch.") :]
    if isinstance(dtype, type):  # np.float16, ml_dtypes.bfloat16
        try:
            s = str(np.dtype(dtype))
        except TypeError:
            return None
    aliases = {"half": "float16", "f2": "float16", "<f2": "float16", "bf16": "bfloat16"}
    s = aliases.get(s, s)
    return s if s in STORAGE_DTYPES else None


def _float32_rounded_to_odd(a: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd, so that a second rounding to <= 11 significant bits
    equals the direct rounding of the float64 value."""
    f = a.astype(np.float32)
    u = f.view(np.uint32).copy()
    inexact = (f.astype(np.float64) != a) & np.isfinite(f) & ((u & 1) == 0)
    up = np.abs(a) > np.abs(f.astype(np.float64))
    u[inexact & up] += 1
    u[inexact & ~up] -= 1
    return u.view(np.float32)


def round_to(a: Any, storage: str) -> np.ndarray:
    """A float32 array of a's values rounded to `storage` ('bfloat16' or 'float16')."""
    arr = np.asarray(a)
    if storage == "float16":  # NumPy rounds float32 and float64 to float16 directly and exactly
        with np.errstate(over="ignore"):  # overflow to Inf is the rounding's result
            return arr.astype(np.float16).astype(np.float32)
    if storage != "bfloat16":
        raise ValueError(f"storage: expected 'bfloat16' or 'float16', got {storage!r}")
    f = _float32_rounded_to_odd(arr) if arr.dtype == np.float64 else arr.astype(np.float32)
    u = np.ascontiguousarray(f).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000  # nearest even; carries reach Inf
    r = np.where(nan, (u | 0x00400000) & 0xFFFF0000, r)  # NaN: quiet, sign kept
    return r.astype(np.uint32).view(np.float32).reshape(arr.shape)


def round_params(params: dict[str, np.ndarray], storage: str) -> dict[str, np.ndarray]:
    return {k: round_to(v, storage) for k, v in params.items()}
