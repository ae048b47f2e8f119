"""Many-to-one sequence classification: a whole sequence in, one label out.

    x = Embedding(tokens); (out, h_n) = bidirectional RNN/GRU/LSTM(x, lengths)
    features = [h_n forward; h_n backward] of the last layer   (each sequence's own last step)
    logits = Linear(Dropout(features))

With num_classes=1 the output is one logit per sequence, for a binary label with
binary cross-entropy (`loss` picks BCEWithLogits); otherwise C logits with softmax cross-entropy.
Token arrays are batch-first (B, T) with per-sequence `lengths`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..nn import _checks
from ..nn.losses import binary_cross_entropy_with_logits_with_grad, cross_entropy_with_grad

__all__ = ["RNNClassifier"]


class RNNClassifier(nn.Module):
    """Embedding -> bidirectional recurrent encoder -> final states -> linear.

    Parameters
    ----------
    vocab_size : int
    num_classes : int
        1 for a binary label (one logit), C >= 2 for C classes.
    embedding_dim, hidden_size, num_layers : int
    cell : {"lstm", "gru", "rnn"}
    bidirectional : bool
    dropout : float
        On the features before the output layer, and between layers.
    pad_index : int or None
        Embedding row kept at zero (the padding token).
    dtype, seed :
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 1,
        embedding_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        cell: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.0,
        pad_index: int | None = 0,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = _checks.positive_int("vocab_size", vocab_size)
        self.num_classes = _checks.positive_int("num_classes", num_classes)
        self.cell_type = _checks.choice("cell", cell, ("lstm", "gru", "rnn"))
        self.dtype = _checks.dtype_arg(dtype)
        H = self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.num_dirs = 2 if bidirectional else 1
        p = _checks.probability("dropout", dropout)
        seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(4)]
        self.embed = nn.Embedding(self.vocab_size, embedding_dim, padding_idx=pad_index,
                                  dtype=self.dtype, seed=seeds[0])  # fmt: skip
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[self.cell_type]
        self.rnn = cls(embedding_dim, H, num_layers=num_layers, bidirectional=bidirectional,
                       dropout=p if num_layers > 1 else 0.0, dtype=self.dtype, seed=seeds[1])  # fmt: skip
        self.drop = nn.Dropout(p, seed=seeds[2])
        self.out = nn.Linear(self.num_dirs * H, self.num_classes, dtype=self.dtype, seed=seeds[3])
        self._h_shape: tuple[int, ...] | None = None

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, num_classes={self.num_classes}, cell={self.cell_type!r}"
        )

    def forward(self, tokens: Any, lengths: Any = None) -> np.ndarray:
        """tokens (B, T), lengths (B,) in [1, T] or None -> logits (B,) if num_classes == 1,
        else (B, C)."""
        x = _checks.token_ids("tokens", tokens, self.vocab_size, ndim=(2,))
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"tokens: expected a non-empty (B, T) array, got shape {x.shape}")
        lens = (
            None if lengths is None else _checks.lengths("lengths", lengths, x.shape[0], x.shape[1])
        )
        _, hn = self.rnn(self.embed(x.T), None, lens)
        h = hn[0] if self.cell_type == "lstm" else hn  # (L*D, B, H)
        feats = np.concatenate(list(h[-self.num_dirs :]), axis=1)  # (B, D*H)
        logits = self.out(self.drop(feats))
        self._h_shape = h.shape if self.training else None
        return logits[:, 0] if self.num_classes == 1 else logits

    def backward(self, d_logits: Any) -> None:
        """Differentiate the last training forward; adds every parameter's gradient."""
        h_shape = self._h_shape
        if h_shape is None:
            raise _checks.no_forward(type(self).__name__)
        B = h_shape[1]
        shape = (B,) if self.num_classes == 1 else (B, self.num_classes)
        dl = _checks.same_shape("d_logits", d_logits, shape, self.dtype, "the shape of the logits")
        self._h_shape = None
        dfeat = self.drop.backward(self.out.backward(dl.reshape(B, -1)))
        dh = np.zeros(h_shape, self.dtype)
        H, D = self.hidden_size, self.num_dirs
        for d in range(D):
            dh[h_shape[0] - D + d] = dfeat[:, d * H : (d + 1) * H]
        dx, _ = self.rnn.backward(None, (dh, None) if self.cell_type == "lstm" else dh)
        self.embed.backward(dx)

    def loss(
        self, tokens: Any, labels: Any, lengths: Any = None, backward: bool = True
    ) -> tuple[float, int]:
        """Mean loss over the batch (BCE with logits for one logit, else cross-entropy) and, with
        backward=True, its gradients. labels: (B,) 0/1 (binary) or class ids. Returns (loss, B)."""
        logits = self.forward(tokens, lengths)
        y = np.asarray(_checks.to_numpy(labels))
        if y.shape != (logits.shape[0],):
            raise ValueError(
                f"labels: expected shape ({logits.shape[0]},) (one per sequence), got {y.shape}"
            )
        if self.num_classes == 1:
            if not np.all((y == 0) | (y == 1)):
                raise ValueError(
                    "labels: expected 0/1 labels for a binary classifier (num_classes=1)"
                )
            loss, grad = binary_cross_entropy_with_logits_with_grad(logits, y.astype(self.dtype))
        else:
            loss, grad = cross_entropy_with_grad(logits, y)
        if backward:
            self.backward(grad)
        else:
            self._h_shape = None
        return loss, int(y.shape[0])

    def predict(self, tokens: Any, lengths: Any = None) -> np.ndarray:
        """Labels (B,): logit > 0 for binary, argmax otherwise (inference mode)."""
        from .seq2seq import inference

        with inference(self):
            logits = self.forward(tokens, lengths)
        return (logits > 0).astype(np.int64) if self.num_classes == 1 else logits.argmax(axis=1)
