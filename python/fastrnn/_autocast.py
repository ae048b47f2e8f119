"""Autocast: bfloat16 products with float32 sums, states and outputs, opted into as in PyTorch.

Inside ``with fastrnn.autocast("bfloat16"):`` the forward calls of fastrnn's float32 layers,
cells and ``nn.Linear`` (and of the toolkit's models, which are made of them) round the operands
of their matrix products to bfloat16 and sum in float32; gate math, cell and hidden states, every
output and every gradient stay float32, and the parameters stay float32 (the "master weights").
A backward follows what its forward did. Arrays in and out are float32 as always (NumPy has no
bfloat16).

Where the CPU has AMX-BF16 tiles (the ``amx_bf16`` ISA) every product runs on them: the input
projection, each step's recurrent product with the gate math as its epilogue, and backward's
products over all steps (the step-by-step product of backward stays float32). Without AMX,
inference reads bfloat16 copies of the weights (as ``inference_dtype="bfloat16"``: vdpbf16ps on
AVX512-BF16, widened on load elsewhere) and training stays float32: there bfloat16 would not be
faster, and float32 is the more accurate.

A module's ``compute_dtype`` overrides the context for code that prefers a setting per model:
``"bfloat16"`` always, ``"float32"`` never, ``None`` (the default) follows ``fastrnn.autocast``.
float64 modules ignore both.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, TypeVar

__all__ = ["autocast", "is_autocast_enabled"]

_F = TypeVar("_F", bound=Callable[..., Any])

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("fastrnn_autocast", default=False)


def _dtype_name(dtype: Any) -> str:
    """The short name of a dtype given as a string, a NumPy dtype or a torch dtype."""
    name = dtype if isinstance(dtype, str) else str(getattr(dtype, "name", dtype))
    return name.rsplit(".", 1)[-1].lower()  # "torch.bfloat16" -> "bfloat16"


def _bfloat16_arg(dtype: Any) -> str:
    if _dtype_name(dtype) in ("bfloat16", "bf16"):
        return "bfloat16"
    raise ValueError(
        f"autocast: dtype must be 'bfloat16' (the reduced precision fastrnn computes in on the "
        f"CPU), got {dtype!r}"
    )


def compute_dtype_arg(value: Any) -> str | None:
    """Validates a module's compute_dtype: None, "bfloat16" or "float32"."""
    if value is None:
        return None
    name = _dtype_name(value)
    if name in ("bfloat16", "bf16"):
        return "bfloat16"
    if name in ("float32", "float", "f4"):
        return "float32"
    raise ValueError(
        f"compute_dtype: expected None (follow fastrnn.autocast), 'bfloat16' or 'float32', "
        f"got {value!r}"
    )


class autocast:
    """Context manager (and decorator) that runs fastrnn's float32 products in bfloat16.

    Parameters
    ----------
    dtype : "bfloat16"
        The products' operand type (a torch.bfloat16 is accepted too).
    enabled : bool
        False turns autocast off inside the block (e.g. one float32 region inside an autocast
        one), as in ``torch.autocast``.

    Examples
    --------
    >>> import numpy as np, fastrnn
    >>> lstm = fastrnn.LSTM(8, 16).eval()
    >>> with fastrnn.autocast("bfloat16"):
    ...     out, (h, c) = lstm(np.ones((5, 2, 8), np.float32))
    >>> out.dtype
    dtype('float32')

    The setting is per thread (and per asyncio task): threads started inside the block do not
    inherit it.
    """

    def __init__(self, dtype: Any = "bfloat16", enabled: bool = True) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast: enabled must be a bool, got {type(enabled).__name__}")
        self.dtype = _bfloat16_arg(dtype)
        self.enabled = enabled
        self._tokens: list[contextvars.Token[bool]] = []

    def __enter__(self) -> autocast:
        self._tokens.append(_enabled.set(self.enabled))
        return self

    def __exit__(self, *exc: object) -> None:
        _enabled.reset(self._tokens.pop())

    def __call__(self, fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"fastrnn.autocast(dtype='{self.dtype}', enabled={self.enabled})"


def is_autocast_enabled() -> bool:
    """True inside an enabled ``fastrnn.autocast`` block (of this thread)."""
    return _enabled.get()


def active(module: Any) -> bool:
    """Whether a float32 module's next forward computes its products in bfloat16."""
    setting = module.__dict__.get("_compute_dtype")
    if setting is not None:
        return setting == "bfloat16"
    return _enabled.get()
