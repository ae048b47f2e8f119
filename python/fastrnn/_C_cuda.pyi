# ruff: noqa: N999  (the compiled module is private on purpose)
"""Type stub of the optional compiled module fastrnn._C_cuda (csrc/bindings/cuda_module.cpp).

Built only where the build found nvcc; fastrnn._cuda imports it under try/except ImportError. The
same API, on host memory, is fastrnn._C._cuda_host (the host build the CPU tests run). One
`Weights` is one layer in one direction on one device; cells and shapes as in fastrnn._C.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

class CudaError(RuntimeError):
    """A CUDA error; the message carries CUDA's error string and name."""

class CudaOutOfMemoryError(CudaError, MemoryError): ...

emulated: bool  # True in the host build

class DeviceArray:
    """A strided view of device memory, owned or borrowed without a copy; exports
    __cuda_array_interface__ and DLPack. Strides are in elements."""

    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def strides(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype[Any] | str: ...  # "bfloat16": NumPy has no such dtype
    @property
    def device(self) -> int: ...
    @property
    def ndim(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def ptr(self) -> int: ...
    @property
    def is_contiguous(self) -> bool: ...
    @property
    def __cuda_array_interface__(self) -> dict[str, Any]: ...
    def __dlpack__(self, stream: Any = None) -> Any: ...
    def __dlpack_device__(self) -> tuple[int, int]: ...
    def numpy(self, dtype: Any = None) -> npt.NDArray[Any]: ...  # 16-bit: "float32" / "uint16"
    def contiguous(self) -> DeviceArray: ...
    def copy(self) -> DeviceArray: ...
    def view(
        self, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]
    ) -> DeviceArray: ...
    def __getitem__(self, i: int) -> DeviceArray: ...
    def __len__(self) -> int: ...

class Context:
    """What a training forward saved for its backward (device memory)."""

class Weights:
    def __init__(
        self,
        cell: str,
        w_ih: Any,
        w_hh: Any,
        b_ih: Any = None,
        b_hh: Any = None,
        peephole: Any = None,
        device: int = 0,
        dtype: Any = None,  # storage type, default w_hh's; "bfloat16" / "float16" round once
    ) -> None: ...
    @property
    def cell(self) -> str: ...
    @property
    def input_size(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any] | str: ...
    @property
    def device(self) -> int: ...
    @property
    def has_bias(self) -> bool: ...
    @property
    def has_peephole(self) -> bool: ...
    def forward(
        self,
        x: Any,
        h0: Any,
        c0: Any,
        lengths: npt.NDArray[np.int64] | Any | None,  # or fastrnn._C.LengthsPlan for (T, B)
        reverse: bool,
        training: bool,
        y: Any,
        h_n: Any,
        c_n: Any = None,
        persistent: str | bool | None = None,
    ) -> Context | None:
        """x (T, B, I) view; writes y (a zero-filled (T, B, H) view), h_n, c_n (B, H).

        persistent: the small-batch persistent kernels (B <= 8) for this forward and its
        backward: "auto" (where persistent_plan fits), "on" / True (ValueError where they cannot
        run), "off" / False; None reads FASTRNN_CUDA_PERSISTENT (auto, 1, 0; default auto)."""
    def backward(
        self,
        ctx: Context,
        dy: Any,
        dh_n: Any,
        dc_n: Any,
        dx: Any,
        dx_accumulate: bool,
        dh0: Any,
        dc0: Any = None,
    ) -> dict[str, DeviceArray | None]:
        """Writes dx (a (T, B, I) view: zero-filled, or added to), dh0, dc0; returns
        {"w_ih", "w_hh", "b_ih", "b_hh", "peephole"} as new device arrays (None where absent)."""

def persistent_plan(
    cell: str, hidden: int, batch: int, dtype: Any, device: int = 0
) -> dict[str, Any]:
    """The persistent forward kernel's launch for a layer on this device: {"fits", "reason"
    (why not, else None), "blocks", "units_per_block", "threads", "passes", "shared_bytes"}."""

def probe() -> dict[str, Any]: ...
def empty(shape: Any, dtype: Any, device: int = 0) -> DeviceArray: ...
def zeros(shape: Any, dtype: Any, device: int = 0) -> DeviceArray: ...
def to_device(array: npt.ArrayLike, device: int = 0, dtype: Any = None) -> DeviceArray: ...
def as_device_array(array: Any) -> DeviceArray: ...
def is_device_array(obj: Any) -> bool: ...
def dropout(x: Any, p: float, seed: int) -> DeviceArray: ...
def synchronize(device: int = 0) -> None: ...
