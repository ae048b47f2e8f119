"""An n-gram language model with interpolated smoothing: the count-based baseline for the RNNs.

Estimates, for context h_k of the k previous tokens (k = n-1 down to 0):

    P_k(w | h_k) = (1 - eps) * c(h_k w) / c(h_k) + eps * P_{k-1}(w | h_{k-1})   if c(h_k) > 0
                 = P_{k-1}(w | h_{k-1})                                        otherwise
    P_{-1}(w)    = 1 / V

so every estimate is interpolated toward the lower-order one with weight eps, down to the
uniform distribution: no probability is ever zero and held-out perplexity is always finite.

Counting is vectorized: each k+1-gram is packed into one int64 (base V), counted with np.unique,
and looked up with np.searchsorted, so a few million tokens take seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..nn import _checks
from ._kneser_ney import KneserNeyLM

__all__ = ["KneserNeyLM", "NGramLM"]


class NGramLM:
    """Interpolated n-gram model over token ids in [0, vocab_size).

    Parameters
    ----------
    n : int
        Order (n = 3: trigrams, contexts of 2 tokens).
    vocab_size : int
        V.
    epsilon : float in (0, 1)
        Weight of the lower-order estimate at each level.
    """

    def __init__(self, n: int, vocab_size: int, epsilon: float = 0.1) -> None:
        self.n = _checks.positive_int("n", n)
        self.vocab_size = _checks.positive_int("vocab_size", vocab_size)
        if not 0.0 < float(epsilon) < 1.0:
            raise ValueError(f"epsilon: expected a number in (0, 1), got {epsilon}")
        self.epsilon = float(epsilon)
        if self.vocab_size**self.n >= 2**63:
            raise ValueError(
                f"n: {self.n}-grams over {self.vocab_size} tokens do not fit in 64-bit keys; use a smaller n"
            )
        # per order k (context length): sorted keys and counts of (k+1)-grams and k-gram contexts
        self._grams: list[tuple[np.ndarray, np.ndarray]] = []
        self._ctx: list[tuple[np.ndarray, np.ndarray]] = []

    def _streams(self, ids: Any, name: str) -> list[np.ndarray]:
        if isinstance(ids, np.ndarray) and ids.ndim == 1:
            seqs: Sequence[Any] = [ids]
        elif isinstance(ids, (list, tuple)) and ids and not np.isscalar(ids[0]):
            seqs = ids
        else:
            seqs = [np.asarray(ids)]
        out = [
            _checks.token_ids(
                f"{name}[{i}]" if len(seqs) > 1 else name, s, self.vocab_size, ndim=(1,)
            )
            for i, s in enumerate(seqs)
        ]
        if sum(s.size for s in out) == 0:
            raise ValueError(f"{name}: no tokens")
        return out

    def _keys(self, s: np.ndarray, k: int) -> np.ndarray:
        """Keys of the (k+1)-grams ending at positions k..len-1 of s."""
        V = self.vocab_size
        m = s.shape[0] - k
        key = np.zeros(m, np.int64)
        for j in range(k + 1):
            key = key * V + s[j : j + m]
        return key

    def fit(self, ids: Any) -> NGramLM:
        """Count n-grams in one stream (N,) or a list of sequences (contexts never cross
        sequence boundaries). Returns self."""
        seqs = self._streams(ids, "ids")
        V = self.vocab_size
        self._grams, self._ctx = [], []
        for k in range(self.n):
            gk = [self._keys(s, k) for s in seqs if s.shape[0] > k]
            g = np.concatenate(gk) if gk else np.zeros(0, np.int64)
            gu, gc = np.unique(g, return_counts=True)
            cu, cc = np.unique(g // V, return_counts=True)  # the contexts of those same positions
            self._grams.append((gu, gc))
            self._ctx.append((cu, cc))
        return self

    @staticmethod
    def _lookup(table: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
        u, c = table
        if u.size == 0:
            return np.zeros(keys.shape, np.int64)
        i = np.minimum(np.searchsorted(u, keys), u.size - 1)
        return np.where(u[i] == keys, c[i], 0)

    def _probs(self, s: np.ndarray) -> np.ndarray:
        """P(s[i] | up to n-1 previous tokens of s) for every position i."""
        if not self._grams:
            raise RuntimeError("NGramLM: call fit() before scoring")
        eps, V = self.epsilon, self.vocab_size
        p = np.full(s.shape[0], 1.0 / V)
        for k in range(self.n):
            if s.shape[0] <= k:
                break
            keys = self._keys(s, k)  # grams ending at positions k..
            c_hw = self._lookup(self._grams[k], keys)
            c_h = self._lookup(self._ctx[k], keys // V)
            lower = p[k:]
            p[k:] = np.where(c_h > 0, (1 - eps) * c_hw / np.maximum(c_h, 1) + eps * lower, lower)
        return p

    def log_prob(self, ids: Any) -> float:
        """Natural-log probability of a stream or list of sequences."""
        return float(sum(np.log(self._probs(s)).sum() for s in self._streams(ids, "ids")))

    def perplexity(self, ids: Any) -> float:
        """exp(-mean log P) over every token of a stream or list of sequences."""
        seqs = self._streams(ids, "ids")
        total = sum(np.log(self._probs(s)).sum() for s in seqs)
        return math.exp(-total / sum(s.size for s in seqs))

    def next_distribution(self, context: Any) -> np.ndarray:
        """P(w | context) for every w (V,), using the last n-1 tokens of `context`."""
        ctx = _checks.token_ids(
            "context", np.asarray(context, dtype=np.int64).reshape(-1), self.vocab_size, ndim=(1,)
        )
        ctx = ctx[max(0, ctx.size - (self.n - 1)) :]
        V, eps = self.vocab_size, self.epsilon
        w = np.arange(V, dtype=np.int64)
        p = np.full(V, 1.0 / V)
        for k in range(min(self.n - 1, ctx.size) + 1):
            h = 0
            for t in ctx[ctx.size - k :]:
                h = h * V + int(t)
            c_h = int(self._lookup(self._ctx[k], np.array([h]))[0])
            if c_h > 0:
                c_hw = self._lookup(self._grams[k], h * V + w)
                p = (1 - eps) * c_hw / c_h + eps * p
        return p

    def sample(self, length: int, context: Any = (), seed: int | None = None) -> np.ndarray:
        """Draw `length` tokens after `context` (seeded)."""
        rng = np.random.default_rng(seed)
        ctx = [int(t) for t in np.asarray(context, dtype=np.int64).reshape(-1)]
        out = []
        for _ in range(_checks.positive_int("length", length)):
            p = self.next_distribution(
                np.array(ctx[-(self.n - 1) :] if self.n > 1 else [], np.int64)
            )
            t = int(rng.choice(self.vocab_size, p=p / p.sum()))
            out.append(t)
            ctx.append(t)
        return np.array(out, np.int64)
