"""Functional forms for NumPy users who hold their own weights: one layer, one direction.

Per cell a whole-sequence forward, its backward, and one streaming step:

    rnn_forward / rnn_backward / rnn_cell      Elman RNN, nonlinearity "tanh" or "relu"
    gru_forward / gru_backward / gru_cell      GRU, reset_after=True is PyTorch's form
    lstm_forward / lstm_backward / lstm_cell   LSTM, optional peepholes (i, f, o)

Weights use PyTorch's shapes and gate orders: w_ih (G*H, I), w_hh (G*H, H), b_ih, b_hh (G*H,)
with G = 1 (RNN), 3 (GRU: r, z, n), 4 (LSTM: i, f, g, o). The dtype (float32 or float64) is
w_hh's; every other array must have it. Each call copies and packs the weights, so for repeated
use at small sizes the layer classes in fastrnn.rnn are faster. Stacking, directions and
batch-first layouts are the layers' business, not this module's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _C, _autocast, _checks
from ._cells import CELLS

__all__ = [
    "SequenceContext",
    "gru_backward",
    "gru_cell",
    "gru_forward",
    "lstm_backward",
    "lstm_cell",
    "lstm_forward",
    "rnn_backward",
    "rnn_cell",
    "rnn_forward",
]

_OWNER = "the weights' dtype"


class SequenceContext:
    """What a `*_forward(..., need_grad=True)` keeps for its `*_backward`; opaque to users."""

    __slots__ = ("batch", "ctx", "steps", "weights")

    def __init__(self, weights: Any, ctx: Any, steps: int, batch: int) -> None:
        self.weights = weights
        self.ctx = ctx
        self.steps = steps
        self.batch = batch

    @property
    def cell(self) -> str:
        return str(self.weights.cell)

    def __repr__(self) -> str:
        return f"SequenceContext(cell={self.cell!r}, T={self.steps}, B={self.batch})"


def _rnn_cell_name(nonlinearity: str) -> str:
    return "rnn_" + _checks.nonlinearity_arg(nonlinearity)


def _gru_cell_name(reset_after: bool) -> str:
    return "gru" if reset_after else "gru_reset_before"


def _forward(
    cell: str,
    x: Any,
    h0: Any,
    c0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any,
    b_hh: Any,
    peephole: Any,
    lengths: Any,
    reverse: bool,
    need_grad: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, SequenceContext | None]:
    arrays, dtype, input_size, hidden = _checks.cell_weights(cell, w_ih, w_hh, b_ih, b_hh, peephole)
    xs = _checks.seq_input(x, input_size, dtype)
    T, B = xs.shape[0], xs.shape[1]
    if h0 is not None:
        h0 = _checks.step_state("h0", h0, B, hidden, dtype, True, _OWNER)
    if c0 is not None:
        c0 = _checks.step_state("c0", c0, B, hidden, dtype, True, _OWNER)
    lens = _checks.lengths_arg(lengths, B, T)
    weights = _C.Weights(cell, **arrays)
    bf16 = _autocast.is_autocast_enabled()  # see fastrnn.autocast; float64 ignores it
    y, h_n, c_n, ctx = weights.forward(xs, h0, c0, lens, bool(reverse), bool(need_grad), bf16)
    return y, h_n, c_n, (SequenceContext(weights, ctx, T, B) if need_grad else None)


def _backward(
    cells: tuple[str, ...], fn: str, ctx: Any, dy: Any, dh_n: Any, dc_n: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    if not isinstance(ctx, SequenceContext):
        raise TypeError(
            f"ctx: expected the context returned by {fn.replace('backward', 'forward')}(..., "
            f"need_grad=True), got {type(ctx).__name__}"
        )
    if ctx.cell not in cells:
        raise ValueError(
            f"ctx: {fn} needs a context from a {cells[0].split('_')[0]} forward, got one from {ctx.cell!r}"
        )
    w = ctx.weights
    dtype, T, B, H = np.dtype(w.dtype), ctx.steps, ctx.batch, int(w.hidden_size)
    if dy is not None:
        dy = _checks.grad_output("dy", dy, (T, B, H), "(T, B, H)", dtype)
    if dh_n is not None:
        dh_n = _checks.grad_output("dh_n", dh_n, (B, H), "(B, H)", dtype)
    if dc_n is not None:
        dc_n = _checks.grad_output("dc_n", dc_n, (B, H), "(B, H)", dtype)
    dx, dh0, dc0, grads = w.backward(ctx.ctx, dy, dh_n, dc_n)
    return dx, dh0, dc0, {k: v for k, v in grads.items() if v is not None}


def _cell(
    cell: str, x: Any, h: Any, c: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, peephole: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    arrays, dtype, input_size, hidden = _checks.cell_weights(cell, w_ih, w_hh, b_ih, b_hh, peephole)
    xb, batched = _checks.step_input(x, input_size, dtype, _OWNER)
    B = xb.shape[0]
    h = (
        np.zeros((B, hidden), dtype)
        if h is None
        else _checks.step_state("h", h, B, hidden, dtype, batched, _OWNER)
    )
    if CELLS[cell].cell_state:
        c = (
            np.zeros((B, hidden), dtype)
            if c is None
            else _checks.step_state("c", c, B, hidden, dtype, batched, _OWNER)
        )
    h1, c1 = _C.Weights(cell, **arrays).step(xb, h, c, _autocast.is_autocast_enabled())
    if not batched:
        return h1[0], None if c1 is None else c1[0]
    return h1, c1


# --- RNN -------------------------------------------------------------------------------------


def rnn_forward(
    x: Any,
    h0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    *,
    nonlinearity: str = "tanh",
    lengths: Any = None,
    reverse: bool = False,
    need_grad: bool = False,
) -> tuple[np.ndarray, np.ndarray, SequenceContext | None]:
    """Elman RNN over a whole sequence: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    Parameters
    ----------
    x : ndarray (T, B, I)
    h0 : ndarray (B, H) or None
        Initial state; None means zeros.
    w_ih : ndarray (H, I)
    w_hh : ndarray (H, H)
    b_ih, b_hh : ndarray (H,) or None
    nonlinearity : {"tanh", "relu"}
    lengths : B integers in [1, T], or None for all T
        Sequence b runs steps 0..lengths[b]-1 only; later steps are not computed.
    reverse : bool
        Run each sequence from step lengths[b]-1 down to 0.
    need_grad : bool
        Keep what `rnn_backward` needs and return it as ctx.

    Returns
    -------
    y : ndarray (T, B, H)
        h_t at every step; 0 at steps t >= lengths[b].
    h_n : ndarray (B, H)
        The state after each sequence's own last step.
    ctx : SequenceContext or None
        For `rnn_backward`; None unless need_grad.
    """
    y, h_n, _, ctx = _forward(
        _rnn_cell_name(nonlinearity), x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths,
        reverse, need_grad,
    )  # fmt: skip
    return y, h_n, ctx


def rnn_backward(
    ctx: SequenceContext, dy: Any, dh_n: Any = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Backward through time of `rnn_forward(..., need_grad=True)`.

    Parameters
    ----------
    ctx : SequenceContext
        From `rnn_forward`; may be used for several backward calls.
    dy : ndarray (T, B, H) or None
        Gradient of the loss with respect to y; entries at t >= lengths[b] are ignored.
    dh_n : ndarray (B, H) or None

    Returns
    -------
    dx : ndarray (T, B, I)
    dh0 : ndarray (B, H)
    grads : dict
        "w_ih" (H, I), "w_hh" (H, H), and "b_ih", "b_hh" (H,) when the forward had them.
    """
    dx, dh0, _, grads = _backward(("rnn_tanh", "rnn_relu"), "rnn_backward", ctx, dy, dh_n, None)
    return dx, dh0, grads


def rnn_cell(
    x: Any,
    h: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    *,
    nonlinearity: str = "tanh",
) -> np.ndarray:
    """One Elman RNN step (streaming; no gradient).

    Parameters
    ----------
    x : ndarray (B, I), or unbatched (I,)
    h : ndarray (B, H) (or (H,)), or None for zeros
    w_ih, w_hh, b_ih, b_hh, nonlinearity : as in `rnn_forward`

    Returns
    -------
    h1 : ndarray (B, H), or (H,)
    """
    return _cell(_rnn_cell_name(nonlinearity), x, h, None, w_ih, w_hh, b_ih, b_hh, None)[0]


# --- GRU -------------------------------------------------------------------------------------


def gru_forward(
    x: Any,
    h0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    *,
    reset_after: bool = True,
    lengths: Any = None,
    reverse: bool = False,
    need_grad: bool = False,
) -> tuple[np.ndarray, np.ndarray, SequenceContext | None]:
    """GRU over a whole sequence, gates (r, z, n) as in PyTorch.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise, h' = (1 - z) * n + z * h, with
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) for reset_after=True (PyTorch, cuDNN) or
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) for reset_after=False (original, ONNX default).

    Parameters
    ----------
    x : ndarray (T, B, I)
    h0 : ndarray (B, H) or None
        Initial state; None means zeros.
    w_ih : ndarray (3*H, I)
    w_hh : ndarray (3*H, H)
    b_ih, b_hh : ndarray (3*H,) or None
    reset_after : bool
    lengths : B integers in [1, T], or None for all T
        Sequence b runs steps 0..lengths[b]-1 only; later steps are not computed.
    reverse : bool
        Run each sequence from step lengths[b]-1 down to 0.
    need_grad : bool
        Keep what `gru_backward` needs and return it as ctx.

    Returns
    -------
    y : ndarray (T, B, H)
        h_t at every step; 0 at steps t >= lengths[b].
    h_n : ndarray (B, H)
        The state after each sequence's own last step.
    ctx : SequenceContext or None
        For `gru_backward`; None unless need_grad.
    """
    y, h_n, _, ctx = _forward(
        _gru_cell_name(reset_after), x, h0, None, w_ih, w_hh, b_ih, b_hh, None, lengths,
        reverse, need_grad,
    )  # fmt: skip
    return y, h_n, ctx


def gru_backward(
    ctx: SequenceContext, dy: Any, dh_n: Any = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Backward through time of `gru_forward(..., need_grad=True)`.

    Parameters
    ----------
    ctx : SequenceContext
        From `gru_forward`; may be used for several backward calls.
    dy : ndarray (T, B, H) or None
        Gradient of the loss with respect to y; entries at t >= lengths[b] are ignored.
    dh_n : ndarray (B, H) or None

    Returns
    -------
    dx : ndarray (T, B, I)
    dh0 : ndarray (B, H)
    grads : dict
        "w_ih" (3*H, I), "w_hh" (3*H, H), and "b_ih", "b_hh" (3*H,) when the forward had them.
    """
    dx, dh0, _, grads = _backward(("gru", "gru_reset_before"), "gru_backward", ctx, dy, dh_n, None)
    return dx, dh0, grads


def gru_cell(
    x: Any,
    h: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    *,
    reset_after: bool = True,
) -> np.ndarray:
    """One GRU step (streaming; no gradient).

    Parameters
    ----------
    x : ndarray (B, I), or unbatched (I,)
    h : ndarray (B, H) (or (H,)), or None for zeros
    w_ih, w_hh, b_ih, b_hh, reset_after : as in `gru_forward`

    Returns
    -------
    h1 : ndarray (B, H), or (H,)
    """
    return _cell(_gru_cell_name(reset_after), x, h, None, w_ih, w_hh, b_ih, b_hh, None)[0]


# --- LSTM ------------------------------------------------------------------------------------


def lstm_forward(
    x: Any,
    h0: Any,
    c0: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    *,
    peephole: Any = None,
    lengths: Any = None,
    reverse: bool = False,
    need_grad: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, SequenceContext | None]:
    """LSTM over a whole sequence, gates (i, f, g, o) as in PyTorch.

    c' = f * c + i * g, h' = o * tanh(c'); with peepholes P = (p_i, p_f, p_o), i and f add
    p * c and o adds p_o * c' to their pre-activations (ONNX semantics).

    Parameters
    ----------
    x : ndarray (T, B, I)
    h0, c0 : ndarray (B, H) or None
        Initial states; None means zeros.
    w_ih : ndarray (4*H, I)
    w_hh : ndarray (4*H, H)
    b_ih, b_hh : ndarray (4*H,) or None
    peephole : ndarray (3*H,) or None
        Peephole weights in order (i, f, o).
    lengths : B integers in [1, T], or None for all T
        Sequence b runs steps 0..lengths[b]-1 only; later steps are not computed.
    reverse : bool
        Run each sequence from step lengths[b]-1 down to 0.
    need_grad : bool
        Keep what `lstm_backward` needs and return it as ctx.

    Returns
    -------
    y : ndarray (T, B, H)
        h_t at every step; 0 at steps t >= lengths[b].
    h_n, c_n : ndarray (B, H)
        The states after each sequence's own last step.
    ctx : SequenceContext or None
        For `lstm_backward`; None unless need_grad.
    """
    y, h_n, c_n, ctx = _forward(
        "lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths, reverse, need_grad
    )
    assert c_n is not None
    return y, h_n, c_n, ctx


def lstm_backward(
    ctx: SequenceContext, dy: Any, dh_n: Any = None, dc_n: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Backward through time of `lstm_forward(..., need_grad=True)`.

    Parameters
    ----------
    ctx : SequenceContext
        From `lstm_forward`; may be used for several backward calls.
    dy : ndarray (T, B, H) or None
        Gradient of the loss with respect to y; entries at t >= lengths[b] are ignored.
    dh_n, dc_n : ndarray (B, H) or None

    Returns
    -------
    dx : ndarray (T, B, I)
    dh0, dc0 : ndarray (B, H)
    grads : dict
        "w_ih" (4*H, I), "w_hh" (4*H, H), and "b_ih", "b_hh" (4*H,), "peephole" (3*H,) when
        the forward had them.
    """
    dx, dh0, dc0, grads = _backward(("lstm",), "lstm_backward", ctx, dy, dh_n, dc_n)
    assert dc0 is not None
    return dx, dh0, dc0, grads


def lstm_cell(
    x: Any,
    h: Any,
    c: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any = None,
    b_hh: Any = None,
    *,
    peephole: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step (streaming; no gradient).

    Parameters
    ----------
    x : ndarray (B, I), or unbatched (I,)
    h, c : ndarray (B, H) (or (H,)), or None for zeros
    w_ih, w_hh, b_ih, b_hh, peephole : as in `lstm_forward`

    Returns
    -------
    h1, c1 : ndarray (B, H), or (H,)
    """
    h1, c1 = _cell("lstm", x, h, c, w_ih, w_hh, b_ih, b_hh, peephole)
    assert c1 is not None
    return h1, c1
