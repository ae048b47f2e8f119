"""Attention over a batch of key/value sequences, with masks, weights returned, and backward.

Both families of the classic sequence-to-sequence papers:

- `AdditiveAttention` (Bahdanau et al. 2015): e[t'] = v . tanh(W_q q + W_k k[t'] + b), the
  score of a query (e.g. the previous decoder state s_{t-1}) against each key through a small
  tanh layer of A units;
- `DotAttention` and `GeneralAttention` (Luong et al. 2015, "dot" and "general"):
  e[t'] = q . k[t'] and e[t'] = q . (W k[t']), optionally scaled by 1/sqrt(Dq).

Then alpha = softmax over t' of e (positions where `mask` is False get weight exactly 0) and
context = sum_t' alpha[t'] v[t'] (values default to the keys).

Shapes: B batch, Tq queries per sequence, Tk keys, Dq / Dk / Dv features, A attention units.
`query` is (B, Dq) for one query per sequence or (B, Tq, Dq); keys (B, Tk, Dk); values
(B, Tk, Dv); mask (B, Tk) bool, True where a key may be attended to (torch's
scaled_dot_product_attention convention; note nn.MultiheadAttention's key_padding_mask is the
opposite).

Two ways to call:
- `forward(query, keys, values, mask)` / `backward(d_context, d_weights)`, like any module;
- for decoders that attend once per step: `memory = prepare(keys, values, mask)` projects the
  keys once, `attend(query, memory)` per step, then `attend_backward(d_context, memory)` per step
  in reverse order, and `prepare_backward(memory)` once for the keys' and values' gradients.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _checks
from ._ops import mm, rows
from .module import Module

__all__ = [
    "AdditiveAttention",
    "AttentionMemory",
    "DotAttention",
    "GeneralAttention",
    "lengths_to_mask",
    "make_attention",
]


def lengths_to_mask(lengths: Any, max_len: int | None = None) -> np.ndarray:
    """(B,) lengths -> (B, max_len) bool mask, True at positions t < lengths[b]."""
    lens = np.asarray(_checks.to_numpy(lengths))
    if lens.ndim != 1 or lens.dtype.kind not in "iu":
        raise ValueError(
            f"lengths: expected a 1-D integer array, got shape {lens.shape} dtype {lens.dtype}"
        )
    T = int(lens.max()) if max_len is None else int(max_len)
    return np.arange(T)[None, :] < lens[:, None]


class AttentionMemory:
    """The keys and values of one batch, prepared by an attention module: projected keys, the
    mask as additive 0/-inf, gradient accumulators, and the tape of `attend` calls."""

    __slots__ = ("keys", "proj", "values", "values_is_keys", "mask", "neg", "d_proj", "d_values",
                 "tape", "training", "batch", "steps", "pending")  # fmt: skip

    def __init__(self, keys: np.ndarray | None, proj: np.ndarray, values: np.ndarray,
                 values_is_keys: bool, mask: np.ndarray | None, training: bool) -> None:  # fmt: skip
        self.keys = keys  # (B, Tk, Dk), kept for prepare_backward
        self.proj = proj  # (B, Tk, P) what queries are scored against
        self.values = values  # (B, Tk, Dv)
        self.values_is_keys = values_is_keys
        self.mask = mask  # (B, Tk) bool or None
        self.batch, self.steps = proj.shape[0], proj.shape[1]
        self.neg = (
            None if mask is None else np.where(mask, 0.0, -np.inf).astype(proj.dtype)[:, None, :]
        )
        self.d_proj: np.ndarray | None = None
        self.d_values: np.ndarray | None = None
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []  # (weights, d_context) per attend
        self.tape: list[Any] = []
        self.training = training


class _Attention(Module):
    """Shared: validation, masked softmax, context, and their backward; subclasses score."""

    _transient = ("_memory",)

    def __init__(self, query_size: int, key_size: int, dtype: Any) -> None:
        super().__init__()
        self.query_size = _checks.positive_int("query_size", query_size)
        self.key_size = _checks.positive_int("key_size", key_size)
        self.dtype = _checks.dtype_arg(dtype)
        self._memory: AttentionMemory | None = None

    def _on_mode_change(self) -> None:
        self._memory = None

    # --- subclass hooks -----------------------------------------------------------------------

    def _project(self, keys: np.ndarray) -> np.ndarray:
        return keys

    def _project_backward(self, memory: AttentionMemory, d_proj: np.ndarray) -> np.ndarray:
        return d_proj

    def _scores(self, q: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _scores_backward(
        self, de: np.ndarray, cache: Any, memory: AttentionMemory
    ) -> tuple[np.ndarray, np.ndarray]:
        """-> (dq (B, Tq, Dq), d_proj (B, Tk, P)), adding parameter gradients."""
        raise NotImplementedError

    # --- prepare / attend ---------------------------------------------------------------------

    def prepare(self, keys: Any, values: Any = None, mask: Any = None) -> AttentionMemory:
        """Validate and project the keys of one batch.

        keys (B, Tk, Dk), values (B, Tk, Dv) or None (= keys), mask (B, Tk) bool or None.
        Every sequence must have at least one True in its mask row."""
        k = _checks.float_array("keys", keys, self.dtype, "the module's dtype")
        if k.ndim != 3 or k.shape[2] != self.key_size or k.shape[0] == 0 or k.shape[1] == 0:
            raise ValueError(
                f"keys: expected a 3-D array (B, Tk, Dk={self.key_size}) with B, Tk >= 1, got shape {k.shape}"
            )
        B, Tk = k.shape[:2]
        if values is None:
            v, same = k, True
        else:
            v = _checks.float_array("values", values, self.dtype, "the module's dtype")
            if v.ndim != 3 or v.shape[:2] != (B, Tk):
                raise ValueError(
                    f"values: expected shape (B, Tk, Dv) with (B, Tk) = ({B}, {Tk}) as in keys, got {v.shape}"
                )
            same = False
        m = None
        if mask is not None:
            m = np.asarray(_checks.to_numpy(mask))
            if m.dtype != np.bool_:
                raise TypeError(f"mask: expected a bool array (True = attend), got dtype {m.dtype}")
            if m.shape != (B, Tk):
                raise ValueError(f"mask: expected shape (B, Tk) = ({B}, {Tk}), got {m.shape}")
            empty = np.flatnonzero(~m.any(axis=1))
            if empty.size:
                raise ValueError(
                    f"mask: sequence {int(empty[0])} has no position to attend to (its row is all False)"
                )
        return AttentionMemory(k, self._project(k), v, same, m, self.training)

    def memory_from_arrays(
        self, proj: np.ndarray, values: np.ndarray, mask: np.ndarray | None
    ) -> AttentionMemory:
        """An inference memory from arrays kept by a decoder's state (rows may be reordered)."""
        return AttentionMemory(None, proj, values, False, mask, False)

    def attend(self, query: Any, memory: AttentionMemory) -> tuple[np.ndarray, np.ndarray]:
        """query (B, Dq) or (B, Tq, Dq) -> context (B, [Tq,] Dv), weights (B, [Tq,] Tk)."""
        q = _checks.float_array("query", query, self.dtype, "the module's dtype")
        if q.ndim not in (2, 3) or q.shape[0] != memory.batch or q.shape[-1] != self.query_size:
            raise ValueError(
                f"query: expected (B, Dq) or (B, Tq, Dq) with B={memory.batch} (as the keys) and "
                f"Dq={self.query_size}, got shape {q.shape}"
            )
        single = q.ndim == 2
        q3 = q[:, None, :] if single else q
        e, cache = self._scores(q3, memory.proj)  # (B, Tq, Tk)
        if memory.neg is not None:
            e = e + memory.neg
        e = e - e.max(axis=-1, keepdims=True)
        w = np.exp(e)
        w /= w.sum(axis=-1, keepdims=True)
        ctx = w @ memory.values  # (B, Tq, Dv)
        if self.training and memory.training:
            memory.tape.append((w, cache, single))
        if single:
            return ctx[:, 0], w[:, 0]
        return ctx, w

    def attend_backward(
        self, d_context: Any, memory: AttentionMemory, d_weights: Any = None
    ) -> np.ndarray:
        """Differentiate the most recent `attend` on this memory -> d_query (its shape).

        Adds into the memory's key and value gradients (read by `prepare_backward`) and into the
        module's parameter gradients."""
        if not memory.tape:
            raise _checks.no_forward(type(self).__name__)
        w, cache, single = memory.tape[-1]
        B, Tq, Tk = w.shape
        Dv = memory.values.shape[2]
        want = (B, Dv) if single else (B, Tq, Dv)
        dctx = _checks.same_shape(
            "d_context", d_context, want, self.dtype, "the shape of the context"
        )
        dctx = dctx[:, None, :] if single else dctx
        dw = dctx @ memory.values.transpose(0, 2, 1)  # ctx = w @ values
        if d_weights is not None:
            wwant = (B, Tk) if single else (B, Tq, Tk)
            dwe = _checks.same_shape(
                "d_weights", d_weights, wwant, self.dtype, "the shape of the weights"
            )
            dw = dw + (dwe[:, None, :] if single else dwe)
        memory.tape.pop()
        # d values = sum over calls of w^T @ dctx: deferred to one batched product in
        # prepare_backward instead of a (B, Tk, Dv) update per call
        memory.pending.append((w, dctx))
        de = w * (dw - (w * dw).sum(axis=-1, keepdims=True))  # softmax; masked entries: w = 0
        dq, d_proj = self._scores_backward(de, cache, memory)
        if memory.d_proj is None:
            memory.d_proj = d_proj
        else:
            memory.d_proj += d_proj
        return dq[:, 0] if single else dq

    def prepare_backward(self, memory: AttentionMemory) -> tuple[np.ndarray, np.ndarray | None]:
        """-> (d_keys (B, Tk, Dk), d_values (B, Tk, Dv), or None when the values were the keys,
        whose gradient is then included in d_keys); adds parameter gradients."""
        if memory.keys is None or not memory.training:
            raise RuntimeError(
                f"{type(self).__name__}.prepare_backward: this memory was prepared in eval mode (or "
                "rebuilt from arrays) and kept nothing for backward"
            )
        if memory.tape:
            raise RuntimeError(
                f"{type(self).__name__}.prepare_backward: {len(memory.tape)} attend call(s) were not "
                "differentiated yet; call attend_backward for each first"
            )
        d_proj = memory.d_proj if memory.d_proj is not None else np.zeros_like(memory.proj)
        d_keys = self._project_backward(memory, d_proj)
        if memory.pending:
            ws = np.concatenate([w for w, _ in memory.pending], axis=1)  # (B, calls*Tq, Tk)
            ds = np.concatenate([d for _, d in memory.pending], axis=1)  # (B, calls*Tq, Dv)
            memory.pending = []
            dv = ws.transpose(0, 2, 1) @ ds
            memory.d_values = dv if memory.d_values is None else memory.d_values + dv
        dvals = memory.d_values if memory.d_values is not None else np.zeros_like(memory.values)
        if memory.values_is_keys:
            return d_keys + dvals, None
        return d_keys, dvals

    # --- module interface ---------------------------------------------------------------------

    def forward(
        self, query: Any, keys: Any, values: Any = None, mask: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """query (B, Dq) or (B, Tq, Dq), keys (B, Tk, Dk), values (B, Tk, Dv) or None, mask (B, Tk)
        bool or None -> context (B, [Tq,] Dv), weights (B, [Tq,] Tk)."""
        memory = self.prepare(keys, values, mask)
        out = self.attend(query, memory)
        self._memory = memory if self.training else None
        return out

    def backward(
        self, d_context: Any, d_weights: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """-> (d_query, d_keys, d_values); d_values is None when `values` was None (then its
        gradient is part of d_keys)."""
        memory = self._memory
        if memory is None or not memory.tape:
            raise _checks.no_forward(type(self).__name__)
        dq = self.attend_backward(d_context, memory, d_weights)
        dk, dv = self.prepare_backward(memory)
        self._memory = None
        return dq, dk, dv


class AdditiveAttention(_Attention):
    """Bahdanau (additive, "concat") attention: e[t'] = v . tanh(W_q q + W_k k[t'] + b).

    Parameters
    ----------
    query_size, key_size : int
        Dq and Dk.
    attention_size : int
        A, units of the tanh layer.
    dtype, seed :
        Parameters query_weight (A, Dq), key_weight (A, Dk), bias (A,), v (A,) are drawn like
        torch.nn.Linear's (U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int,
                 dtype: Any = "float32", seed: int | None = None) -> None:  # fmt: skip
        super().__init__(query_size, key_size, dtype)
        A = self.attention_size = _checks.positive_int("attention_size", attention_size)
        rng = np.random.default_rng(seed)

        def u(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
            b = 1.0 / math.sqrt(fan_in)
            return rng.uniform(-b, b, shape).astype(self.dtype)

        self.register_parameter("query_weight", u((A, self.query_size), self.query_size))
        self.register_parameter("key_weight", u((A, self.key_size), self.key_size))
        self.register_parameter("bias", u((A,), self.key_size))
        self.register_parameter("v", u((A,), A))

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, attention_size={self.attention_size}"

    def _project(self, keys: np.ndarray) -> np.ndarray:
        B, Tk = keys.shape[:2]
        proj = mm(rows(keys), self.key_weight, trans_b=True)  # keys W_k^T + b
        proj += self.bias
        return proj.reshape(B, Tk, self.attention_size)

    def _project_backward(self, memory: AttentionMemory, d_proj: np.ndarray) -> np.ndarray:
        Dk = self.key_size
        assert memory.keys is not None
        dp = rows(d_proj)
        self._accumulate_mm("key_weight", dp, memory.keys.reshape(-1, Dk), True, False)
        self._accumulate("bias", dp.sum(axis=0))
        return mm(dp, self.key_weight).reshape(memory.keys.shape[:2] + (Dk,))

    def _scores(self, q: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, Any]:
        B, Tq, A = q.shape[0], q.shape[1], self.attention_size
        qp = mm(rows(q), self.query_weight, trans_b=True).reshape(B, Tq, A)
        u = np.add(qp[:, :, None, :], proj[:, None, :, :])  # (B, Tq, Tk, A)
        np.tanh(u, out=u)
        e = mm(u.reshape(-1, A), self.v.reshape(A, 1))  # u . v
        return e.reshape(u.shape[:3]), (q, u)

    def _scores_backward(
        self, de: np.ndarray, cache: Any, memory: AttentionMemory
    ) -> tuple[np.ndarray, np.ndarray]:
        q, u = cache
        A = self.attention_size
        # e = u @ v,  u = tanh(z),  z = qp[:, :, None] + proj[:, None]
        self._accumulate_mm("v", de.reshape(1, -1), u.reshape(-1, A), False, False)
        dz = u  # the cache is popped: reuse its buffer, dz = de * v * (1 - u^2), in place
        np.multiply(u, u, out=dz)
        np.subtract(1, dz, out=dz)
        dz *= de[..., None]
        dz *= self.v
        dqp = dz.sum(axis=2)  # (B, Tq, A)
        dq2 = rows(dqp)
        self._accumulate_mm("query_weight", dq2, rows(q), True, False)
        d_proj = dz[:, 0] if dz.shape[1] == 1 else dz.sum(axis=1)
        return mm(dq2, self.query_weight).reshape(q.shape), d_proj


class GeneralAttention(_Attention):
    """Luong "general" (bilinear) attention: e[t'] = q . (W k[t']), times 1/sqrt(Dq) if `scaled`.

    weight (Dq, Dk) ~ U(-1/sqrt(Dk), 1/sqrt(Dk)) (a torch.nn.Linear(Dk, Dq, bias=False)).
    """

    def __init__(self, query_size: int, key_size: int, scaled: bool = False,
                 dtype: Any = "float32", seed: int | None = None) -> None:  # fmt: skip
        super().__init__(query_size, key_size, dtype)
        self.scaled = bool(scaled)
        b = 1.0 / math.sqrt(self.key_size)
        w = np.random.default_rng(seed).uniform(-b, b, (self.query_size, self.key_size))
        self.register_parameter("weight", w.astype(self.dtype))

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, scaled={self.scaled}"

    @property
    def _scale(self) -> float:
        return 1.0 / math.sqrt(self.query_size) if self.scaled else 1.0

    def _project(self, keys: np.ndarray) -> np.ndarray:
        B, Tk = keys.shape[:2]
        return mm(rows(keys), self.weight, trans_b=True).reshape(B, Tk, self.query_size)

    def _project_backward(self, memory: AttentionMemory, d_proj: np.ndarray) -> np.ndarray:
        assert memory.keys is not None
        dp = rows(d_proj)
        self._accumulate_mm("weight", dp, memory.keys.reshape(-1, self.key_size), True, False)
        return mm(dp, self.weight).reshape(memory.keys.shape)

    def _scores(self, q: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, Any]:
        e = q @ proj.transpose(0, 2, 1)
        if self.scaled:
            e *= self._scale
        return e, q

    def _scores_backward(
        self, de: np.ndarray, cache: Any, memory: AttentionMemory
    ) -> tuple[np.ndarray, np.ndarray]:
        q = cache
        if self.scaled:
            de = de * self._scale
        # e = q @ proj^T
        return de @ memory.proj, de.transpose(0, 2, 1) @ q


class DotAttention(GeneralAttention):
    """Luong "dot" attention: e[t'] = q . k[t'] (Dq = Dk; no parameters), times 1/sqrt(Dq) if
    `scaled` (then it equals torch's scaled_dot_product_attention with a boolean mask)."""

    def __init__(self, size: int, scaled: bool = False, dtype: Any = "float32") -> None:
        _Attention.__init__(self, size, size, dtype)
        self.scaled = bool(scaled)

    def extra_repr(self) -> str:
        return f"size={self.query_size}, scaled={self.scaled}"

    def _project(self, keys: np.ndarray) -> np.ndarray:
        return keys

    def _project_backward(self, memory: AttentionMemory, d_proj: np.ndarray) -> np.ndarray:
        return d_proj


def make_attention(kind: str, query_size: int, key_size: int, attention_size: int | None = None,
                   dtype: Any = "float32", seed: int | None = None) -> _Attention:  # fmt: skip
    """ "additive" | "general" | "dot" (| "scaled_dot") -> the attention module."""
    kind = _checks.choice("attention", kind, ("additive", "general", "dot", "scaled_dot"))
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, attention_size or query_size, dtype, seed)
    if kind == "general":
        return GeneralAttention(query_size, key_size, False, dtype, seed)
    if query_size != key_size:
        raise ValueError(
            f"attention: {kind!r} needs equal query and key sizes, got {query_size} and {key_size}; "
            "use 'general' or 'additive'"
        )
    return DotAttention(query_size, kind == "scaled_dot", dtype)
