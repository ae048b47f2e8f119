"""Recurrent layers and cells as `Module`s, on the fused kernels.

`RNN`, `GRU`, `LSTM` are fastrnn.RNN/GRU/LSTM themselves (one class per concept: every layer is
a Module, with parameters, accumulating gradients and PyTorch's state_dict names); they are
re-exported here so that `fastrnn.nn` holds every building block.

`RNNCell`, `GRUCell`, `LSTMCell` run one step *with* a backward (fastrnn.LSTMCell and friends are
inference-only): each training-mode call runs the fused kernel over one step and pushes what its
backward needs onto the cell's tape; each `backward` pops the most recent step. A decoder loop is
therefore differentiated by the same loop run in reverse. `clear_caches()` (or `eval()`) drops a
tape whose backward will not come.

Dimension letters: T steps, B batch, I input, H hidden, G gates, L layers, D directions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _C
from ..functional import _gru_cell_name, _rnn_cell_name
from ..rnn import GRU, LSTM, RNN
from . import _checks
from .module import Module, parameters_version

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]


# --- cells with backward --------------------------------------------------------------------------

_CELL_KEYS = (
    ("w_ih", "weight_ih"),
    ("w_hh", "weight_hh"),
    ("b_ih", "bias_ih"),
    ("b_hh", "bias_hh"),
)


class _Cell(Module):
    _gates = 1
    _has_c = False
    _transient = ("_packed", "_tape")

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, bias: bool, dtype: Any, seed: Any
    ) -> None:
        super().__init__()
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.dtype = _checks.dtype_arg(dtype)
        self._cell = cell
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)  # torch's default for every cell parameter
        GH, I, H = self._gates * self.hidden_size, self.input_size, self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (GH, I), "weight_hh": (GH, H)}
        if self.bias:
            shapes.update(bias_ih=(GH,), bias_hh=(GH,))
        for name, shape in shapes.items():
            self.register_parameter(name, rng.uniform(-bound, bound, shape).astype(self.dtype))
        self._packed: Any = None
        self._packed_version = -1
        self._tape: list[tuple[Any, Any, bool]] = []

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _on_mode_change(self) -> None:
        self._tape = []

    def _weights(self) -> Any:
        v = parameters_version()
        if self._packed is None or v != self._packed_version:
            p = self._parameters
            self._packed = _C.Weights(self._cell, **{k: p.get(n) for k, n in _CELL_KEYS})
            self._packed_version = v
        return self._packed

    def _step(self, x: Any, h: Any, c: Any) -> tuple[np.ndarray, np.ndarray | None]:
        xb, batched = _checks._base.step_input(x, self.input_size, self.dtype, "the cell's dtype")
        B, H = xb.shape[0], self.hidden_size
        owner = "the cell's dtype"
        h = (
            np.zeros((B, H), self.dtype)
            if h is None
            else _checks._base.step_state("h", h, B, H, self.dtype, batched, owner)
        )
        if self._has_c:
            c = (
                np.zeros((B, H), self.dtype)
                if c is None
                else _checks._base.step_state("c", c, B, H, self.dtype, batched, owner)
            )
        w = self._weights()
        if self.training:
            _, h1, c1, ctx = w.forward(xb[None], h, c, None, False, True)
            self._tape.append((w, ctx, batched))
        else:
            h1, c1 = w.step(xb, h, c)
        if not batched:
            return h1[0], None if c1 is None else c1[0]
        return h1, c1

    def _step_backward(
        self, dh1: Any, dc1: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if not self._tape:
            raise _checks.no_forward(type(self).__name__)
        w, ctx, batched = self._tape.pop()
        H = self.hidden_size
        dh = None if dh1 is None else _checks.float_array("dh", dh1, self.dtype, "the cell's dtype")
        dc = None if dc1 is None else _checks.float_array("dc", dc1, self.dtype, "the cell's dtype")
        if not batched:
            dh = None if dh is None else dh.reshape(1, H)
            dc = None if dc is None else dc.reshape(1, H)
        dh = None if dh is None else _checks.contiguous(dh)
        dc = None if dc is None else _checks.contiguous(dc)
        try:
            dx, dh0, dc0, g = w.backward(ctx, None, dh, dc)
        except ValueError as e:
            self._tape.append((w, ctx, batched))  # leave the tape as it was
            raise ValueError(f"{type(self).__name__}.backward: {e}") from None
        for k, n in _CELL_KEYS:
            if g.get(k) is not None:
                self._accumulate(n, g[k])
        dx = dx[0]
        if not batched:
            return dx[0], dh0[0], None if dc0 is None else dc0[0]
        return dx, dh0, dc0


class RNNCell(_Cell):
    """One Elman RNN step with backward; torch.nn.RNNCell's arguments and parameter names."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = "float32", seed: Any = None) -> None:  # fmt: skip
        super().__init__(_rnn_cell_name(nonlinearity), input_size, hidden_size, bias, dtype, seed)

    def forward(self, x: Any, hx: Any = None) -> np.ndarray:
        """x (B, I) or (I,), hx (B, H) / (H,) / None -> h1."""
        return self._step(x, hx, None)[0]

    def backward(self, dh1: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pop the last step: dh1 -> (dx, dh)."""
        dx, dh, _ = self._step_backward(dh1, None)
        return dx, dh


class GRUCell(RNNCell):
    """One GRU step with backward; torch.nn.GRUCell's arguments and names (gates r, z, n)."""

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, reset_after: bool = True,
                 dtype: Any = "float32", seed: Any = None) -> None:  # fmt: skip
        _Cell.__init__(
            self, _gru_cell_name(reset_after), input_size, hidden_size, bias, dtype, seed
        )


class LSTMCell(_Cell):
    """One LSTM step with backward; torch.nn.LSTMCell's arguments and names (gates i, f, g, o)."""

    _gates = 4
    _has_c = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 dtype: Any = "float32", seed: Any = None) -> None:  # fmt: skip
        super().__init__("lstm", input_size, hidden_size, bias, dtype, seed)

    def forward(self, x: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """x (B, I) or (I,), hx = (h, c) or None -> (h1, c1)."""
        h, c = _checks._base.lstm_state(hx)
        h1, c1 = self._step(x, h, c)
        assert c1 is not None
        return h1, c1

    def backward(
        self, dh1: Any, dc1: Any = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Pop the last step: (dh1, dc1) -> (dx, (dh, dc))."""
        dx, dh, dc = self._step_backward(dh1, dc1)
        assert dc is not None
        return dx, (dh, dc)
