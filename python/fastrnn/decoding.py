"""Decoding over a step function: beam search (one sentence or a batch), sampling, sequence
scoring, and the search-versus-model error analysis. It never computes log-probabilities itself:
the model does, through one protocol that every decoder here shares,

    step(tokens, state) -> (log_probs, state)

taking `tokens` (N,) int64, the last token of each of N running sequences, and returning
`log_probs` (N, V) floating (log-probabilities of the next token: finite or -inf, never NaN, +inf
or above 0) and the new state. A state is an array with leading dimension N, or a tuple, list or
dict of such (nested freely; None and leaves without a shape pass through untouched); the decoder
reorders it with ``state[rows]`` as hypotheses are kept, copied or dropped, so NumPy arrays and
torch tensors both work. N changes from call to call: finished sequences leave the batch.

Scores. A hypothesis y_1..y_T (T counts the generated tokens, EOS included; BOS is not generated)
scores (1 / lp(T)) * sum_t log P(y_t | x, y_<t), with lp(T) = T**alpha ("length"; alpha=0, the
default, ranks by log P(y|x)) or ((5 + T) / 6)**alpha ("gnmt", Wu et al. 2016). Sums are float64,
added in order, so `score_sequence` reproduces a hypothesis's `log_prob` exactly.

Search. Each step takes the `beam_size` best candidates (a live hypothesis extended by one token)
by cumulative log-probability; those ending in EOS are finished and set aside, the rest stay live.
A sentence stops when no live hypothesis can still beat its `n_best`-th best finished one: log-
probabilities only fall, so a live one's final score is at most its log-prob now divided by the
largest lp(T) it could still reach. This is exact: the results are those of running to `max_len`
(with alpha > 0 that bound is loose, and searches run longer). Live hypotheses still running at
`max_len` are returned unfinished (`finished=False`), ranked with the rest. Candidates tie-break
on the better parent, then the smaller token id; beam_size=1 is greedy decoding. Selection never
sorts the vocabulary: maxima over groups of tokens bound where the best candidates can be, and
only those groups are examined. Sentences never interact, so a sentence's result is the same
however it is batched.

Names. This module is `fastrnn.decoding`. `fastrnn.beam_search` (the package attribute) is the
function, as the README documents it, and every public name here is also a package attribute
(`fastrnn.score_sequence`, ...). For code written against older versions the module is also
registered as `fastrnn.beam_search` in `sys.modules`, so `from fastrnn.beam_search import
batch_beam_search` and `importlib.import_module("fastrnn.beam_search")` give this module; only
`import fastrnn.beam_search as x` binds the function, because Python reads the attribute first.

Token ids (bos, eos, ids to score) are integers in [0, V): anything else, negative ids, ids >= V
and unsigned ids >= 2**63 (which would wrap to negative as int64) included, is a ValueError
naming the argument.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Union

import numpy as np

__all__ = [
    "ErrorAnalysis",
    "Hypothesis",
    "batch_beam_search",
    "beam_search",
    "error_analysis",
    "length_penalty",
    "sample",
    "score_sequence",
]

State = Any  # an array with leading dimension N, or tuples/lists/dicts of them
Step = Callable[[np.ndarray, State], "tuple[Any, State]"]
TokenSequence = Union[Sequence[int], np.ndarray]

_PENALTIES = ("length", "gnmt")
_GROUP_COLUMNS = 320  # candidate selection: about this many token groups per row ...
_MAX_STRIDES = 64  # ... of at most this many tokens each


class Hypothesis(tuple):  # type: ignore[type-arg]
    """One decoded sequence; unpacks as ``tokens, score``.

    Attributes
    ----------
    tokens : numpy.ndarray of int64, (T,)
        Generated tokens (BOS excluded), ending with EOS when `finished`.
    score : float
        log_prob / lp(T), the quantity the search ranks by.
    log_probs : numpy.ndarray of float64, (T,)
        log P(y_t | x, y_<t) of each token.
    log_prob : float
        Their sum, log P(y | x).
    finished : bool
        False for a sequence cut at max_len without EOS.
    """

    tokens: np.ndarray
    score: float
    log_probs: np.ndarray
    log_prob: float
    finished: bool

    def __new__(
        cls,
        tokens: np.ndarray,
        score: float,
        log_probs: np.ndarray,
        log_prob: float,
        finished: bool = True,
    ) -> Hypothesis:
        self = super().__new__(cls, (tokens, score))
        self.log_probs = log_probs
        self.log_prob = log_prob
        self.finished = finished
        return self

    tokens = property(lambda self: tuple.__getitem__(self, 0))  # type: ignore[assignment]
    score = property(lambda self: tuple.__getitem__(self, 1))  # type: ignore[assignment]

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickling
        return (self.tokens, self.score, self.log_probs, self.log_prob, self.finished)

    def __repr__(self) -> str:
        state = "" if self.finished else ", finished=False"
        return f"Hypothesis(tokens={self.tokens.tolist()}, score={self.score:.6g}{state})"


class ErrorAnalysis(NamedTuple):
    """Whom to blame for a wrong output: the search (widen the beam) or the model.

    The search is at fault when the model prefers the reference to what the search returned,
    score(y*) > score(ŷ) (with alpha=0: P(y*|x) > P(ŷ|x)); otherwise the model is.
    """

    reference_score: float
    output_score: float
    reference_log_prob: float
    output_log_prob: float
    search_error: bool

    @property
    def fault(self) -> str:
        """ "search" or "model"."""
        return "search" if self.search_error else "model"


# --- argument checks -------------------------------------------------------------------------


def _int_arg(name: str, value: Any, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
    return int(value)


_ID_MAX = int(np.iinfo(np.int64).max)


def _token_arg(name: str, value: Any) -> int:
    """A token id (bos, eos): an integer in [0, 2**63); checked against V at the first step."""
    value = _int_arg(name, value, 0)
    if value > _ID_MAX:
        raise ValueError(
            f"{name}: expected a token id in [0, V), got {value} (beyond int64, so beyond any V)"
        )
    return value


def _real_arg(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return float(value)


def _penalty_arg(kind: Any) -> str:
    if kind not in _PENALTIES:
        raise ValueError(f"length_penalty: expected 'length' or 'gnmt', got {kind!r}")
    return str(kind)


def _step_arg(step: Any) -> Step:
    if not callable(step):
        raise TypeError(f"step: expected a callable step(tokens, state), got {type(step).__name__}")
    return step  # type: ignore[no-any-return]


def _max_len_arg(max_len: Any, batch: int) -> np.ndarray:
    if isinstance(max_len, (numbers.Integral, np.integer)) and not isinstance(max_len, bool):
        return np.full(batch, _int_arg("max_len", max_len, 1), np.int64)
    arr = np.asarray(max_len)
    if arr.shape != (batch,) or arr.dtype.kind not in "iu":
        raise ValueError(
            f"max_len: expected a positive integer or {batch} of them (one per sentence), "
            f"got {max_len!r}"
        )
    if arr.min() < 1:
        raise ValueError(f"max_len: expected positive integers, got {arr.min()}")
    return arr.astype(np.int64)


def _leading_dims(state: State, out: list[int]) -> None:
    if state is None:
        return
    if isinstance(state, (tuple, list)):
        for s in state:
            _leading_dims(s, out)
    elif isinstance(state, dict):
        for s in state.values():
            _leading_dims(s, out)
    else:
        shape = getattr(state, "shape", None)
        if shape is not None and len(shape) >= 1:
            out.append(int(shape[0]))


def _batch_of(state: State, name: str = "state") -> int | None:
    dims: list[int] = []
    _leading_dims(state, dims)
    if dims and any(d != dims[0] for d in dims):
        raise ValueError(f"{name}: arrays have different leading dimensions {sorted(set(dims))}")
    return dims[0] if dims else None


def _check_state(state: State, n: int) -> None:
    got = _batch_of(state, "step's state")
    if got is not None and got != n:
        raise ValueError(
            f"step returned a state with leading dimension {got}; expected {n}, one row per token"
        )


def _take(state: State, rows: np.ndarray) -> State:
    """state with its rows reordered, copied or dropped: row i of the result is rows[i]."""
    if state is None:
        return None
    if isinstance(state, tuple):
        parts = [_take(s, rows) for s in state]
        return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)
    if isinstance(state, list):
        return [_take(s, rows) for s in state]
    if isinstance(state, dict):
        items = {k: _take(v, rows) for k, v in state.items()}
        try:
            return type(state)(items)
        except TypeError:  # a dict subclass with another constructor (defaultdict, ...)
            return items
    shape = getattr(state, "shape", None)
    if shape is None or len(shape) == 0:
        return state
    return state[rows]


def _log_probs(out: Any, n: int, vocab: int | None, bos: int, eos: int) -> tuple[np.ndarray, State]:
    """Validates what step returned, for n rows; returns (log_probs (n, V), state)."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("step: expected it to return a pair (log_probs, state)")
    lp, state = out
    lp = np.asarray(lp)
    if lp.ndim != 2 or lp.shape[0] != n:
        raise ValueError(
            f"log_probs: step returned shape {lp.shape}; expected (N, V) with N = {n}, "
            "one row per token it was given"
        )
    if lp.dtype.kind != "f":
        raise TypeError(f"log_probs: expected a floating dtype, got {lp.dtype}")
    v = lp.shape[1]
    if vocab is not None and v != vocab:
        raise ValueError(f"log_probs: the vocabulary changed from {vocab} to {v} between steps")
    if vocab is None:
        if v < 1:
            raise ValueError("log_probs: the vocabulary is empty (V = 0)")
        for name, tok in (("eos", eos), ("bos", bos)):
            if tok >= v:
                raise ValueError(f"{name}: expected a token id in [0, V) = [0, {v}), got {tok}")
    _check_state(state, n)
    return lp, state


def _bad_values(lp: np.ndarray) -> ValueError:
    if np.isnan(lp).any():
        r, c = np.argwhere(np.isnan(lp))[0]
        return ValueError(f"log_probs: NaN at row {r}, token {c}")
    if np.isposinf(lp).any():
        r, c = np.argwhere(np.isposinf(lp))[0]
        return ValueError(f"log_probs: +inf at row {r}, token {c}")
    r, c = np.unravel_index(np.argmax(lp), lp.shape)
    return ValueError(
        f"log_probs: expected log-probabilities (<= 0), got {float(lp[r, c])!r} "
        f"at row {r}, token {c}; "
        "return log_softmax outputs"
    )


def _lp(length: Any, alpha: float, kind: str) -> Any:
    t = np.asarray(length, dtype=np.float64)
    out = t**alpha if kind == "length" else ((5.0 + t) / 6.0) ** alpha
    return float(out) if out.ndim == 0 else out


def length_penalty(length: Any, alpha: float, kind: str = "length") -> Any:
    """lp(T): T**alpha ("length") or ((5 + T) / 6)**alpha ("gnmt"); T may be an array.

    A hypothesis of T tokens with log-probability L scores L / lp(T).
    """
    return _lp(length, _real_arg("alpha", alpha), _penalty_arg(kind))


# --- beam search -----------------------------------------------------------------------------


def beam_search(
    step: Step,
    state: State,
    *,
    bos: int,
    eos: int,
    beam_size: int,
    max_len: int,
    alpha: float = 0.0,
    length_penalty: str = "length",
    n_best: int = 1,
) -> list[Hypothesis]:
    """Beam search for one sentence: its `n_best` best hypotheses, best first.

    Parameters
    ----------
    step : callable
        step(tokens (N,) int64, state) -> (log_probs (N, V), state); see the module docstring.
    state : array or tuple/list/dict of arrays, leading dimension 1
        The model's state before BOS (e.g. the encoded source), for one sentence.
    bos, eos : int
        Token ids that start generation and end a hypothesis.
    beam_size : int
        Candidates kept per step (1: greedy decoding).
    max_len : int
        Most tokens generated, EOS included.
    alpha : float
        Length-normalization exponent (0: rank by log P(y|x)).
    length_penalty : {"length", "gnmt"}
        lp(T) = T**alpha, or ((5 + T) / 6)**alpha.
    n_best : int
        Hypotheses returned (at most beam_size; fewer when fewer exist).

    Returns
    -------
    list of Hypothesis
        Best first; each unpacks as ``tokens, score`` and carries `log_probs`, `log_prob` and
        `finished`.
    """
    b = _batch_of(state)
    if b not in (None, 1):
        raise ValueError(
            f"state: expected leading dimension 1 (one sentence), got {b}; use batch_beam_search "
            "for several sentences"
        )
    return batch_beam_search(
        step,
        state,
        bos=bos,
        eos=eos,
        beam_size=beam_size,
        max_len=max_len,
        alpha=alpha,
        length_penalty=length_penalty,
        n_best=n_best,
        batch_size=1,
    )[0]


def batch_beam_search(
    step: Step,
    state: State,
    *,
    bos: int,
    eos: int,
    beam_size: int,
    max_len: int | Sequence[int] | np.ndarray,
    alpha: float = 0.0,
    length_penalty: str = "length",
    n_best: int = 1,
    batch_size: int | None = None,
) -> list[list[Hypothesis]]:
    """Beam search for B sentences at once; each result equals `beam_search` of that sentence.

    Parameters
    ----------
    step : callable
        step(tokens (N,) int64, state) -> (log_probs (N, V), state); N mixes the live hypotheses
        of all sentences still running.
    state : array or tuple/list/dict of arrays, leading dimension B
        One row per sentence.
    max_len : int or sequence of int, (B,)
        Most tokens generated, per sentence or for all.
    batch_size : int or None
        B, when `state` holds no array to read it from.
    bos, eos, beam_size, alpha, length_penalty, n_best
        As in `beam_search`.

    Returns
    -------
    list of B lists of Hypothesis
        results[b]: sentence b's best hypotheses, best first.
    """
    step = _step_arg(step)
    bos, eos = _token_arg("bos", bos), _token_arg("eos", eos)
    k = _int_arg("beam_size", beam_size, 1)
    n_best = _int_arg("n_best", n_best, 1)
    if n_best > k:
        raise ValueError(f"n_best: expected at most beam_size = {k}, got {n_best}")
    alpha = _real_arg("alpha", alpha)
    kind = _penalty_arg(length_penalty)
    b = _batch_of(state)
    if batch_size is not None:
        batch_size = _int_arg("batch_size", batch_size, 1)
        if b is not None and b != batch_size:
            raise ValueError(
                f"batch_size: {batch_size} disagrees with state's leading dimension {b}"
            )
        b = batch_size
    if b is None:
        raise ValueError("state: holds no array to read the batch size from; pass batch_size")
    if b < 1:
        raise ValueError("state: the batch is empty (leading dimension 0)")
    max_lens = _max_len_arg(max_len, b)
    return _BeamSearch(step, k, n_best, eos, alpha, kind, max_lens).run(state, bos)


class _BeamSearch:
    """The state of one batched search. Live rows are grouped by sentence, best first in each."""

    def __init__(
        self,
        step: Step,
        k: int,
        n_best: int,
        eos: int,
        alpha: float,
        kind: str,
        max_lens: np.ndarray,
    ) -> None:
        self.step, self.k, self.n_best, self.eos = step, k, n_best, eos
        self.alpha, self.kind, self.max_lens = alpha, kind, max_lens
        b = max_lens.size
        self.finished: list[list[Hypothesis]] = [[] for _ in range(b)]
        self.keys: list[list[float]] = [[] for _ in range(b)]  # -score of each, ascending
        self.nth = np.full(b, -np.inf)  # n_best-th best finished score per sentence
        self.buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A reusable array of this shape and dtype (contents undefined)."""
        size = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.size < size:
            buf = self.buffers[name] = np.empty(size, dtype)
        return buf[:size].reshape(shape)

    def penalty(self, t: Any) -> Any:
        return _lp(t, self.alpha, self.kind)

    def finish(
        self, sent: int, tokens: np.ndarray, lps: np.ndarray, total: float, done: bool
    ) -> None:
        score = total / self.penalty(tokens.size)
        keys = self.keys[sent]
        if len(keys) == self.n_best and -score >= keys[-1]:
            return  # cannot enter the n-best (ties go to the hypothesis found first)
        i = bisect.bisect_right(keys, -score)
        keys.insert(i, -score)
        self.finished[sent].insert(i, Hypothesis(tokens, float(score), lps, float(total), done))
        del keys[self.n_best :], self.finished[sent][self.n_best :]
        if len(keys) == self.n_best:
            self.nth[sent] = -keys[-1]

    def run(self, state: State, bos: int) -> list[list[Hypothesis]]:
        b = self.max_lens.size
        sent = np.arange(b, dtype=np.int64)  # (N,) sentence of each live row
        cum = np.zeros(b)  # (N,) float64 cumulative log-prob
        toks = np.zeros((b, 0), np.int64)  # (N, t) history
        lps = np.zeros((b, 0))  # (N, t)
        last = np.full(b, bos, np.int64)
        vocab: int | None = None
        t = 0
        while sent.size:
            t += 1
            n = sent.size
            lp, state = _log_probs(self.step(last, state), n, vocab, bos, self.eos)
            vocab = lp.shape[1]
            row, tok, score = self.select(lp, cum, sent)
            src = lp[row, tok].astype(np.float64)
            is_eos = tok == self.eos
            at_limit = self.max_lens[sent[row]] <= t
            for i in np.flatnonzero(is_eos | at_limit):
                r = row[i]
                self.finish(
                    int(sent[r]),
                    np.append(toks[r], tok[i]),
                    np.append(lps[r], src[i]),
                    float(score[i]),
                    bool(is_eos[i]),
                )
            keep = ~(is_eos | at_limit)
            row, tok, score, src = row[keep], tok[keep], score[keep], src[keep]
            # Stop the sentences whose best live hypothesis can no longer beat their n-th best.
            new_sent = sent[row]
            if new_sent.size:
                first = np.flatnonzero(np.r_[True, new_sent[1:] != new_sent[:-1]])
                s_first = new_sent[first]
                reach = np.maximum(self.penalty(t + 1), self.penalty(self.max_lens[s_first]))
                stop = score[first] / reach <= self.nth[s_first]
                if stop.any():
                    alive = ~np.isin(new_sent, s_first[stop])
                    row, tok, score, src, new_sent = (
                        row[alive],
                        tok[alive],
                        score[alive],
                        src[alive],
                        new_sent[alive],
                    )
            sent, cum, last = new_sent, score, tok
            toks = np.concatenate([toks[row], tok[:, None]], axis=1)
            lps = np.concatenate([lps[row], src[:, None]], axis=1)
            if sent.size:
                state = _take(state, row)
        return self.finished

    def select(
        self, lp: np.ndarray, cum: np.ndarray, sent: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k best candidates of each sentence, grouped by sentence, best first.

        Returns (row, token, cumulative log-prob) of each; -inf candidates are never chosen.
        Order: higher cumulative log-prob, then lower row (a better parent), then lower token.
        """
        k = self.k
        n, v = lp.shape
        # Group maxima bound every candidate: the k-th best group maximum (over a sentence's
        # rows) is <= the k-th best candidate, so only groups reaching it can hold a winner.
        # Group g < C is the tokens g, g + C, ..., g + (R-1)C (a strided max is one SIMD pass per
        # stride); the last V - R*C tokens form one group each. Buffers are reused between
        # steps: fresh large temporaries would cost more in page faults than the work itself.
        r = max(1, min(_MAX_STRIDES, v // _GROUP_COLUMNS))
        c = v // r
        ng = c + v - r * c
        gmax = self.buffer("gmax", (n, ng), lp.dtype)
        lp[:, : r * c].reshape(n, r, c).max(axis=1, out=gmax[:, :c])
        gmax[:, c:] = lp[:, r * c :]
        if not gmax.max() <= 0:  # also catches NaN
            raise _bad_values(lp)
        gscore = self.buffer("gscore", (n, ng), np.float64)  # (N, groups) cumulative
        np.add(cum[:, None], gmax, out=gscore)
        change = np.empty(n, bool)
        change[0] = True
        np.not_equal(sent[1:], sent[:-1], out=change[1:])
        starts = np.flatnonzero(change)
        grp = np.cumsum(change) - 1  # (N,) dense sentence index
        ns = starts.size
        flat = self.buffer("flat", (ns, k * ng), np.float64)
        if n == ns * k:  # every sentence has k live rows
            flat[...] = gscore.reshape(ns, k * ng)
        else:
            rank = np.arange(n) - starts[grp]
            flat3 = flat.reshape(ns, k, ng)
            flat3[...] = -np.inf
            flat3[grp, rank] = gscore
        flat.partition(k * ng - k, axis=1)
        thr = flat[:, k * ng - k][grp]  # (N,) the k-th best group of the row's sentence
        grow, gcol = np.divmod(np.flatnonzero(gscore >= thr[:, None]), ng)
        strides = np.arange(r)
        tail = gcol >= c
        cols = np.where(tail[:, None], r * c + (gcol - c)[:, None], gcol[:, None] + c * strides)
        valid = ~tail[:, None] | (strides == 0)
        vals = lp[grow[:, None], cols].astype(np.float64)  # (M, R)
        cand = cum[grow][:, None] + vals
        ok = valid & (cand >= thr[grow][:, None]) & (cand > -np.inf)
        ci, cj = np.nonzero(ok)
        row, tok, score = grow[ci], cols[ci, cj], cand[ci, cj]
        g = grp[row]
        order = np.lexsort((tok, row, -score, g))
        row, tok, score, g = row[order], tok[order], score[order], g[order]
        first = np.searchsorted(g, g, side="left")
        pick = (np.arange(g.size) - first) < k
        return row[pick], tok[pick].astype(np.int64), score[pick]


# --- scoring and error analysis -----------------------------------------------------------


def _is_single(tokens: Any) -> bool:
    if isinstance(tokens, np.ndarray):
        return tokens.ndim == 1 and tokens.dtype != object
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
        raise TypeError(
            "tokens: expected a sequence of token ids (or a list of them), "
            f"got {type(tokens).__name__}"
        )
    return len(tokens) == 0 or isinstance(tokens[0], (numbers.Integral, np.integer))


def _token_array(seq: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(seq)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: expected a 1-D sequence of token ids ({e})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size and (arr.dtype == np.bool_ or arr.dtype.kind not in "iu"):
        what = "Python ints beyond 64 bits" if arr.dtype == object else f"dtype {arr.dtype}"
        raise TypeError(f"{name}: expected integer token ids, got {what}")
    if arr.size and arr.min() < 0:
        i = int(np.argmin(arr))
        raise ValueError(f"{name}: token ids must be in [0, V), got {arr[i]} at position {i}")
    if arr.size and arr.dtype == np.uint64 and arr.max() > _ID_MAX:
        i = int(np.argmax(arr > _ID_MAX))
        raise ValueError(
            f"{name}: token ids must be in [0, V), got {int(arr[i])} at position {i} (beyond "
            "int64, so beyond any V)"
        )
    return arr.astype(np.int64)


def score_sequence(
    step: Step,
    state: State,
    tokens: TokenSequence | Sequence[TokenSequence],
    *,
    bos: int,
    per_token: bool = False,
) -> Any:
    """log P(y | x) of given token sequences under the model (teacher forcing).

    Parameters
    ----------
    step : callable
        The decoders' step function.
    state : array or tuple/list/dict of arrays, leading dimension 1 or B
        As for `beam_search` (1) or `batch_beam_search` (B).
    tokens : sequence of int (T,), or list of B such sequences
        Scored exactly as given (include EOS to score a complete sentence, as beam search does).
    bos : int
    per_token : bool
        Return each token's log-probability instead of the sum.

    Returns
    -------
    float, or numpy.ndarray (B,) for a list of sequences; with `per_token`, an array (T,) or a
    list of B arrays. Sums are added in order in float64, as beam search adds them.
    """
    single = _is_single(tokens)
    seqs: list[Any] = [tokens] if single else list(tokens)  # type: ignore[arg-type]
    names = ["tokens"] if single else [f"tokens[{i}]" for i in range(len(seqs))]
    return _score(step, state, seqs, names, bos, per_token, single)


def _score(
    step: Step,
    state: State,
    sequences: list[Any],
    names: list[str],
    bos: int,
    per_token: bool,
    single: bool,
) -> Any:
    """score_sequence of sequences[i], whose errors name names[i]."""
    step = _step_arg(step)
    bos = _token_arg("bos", bos)
    seqs = [_token_array(s, n) for s, n in zip(sequences, names)]
    b = _batch_of(state)
    if b is not None and b != len(seqs):
        raise ValueError(
            f"state: leading dimension {b} does not match the {len(seqs)} sequence(s) to score"
        )
    per = [np.zeros(s.size) for s in seqs]
    live = np.flatnonzero([s.size > 0 for s in seqs])
    if live.size < len(seqs) and live.size:
        state = _take(state, live)
    last = np.full(live.size, bos, np.int64)
    vocab: int | None = None
    t = 0
    while live.size:
        lp, state = _log_probs(step(last, state), live.size, vocab, bos, 0)
        vocab = lp.shape[1]
        nxt = np.array([seqs[i][t] for i in live], np.int64)
        if nxt.max() >= vocab:
            bad = int(live[np.argmax(nxt >= vocab)])
            raise ValueError(
                f"{names[bad]}: id {seqs[bad][t]} at position {t} is outside [0, V = {vocab})"
            )
        if not lp.max() <= 0:  # also catches NaN
            raise _bad_values(lp)
        got = lp[np.arange(live.size), nxt].astype(np.float64)
        for j, i in enumerate(live):
            per[i][t] = got[j]
        t += 1
        more = np.array([seqs[i].size > t for i in live], bool)
        if not more.all():
            keep = np.flatnonzero(more)
            live, state = live[keep], _take(state, keep) if keep.size else state
            nxt = nxt[keep]
        last = nxt
    if per_token:
        return per[0] if single else per
    sums = np.array([_ordered_sum(p) for p in per])
    return float(sums[0]) if single else sums


def _ordered_sum(values: np.ndarray) -> float:
    total = 0.0
    for x in values.tolist():
        total += x
    return total


def error_analysis(
    step: Step,
    state: State,
    reference: TokenSequence,
    output: TokenSequence | Hypothesis,
    *,
    bos: int,
    alpha: float = 0.0,
    length_penalty: str = "length",
) -> ErrorAnalysis:
    """Is a wrong output the search's fault or the model's? (for one sentence)

    Scores the reference y* and the search's output ŷ under the model; if the model prefers y*
    (score(y*) > score(ŷ)), the search missed a better sequence and a wider beam may help;
    otherwise the model itself ranks its wrong output higher. alpha=0 compares log P(y|x), the
    seeds' criterion; pass the search's alpha and length_penalty to judge it by its own objective.

    Parameters
    ----------
    step, state, bos
        As for `beam_search` (state for one sentence).
    reference : sequence of int
        The correct output y*, ending with EOS (as search outputs do).
    output : sequence of int or Hypothesis
        The search's output ŷ.
    alpha, length_penalty
        The objective to compare by (default: log-likelihood).

    Returns
    -------
    ErrorAnalysis
        .search_error, .fault ("search" or "model"), and both scores and log-probabilities.
    """
    alpha = _real_arg("alpha", alpha)
    kind = _penalty_arg(length_penalty)
    if isinstance(output, Hypothesis):
        output = output.tokens
    ref = _token_array(reference, "reference")
    out = _token_array(output, "output")
    b = _batch_of(state)
    if b not in (None, 1):
        raise ValueError(f"state: expected leading dimension 1 (one sentence), got {b}")
    rows = np.zeros(2, np.intp)
    both = _score(step, _take(state, rows), [ref, out], ["reference", "output"], bos, False, False)
    ref_lp, out_lp = float(both[0]), float(both[1])

    def score(lp: float, n: int) -> float:
        return lp / _lp(n, alpha, kind) if n else lp  # an empty sequence scores log P = 0

    ref_score, out_score = score(ref_lp, ref.size), score(out_lp, out.size)
    return ErrorAnalysis(ref_score, out_score, ref_lp, out_lp, ref_score > out_score)


# --- sampling --------------------------------------------------------------------------------


def sample(
    step: Step,
    state: State,
    *,
    bos: int,
    eos: int,
    max_len: int,
    temperature: float = 1.0,
    top_k: int = 0,
    num_samples: int = 1,
    seed: int | np.random.Generator | None = None,
) -> list[Hypothesis]:
    """Ancestral sampling with temperature and top-k, for language models or any step function.

    Parameters
    ----------
    step : callable
        The decoders' step function.
    state : array or tuple/list/dict of arrays, leading dimension B
        One row per prompt (or source); each is sampled `num_samples` times.
    bos, eos : int
    max_len : int
        Most tokens generated, EOS included (longer samples are cut: finished=False).
    temperature : float
        > 0; tokens are drawn from softmax(log_probs / temperature).
    top_k : int
        Draw only among the k most likely tokens (0: all).
    num_samples : int
        Samples per row of `state`.
    seed : int, numpy.random.Generator or None
        Same seed, same samples.

    Returns
    -------
    list of Hypothesis, (B * num_samples,)
        Sample j of row b at index b * num_samples + j. score and log_prob are log P(y|x) under
        the model itself (temperature and top-k do not change them).
    """
    step = _step_arg(step)
    bos, eos = _token_arg("bos", bos), _token_arg("eos", eos)
    max_len = _int_arg("max_len", max_len, 1)
    top_k = _int_arg("top_k", top_k, 0)
    num_samples = _int_arg("num_samples", num_samples, 1)
    temperature = _real_arg("temperature", temperature)
    if temperature <= 0:
        raise ValueError(
            f"temperature: expected a number > 0, got {temperature} (for greedy decoding use "
            "beam_search with beam_size=1)"
        )
    if not (seed is None or isinstance(seed, np.random.Generator)):
        seed = _int_arg("seed", seed, 0)
    rng = np.random.default_rng(seed)
    b = _batch_of(state)
    b = 1 if b is None else b
    if b < 1:
        raise ValueError("state: the batch is empty (leading dimension 0)")
    rows = np.repeat(np.arange(b), num_samples)
    state = _take(state, rows)
    total = rows.size
    out: list[Hypothesis | None] = [None] * total
    live = np.arange(total)
    toks = np.zeros((total, 0), np.int64)
    lps = np.zeros((total, 0))
    last = np.full(total, bos, np.int64)
    vocab: int | None = None
    for t in range(1, max_len + 1):
        lp, state = _log_probs(step(last, state), live.size, vocab, bos, eos)
        vocab = lp.shape[1]
        if not lp.max() <= 0:  # also catches NaN
            raise _bad_values(lp)
        lp64 = lp.astype(np.float64)
        logits = lp64 / temperature
        if top_k and top_k < vocab:
            cut = np.partition(logits, vocab - top_k, axis=1)[:, vocab - top_k]
            logits = np.where(logits >= cut[:, None], logits, -np.inf)
        peak = logits.max(axis=1, keepdims=True)
        if not np.isfinite(peak).all():
            r = int(np.flatnonzero(~np.isfinite(peak[:, 0]))[0])
            raise ValueError(f"log_probs: row {r} gives every token probability 0 (all -inf)")
        cdf = np.cumsum(np.exp(logits - peak), axis=1)
        u = rng.random(live.size) * cdf[:, -1]
        tok = np.argmax(cdf > u[:, None], axis=1).astype(np.int64)
        got = lp64[np.arange(live.size), tok]
        toks = np.concatenate([toks, tok[:, None]], axis=1)
        lps = np.concatenate([lps, got[:, None]], axis=1)
        done = (tok == eos) | (t == max_len)
        for i in np.flatnonzero(done):
            s = _ordered_sum(lps[i])
            out[live[i]] = Hypothesis(toks[i].copy(), s, lps[i].copy(), s, bool(tok[i] == eos))
        keep = np.flatnonzero(~done)
        if keep.size == 0:
            break
        if keep.size < live.size:
            live, toks, lps, tok = live[keep], toks[keep], lps[keep], tok[keep]
            state = _take(state, keep)
        last = tok
    return out  # type: ignore[return-value]
