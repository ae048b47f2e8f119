"""The one loop over the layers and directions of a multi-layer RNN, shared by the CPU path
(rnn.py) and the GPU path (_cuda.py): each backend supplies how to run one direction of one layer,
how to join the directions' outputs, and its dropout; the order of layers, directions, dropout
masks and gradient sums, and the one lengths plan of a forward, are written here once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _C


def layer_loop(
    L: int,
    D: int,
    x: Any,
    lengths: Any,
    direction: Callable[[int, int, Any, bool, Any], tuple[Any, Any]],
    join: Callable[[list[Any], bool], Any],
    dropout: Callable[[Any], tuple[Any, Any]] | None,
) -> tuple[Any, list[list[Any]], list[Any]]:
    """The one loop over layers and directions of a multi-layer RNN, for every backend (rnn.py's
    CPU path, _cuda.py's GPU path): direction d of layer k reads the previous layer's output
    (x for k = 0) through `direction(k, d, input, last, plan) -> (y_d, ctx)`; `join(ys, last)`
    makes the layer's output (T, B, D*H); `dropout(out) -> (out, saved)` runs between layers
    (None: off). `lengths` (checked int64 (B,), or None) becomes one `_C.LengthsPlan` for the
    whole forward, checked and sorted once and handed to every layer and direction as `plan`
    (None without lengths). Returns the last layer's output, the contexts [L][D] and what each
    dropout saved [L]."""
    plan = None if lengths is None else _C.LengthsPlan(lengths, x.shape[0])
    ctxs: list[list[Any]] = []
    saved: list[Any] = []
    inp = x
    for k in range(L):
        last = k == L - 1
        ys, ctx_k = [], []
        for d in range(D):
            y, ctx = direction(k, d, inp, last, plan)
            ys.append(y)
            ctx_k.append(ctx)
        out = join(ys, last)
        s = None
        if dropout is not None and not last:
            out, s = dropout(out)
        ctxs.append(ctx_k)
        saved.append(s)
        inp = out
    return inp, ctxs, saved


def layer_loop_backward(
    L: int,
    D: int,
    dy: Any,
    saved: list[Any],
    direction: Callable[[int, int, Any, Any], Any],
    split: Callable[[Any], list[Any]],
    dropout_backward: Callable[[Any, Any], Any],
) -> Any:
    """`layer_loop` in reverse: from the gradient of the last layer's output (or None), layer by
    layer, undoing each dropout (`dropout_backward(dy, saved)`), splitting dy by direction and
    summing the directions' input gradients: `direction(k, d, dy_d, dx_so_far) -> dx_so_far`.
    Returns the gradient of the first layer's input."""
    for k in reversed(range(L)):
        if saved[k] is not None and dy is not None:
            dy = dropout_backward(dy, saved[k])  # d(y * mask)/dy
        dys = split(dy)
        dx = None
        for d in range(D):
            dx = direction(k, d, dys[d], dx)
        dy = dx
    return dy
