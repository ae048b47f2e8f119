"""Sequence-to-sequence with attention: bidirectional encoder, attentive LSTM/GRU decoder.

Architecture (Bahdanau et al. 2015, with any of fastrnn.nn's attention scores):

    encoder      x = Embedding(src); (annotations (S, B, 2H), h_n) = bidirectional RNN(x)
    bridge       s_0 = tanh(W [h_n forward; h_n backward] + b)         (last layer's states)
    step t       context_t, alpha_t = attention(query = s_{t-1}, keys = annotations, mask)
                 s_t = cell([Embedding(y_{t-1}); context_t], s_{t-1})
                 logits_t = W_o [s_t; context_t] + b_o

Training uses teacher forcing (y_{t-1} is the reference token) and `backward` runs the decoder
loop in reverse; decoding uses the same step through the step protocol shared with
fastrnn.beam_search:

    log_probs (N, V), state = model.step(tokens (N,), state)

where `state` is a dict of arrays whose first dimension is N (rows can be reordered or repeated
with `reorder_state`). Token arrays are batch-first: src (B, S), tgt (B, T).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import nn
from ..nn import _checks
from ..nn.losses import cross_entropy_with_grad, log_softmax

__all__ = ["Seq2Seq", "reorder_state"]


def reorder_state(state: dict[str, Any], indices: Any) -> dict[str, Any]:
    """The state with rows taken in the order of `indices` (N',) (beam search's reordering)."""
    idx = np.asarray(indices, dtype=np.int64)
    return {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in state.items()}


@contextlib.contextmanager
def inference(module: nn.Module) -> Iterator[None]:
    """Run a block in eval mode and restore the previous mode of every submodule after."""
    modes = [(m, m.training) for m in module.modules()]
    if any(t for _, t in modes):
        module.eval()
    try:
        yield
    finally:
        for m, t in modes:
            if m.training != t:
                object.__setattr__(m, "training", t)


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention; see the module docstring for the equations.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int
    embedding_dim : int
        E, for source and target embeddings.
    hidden_size : int
        H per direction of the encoder (annotations have 2H features).
    num_layers : int
        Encoder layers (stacked, each bidirectional).
    decoder_hidden_size : int or None
        Hd; default 2H.
    cell : {"lstm", "gru"}
        Encoder and decoder cell.
    attention : {"additive", "general", "dot", "scaled_dot"}
        "dot" needs Hd = 2H.
    attention_size : int or None
        A for additive attention; default Hd.
    dropout : float
        On embeddings, between encoder layers and before the output layer (training only).
    pad_index, bos_index, eos_index : int
        Target-side special ids (a `Vocab`'s defaults: 0, 2, 3). Source padding is given by
        `src_lengths`.
    dtype, seed :
        Every submodule is seeded from `seed`.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embedding_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        decoder_hidden_size: int | None = None,
        cell: str = "lstm",
        attention: str = "additive",
        attention_size: int | None = None,
        dropout: float = 0.0,
        pad_index: int = 0,
        bos_index: int = 2,
        eos_index: int = 3,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.src_vocab_size = _checks.positive_int("src_vocab_size", src_vocab_size)
        self.tgt_vocab_size = V = _checks.positive_int("tgt_vocab_size", tgt_vocab_size)
        E = self.embedding_dim = _checks.positive_int("embedding_dim", embedding_dim)
        H = self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        Hd = self.decoder_hidden_size = (
            2 * H
            if decoder_hidden_size is None
            else _checks.positive_int("decoder_hidden_size", decoder_hidden_size)
        )
        self.cell_type = _checks.choice("cell", cell, ("lstm", "gru"))
        self.attention_type = attention
        self.dropout = _checks.probability("dropout", dropout)
        for name, idx in (
            ("pad_index", pad_index),
            ("bos_index", bos_index),
            ("eos_index", eos_index),
        ):
            if not 0 <= int(idx) < V:
                raise ValueError(f"{name}: expected an id in [0, tgt_vocab_size={V}), got {idx}")
        self.pad_index, self.bos_index, self.eos_index = (
            int(pad_index),
            int(bos_index),
            int(eos_index),
        )
        self.dtype = _checks.dtype_arg(dtype)
        seeds = np.random.SeedSequence(seed).generate_state(12)
        dt = self.dtype
        self.src_embed = nn.Embedding(self.src_vocab_size, E, dtype=dt, seed=int(seeds[0]))
        self.tgt_embed = nn.Embedding(
            V, E, padding_idx=self.pad_index, dtype=dt, seed=int(seeds[1])
        )
        self.src_drop = nn.Dropout(self.dropout, seed=int(seeds[2]))
        self.tgt_drop = nn.Dropout(self.dropout, seed=int(seeds[3]))
        enc_cls = nn.LSTM if self.cell_type == "lstm" else nn.GRU
        self.encoder = enc_cls(
            E, H, num_layers=self.num_layers, bidirectional=True,
            dropout=self.dropout if self.num_layers > 1 else 0.0, dtype=dt, seed=int(seeds[4]),
        )  # fmt: skip
        self.bridge = nn.Linear(2 * H, Hd, dtype=dt, seed=int(seeds[5]))
        self.bridge_act = nn.Tanh()
        self.attention = nn.make_attention(
            attention, Hd, 2 * H, attention_size or Hd, dt, int(seeds[6])
        )
        cell_cls: Any = nn.LSTMCell if self.cell_type == "lstm" else nn.GRUCell
        self.decoder = cell_cls(E + 2 * H, Hd, dtype=dt, seed=int(seeds[7]))
        self.out_drop = nn.Dropout(self.dropout, seed=int(seeds[8]))
        self.out = nn.Linear(Hd + 2 * H, V, dtype=dt, seed=int(seeds[9]))
        self._cache: dict[str, Any] | None = None

    def extra_repr(self) -> str:
        return (
            f"src_vocab_size={self.src_vocab_size}, tgt_vocab_size={self.tgt_vocab_size}, "
            f"cell={self.cell_type!r}, attention={self.attention_type!r}"
        )

    _transient = ("_cache",)

    def _on_mode_change(self) -> None:
        self._cache = None

    # --- validation ------------------------------------------------------------------------------

    def _src(self, src: Any, src_lengths: Any) -> tuple[np.ndarray, np.ndarray | None]:
        s = _checks.token_ids("src", src, self.src_vocab_size, ndim=(2,))
        if s.shape[0] == 0 or s.shape[1] == 0:
            raise ValueError(
                f"src: expected a non-empty (B, S) array of token ids, got shape {s.shape}"
            )
        lens = (
            None
            if src_lengths is None
            else _checks.lengths("src_lengths", src_lengths, s.shape[0], s.shape[1])
        )
        return s, lens

    # --- encoder ---------------------------------------------------------------------------------

    def _encode(
        self, src: np.ndarray, lens: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """-> keys (B, S, 2H), s0 (B, Hd), raw encoder state (for backward)."""
        x = self.src_drop(self.src_embed(src.T))  # (S, B, E)
        out, hn = self.encoder(x, None, lens)  # (S, B, 2H)
        h: np.ndarray = hn[0] if self.cell_type == "lstm" else hn  # type: ignore[assignment]  # (2L, B, H)
        last = np.concatenate([h[-2], h[-1]], axis=1)  # (B, 2H)
        s0 = self.bridge_act(self.bridge(last))
        return np.ascontiguousarray(out.transpose(1, 0, 2)), s0, h.shape

    def _mask(self, lens: np.ndarray | None, B: int, S: int) -> np.ndarray | None:
        if lens is None:
            return None
        return np.arange(S)[None, :] < lens[:, None]

    # --- training --------------------------------------------------------------------------------

    def forward(self, src: Any, tgt_in: Any, src_lengths: Any = None) -> np.ndarray:
        """Teacher-forced logits.

        Parameters
        ----------
        src : int array (B, S)
        tgt_in : int array (B, T)
            Decoder inputs: <bos> y_1 ... y_{T-1} (the reference shifted right).
        src_lengths : int array (B,) in [1, S], or None for all S

        Returns
        -------
        logits : ndarray (B, T, V)
            Predictions of y_1 ... y_T (a transposed view of a (T, B, V) array).
        """
        src, lens = self._src(src, src_lengths)
        tgt = _checks.token_ids("tgt_in", tgt_in, self.tgt_vocab_size, ndim=(2,))
        B, S = src.shape
        if tgt.shape[0] != B:
            raise ValueError(
                f"tgt_in: batch size {tgt.shape[0]} does not match src's {B} (dimension 0 of both is the batch)"
            )
        if tgt.shape[1] == 0:
            raise ValueError("tgt_in: expected at least one decoder step, got shape (B, 0)")
        T, E, Hd = tgt.shape[1], self.embedding_dim, self.decoder_hidden_size
        keys, s, h_shape = self._encode(src, lens)
        memory = self.attention.prepare(keys, None, self._mask(lens, B, S))
        y = self.tgt_drop(self.tgt_embed(tgt.T))  # (T, B, E)
        lstm = self.cell_type == "lstm"
        self.decoder._tape.clear()  # a previous forward without backward leaves nothing behind
        c = np.zeros_like(s) if lstm else None
        states = np.empty((T, B, Hd), self.dtype)
        contexts = np.empty((T, B, keys.shape[2]), self.dtype)
        for t in range(T):
            ctx, _ = self.attention.attend(s, memory)  # query s_{t-1}
            x = np.concatenate([y[t], ctx], axis=1)  # (B, E + 2H)
            if lstm:
                s, c = self.decoder(x, (s, c))
            else:
                s = self.decoder(x, s)
            states[t] = s
            contexts[t] = ctx
        o = self.out_drop(np.concatenate([states, contexts], axis=2))  # (T, B, Hd + 2H)
        logits = self.out(o)  # (T, B, V)
        self._cache = (
            {"memory": memory, "T": T, "B": B, "E": E, "h_shape": h_shape}
            if self.training
            else None
        )
        return logits.transpose(1, 0, 2)

    def backward(self, d_logits: Any) -> None:
        """Differentiate the last training forward; adds every parameter's gradient."""
        cache = self._cache
        if cache is None:
            raise _checks.no_forward(type(self).__name__)
        T, B, E, Hd = cache["T"], cache["B"], cache["E"], self.decoder_hidden_size
        V = self.tgt_vocab_size
        dl = _checks.same_shape(
            "d_logits", d_logits, (B, T, V), self.dtype, "the shape of the logits"
        )
        self._cache = None
        memory = cache["memory"]
        do = self.out_drop.backward(self.out.backward(np.ascontiguousarray(dl.transpose(1, 0, 2))))
        d_states, d_contexts = do[..., :Hd], do[..., Hd:]
        dy = np.empty((T, B, E), self.dtype)
        ds = np.zeros((B, Hd), self.dtype)
        dc = np.zeros((B, Hd), self.dtype)
        lstm = self.cell_type == "lstm"
        decoder: Any = self.decoder
        for t in reversed(range(T)):
            if lstm:
                dx, (ds, dc) = decoder.backward(ds + d_states[t], dc)
            else:
                dx, ds = decoder.backward(ds + d_states[t])
            dy[t] = dx[:, :E]
            ds = ds + self.attention.attend_backward(dx[:, E:] + d_contexts[t], memory)
        self.tgt_embed.backward(self.tgt_drop.backward(dy))
        d_last = self.bridge.backward(self.bridge_act.backward(ds))  # (B, 2H)
        H = self.hidden_size
        dh = np.zeros(cache["h_shape"], self.dtype)
        dh[-2], dh[-1] = d_last[:, :H], d_last[:, H:]
        d_keys, _ = self.attention.prepare_backward(memory)
        d_out = np.ascontiguousarray(d_keys.transpose(1, 0, 2))
        dx_src, _ = self.encoder.backward(d_out, (dh, None) if lstm else dh)
        self.src_embed.backward(self.src_drop.backward(dx_src))

    def loss(
        self,
        src: Any,
        tgt: Any,
        src_lengths: Any = None,
        label_smoothing: float = 0.0,
        backward: bool = True,
    ) -> tuple[float, int]:
        """Mean token cross-entropy of `tgt` (B, T+1) = <bos> y_1 ... y_T <pad>... under teacher
        forcing (<pad> positions ignored), and with backward=True its gradients added in.

        Returns (mean loss, number of target tokens)."""
        tgt = _checks.token_ids("tgt", tgt, self.tgt_vocab_size, ndim=(2,))
        if tgt.shape[1] < 2:
            raise ValueError(
                f"tgt: expected (B, T+1) with T >= 1 (<bos> then targets), got shape {tgt.shape}"
            )
        logits = self.forward(src, tgt[:, :-1], src_lengths)
        target = tgt[:, 1:]
        V = self.tgt_vocab_size
        loss, grad = cross_entropy_with_grad(
            logits.reshape(-1, V), target.reshape(-1), ignore_index=self.pad_index,
            label_smoothing=label_smoothing,
        )  # fmt: skip
        n = int(np.count_nonzero(target != self.pad_index))
        if backward:
            self.backward(grad.reshape(logits.shape))
        else:
            self._cache = None
        return loss, n

    # --- decoding ------------------------------------------------------------------------------

    def init_state(self, src: Any, src_lengths: Any = None) -> dict[str, np.ndarray]:
        """Encode a batch for decoding: the state before the first `step` (rows = sequences)."""
        src, lens = self._src(src, src_lengths)
        with inference(self):
            keys, s0, _ = self._encode(src, lens)
            mask = self._mask(lens, *src.shape)
            memory = self.attention.prepare(keys, None, mask)
        state = {"h": s0, "proj": memory.proj, "values": memory.values,
                 "mask": np.ones(src.shape, bool) if mask is None else mask,
                 "attention": np.zeros(src.shape, self.dtype)}  # fmt: skip
        if self.cell_type == "lstm":
            state["c"] = np.zeros_like(s0)
        return state

    def step(
        self, tokens: Any, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One decoder step (the step protocol): tokens (N,) are y_{t-1} -> (log_probs (N, V), state).

        The new state's "attention" (N, S) holds this step's attention weights. Runs in inference
        mode whatever the module's mode (nothing is kept for backward)."""
        y = _checks.token_ids("tokens", tokens, self.tgt_vocab_size, ndim=(1,))
        s = state["h"]
        if y.shape[0] != s.shape[0]:
            raise ValueError(
                f"tokens: expected {s.shape[0]} tokens (one per state row), got {y.shape[0]}"
            )
        memory = self.attention.memory_from_arrays(state["proj"], state["values"], state["mask"])
        training = self.attention.training
        object.__setattr__(self.attention, "training", False)
        try:
            ctx, alpha = self.attention.attend(s, memory)
        finally:
            object.__setattr__(self.attention, "training", training)
        x = np.concatenate([self.tgt_embed.weight[y], ctx], axis=1)
        h1, c1 = self.decoder._weights().step(np.ascontiguousarray(x), s, state.get("c"))
        o = np.concatenate([h1, ctx], axis=1)
        logits = o @ self.out.weight.T + self.out.bias
        new = dict(state)
        new["h"], new["attention"] = h1, alpha
        if c1 is not None:
            new["c"] = c1
        return log_softmax(logits), new

    reorder_state = staticmethod(reorder_state)

    def greedy_decode(
        self, src: Any, src_lengths: Any = None, max_len: int = 50, return_attention: bool = False
    ) -> Any:
        """Most likely token at each step until <eos> (or max_len steps).

        Returns tokens (B, L) (<eos> included, <pad> after it), and with return_attention the
        weights (B, L, S) of each step over the source."""
        max_len = _checks.positive_int("max_len", max_len)
        state = self.init_state(src, src_lengths)
        B = state["h"].shape[0]
        tokens = np.full(B, self.bos_index, np.int64)
        done = np.zeros(B, bool)
        out, att = [], []
        for _ in range(max_len):
            logp, state = self.step(tokens, state)
            tokens = logp.argmax(axis=1)
            tokens[done] = self.pad_index
            out.append(tokens)
            att.append(state["attention"])
            done |= tokens == self.eos_index
            if done.all():
                break
        ids = np.stack(out, axis=1)
        if return_attention:
            return ids, np.stack(att, axis=1)
        return ids

    def beam_decode(
        self,
        src: Any,
        src_lengths: Any = None,
        beam_size: int = 4,
        max_len: int = 50,
        alpha: float = 0.0,
        length_penalty: str = "length",
        n_best: int = 1,
    ) -> list[Any]:
        """Beam search (fastrnn.decoding.batch_beam_search) over `step`, sentence by sentence
        independent of the batching.

        Returns a list of B lists of `Hypothesis` (tokens (T,) ending with <eos> when finished,
        score, log_prob), best first; beam_size=1 is greedy decoding."""
        from ..decoding import batch_beam_search

        return batch_beam_search(
            self.step, self.init_state(src, src_lengths), bos=self.bos_index, eos=self.eos_index,
            beam_size=beam_size, max_len=max_len, alpha=alpha, length_penalty=length_penalty,
            n_best=n_best,
        )  # fmt: skip
