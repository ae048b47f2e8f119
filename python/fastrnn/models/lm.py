"""Recurrent language models (character or word level) with truncated backpropagation through time.

    x = Embedding(tokens); h = RNN/GRU/LSTM(x, carried state); logits = Linear(h)

Training reads a long token stream cut into B parallel rows (`batchify`) and walks it in chunks
of `bptt` steps (`bptt_batches`): the recurrent state is carried from chunk to chunk, and the
gradient is cut at chunk boundaries (backward is never given a gradient for the carried state).
`perplexity` evaluates held-out text the same way, `sample` generates text (temperature, top-k,
seeded), and `step` is the step protocol of fastrnn.beam_search.

Token arrays are batch-first: (B, T).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import nn
from ..nn import _checks
from ..nn.losses import cross_entropy_with_grad, log_softmax
from .seq2seq import inference, reorder_state
from .training import Trainer

__all__ = [
    "RNNLanguageModel",
    "batchify",
    "bptt_batches",
    "perplexity",
    "sample",
    "train_language_model",
]


class RNNLanguageModel(nn.Module):
    """Embedding -> recurrent layers -> linear over the vocabulary.

    Parameters
    ----------
    vocab_size : int
        V.
    embedding_dim : int
        E.
    hidden_size : int
        H.
    num_layers : int
        L.
    cell : {"lstm", "gru", "rnn"}
    dropout : float
        On the embeddings, between layers and before the output layer (training only).
    dtype, seed :
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = V = _checks.positive_int("vocab_size", vocab_size)
        self.embedding_dim = E = _checks.positive_int("embedding_dim", embedding_dim)
        self.hidden_size = H = _checks.positive_int("hidden_size", hidden_size)
        self.num_layers = L = _checks.positive_int("num_layers", num_layers)
        self.cell_type = _checks.choice("cell", cell, ("lstm", "gru", "rnn"))
        self.dropout = _checks.probability("dropout", dropout)
        self.dtype = _checks.dtype_arg(dtype)
        seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(6)]
        self.embed = nn.Embedding(V, E, dtype=self.dtype, seed=seeds[0])
        self.in_drop = nn.Dropout(self.dropout, seed=seeds[1])
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[self.cell_type]
        self.rnn = cls(
            E,
            H,
            num_layers=L,
            dropout=self.dropout if L > 1 else 0.0,
            dtype=self.dtype,
            seed=seeds[2],
        )
        self.out_drop = nn.Dropout(self.dropout, seed=seeds[3])
        self.out = nn.Linear(H, V, dtype=self.dtype, seed=seeds[4])
        self._shape: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, cell={self.cell_type!r}"

    @property
    def _lstm(self) -> bool:
        return self.cell_type == "lstm"

    def init_state(self, batch: int) -> Any:
        """Zeros: h (L, B, H), or (h, c) for an LSTM."""
        h = np.zeros((self.num_layers, batch, self.hidden_size), self.dtype)
        return (h, h.copy()) if self._lstm else h

    def forward(self, tokens: Any, state: Any = None) -> tuple[np.ndarray, Any]:
        """tokens (B, T) ids, state from the previous chunk (or None for zeros) ->
        (logits (B, T, V), state after the last step)."""
        x = _checks.token_ids("tokens", tokens, self.vocab_size, ndim=(2,))
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"tokens: expected a non-empty (B, T) array, got shape {x.shape}")
        e = self.in_drop(self.embed(x.T))  # (T, B, E)
        y, new_state = self.rnn(e, state)
        logits = self.out(self.out_drop(y))  # (T, B, V)
        self._shape = x.shape if self.training else None
        return logits.transpose(1, 0, 2), new_state

    def backward(self, d_logits: Any, d_state: Any = None) -> None:
        """Differentiate the last training forward (d_state None: the gradient is cut at the end
        of the chunk, as truncated BPTT does)."""
        if self._shape is None:
            raise _checks.no_forward(type(self).__name__)
        B, T = self._shape
        dl = _checks.same_shape(
            "d_logits", d_logits, (B, T, self.vocab_size), self.dtype, "the shape of the logits"
        )
        self._shape = None
        dy = self.out_drop.backward(self.out.backward(np.ascontiguousarray(dl.transpose(1, 0, 2))))
        dx, _ = self.rnn.backward(dy, d_state)
        self.embed.backward(self.in_drop.backward(dx))

    def loss(
        self, tokens: Any, targets: Any, state: Any = None, backward: bool = True
    ) -> tuple[float, int, Any]:
        """Mean cross-entropy of next-token `targets` (B, T); returns (loss, count, new state)."""
        logits, new_state = self.forward(tokens, state)
        t = _checks.token_ids("targets", targets, self.vocab_size, ndim=(2,))
        if t.shape != logits.shape[:2]:
            raise ValueError(
                f"targets: expected shape {logits.shape[:2]} like tokens, got {t.shape}"
            )
        loss, grad = cross_entropy_with_grad(logits.reshape(-1, self.vocab_size), t.reshape(-1))
        if backward:
            self.backward(grad.reshape(logits.shape))
        else:
            self._shape = None
        return loss, t.size, new_state

    # --- the step protocol ---------------------------------------------------------------------

    def initial_step_state(self, batch: int) -> dict[str, np.ndarray]:
        """A decoding state of zeros for `batch` rows (arrays with N first)."""
        return self.state_to_step(self.init_state(batch))

    def state_to_step(self, state: Any) -> dict[str, np.ndarray]:
        """A recurrent state (L, N, H) [or (h, c)] as the step protocol's dict of (N, L, H)."""
        if self._lstm:
            return {
                "h": state[0].transpose(1, 0, 2).copy(),
                "c": state[1].transpose(1, 0, 2).copy(),
            }
        return {"h": state.transpose(1, 0, 2).copy()}

    def step(
        self, tokens: Any, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One step: tokens (N,) -> (log_probs (N, V) of the next token, new state)."""
        y = _checks.token_ids("tokens", tokens, self.vocab_size, ndim=(1,))
        h = np.ascontiguousarray(state["h"].transpose(1, 0, 2))
        hx = (h, np.ascontiguousarray(state["c"].transpose(1, 0, 2))) if self._lstm else h
        with inference(self):
            logits, new = self.forward(y[:, None], hx)
        return log_softmax(logits[:, 0]), self.state_to_step(new)

    reorder_state = staticmethod(reorder_state)


# --- data ------------------------------------------------------------------------------------------


def batchify(ids: Any, batch_size: int) -> np.ndarray:
    """A token stream (N,) as (B, N // B): row b is the b-th contiguous slice (the tail is dropped)."""
    a = np.asarray(ids)
    if a.ndim != 1:
        raise ValueError(f"ids: expected a 1-D token stream, got shape {a.shape}")
    B = _checks.positive_int("batch_size", batch_size)
    n = a.shape[0] // B
    if n < 2:
        raise ValueError(
            f"ids: a stream of {a.shape[0]} tokens is too short for batch_size={B} (need >= {2 * B})"
        )
    return np.ascontiguousarray(a[: n * B].reshape(B, n))


def bptt_batches(data: np.ndarray, bptt: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(inputs, targets) chunks of `data` (B, N): columns i..i+bptt-1 and i+1..i+bptt."""
    bptt = _checks.positive_int("bptt", bptt)
    n = data.shape[1]
    for i in range(0, n - 1, bptt):
        t = min(bptt, n - 1 - i)
        yield data[:, i : i + t], data[:, i + 1 : i + 1 + t]


def perplexity(model: RNNLanguageModel, ids: Any, batch_size: int = 16, bptt: int = 128) -> float:
    """exp(mean next-token cross-entropy) over a held-out stream, state carried across chunks."""
    data = batchify(_checks.token_ids("ids", ids, model.vocab_size, ndim=(1,)), batch_size)
    total, count = 0.0, 0
    state = None
    with inference(model):
        for x, y in bptt_batches(data, bptt):
            logits, state = model.forward(x, state)
            lp = log_softmax(logits.astype(np.float64))
            total -= float(np.take_along_axis(lp, y[..., None], axis=2).sum())
            count += y.size
    return math.exp(total / count)


def sample(
    model: RNNLanguageModel,
    length: int,
    prefix: Any = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    num_samples: int = 1,
    start_token: int = 0,
) -> np.ndarray:
    """Generate `length` tokens after `prefix` (ids (P,); default [start_token]).

    Each next token is drawn from softmax(logits / temperature), restricted to the top_k most
    likely when given (top_k=1 is greedy). Returns (num_samples, length) ids (prefix excluded);
    the same seed gives the same text."""
    length = _checks.positive_int("length", length)
    n = _checks.positive_int("num_samples", num_samples)
    temperature = _checks.positive("temperature", temperature)
    if top_k is not None:
        top_k = min(_checks.positive_int("top_k", top_k), model.vocab_size)
    rng = np.random.default_rng(seed)
    pre = np.array([start_token]) if prefix is None else np.asarray(prefix)
    pre = _checks.token_ids("prefix", pre, model.vocab_size, ndim=(1,))
    if pre.size == 0:
        raise ValueError("prefix: expected at least one token")
    out = np.empty((n, length), np.int64)
    with inference(model):
        logits, state = model.forward(np.repeat(pre[None], n, axis=0), None)
        last = logits[:, -1].astype(np.float64)  # (n, V)
        for t in range(length):
            z = last / temperature
            if top_k is not None and top_k < z.shape[1]:
                kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            c = p.cumsum(axis=1)
            u = rng.random((n, 1))
            tok = np.minimum((c < u * c[:, -1:]).sum(axis=1), model.vocab_size - 1)
            out[:, t] = tok
            logits, state = model.forward(tok[:, None], state)
            last = logits[:, -1].astype(np.float64)
    return out


def train_language_model(
    model: RNNLanguageModel,
    train_ids: Any,
    valid_ids: Any = None,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    bptt: int = 64,
    lr: float = 2e-3,
    lr_decay: float = 1.0,
    clip_grad_norm: float | None = 1.0,
    optimizer: nn.Optimizer | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    time_limit: float | None = None,
    progress: str = "auto",
    on_epoch_end: Any = None,
    log_every: float = 10.0,
    resume: bool = True,
) -> list[dict[str, Any]]:
    """Truncated-BPTT training with Adam (unless `optimizer` is given) and a `Trainer`.

    The recurrent state is carried across the chunks of an epoch and reset at each epoch start
    (also when resuming mid-epoch). Epoch e (from 0) trains with learning rate lr * lr_decay**e
    (lr: the optimizer's when one is given). Each epoch ends with the held-out perplexity
    ("val_ppl") of `valid_ids`, if given, and a call on_epoch_end(epoch, metrics) that may return
    extra metrics. `resume`: continue from `checkpoint` when it exists (see Trainer.fit).
    Returns the Trainer's history."""
    data = batchify(
        _checks.token_ids("train_ids", train_ids, model.vocab_size, ndim=(1,)), batch_size
    )
    opt = optimizer if optimizer is not None else nn.Adam(model, lr=lr)
    base_lr = opt.lr
    trainer = Trainer(model, opt, clip_grad_norm=clip_grad_norm, checkpoint=checkpoint,
                      checkpoint_every=checkpoint_every, progress=progress, log_every=log_every)  # fmt: skip
    carried: list[Any] = [None]
    steps = math.ceil((data.shape[1] - 1) / bptt)

    def reset(epoch: int) -> None:
        carried[0] = None
        if lr_decay != 1.0:
            opt.lr = base_lr * lr_decay**epoch

    def train_step(batch: tuple[np.ndarray, np.ndarray]) -> tuple[float, int]:
        x, y = batch
        loss, n, state = model.loss(x, y, carried[0])
        carried[0] = state  # carried forward; no gradient flows back into it
        return loss, n

    def evaluate() -> dict[str, Any]:
        m: dict[str, Any] = {}
        if valid_ids is not None:
            m["val_ppl"] = perplexity(
                model, valid_ids, batch_size=min(batch_size, 16), bptt=max(bptt, 64)
            )
        if on_epoch_end is not None:
            m.update(on_epoch_end(trainer.epoch, m) or {})
        return m

    return trainer.fit(
        lambda epoch: bptt_batches(data, bptt), train_step, epochs, evaluate=evaluate,
        time_limit=time_limit, steps_per_epoch=steps, on_epoch_start=reset, resume=resume,
    )  # fmt: skip
