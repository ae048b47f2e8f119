"""Validation of everything a user hands to fastrnn, and every error message, in one place.

Each check names the argument and states what was expected against what was given (shape or
dtype), so a call can be fixed from the message alone. Checks return arrays ready for `_C`
(C-contiguous, the layer's dtype), converting non-contiguous or Fortran-ordered input rather than
rejecting it. They never look at values: NaN and inf propagate by design.

Dimension letters: T steps, B batch, I input, H hidden, G gates, L layers, D directions.
This module does no computation and does not import `_C`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._cells import CELLS, GATES
from ._lowp import storage_name

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _shape(shape: Sequence[int]) -> str:
    return str(tuple(int(n) for n in shape))


# --- constructor arguments -------------------------------------------------------------------


def cpu_storage_error(storage: str) -> ValueError:
    """The error for a 16-bit dtype where the CPU path would run it."""
    return ValueError(
        f"dtype: {storage!r} storage runs on the GPU path only (device='cuda'); the CPU path "
        "computes in float32 or float64. For bfloat16 weights on the CPU use dtype='float32' "
        "with inference_dtype='bfloat16' (bfloat16 weight copies, float32 sums and state)"
    )


def layer_dtype_arg(dtype: Any, on_gpu: bool) -> tuple[np.dtype, str | None]:
    """A layer's dtype: (the dtype of its host parameters, its 16-bit storage name or None).

    float32 / float64 as in `dtype_arg`; 'bfloat16' / 'float16' (or torch's and NumPy's spellings)
    only with a CUDA device, with float32 host parameters (see fastrnn._lowp)."""
    storage = storage_name(dtype)
    if storage is None:
        return dtype_arg(dtype), None
    if not on_gpu:
        raise cpu_storage_error(storage)
    return FLOAT_DTYPES[0], storage


def dtype_arg(dtype: Any) -> np.dtype:
    """The layer dtype: 'float32' or 'float64' (NumPy dtypes, torch.float32/64 and None accepted)."""
    if storage_name(dtype) is not None:
        raise cpu_storage_error(str(storage_name(dtype)))
    spec = "float32" if dtype is None else dtype  # None: torch's default dtype
    if not isinstance(dtype, str) and str(dtype).startswith("torch."):
        spec = str(dtype)[len("torch.") :]
    try:
        dt = np.dtype(spec)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:  # (np.dtype("float64") == None is True)
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return canonical_dtype(dt)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name}: expected a positive integer, got {value!r} ({type(value).__name__})"
        )
    if value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value}")
    return int(value)


def dropout_arg(p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout: expected a number in [0, 1), got {p!r}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dropout: expected a number in [0, 1), got {p}")
    return float(p)


def nonlinearity_arg(nonlinearity: Any) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    return str(nonlinearity)


def proj_size_arg(proj_size: Any) -> None:
    if proj_size != 0:
        raise NotImplementedError(
            f"proj_size: LSTM projections are not supported by fastrnn (got proj_size={proj_size!r}); "
            "use proj_size=0"
        )


# --- arrays ----------------------------------------------------------------------------------


def to_numpy(a: Any) -> Any:
    """Accept torch tensors (CPU, with or without grad) wherever arrays are expected."""
    if not isinstance(a, np.ndarray) and hasattr(a, "detach") and hasattr(a, "cpu"):
        t = a.detach().cpu()
        if str(getattr(t, "dtype", "")) == "torch.bfloat16":
            t = t.float()  # NumPy has no bfloat16; float32 holds every value exactly
        return t.numpy()
    return a


def float_array(name: str, a: Any, dtype: np.dtype, owner: str = "the layer's dtype") -> np.ndarray:
    """`a` as an array of exactly `dtype`; integer, bool, float16... and the other float width are
    a TypeError (fastrnn never silently changes the precision of an input)."""
    if type(a) is np.ndarray and a.dtype is dtype:  # the common case, on every streaming step
        return a
    if a is None:
        raise TypeError(f"{name}: expected a {dtype} array, got None")
    try:
        arr = np.asarray(to_numpy(a))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: could not convert to an array: {e}") from None
    if arr.dtype != dtype:
        if arr.dtype in FLOAT_DTYPES:
            raise TypeError(
                f"{name}: dtype {arr.dtype} does not match {owner} {dtype}; "
                f"convert with {name}.astype(np.{dtype})"
            )
        raise TypeError(
            f"{name}: expected a floating-point array of dtype {dtype}, got dtype {arr.dtype}"
        )
    return as_canonical(arr)


def contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def canonical_dtype(dtype: np.dtype) -> np.dtype:
    """NumPy's own instance of an equal float dtype.

    Unpickled arrays (and some others) carry a dtype equal to, but not the same object as,
    np.dtype("float32"); `_C` compares dtype objects by identity and would reject them."""
    return FLOAT_DTYPES[FLOAT_DTYPES.index(dtype)]


def as_canonical(a: np.ndarray) -> np.ndarray:
    dt = canonical_dtype(a.dtype)
    return a if a.dtype is dt else a.view(dt)


def _nonempty(name: str, arr: np.ndarray, letters: str) -> None:
    if arr.size == 0:
        zero = ", ".join(f"{c}=0" for c, n in zip(letters, arr.shape) if n == 0)
        raise ValueError(
            f"{name}: expected a non-empty array ({', '.join(letters)}) with every dimension >= 1, "
            f"got shape {_shape(arr.shape)} ({zero})"
        )


def layer_input(
    x: Any, input_size: int, batch_first: bool, dtype: np.dtype
) -> tuple[np.ndarray, bool]:
    """x -> ((T, B, I) C-contiguous, batched). Accepts (T, B, I), (B, T, I) with batch_first, and
    unbatched (T, I) like torch."""
    x = float_array("x", x, dtype)
    if x.ndim not in (2, 3) or x.shape[-1] != input_size:
        layout = f"(B, T, I={input_size})" if batch_first else f"(T, B, I={input_size})"
        raise ValueError(
            f"x: expected a 3-D array {layout} or an unbatched 2-D array (T, I={input_size}), "
            f"got shape {_shape(x.shape)}"
        )
    if x.ndim == 2:
        _nonempty("x", x, "TI")
        return contiguous(x)[:, None, :], False
    _nonempty("x", x, "BTI" if batch_first else "TBI")
    if batch_first:
        return np.ascontiguousarray(x.transpose(1, 0, 2)), True
    return contiguous(x), True


def state(
    name: str, h: Any, lead: int, batch: int, hidden: int, dtype: np.dtype, batched: bool
) -> np.ndarray:
    """An initial state or its gradient: (L*D, B, H), or (L*D, H) for unbatched input."""
    h = float_array(name, h, dtype)
    expected: tuple[int, ...]
    if batched:
        expected, letters = (lead, batch, hidden), "(L*D, B, H)"
    else:
        expected, letters = (lead, hidden), "(L*D, H) for unbatched input"
    if h.shape != expected:
        raise ValueError(
            f"{name}: expected shape {letters} = {_shape(expected)}, got {_shape(h.shape)}"
        )
    return contiguous(h)


def lstm_state(hx: Any, name: str = "hx") -> tuple[Any, Any]:
    """The LSTM (h, c) pair; None or a pair of arrays (either may be None)."""
    if hx is None:
        return None, None
    if isinstance(hx, np.ndarray) or not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(
            f"{name}: expected a tuple (h, c) of two arrays (or None) for LSTM, got {type(hx).__name__}"
        )
    return hx[0], hx[1]


def lengths_arg(lengths: Any, batch: int, steps: int, batched: bool = True) -> np.ndarray | None:
    """lengths -> int64 (B,) each in [1, T], or None. Unbatched input also takes a scalar."""
    if lengths is None:
        return None
    try:
        arr = np.asarray(to_numpy(lengths))
    except (ValueError, TypeError) as e:
        raise ValueError(f"lengths: could not convert to an array: {e}") from None
    if not batched and arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] != batch:
        raise ValueError(
            f"lengths: expected {batch} integers (one per sequence, B={batch}), "
            f"got shape {_shape(arr.shape)}"
        )
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {arr.dtype}")
    bad = np.flatnonzero((arr < 1) | (arr > steps))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"lengths: each must be in [1, T={steps}], got lengths[{i}]={int(arr[i])}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def grad_output(
    name: str, g: Any, expected: tuple[int, ...], letters: str, dtype: np.dtype
) -> np.ndarray:
    """An upstream gradient that must have exactly the shape of the forward output it belongs to."""
    g = float_array(name, g, dtype)
    if g.shape != tuple(expected):
        raise ValueError(
            f"{name}: expected shape {letters} = {_shape(expected)} (the shape of the last forward's "
            f"output), got {_shape(g.shape)}"
        )
    return contiguous(g)


def no_cache(owner: str, eval_mode: bool) -> RuntimeError:
    if eval_mode:
        return RuntimeError(
            f"{owner}.backward: the last forward ran in eval mode and kept nothing for backward; "
            "call .train() and run forward again"
        )
    return RuntimeError(
        f"{owner}.backward: no forward to differentiate; call forward (in training mode) first"
    )


# --- weights ---------------------------------------------------------------------------------


def load_state_dict(
    state_dict: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], dtype: np.dtype
) -> dict[str, np.ndarray]:
    """Strict: the keys must be exactly `expected`'s, each with its shape. Returns C-contiguous copies
    cast to `dtype` (any real dtype is accepted here, like torch's load_state_dict)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}"
        )
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise KeyError(
            f"state_dict: missing keys {missing}, unexpected keys {unexpected}; "
            f"expected exactly {list(expected)}"
        )
    out = {}
    for name, shape in expected.items():
        arr = np.asarray(to_numpy(state_dict[name]))
        if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
            raise TypeError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
        if arr.shape != tuple(shape):
            raise ValueError(f"{name}: expected shape {_shape(shape)}, got {_shape(arr.shape)}")
        out[name] = as_canonical(np.array(arr, dtype=dtype, order="C", copy=True))
    return out


def cell_weights(
    cell: str,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    peephole: Any = None,
) -> tuple[dict[str, Any], np.dtype, int, int]:
    """Weights handed to the functional forms: (arrays, dtype, I, H). The dtype is w_hh's; every
    other array must match it."""
    gates = GATES[cell]
    w_hh_arr = np.asarray(to_numpy(w_hh))
    if w_hh_arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"w_hh: expected dtype float32 or float64, got dtype {w_hh_arr.dtype}")
    dtype = canonical_dtype(w_hh_arr.dtype)
    w_hh_arr = as_canonical(w_hh_arr)
    if w_hh_arr.ndim != 2 or w_hh_arr.shape[0] != gates * w_hh_arr.shape[1] or w_hh_arr.size == 0:
        raise ValueError(
            f"w_hh: expected a 2-D array (G*H, H) with G={gates} gates for {cell!r}, "
            f"got shape {_shape(w_hh_arr.shape)}"
        )
    hidden = w_hh_arr.shape[1]
    own = "w_hh's dtype"
    w_ih_arr = float_array("w_ih", w_ih, dtype, own)
    if w_ih_arr.ndim != 2 or w_ih_arr.shape[0] != gates * hidden or w_ih_arr.shape[1] == 0:
        raise ValueError(
            f"w_ih: expected a 2-D array (G*H, I) = ({gates * hidden}, I) with G={gates}, H={hidden}, "
            f"got shape {_shape(w_ih_arr.shape)}"
        )
    arrays: dict[str, Any] = {
        "w_ih": contiguous(w_ih_arr),
        "w_hh": contiguous(w_hh_arr),
    }
    if (b_ih is None) != (b_hh is None):
        given, absent = ("b_ih", "b_hh") if b_hh is None else ("b_hh", "b_ih")
        raise ValueError(
            f"{absent}: expected both biases or neither, got {given} but {absent}=None "
            f"(pass np.zeros({gates * hidden}) for a bias you do not want)"
        )
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is None:
            arrays[name] = None
            continue
        b_arr = float_array(name, b, dtype, own)
        if b_arr.shape != (gates * hidden,):
            raise ValueError(
                f"{name}: expected shape (G*H,) = ({gates * hidden},), got {_shape(b_arr.shape)}"
            )
        arrays[name] = contiguous(b_arr)
    arrays["peephole"] = None
    if peephole is not None:
        if not CELLS[cell].peephole:
            raise ValueError(f"peephole: only LSTM has peephole weights, got one for {cell!r}")
        p_arr = float_array("peephole", peephole, dtype, own)
        if p_arr.shape != (3 * hidden,):
            raise ValueError(
                f"peephole: expected shape (3*H,) = ({3 * hidden},) in order (i, f, o), "
                f"got {_shape(p_arr.shape)}"
            )
        arrays["peephole"] = contiguous(p_arr)
    return arrays, dtype, w_ih_arr.shape[1], hidden


def seq_input(x: Any, input_size: int, dtype: np.dtype) -> np.ndarray:
    """Functional-form input: exactly (T, B, I)."""
    x = float_array("x", x, dtype, "the weights' dtype")
    if x.ndim != 3 or x.shape[2] != input_size:
        raise ValueError(
            f"x: expected a 3-D array (T, B, I={input_size}), got shape {_shape(x.shape)}"
        )
    _nonempty("x", x, "TBI")
    return contiguous(x)


def step_input(x: Any, input_size: int, dtype: np.dtype, owner: str) -> tuple[np.ndarray, bool]:
    """One-step input: (B, I), or unbatched (I,)."""
    x = float_array("x", x, dtype, owner)
    if x.ndim not in (1, 2) or x.shape[-1] != input_size:
        raise ValueError(
            f"x: expected a 2-D array (B, I={input_size}) or an unbatched 1-D array (I={input_size},), "
            f"got shape {_shape(x.shape)}"
        )
    if x.ndim == 1:
        return contiguous(x)[None, :], False
    _nonempty("x", x, "BI")
    return contiguous(x), True


def step_state(
    name: str, h: Any, batch: int, hidden: int, dtype: np.dtype, batched: bool, owner: str
) -> np.ndarray:
    """A one-step state: (B, H), or (H,) for unbatched input. Returns (B, H)."""
    h = float_array(name, h, dtype, owner)
    expected = (batch, hidden) if batched else (hidden,)
    if h.shape != expected:
        letters = "(B, H)" if batched else "(H,) for unbatched input"
        raise ValueError(
            f"{name}: expected shape {letters} = {_shape(expected)}, got {_shape(h.shape)}"
        )
    return contiguous(h).reshape(batch, hidden)


MAX_THREADS = 512  # csrc/cpu/dispatch.h kMaxThreads


def num_threads(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(
            f"n: expected an integer >= 1 and <= {MAX_THREADS}, got {n!r} ({type(n).__name__})"
        )
    if not 1 <= int(n) <= MAX_THREADS:
        raise ValueError(f"n: expected an integer >= 1 and <= {MAX_THREADS}, got {n}")
    return int(n)
