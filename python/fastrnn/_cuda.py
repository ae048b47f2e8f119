"""The optional GPU path behind the layers' `device="cuda"` option.

`fastrnn._C_cuda` is built when the build finds nvcc; this module imports it under
try/except ImportError, reports what it finds (`status()`, shown by `fastrnn.backends()`), and runs
the RNN/GRU/LSTM layers on device arrays: CuPy arrays, PyTorch CUDA tensors, anything with
`__cuda_array_interface__` or CUDA DLPack, read and written in place without copies. Outputs come
back as the caller's kind of array (torch in, torch out; CuPy in, CuPy out; otherwise a
`_C_cuda.DeviceArray`, which exports both protocols). NumPy arrays always take the CPU path, even on
a `device="cuda"` layer; the parameters stay NumPy arrays on the host (the source of truth) and
are copied to the device once, on the first GPU forward after a change.

For batches of at most 8 rows the backend runs each recurrence as one persistent launch where it
fits the device (csrc/cuda/persistent.h); FASTRNN_CUDA_PERSISTENT=0|1|auto (read at every
forward) turns that off, forces it (an error where it cannot run) or leaves the choice to it.

What this module does not do: arithmetic. It validates, lays out views (batch-first and the two
directions of a layer are strides, not copies), and routes gradients, like rnn.py does for the CPU.

For tests, `_backend` can be swapped for `fastrnn._C._cuda_host`, the host build of the same
driver and kernels with host memory standing in for device memory: the whole GPU path except the
CUDA calls themselves then runs (slowly) on the CPU.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _checks
from ._layer_loop import layer_loop, layer_loop_backward

_native: Any
try:
    from . import _C_cuda as _native

    _IMPORT_ERROR: str | None = None
except ImportError as e:  # built without nvcc, or the module cannot load here
    import importlib.util

    _native = None
    if importlib.util.find_spec(f"{__package__}._C_cuda") is None:
        _IMPORT_ERROR = "not built"
    else:
        _IMPORT_ERROR = f"it does not load: {e}"

_backend: Any = _native  # the module that runs the GPU path (tests may swap in the host build)


def _build_status() -> str:
    from . import _C

    host = getattr(_C, "_cuda_host", None)
    return str(getattr(host, "build_status", "unknown"))


def status() -> dict[str, Any]:
    """What the GPU path can do here.

    Returns
    -------
    dict with "compiled" (the CUDA module was built and imports), "available" (a device is
    usable), "devices" (list of {"index", "name", "capability", "total_memory", ...}), "reason"
    (why it is not available, else None) and "build" (what the build said about CUDA).
    """
    out: dict[str, Any] = {
        "compiled": _backend is not None,
        "available": False,
        "devices": [],
        "reason": None,
        "build": _build_status(),
    }
    if _backend is None:
        out["reason"] = (
            f"fastrnn._C_cuda is not available ({_IMPORT_ERROR}; the build said: {out['build']})"
        )
        return out
    probe = _backend.probe()
    out["devices"] = list(probe["devices"])
    out["emulated"] = bool(probe["emulated"])
    out["available"] = bool(out["devices"])
    if not out["available"]:
        why = probe["error"] or "none visible"
        if not probe["emulated"] and probe["driver_version"] == 0:
            why = f"no NVIDIA driver found (the CUDA runtime says: {why})"
        out["reason"] = f"no usable CUDA device: {why}"
    return out


def parse_device(device: Any) -> int | None:
    """'cpu' or None -> None; 'cuda' / 'cuda:N' (or a torch.device) -> N, checked to be usable."""
    if device is None:
        return None
    s = str(device)
    if s == "cpu":
        return None
    if s == "cuda":
        index = 0
    elif s.startswith("cuda:") and s[5:].isdigit():
        index = int(s[5:])
    else:
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    st = status()
    if not st["available"]:
        raise RuntimeError(f"device={s!r}: {st['reason']}")
    if index >= len(st["devices"]):
        raise ValueError(f"device={s!r}: only {len(st['devices'])} CUDA device(s) are visible")
    return index


def device_name(index: int | None) -> str:
    return "cpu" if index is None else f"cuda:{index}"


def is_device_array(x: Any) -> bool:
    """True for CUDA arrays (CuPy, torch CUDA tensors, __cuda_array_interface__, CUDA DLPack)."""
    if type(x) is np.ndarray or x is None:
        return False
    if _backend is not None:
        return bool(_backend.is_device_array(x))
    # No CUDA module: still recognize CUDA arrays, so that the layers say why they cannot run.
    if hasattr(x, "__cuda_array_interface__"):
        return True
    try:
        return int(x.__dlpack_device__()[0]) in (2, 13)
    except Exception:
        return False


def _kind(x: Any) -> str:
    root = type(x).__module__.split(".")[0]
    return root if root in ("torch", "cupy") else "other"


def _wrap(a: Any, kind: str) -> Any:
    """A DeviceArray as the caller's kind of array, without a copy."""
    if a is None or kind == "other" or getattr(_backend, "emulated", False):
        return a
    if kind == "torch":
        import torch

        return torch.from_dlpack(a)
    import cupy  # type: ignore[import-not-found]

    return cupy.asarray(a)  # through __cuda_array_interface__


def _require(module: Any) -> tuple[Any, int]:
    if _backend is None:
        raise RuntimeError(
            f"{type(module).__name__}: got a CUDA array, but {status()['reason']}; pass a NumPy "
            "array to run on the CPU"
        )
    dev = getattr(module, "_cuda_device", None)
    if dev is None:
        raise TypeError(
            f"x is a CUDA array but this {type(module).__name__} is on the CPU; create it with "
            "device='cuda' (or call .to('cuda')), or pass a NumPy array"
        )
    return _backend, dev


def _device_dtype(module: Any) -> Any:
    """The dtype of a layer's device arrays: its 16-bit storage name, or its float dtype."""
    return getattr(module, "_storage", None) or module._dtype


def _device_arg(b: Any, name: str, obj: Any, dev: int, dtype: Any) -> Any:
    if not is_device_array(obj):
        raise TypeError(
            f"{name}: expected a CUDA array on cuda:{dev} like x, got {type(obj).__name__}"
        )
    a = b.as_device_array(obj)
    if a.device != dev:
        raise ValueError(
            f"{name}: the array is on cuda:{a.device} but the layer is on cuda:{dev} "
            "(mismatched devices)"
        )
    if str(a.dtype) != str(dtype):  # by name: NumPy has no bfloat16 dtype object
        raise TypeError(f"{name}: expected dtype {dtype}, got {a.dtype}")
    return a


def _states(
    b: Any, name: str, obj: Any, lead: int, B: int, H: int, dev: int, dtype: Any, batched: bool
) -> Any:
    """A state (L*D, B, H) (or (L*D, H) unbatched) as a contiguous (L*D, B, H) device array."""
    if obj is None:
        return None
    a = _device_arg(b, name, obj, dev, dtype)
    expected = (lead, B, H) if batched else (lead, H)
    letters = "(L*D, B, H)" if batched else "(L*D, H) for unbatched input"
    if tuple(a.shape) != expected:
        raise ValueError(f"{name}: expected shape {letters} = {expected}, got {tuple(a.shape)}")
    a = a.contiguous()
    return a if batched else a.view(0, (lead, 1, H), (H, H, 1))


def _host_lengths(lengths: Any) -> Any:
    if lengths is not None and is_device_array(lengths) and _backend is not None:
        return _backend.as_device_array(lengths).numpy()
    return lengths


def _cuda_weights(module: Any, b: Any, dev: int) -> list[list[Any]]:
    w = getattr(module, "_cuda_weights", None)
    if w is None or w[0] is not b or w[1] != dev:
        p = module._parameters
        storage = getattr(module, "_storage", None)  # 16-bit: the float32 params, rounded once
        layers = [
            [
                b.Weights(
                    module._cell,
                    device=dev,
                    dtype=storage,
                    **{key: p[name] for key, (name, _) in keys.items()},
                )
                for keys in per_dir
            ]
            for per_dir in module._names
        ]
        w = (b, dev, layers)
        module._cuda_weights = w
    return w[2]


class CudaCache(NamedTuple):
    """What a training forward on the GPU keeps for the layer's backward."""

    weights: list[list[Any]]  # [L][D] backend Weights
    ctxs: list[list[Any]]  # [L][D] backend contexts
    seeds: list[int | None]  # [L] dropout seed of layer k's output
    steps: int
    batch: int
    batched: bool
    kind: str  # the caller's kind of array
    device: int
    x_shape: tuple[int, ...]  # as the caller gave x


def _tb_view(a: Any, batch_first: bool, batched: bool) -> Any:
    """A (T, B, F) view of an array laid out as (T, B, F), (B, T, F) or unbatched (T, F)."""
    if not batched:
        T, F = a.shape
        return a.view(0, (T, 1, F), (a.strides[0], F, a.strides[1]))
    if batch_first:
        B, T, F = a.shape
        return a.view(0, (T, B, F), (a.strides[1], a.strides[0], a.strides[2]))
    return a


def _half(a: Any, d: int, H: int) -> Any:
    """Direction d's (T, B, H) slice of a (T, B, D*H) view."""
    T, B, _ = a.shape
    return a.view(d * H, (T, B, H), (a.strides[0], a.strides[1], 1))


def layer_forward(module: Any, x: Any, h0: Any, c0: Any, lengths: Any) -> tuple[Any, Any, Any]:
    """_RNNBase._run on device arrays: returns out, h_n, c_n in the caller's layout and kind."""
    b, dev = _require(module)
    H, D, L, I = module.hidden_size, module._num_dirs, module.num_layers, module.input_size
    dtype = _device_dtype(module)
    kind = _kind(x)
    xa = _device_arg(b, "x", x, dev, dtype)
    layout = "(B, T, I={})" if module.batch_first else "(T, B, I={})"
    if xa.ndim not in (2, 3) or xa.shape[-1] != I:
        raise ValueError(
            f"x: expected a 3-D array {layout.format(I)} or an unbatched 2-D array (T, I={I}), "
            f"got shape {tuple(xa.shape)}"
        )
    batched = xa.ndim == 3
    xv = _tb_view(xa, module.batch_first, batched)
    T, B = xv.shape[0], xv.shape[1]
    if T < 1 or B < 1:
        raise ValueError(f"x: T and B must be >= 1, got shape {tuple(xa.shape)}")
    lens = _checks.lengths_arg(_host_lengths(lengths), B, T, batched)
    h0a = _states(b, "h0", h0, L * D, B, H, dev, dtype, batched)
    c0a = _states(b, "c0", c0, L * D, B, H, dev, dtype, batched) if module._is_lstm else None
    weights = _cuda_weights(module, b, dev)
    training = module.training

    if not batched:
        out_user = b.zeros((T, D * H), dtype, dev)
    elif module.batch_first:
        out_user = b.zeros((B, T, D * H), dtype, dev)
    else:
        out_user = b.zeros((T, B, D * H), dtype, dev)
    h_n = b.empty((L * D, B, H), dtype, dev)
    c_n = b.empty((L * D, B, H), dtype, dev) if module._is_lstm else None
    layer_out: list[Any] = []  # the layer being run: its directions write halves of it

    def direction(k: int, d: int, inp: Any, last: bool, plan: Any) -> tuple[Any, Any]:
        if d == 0:
            layer_out[:] = [
                _tb_view(out_user, module.batch_first, batched)
                if last
                else b.zeros((T, B, D * H), dtype, dev)
            ]
        j = k * D + d
        ctx = weights[k][d].forward(
            inp,
            None if h0a is None else h0a[j],
            None if c0a is None else c0a[j],
            plan,
            d == 1,
            training,
            _half(layer_out[0], d, H),
            h_n[j],
            None if c_n is None else c_n[j],
        )
        return None, ctx

    def dropout(y: Any) -> tuple[Any, int]:
        seed = int(module._rng.integers(2**63))
        return b.dropout(y, module.dropout, seed), seed

    _, ctxs, seeds = layer_loop(
        L, D, xv, lens, direction, lambda ys, last: layer_out[0],
        dropout if training and module.dropout > 0 else None,
    )  # fmt: skip
    if training:
        module._cache = CudaCache(weights, ctxs, seeds, T, B, batched, kind, dev, tuple(xa.shape))
    else:
        module._cache = None
    module._last_forward_eval = not training
    if not batched:
        h_out = h_n.view(0, (L * D, H), (H, 1))
        c_out = None if c_n is None else c_n.view(0, (L * D, H), (H, 1))
    else:
        h_out, c_out = h_n, c_n
    return _wrap(out_user, kind), _wrap(h_out, kind), _wrap(c_out, kind)


def layer_backward(
    module: Any, cache: CudaCache, d_out: Any, dh_n: Any, dc_n: Any
) -> tuple[Any, Any, Any]:
    """_RNNBase._run_backward for a GPU forward: dx, dh0, dc0 in the caller's layout and kind."""
    b, dev = _backend, cache.device
    if b is None:  # pragma: no cover - the cache could not exist
        raise RuntimeError("the CUDA module is gone")
    H, D, L = module.hidden_size, module._num_dirs, module.num_layers
    dtype, T, B, batched = _device_dtype(module), cache.steps, cache.batch, cache.batched
    dy = None
    if d_out is not None:
        shape: tuple[int, ...]
        if not batched:
            shape, letters = (T, D * H), "(T, D*H)"
        elif module.batch_first:
            shape, letters = (B, T, D * H), "(B, T, D*H)"
        else:
            shape, letters = (T, B, D * H), "(T, B, D*H)"
        da = _device_arg(b, "d_out", d_out, dev, dtype)
        if tuple(da.shape) != shape:
            raise ValueError(
                f"d_out: expected shape {letters} = {shape} (the shape of the last forward's "
                f"output), got {tuple(da.shape)}"
            )
        dy = _tb_view(da, module.batch_first, batched)
    name = "dh_n" if module._is_lstm else "d_h_n"
    dhn = _states(b, name, dh_n, L * D, B, H, dev, dtype, batched)
    dcn = _states(b, "dc_n", dc_n, L * D, B, H, dev, dtype, batched) if module._is_lstm else None
    dh0 = b.empty((L * D, B, H), dtype, dev)
    dc0 = b.empty((L * D, B, H), dtype, dev) if module._is_lstm else None
    dx_user = b.zeros(cache.x_shape, dtype, dev)
    grads: dict[str, Any] = {}

    def direction(k: int, d: int, dy_d: Any, dx: Any) -> Any:
        if d == 0:  # the layer's input gradient: both directions add into it
            dx = (
                _tb_view(dx_user, module.batch_first, batched)
                if k == 0
                else b.zeros((T, B, D * H), dtype, dev)
            )
        j = k * D + d
        g = cache.weights[k][d].backward(
            cache.ctxs[k][d],
            dy_d,
            None if dhn is None else dhn[j],
            None if dcn is None else dcn[j],
            dx,
            d == 1,
            dh0[j],
            None if dc0 is None else dc0[j],
        )
        for key, (pname, _) in module._names[k][d].items():
            grads[pname] = _wrap(g[key], cache.kind)
        return dx

    layer_loop_backward(
        L, D, dy, cache.seeds, direction,
        lambda dy: [None if dy is None else _half(dy, d, H) for d in range(D)],
        lambda dy, seed: b.dropout(dy, module.dropout, seed),  # d(y * mask)/dy, the same mask
    )  # fmt: skip
    module._add_grads(grads)
    if not batched:
        dh_out = dh0.view(0, (L * D, H), (H, 1))
        dc_out = None if dc0 is None else dc0.view(0, (L * D, H), (H, 1))
    else:
        dh_out, dc_out = dh0, dc0
    kind = cache.kind
    return _wrap(dx_user, kind), _wrap(dh_out, kind), _wrap(dc_out, kind)
