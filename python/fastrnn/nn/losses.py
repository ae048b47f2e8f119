"""Losses with their gradients: softmax cross-entropy and binary cross-entropy with logits.

Both are fused and numerically stable: the forward pass also produces the gradient, and logits
are only exponentiated after subtracting their maximum (cross-entropy) or as exp(-|x|)
(binary), so no input overflows. Semantics follow torch.nn.functional.cross_entropy and
binary_cross_entropy_with_logits: same arguments, same reductions, same results.

Functional forms return the loss; `*_with_grad` also return d loss / d input. Loss modules
(CrossEntropyLoss, BCEWithLogitsLoss) keep that gradient for `backward(grad_output=1.0)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks
from .module import Module

__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_with_grad",
    "cross_entropy",
    "cross_entropy_with_grad",
    "log_softmax",
    "softmax",
]

_REDUCTIONS = ("mean", "sum", "none")


def softmax(x: Any, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the maximum first."""
    x = np.asarray(_checks.to_numpy(x))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x: Any, axis: int = -1) -> np.ndarray:
    """x - logsumexp(x) along `axis`, shifted by the maximum first."""
    x = np.asarray(_checks.to_numpy(x))
    shifted = x - x.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def _float_input(name: str, x: Any) -> np.ndarray:
    x = np.asarray(_checks.to_numpy(x))
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64 logits, got dtype {x.dtype}")
    return x


def cross_entropy_with_grad(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> tuple[Any, np.ndarray]:
    """Softmax cross-entropy and its gradient with respect to `input`, in one pass.

    Parameters
    ----------
    input : ndarray (N, C), unbatched (C,), or (N, C, d1, ...) as in torch (classes on axis 1)
        Unnormalized logits.
    target : class indices (N,) / () / (N, d1, ...) in [0, C) or equal to `ignore_index`;
        or class probabilities shaped like `input` (float).
    weight : ndarray (C,) or None
        Per-class rescaling, as in torch.
    ignore_index : int
        Targets equal to it contribute nothing and are left out of the mean (index targets only).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the summed weight of the non-ignored targets (their count without
        `weight`); with probability targets it divides by the number of rows.
    label_smoothing : float in [0, 1]
        The target becomes (1 - s) * target + s / C.

    Returns
    -------
    loss : float for "mean"/"sum"; ndarray of the target's shape for "none"
    dinput : ndarray shaped like `input`, d sum-or-mean-loss / d input (for "none": of the sum)
    """
    x = _float_input("input", input)
    reduction = _checks.choice("reduction", reduction, _REDUCTIONS)
    s = float(label_smoothing)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing}")
    if x.ndim == 0:
        raise ValueError("input: expected at least 1 dimension (C,), got a scalar")
    unbatched = x.ndim == 1
    xb = x[None] if unbatched else x
    C = xb.shape[1]
    # Classes last, rows first: (M, C) where M = N * d1 * ...
    x2 = np.moveaxis(xb, 1, -1).reshape(-1, C) if xb.ndim > 2 else xb
    w = None
    if weight is not None:
        w = np.asarray(_checks.to_numpy(weight), dtype=x.dtype)
        if w.shape != (C,):
            raise ValueError(f"weight: expected shape (C,) = ({C},), got {w.shape}")

    t = np.asarray(_checks.to_numpy(target))
    prob_target = t.dtype.kind == "f"
    m = x2.max(axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # a spread beyond the dtype's range: -inf, probability 0
        shifted = x2 - m
    e = np.exp(shifted)
    se = e.sum(axis=1, keepdims=True)
    logp = shifted - np.log(se)  # (M, C)
    p = e / se

    if prob_target:
        if t.shape != x.shape:
            raise ValueError(
                f"target: probability targets must have the input's shape {x.shape}, got {t.shape}"
            )
        tb = t[None] if unbatched else t
        q = (np.moveaxis(tb, 1, -1).reshape(-1, C) if tb.ndim > 2 else tb).astype(x.dtype)
        if s > 0:
            q = q * (1 - s) + s / C
        wq = q if w is None else q * w
        rows = -(wq * logp).sum(axis=1)  # (M,)
        grad = p * wq.sum(axis=1, keepdims=True) - wq
        denom = float(rows.shape[0])
        valid = None
    else:
        if t.dtype == np.bool_ or t.dtype.kind not in "iu":
            raise TypeError(
                f"target: expected integer class indices or float probabilities, got dtype {t.dtype}"
            )
        expect = x.shape[:1] + x.shape[2:] if not unbatched else ()
        if t.shape != expect:
            raise ValueError(
                f"target: expected shape {expect} for input of shape {x.shape}, got {t.shape}"
            )
        t1 = t.reshape(-1).astype(np.int64)
        valid = t1 != ignore_index
        bad = valid & ((t1 < 0) | (t1 >= C))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise IndexError(
                f"target: class index {int(t1[i])} at position {i} is out of bounds for {C} classes "
                f"(and is not ignore_index={ignore_index})"
            )
        tc = np.where(valid, t1, 0)
        r = np.arange(t1.shape[0])
        wt = np.ones(t1.shape[0], x.dtype) if w is None else w[tc]
        wt = wt * valid
        nll = -logp[r, tc] * wt  # (M,)
        grad = p * wt[:, None]
        grad[r, tc] -= wt
        if s > 0:
            if w is None:
                smooth = -logp.sum(axis=1)
                gsm = p * C - 1.0
            else:
                smooth = -(logp * w).sum(axis=1)
                gsm = p * w.sum() - w
            smooth = smooth * valid
            rows = (1 - s) * nll + (s / C) * smooth
            grad = (1 - s) * grad + (s / C) * gsm * valid[:, None]
        else:
            rows = nll
        denom = float(wt.sum())

    if reduction == "none":
        out_shape = () if unbatched else x.shape[:1] + x.shape[2:]
        loss: Any = rows.astype(x.dtype, copy=False).reshape(out_shape)
    elif reduction == "sum":
        loss = float(rows.sum())
    else:
        loss = float(rows.sum() / denom) if denom > 0 else float("nan")
        grad = grad / denom if denom > 0 else grad * np.nan
    grad = grad.astype(x.dtype, copy=False)
    if xb.ndim > 2:
        grad = np.moveaxis(grad.reshape(xb.shape[:1] + xb.shape[2:] + (C,)), -1, 1)
    if unbatched:
        grad = grad[0]
    return loss, np.ascontiguousarray(grad)


def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Softmax cross-entropy; torch.nn.functional.cross_entropy's arguments and results.
    See `cross_entropy_with_grad`."""
    return cross_entropy_with_grad(input, target, weight, ignore_index, reduction, label_smoothing)[
        0
    ]


def binary_cross_entropy_with_logits_with_grad(
    input: Any,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> tuple[Any, np.ndarray]:
    """Sigmoid + binary cross-entropy, fused and stable, and its gradient.

    loss = -w [p y log s(x) + (1 - y) log(1 - s(x))] with s the sigmoid and p = pos_weight,
    computed as w [(1 - y) x + (1 + (p - 1) y) softplus(-x)] with softplus(-x) =
    max(-x, 0) + log1p(exp(-|x|)).

    Parameters
    ----------
    input : ndarray (...), logits
    target : ndarray shaped like input, values in [0, 1]
    weight : ndarray broadcastable to input, or None
    reduction : {"mean", "sum", "none"}
    pos_weight : ndarray broadcastable to input (usually (C,) for the last axis), or None

    Returns
    -------
    loss, dinput : as for `cross_entropy_with_grad`.
    """
    x = _float_input("input", input)
    reduction = _checks.choice("reduction", reduction, _REDUCTIONS)
    y = np.asarray(_checks.to_numpy(target))
    if y.shape != x.shape:
        raise ValueError(
            f"target: expected the input's shape {x.shape}, got {y.shape} (torch requires equal sizes)"
        )
    y = y.astype(x.dtype, copy=False)
    e = np.exp(-np.abs(x))  # never overflows
    softplus_neg = np.maximum(-x, 0) + np.log1p(e)  # log(1 + exp(-x))
    sig_neg = np.where(x >= 0, e, 1) / (1 + e)  # sigmoid(-x)
    if pos_weight is not None:
        pw = np.asarray(_checks.to_numpy(pos_weight), dtype=x.dtype)
        lw = 1 + (pw - 1) * y
    else:
        lw = np.ones_like(x)
    rows = (1 - y) * x + lw * softplus_neg
    grad = (1 - y) - lw * sig_neg  # d/dx of rows
    if weight is not None:
        w = np.asarray(_checks.to_numpy(weight), dtype=x.dtype)
        try:
            np.broadcast_shapes(w.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"weight: shape {w.shape} does not broadcast to the input's {x.shape}"
            ) from None
        rows = rows * w
        grad = grad * w
    rows = np.broadcast_to(rows, x.shape)
    grad = np.broadcast_to(grad, x.shape)
    if reduction == "none":
        loss: Any = rows.astype(x.dtype, copy=False)
    elif reduction == "sum":
        loss = float(rows.sum())
    else:
        loss = float(rows.mean()) if rows.size else float("nan")
        grad = grad / max(rows.size, 1)
    return loss, np.ascontiguousarray(grad, dtype=x.dtype)


def binary_cross_entropy_with_logits(
    input: Any,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Any:
    """torch.nn.functional.binary_cross_entropy_with_logits; see the `_with_grad` form."""
    return binary_cross_entropy_with_logits_with_grad(input, target, weight, reduction, pos_weight)[
        0
    ]


class _Loss(Module):
    def __init__(self, reduction: str) -> None:
        super().__init__()
        self.reduction = _checks.choice("reduction", reduction, _REDUCTIONS)
        self._grad: np.ndarray | None = None

    def backward(self, grad_output: Any = 1.0) -> np.ndarray:
        """d loss / d input of the last forward, scaled by grad_output (a scalar, or for
        reduction="none" an array shaped like the loss)."""
        if self._grad is None:
            raise _checks.no_forward(type(self).__name__)
        g = np.asarray(_checks.to_numpy(grad_output))
        if self.reduction == "none" and g.ndim > 0:
            return self._grad * self._expand(g)
        return self._grad * g.astype(self._grad.dtype)

    def _expand(self, g: np.ndarray) -> np.ndarray:
        return g

    def _keep(self, grad: np.ndarray) -> None:
        self._grad = grad if self.training else None


class CrossEntropyLoss(_Loss):
    """torch.nn.CrossEntropyLoss: call with (input, target) for the loss; `backward()` gives
    d loss / d input. Arguments as in `cross_entropy_with_grad`."""

    def __init__(
        self,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self.weight = None if weight is None else np.asarray(_checks.to_numpy(weight))
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self._class_axis = 1

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"

    def forward(self, input: Any, target: Any) -> Any:
        loss, grad = cross_entropy_with_grad(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )
        self._ndim = np.ndim(input)
        self._keep(grad)
        return loss

    def _expand(self, g: np.ndarray) -> np.ndarray:
        # loss "none" has the input's shape without the class axis (axis 1, or 0 when unbatched)
        return np.expand_dims(g, 0 if self._ndim == 1 else 1)


class BCEWithLogitsLoss(_Loss):
    """torch.nn.BCEWithLogitsLoss; see `binary_cross_entropy_with_logits_with_grad`."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Any, target: Any) -> Any:
        loss, grad = binary_cross_entropy_with_logits_with_grad(
            input, target, self.weight, self.reduction, self.pos_weight
        )
        self._keep(grad)
        return loss
