"""Feed-forward building blocks with forward and backward: Linear, Embedding, Dropout, activations.

Each is a `Module` compatible with its torch.nn namesake (constructor arguments, parameter names
and shapes, initialization distribution). A training-mode forward keeps what its backward needs;
`backward` differentiates the last forward, returns the gradient of the input and adds the
parameter gradients into `grads`. Shapes: `...` is any number of leading dimensions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _C, _autocast
from . import _checks
from ._ops import mm, rows
from .module import Module

__all__ = ["Dropout", "Embedding", "Identity", "Linear", "ReLU", "Sigmoid", "Tanh"]


def _private(a: np.ndarray, given: Any) -> np.ndarray:
    """What a training forward keeps for its backward, safe from the caller: a copy when `a` is
    (a view of) the caller's array, which the caller may change before backward, as torch's
    autograd keeps its own. Converted inputs are already private (one copy of the input, small
    next to the product that reads it)."""
    if a is given or not a.flags.owndata:
        return a.copy()
    return a


class Linear(Module):
    """y = x W^T + b; torch.nn.Linear compatible.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : {"float32", "float64"}
    seed : int or None
        weight (out_features, in_features) and bias (out_features,) ~ U(-1/sqrt(in), 1/sqrt(in)),
        torch's default.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        self.out_features = _checks.positive_int("out_features", out_features)
        self.dtype = _checks.dtype_arg(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        shape = (self.out_features, self.in_features)
        self.register_parameter("weight", rng.uniform(-bound, bound, shape).astype(self.dtype))
        if bias:
            self.register_parameter(
                "bias", rng.uniform(-bound, bound, self.out_features).astype(self.dtype)
            )
        self._x: np.ndarray | None = None
        self._x_autocast = False  # the last training forward's products were bfloat16

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={'bias' in self._parameters}"

    def forward(self, x: Any) -> np.ndarray:
        """x (..., in_features) -> y (..., out_features)."""
        given = x
        x = _checks.features("x", x, self.in_features, self.dtype, "(..., F)")
        bf16 = _autocast.active(self)
        y = mm(rows(x), self.weight, trans_b=True, autocast=bf16)  # (N, out)
        if "bias" in self._parameters:
            y += self.bias
        self._x = _private(x, given) if self.training else None
        self._x_autocast = bf16
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy: Any) -> np.ndarray:
        """dy (..., out_features) -> dx (..., in_features); adds dweight, dbias."""
        x = self._x
        if x is None:
            raise _checks.no_forward(type(self).__name__)
        shape = x.shape[:-1] + (self.out_features,)
        dy = _checks.same_shape("dy", dy, shape, self.dtype, "the shape of the last output")
        dy2 = rows(dy)  # y = x W^T + b
        bf16 = self._x_autocast  # as the forward did
        self._accumulate_mm("weight", dy2, rows(x), True, False, bf16)
        if "bias" in self._parameters:
            self._accumulate("bias", dy2.sum(axis=0))
        return mm(dy2, self.weight, autocast=bf16).reshape(x.shape)


class Embedding(Module):
    """A lookup table of vectors; torch.nn.Embedding compatible (weight (V, D) ~ N(0, 1)).

    The backward is a scatter-add of the output gradient into the looked-up rows, done in C++
    (see csrc/nn/embedding.cpp): about 4-10x faster than NumPy's best formulations, and bitwise
    deterministic. Ids must be integers in [0, num_embeddings); others are an IndexError.

    Parameters
    ----------
    num_embeddings : int
        V, the number of rows (vocabulary size).
    embedding_dim : int
        D, features per row.
    padding_idx : int or None
        That row starts at zero and never receives a gradient (negative values count from the end).
    dtype, seed : as for Linear.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = "float32",
        seed: int | None = None,
        _weight: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _checks.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = _checks.positive_int("embedding_dim", embedding_dim)
        self.dtype = _checks.dtype_arg(dtype)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(
                    f"padding_idx: expected an int or None, got {type(padding_idx).__name__} "
                    f"{padding_idx!r}"
                )
            if not -self.num_embeddings <= int(padding_idx) < self.num_embeddings:
                raise ValueError(
                    f"padding_idx: must be within num_embeddings ({self.num_embeddings}), got {padding_idx}"
                )
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            w = np.random.default_rng(seed).standard_normal(
                (self.num_embeddings, self.embedding_dim)
            )
            if padding_idx is not None:
                w[padding_idx] = 0
        else:
            w = _weight
        self.register_parameter("weight", np.asarray(w, dtype=self.dtype))
        self._ids: np.ndarray | None = None

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None, dtype: Any = None
    ) -> Embedding:
        """An Embedding whose weight is a copy of `embeddings` (V, D): an array, or word vectors
        with a ``vectors`` attribute (fastrnn.embeddings.KeyedVectors, gensim's). As in torch,
        `freeze` (the default) keeps the weight fixed: backward accumulates no gradient for it."""
        if hasattr(embeddings, "vectors") and hasattr(embeddings, "index_to_key"):
            embeddings = embeddings.vectors
        w = np.asarray(_checks.to_numpy(embeddings))
        if w.ndim != 2:
            raise ValueError(f"embeddings: expected a 2-D array (V, D), got shape {w.shape}")
        dt = (
            dtype
            if dtype is not None
            else (w.dtype if w.dtype in (np.float32, np.float64) else "float32")
        )
        emb = cls(w.shape[0], w.shape[1], padding_idx, dtype=dt, _weight=w)
        emb.freeze = bool(freeze)
        return emb

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"

    def forward(self, ids: Any) -> np.ndarray:
        """ids (...) integers in [0, V) -> (..., D)."""
        given = ids
        ids = _checks.token_ids("input", ids, self.num_embeddings)
        self._ids = _private(ids, given) if self.training else None
        return self.weight[ids]

    def backward(self, dy: Any) -> None:
        """dy (..., D): adds the scatter-add into grads["weight"]. Ids have no gradient: None."""
        ids = self._ids
        if ids is None:
            raise _checks.no_forward(type(self).__name__)
        if getattr(self, "freeze", False):
            return None
        dy = _checks.same_shape(
            "dy", dy, ids.shape + (self.embedding_dim,), self.dtype, "the shape of the last output"
        )
        g = self._grads.get("weight")
        if g is None:
            g = np.zeros_like(self.weight)
            self._grads["weight"] = g
        pad = -1 if self.padding_idx is None else self.padding_idx
        _C.embedding_backward(
            g, ids.reshape(-1), _checks.contiguous(dy).reshape(-1, self.embedding_dim), pad
        )
        return None


class Dropout(Module):
    """Inverted dropout: in training mode zero each element with probability p and scale the rest
    by 1/(1-p); identity in eval mode. torch.nn.Dropout compatible (own seeded generator)."""

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        super().__init__()
        self.p = _checks.probability("p", p)
        self._rng = np.random.default_rng(seed)
        self._mask: np.ndarray | None = None

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(_checks.to_numpy(x))
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        dt = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        keep = self._rng.random(x.shape, dtype=dt) >= self.p
        self._mask = keep * dt.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, dy: Any) -> np.ndarray:
        dy = np.asarray(_checks.to_numpy(dy))
        if self._mask is None:
            return dy  # eval mode or p == 0: identity
        if dy.shape != self._mask.shape:
            raise ValueError(
                f"dy: expected shape {self._mask.shape} (the shape of the last output), got {dy.shape}"
            )
        return dy * self._mask


class _Activation(Module):
    def __init__(self) -> None:
        super().__init__()
        self._saved: np.ndarray | None = None

    def _save(self, a: np.ndarray) -> None:
        self._saved = a if self.training else None

    def _get(self, dy: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._saved is None:
            raise _checks.no_forward(type(self).__name__)
        dy = np.asarray(_checks.to_numpy(dy))
        if dy.shape != self._saved.shape:
            raise ValueError(
                f"dy: expected shape {self._saved.shape} (the shape of the last output), got {dy.shape}"
            )
        return self._saved, dy


class Tanh(_Activation):
    def forward(self, x: Any) -> np.ndarray:
        y = np.tanh(_checks.to_numpy(x))
        self._save(y)
        return y

    def backward(self, dy: Any) -> np.ndarray:
        y, dy = self._get(dy)
        return dy * (1 - y * y)  # y = tanh(x)


class Sigmoid(_Activation):
    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(_checks.to_numpy(x))
        y = np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)  # stable for large |x|
        self._save(y)
        return y

    def backward(self, dy: Any) -> np.ndarray:
        y, dy = self._get(dy)
        return dy * y * (1 - y)


class ReLU(_Activation):
    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(_checks.to_numpy(x))
        self._save(x > 0)
        return np.maximum(x, 0)

    def backward(self, dy: Any) -> np.ndarray:
        pos, dy = self._get(dy)
        return dy * pos


class Identity(Module):
    def forward(self, x: Any) -> Any:
        return x

    def backward(self, dy: Any) -> Any:
        return dy
