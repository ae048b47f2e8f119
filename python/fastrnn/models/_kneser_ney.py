"""Interpolated Kneser-Ney n-gram language models, with ARPA export and import.

Model (Chen & Goodman 1999, interpolated modified Kneser-Ney). For a k-gram "h w" (context h of
k-1 tokens) with adjusted count a(h w):

    P_k(w | h) = max(a(h w) - D_k(a(h w)), 0) / sum_v a(h v)  +  gamma(h) P_{k-1}(w | h')
    gamma(h)   = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3 N3+(h .)) / sum_v a(h v)

where h' drops the first token of h, N_r(h .) counts the words v with a(h v) = r (r >= 3 for
N3+), and a context never seen with a follower defers entirely: P_k(w | h) = P_{k-1}(w | h').
The adjusted count is the plain count at the highest order and the number of distinct left
extensions N1+(. h w) ("continuation count") below it. The three discounts per order come from
the counts-of-counts n_r of that order's adjusted counts: Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y
n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3. `discount=d` uses one discount d everywhere
instead (the original interpolated Kneser-Ney, and NLTK's).

Two conventions for sentence boundaries and the lowest order (`convention=`):

- "kenlm" (default; KenLM's lmplz, SRILM's -kndiscount -interpolate): each sentence is padded
  with one <s> and one </s>; n-grams that start with <s> keep their plain counts (nothing can
  precede them); <s> is never predicted (probability 0, log10 -99 in ARPA); unigrams are
  discounted too and interpolated with the uniform distribution over the vocabulary (every
  token seen in training, </s> and <unk>), so unseen words get a small probability. These are
  the conventions KenLM and SRILM document; their outputs were not available here to compare
  with number by number.
- "nltk" (NLTK's `nltk.lm.KneserNeyInterpolated`, with `discount=0.1` to match its default):
  sentences are padded with order-1 <s> and order-1 </s> and every n-gram of the padded
  sentence is scored (NLTK's `pad_both_ends` + `ngrams`); unigrams are continuation counts over
  their total, undiscounted, with no uniform floor (an unseen word has probability 0); and
  gamma's numerator below the highest order counts the words seen after h at all (NLTK's
  choice) rather than those with a continuation count, so its distributions after a context of
  only <s> padding sum to slightly more than 1. With these conventions the probabilities are
  NLTK's, to rounding.

ARPA: an interpolated model is exactly a backoff model. For every k-gram seen, the ARPA
probability is the full interpolated P_k(w | h), and the backoff weight of a context h is
gamma(h): where "h w" was never seen, P_k(w | h) = gamma(h) P_{k-1}(w | h'), which is the
backoff rule. So `to_arpa` writes the model losslessly (values as shortest round-trip decimals)
and scoring is the same backoff walk whether the model was fitted or read from a file.

Counting runs in C++ (fastrnn._C._ngram_count); the rest is NumPy over the count tables.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from .. import _C
from ..nn import _checks

__all__ = ["KneserNeyLM"]

CONVENTIONS = ("kenlm", "nltk")
ARPA_ZERO = -99.0  # log10 of probability 0, as SRILM and KenLM write it


class KneserNeyLM:
    """Interpolated (modified) Kneser-Ney language model over tokens (words, characters, ids).

    Parameters
    ----------
    order : int >= 1
        n (3: trigrams, contexts of 2 tokens). `convention="nltk"` needs n >= 2.
    discount : float in (0, 1] or None
        None (default): modified Kneser-Ney, three discounts per order estimated from the
        counts-of-counts. A number: that one discount at every order and count (NLTK uses 0.1).
    convention : "kenlm" or "nltk"
        Sentence boundaries and lowest-order estimate (see the module docstring).
    bos, eos, unk : str
        Sentence start, end and unknown-word tokens. Tokens equal to bos or eos may not appear
        inside training sentences; tokens never seen in training are scored as `unk`.

    Notes
    -----
    Probabilities are returned as floats; `logprob`, `score` and ARPA files use log10, as KenLM
    and SRILM do. Example::

        lm = KneserNeyLM(3).fit([s.split() for s in lines])
        lm.perplexity([s.split() for s in held_out])
        lm.to_arpa("lm.arpa"); KneserNeyLM.from_arpa("lm.arpa")
    """

    def __init__(
        self,
        order: int,
        discount: float | None = None,
        *,
        convention: str = "kenlm",
        bos: str = "<s>",
        eos: str = "</s>",
        unk: str = "<unk>",
    ) -> None:
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"order: expected an int >= 1, got {order!r}")
        self.order = int(order)
        if discount is not None:
            if (
                isinstance(discount, bool)
                or not isinstance(discount, (int, float, np.floating, np.integer))
                or not 0.0 < float(discount) <= 1.0
            ):
                raise ValueError(f"discount: expected None or a number in (0, 1], got {discount!r}")
            discount = float(discount)
        self.discount = discount
        self.convention = _checks.choice("convention", convention, CONVENTIONS)
        if self.convention == "nltk" and self.order < 2:
            raise ValueError("order: convention='nltk' needs order >= 2 (NLTK's unigram level "
                             f"is built from bigram continuations), got {self.order}")  # fmt: skip
        if self.convention == "nltk" and self.discount is None:
            raise ValueError("discount: convention='nltk' uses one discount (NLTK's default is "
                             "0.1), got None")  # fmt: skip
        if len({bos, eos, unk}) != 3 or not all(isinstance(t, str) and t for t in (bos, eos, unk)):
            raise ValueError(f"bos, eos, unk: expected three different non-empty str, got "
                             f"{bos!r}, {eos!r}, {unk!r}")  # fmt: skip
        self.bos, self.eos, self.unk = bos, eos, unk
        self.discounts: list[tuple[float, float, float]] | None = None  # per order, after fit
        self._vocab: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        # per order k (index k-1): sorted keys (prefix row * V + last id; the id itself at k=1),
        # log10 probabilities and log10 backoff weights of the rows
        self._keys: list[np.ndarray] = []
        self._logp: list[np.ndarray] = []
        self._bow: list[np.ndarray] = []
        self._has_bow: list[np.ndarray] = []  # rows that are some longer n-gram's context

    # ----------------------------------------------------------------------------- fitting
    @property
    def vocab(self) -> list[Hashable]:
        """Tokens by id: unk, bos, eos, then the training tokens in order of first appearance."""
        return list(self._vocab)

    def _pads(self) -> int:
        return self.order - 1 if self.convention == "nltk" else 1

    def _set_vocab(self, tokens: list[Hashable]) -> None:
        self._vocab = tokens
        self._index = {t: i for i, t in enumerate(tokens)}

    def _encode(
        self, sentences: Any, name: str, grow: bool, bos: bool = True, eos: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded ids (N,), sentence offsets (S+1,), and where scoring starts in each sentence."""
        if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
            raise TypeError(f"{name}: expected a list of sentences (each a sequence of tokens), "
                            f"got {type(sentences).__name__}")  # fmt: skip
        pad = self._pads()
        index, vocab = self._index, self._vocab
        unk, b_id, e_id = index[self.unk], index[self.bos], index[self.eos]
        ids: list[int] = []
        offsets = [0]
        starts: list[int] = []
        for i, s in enumerate(sentences):
            if (
                isinstance(s, (str, bytes))
                or not isinstance(s, (Sequence, np.ndarray))
                or (isinstance(s, np.ndarray) and s.ndim != 1)
            ):
                raise TypeError(
                    f"{name}[{i}]: expected a sequence of tokens, got {type(s).__name__}"
                    + (
                        " (split it: s.split() for words, list(s) for characters)"
                        if isinstance(s, str)
                        else ""
                    )  # fmt: skip
                )
            if bos:
                ids.extend([b_id] * pad)
            starts.append(len(ids))
            if grow:
                for t in s:
                    j = index.get(t)
                    if j is None:
                        try:
                            j = index[t] = len(vocab)
                        except TypeError:
                            raise TypeError(f"{name}[{i}]: tokens must be hashable, got "
                                            f"{type(t).__name__}") from None  # fmt: skip
                        vocab.append(t)
                    elif j in (b_id, e_id):
                        raise ValueError(f"{name}[{i}]: contains the boundary token {t!r}; "
                                         "the model adds bos/eos itself")  # fmt: skip
                    ids.append(j)
            else:
                ids.extend(index.get(t, unk) for t in s)
            if eos:
                ids.extend([e_id] * pad)
            offsets.append(len(ids))
        return (
            np.asarray(ids, np.int64),
            np.asarray(offsets, np.int64),
            np.asarray(starts, np.int64),
        )

    def fit(self, sentences: Iterable[Sequence[Hashable]]) -> KneserNeyLM:
        """Count and estimate from training sentences, each a sequence of tokens (a list of
        words, a list of characters, an array of ids). Returns self."""
        self._set_vocab([self.unk, self.bos, self.eos])
        self._keys, self._logp, self._bow, self._has_bow = [], [], [], []
        self.discounts = None
        try:
            ids, offsets, _ = self._encode(sentences, "sentences", grow=True)
            n_tokens = ids.size - (offsets.size - 1) * 2 * self._pads()
            if n_tokens <= 0:
                raise ValueError(
                    f"sentences: no tokens to fit ({offsets.size - 1} sentences, all empty)"
                    if offsets.size > 1 else "sentences: the corpus is empty"
                )  # fmt: skip
            V = len(self._vocab)
            tables = _C._ngram_count(ids, offsets, self.order, V)
            self._estimate(tables, V)
        except BaseException:  # leave no half-fitted model behind
            self._keys, self._logp, self._bow, self._has_bow = [], [], [], []
            self.discounts = None
            raise
        return self

    def _adjusted(self, t: dict[str, np.ndarray], k: int) -> np.ndarray:
        """Counts that order k's estimate uses (plain at the top, continuation below)."""
        n, b_id = self.order, self._index[self.bos]
        if k == n:
            a = t["count"].copy()
        else:
            a = t["left"].copy()
            if self.convention == "kenlm":
                starts_bos = t["grams"][:, 0] == b_id
                a[starts_bos] = t["count"][starts_bos]
        if self.convention == "kenlm":
            a[t["grams"][:, -1] == b_id] = 0  # <s> is never predicted
        return a

    def _discounts(self, a: np.ndarray, k: int) -> tuple[float, float, float]:
        if self.discount is not None:
            return (self.discount,) * 3
        n1, n2, n3, n4 = (int(np.count_nonzero(a == r)) for r in (1, 2, 3, 4))
        bad = f"order {k}: counts-of-counts n1..n4 = {n1}, {n2}, {n3}, {n4}"
        if min(n1, n2, n3, n4) == 0:
            raise ValueError(f"{bad}: some are 0, so the modified Kneser-Ney discounts cannot be "
                             "estimated (corpus too small); pass a fixed discount, e.g. "
                             "discount=0.75")  # fmt: skip
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if not (0 < d[0] < 1 and 0 < d[1] < 2 and 0 < d[2] < 3):
            raise ValueError(f"{bad} give discounts {d} outside (0, 1), (0, 2), (0, 3) (a corpus "
                             "too small or unusual); pass a fixed discount, e.g. discount=0.75")  # fmt: skip
        return d

    def _estimate(self, tables: list[dict[str, np.ndarray]], V: int) -> None:
        """Interpolated probabilities of every seen k-gram, in backoff form."""
        n = self.order
        # Order 1 as a full table over the vocabulary (row = id), so rows of order 2 refer to ids.
        t1 = tables[0]
        uni_ids = t1["grams"][:, 0].astype(np.int64)
        full = {"grams": np.arange(V, dtype=np.int64)[:, None]}
        for f in ("count", "left"):
            full[f] = np.zeros(V, np.int64)
            full[f][uni_ids] = t1[f]
        tables = [full] + tables[1:]
        if n >= 2:
            t2 = dict(tables[1])
            t2["prefix"], t2["suffix"] = uni_ids[t2["prefix"]], uni_ids[t2["suffix"]]
            tables[1] = t2

        self.discounts = []
        prob: list[np.ndarray] = []
        gam: list[np.ndarray] = []  # gamma of each row of order k as a context of order k+1
        for k in range(1, n + 1):
            t = tables[k - 1]
            a = self._adjusted(t, k).astype(np.float64)
            D = self._discounts(a, k)
            self.discounts.append(D)
            Da = np.select([a == 0, a == 1, a == 2], [0.0, D[0], D[1]], D[2])
            if k == 1:
                ctx, n_ctx = np.zeros(V, np.int64), 1
            else:
                ctx, n_ctx = t["prefix"], tables[k - 2]["count"].size
            total = np.bincount(ctx, weights=a, minlength=n_ctx)
            num: np.ndarray
            if self.convention == "nltk" and k < n:
                d = float(self.discount or 0.0)  # set: convention "nltk" requires it
                num = d * np.bincount(ctx, minlength=n_ctx).astype(np.float64)  # words after h
            else:
                num = np.bincount(ctx, weights=Da, minlength=n_ctx)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            gamma = np.where(seen, num / safe, 1.0)
            if k == 1 and self.convention == "nltk":
                p = a / safe[0]  # NLTK: continuation counts over their total, undiscounted
            else:
                p = np.maximum(a - Da, 0.0) / safe[ctx]
            if k == 1:
                if self.convention == "kenlm":
                    b_id = self._index[self.bos]
                    p = p + gamma[0] / (V - 1)  # uniform over every token but <s>
                    p[b_id] = 0.0
            else:
                gam.append(gamma)
                p = p + gamma[ctx] * prob[k - 2][t["suffix"]]
            prob.append(p)

        self._keys, self._logp, self._bow = [], [], []
        with np.errstate(divide="ignore"):
            for k in range(1, n + 1):
                t = tables[k - 1]
                last = t["grams"][:, -1].astype(np.int64)
                self._keys.append(last if k == 1 else t["prefix"] * V + last)
                self._logp.append(np.log10(prob[k - 1]))
                bow = np.zeros(prob[k - 1].size)
                if k < n:
                    has = tables[k]["prefix"]  # rows of order k that are some k+1-gram's context
                    bow[has] = np.log10(gam[k - 1][has])
                self._bow.append(bow)
        self._has_bow = [np.zeros(s.size, bool) for s in self._logp]
        for k in range(1, n):
            self._has_bow[k - 1][tables[k]["prefix"]] = True

    # ----------------------------------------------------------------------------- scoring
    def _check_fitted(self) -> None:
        if not self._keys:
            raise RuntimeError("KneserNeyLM: call fit() (or KneserNeyLM.from_arpa) before scoring")

    def _log10_at(self, ids: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """log10 P(ids[p] | the tokens before p in its sentence, at most order-1 of them) for
        every p; pos[p] is p's index within its sentence. ARPA backoff rule."""
        n, V, N = self.order, len(self._vocab), ids.size
        rows = [ids.copy()]  # rows[k-1][p]: row of the k-gram ending at p in order k, or -1
        for k in range(2, n + 1):
            prev = np.full(N, -1, np.int64)
            prev[1:] = rows[-1][:-1]
            ok = np.flatnonzero((prev >= 0) & (pos >= k - 1))
            r = np.full(N, -1, np.int64)
            keys = self._keys[k - 1]
            if ok.size and keys.size:
                want = prev[ok] * V + ids[ok]
                j = np.minimum(np.searchsorted(keys, want), keys.size - 1)
                hit = keys[j] == want
                r[ok[hit]] = j[hit]
            rows.append(r)
        lp = self._logp[0][ids]
        found = np.ones(N, np.int64)  # longest order found for the k-gram ending at p
        for k in range(2, n + 1):
            m = rows[k - 1] >= 0
            lp[m] = self._logp[k - 1][rows[k - 1][m]]
            found[m] = k
        for j in range(1, n):  # back off from the context of length j where order j+1 failed
            ctx = np.full(N, -1, np.int64)
            ctx[1:] = rows[j - 1][:-1]
            m = (found <= j) & (pos >= j) & (ctx >= 0)
            lp[m] += self._bow[j - 1][ctx[m]]
        return lp

    def _sentence_log10(
        self, sentences: Any, name: str, bos: bool, eos: bool
    ) -> tuple[np.ndarray, int]:
        """(log10 probability of each sentence, number of tokens scored)."""
        self._check_fitted()
        ids, offsets, starts = self._encode(sentences, name, grow=False, bos=bos, eos=eos)
        S = offsets.size - 1
        if S == 0:
            raise ValueError(f"{name}: no sentences")
        sent = np.repeat(np.arange(S), np.diff(offsets))
        pos = np.arange(ids.size) - offsets[:-1][sent]
        lp = self._log10_at(ids, pos)
        scored = np.arange(ids.size) >= starts[sent]
        per = np.bincount(sent[scored], weights=lp[scored], minlength=S)
        return per, int(np.count_nonzero(scored))

    def score(self, sentence: Sequence[Hashable], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of one sentence (KenLM's `score`): every token after the <s>
        padding (if `bos`), and the </s> padding (if `eos`)."""
        return float(self._sentence_log10([sentence], "sentence", bos, eos)[0][0])

    def scores(
        self, sentences: Iterable[Sequence[Hashable]], bos: bool = True, eos: bool = True
    ) -> np.ndarray:
        """log10 probability of each sentence (S,), as `score`, vectorized."""
        return self._sentence_log10(sentences, "sentences", bos, eos)[0]

    def perplexity(
        self, sentences: Iterable[Sequence[Hashable]], bos: bool = True, eos: bool = True
    ) -> float:
        """10 ** (-mean log10 P) over every scored token of `sentences` (</s> included, as KenLM
        and NLTK count it, unless eos=False)."""
        per, count = self._sentence_log10(sentences, "sentences", bos, eos)
        if count == 0:
            raise ValueError("sentences: no tokens to score")
        # an exactly rounded sum: the same number however the sentences are split up
        return float(10.0 ** (-math.fsum(per.tolist()) / count))

    def _context_ids(self, word: Hashable, context: Any) -> np.ndarray:
        self._check_fitted()
        if isinstance(context, (str, bytes)) or not isinstance(context, Iterable):
            raise TypeError(f"context: expected a sequence of tokens, got {type(context).__name__}")
        unk = self._index[self.unk]
        ctx = [self._index.get(t, unk) for t in context]
        ctx = ctx[max(0, len(ctx) - (self.order - 1)) :] if self.order > 1 else []
        return np.asarray(ctx + [self._index.get(word, unk)], np.int64)

    def logprob(self, word: Hashable, context: Sequence[Hashable] = ()) -> float:
        """log10 P(word | context), using the last order-1 tokens of `context` (include the
        bos token for a sentence start). Unseen tokens read as unk."""
        ids = self._context_ids(word, context)
        return float(self._log10_at(ids, np.arange(ids.size))[-1])

    def prob(self, word: Hashable, context: Sequence[Hashable] = ()) -> float:
        """P(word | context); see `logprob`."""
        return float(10.0 ** self.logprob(word, context))

    # ----------------------------------------------------------------------------- ARPA
    def _arpa_word(self, t: Hashable) -> str:
        w = str(t)
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"to_arpa: token {t!r} is empty or contains whitespace, which ARPA "
                             "cannot hold; map tokens to printable names first")  # fmt: skip
        return w

    def to_arpa(self, path: str | os.PathLike[str]) -> None:
        """Write the model as an ARPA backoff file (log10 values; probability 0 as -99).

        Tokens are written with str(); they must be non-empty and contain no whitespace. A first
        comment line records the convention and order, which `from_arpa` reads back."""
        self._check_fitted()
        n, V = self.order, len(self._vocab)
        words = [self._arpa_word(t) for t in self._vocab]
        if len(set(words)) != len(words):
            raise ValueError("to_arpa: two tokens have the same str(); ARPA needs distinct names")
        # the words of every row, order by order: row r of order k = (row of its prefix, last id)
        grams: list[list[str]] = [words]
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# fastrnn KneserNeyLM order={n} convention={self.convention} "
                    f"discount={self.discount}\n\n\\data\\\n")  # fmt: skip
            for k in range(1, n + 1):
                f.write(f"ngram {k}={self._keys[k - 1].size}\n")
            for k in range(1, n + 1):
                keys = self._keys[k - 1]
                if k > 1:
                    prefix, last = np.divmod(keys, V)
                    low = grams[-1]
                    grams.append(
                        [f"{low[p]} {words[w]}" for p, w in zip(prefix.tolist(), last.tolist())]
                    )
                f.write(f"\n\\{k}-grams:\n")
                logp, bow, has = self._logp[k - 1], self._bow[k - 1], self._has_bow[k - 1]
                lines = []
                for g, lp, b, h in zip(grams[-1], logp.tolist(), bow.tolist(), has.tolist()):
                    lp = ARPA_ZERO if lp == -math.inf else lp
                    if h:
                        b = ARPA_ZERO if b == -math.inf else b
                        lines.append(f"{lp!r}\t{g}\t{b!r}\n")
                    else:
                        lines.append(f"{lp!r}\t{g}\n")
                f.writelines(lines)
            f.write("\n\\end\\\n")

    @classmethod
    def from_arpa(
        cls,
        path: str | os.PathLike[str],
        convention: str | None = None,
        *,
        bos: str = "<s>",
        eos: str = "</s>",
        unk: str = "<unk>",
    ) -> KneserNeyLM:
        """Read an ARPA backoff model (ours, KenLM's, SRILM's, NLTK-converted...). The model then
        scores with the backoff rule; it cannot be refitted. `convention` (how sentences are
        padded when scoring) defaults to the one recorded by `to_arpa`, else "kenlm". A unk token
        missing from the file is added with probability 0. Every n-gram's prefix must have an
        entry of its own (KenLM and SRILM write them so); -99 is read as the number it is."""
        entries, header_conv = _read_arpa(path)
        n = len(entries)
        conv = convention if convention is not None else (header_conv or "kenlm")
        lm = cls(n, bos=bos, eos=eos, unk=unk)
        lm.convention = _checks.choice("convention", conv, CONVENTIONS)  # the discount is unknown
        unigrams = entries[0]
        words = [g[0] for g, _, _ in unigrams]
        index: dict[str, int] = {}
        for i, w in enumerate(words):
            if w in index:
                raise ValueError(f"{path}: unigram {w!r} appears twice")
            index[w] = i
        logp1 = [lp for _, lp, _ in unigrams]
        bow1 = [b for _, _, b in unigrams]
        for tok in (unk, bos, eos):
            if tok not in index:
                index[tok] = len(words)
                words.append(tok)
                logp1.append(-math.inf)
                bow1.append(None)
        V = len(words)
        lm._set_vocab(list(words))
        keys = [np.arange(V, dtype=np.int64)]
        logps = [np.asarray(logp1, np.float64)]
        bows = [np.asarray([0.0 if b is None else b for b in bow1], np.float64)]
        has = [np.asarray([b is not None for b in bow1], bool)]
        for k in range(2, n + 1):
            rows = entries[k - 1]
            try:
                W = np.asarray([[index[w] for w in g] for g, _, _ in rows], np.int64).reshape(-1, k)
            except KeyError as e:
                raise ValueError(f"{path}: a {k}-gram uses {e.args[0]!r}, which has no unigram "
                                 "entry") from None  # fmt: skip
            prefix = W[:, 0].copy()
            for j in range(1, k - 1):  # walk the prefix down the tables of orders 2..k-1
                want = prefix * V + W[:, j]
                kk = keys[j]
                pos = np.minimum(np.searchsorted(kk, want), max(kk.size - 1, 0))
                miss = kk[pos] != want if kk.size else np.ones(want.size, bool)
                if np.any(miss):
                    g = rows[int(np.flatnonzero(miss)[0])][0]
                    raise ValueError(f"{path}: the {k}-gram {' '.join(g)!r} has no "
                                     f"{j + 1}-gram entry for its prefix")  # fmt: skip
                prefix = pos
            key = prefix * V + W[:, -1]
            perm = np.argsort(key, kind="stable")
            key = key[perm]
            dup = np.flatnonzero(key[1:] == key[:-1])
            if dup.size:
                g = rows[int(perm[dup[0]])][0]
                raise ValueError(f"{path}: the {k}-gram {' '.join(g)!r} appears twice")
            keys.append(key)
            logps.append(np.asarray([lp for _, lp, _ in rows], np.float64)[perm])
            b = [bw for _, _, bw in rows]
            bows.append(np.asarray([0.0 if x is None else x for x in b], np.float64)[perm])
            has.append(np.asarray([x is not None for x in b], bool)[perm])
        lm._keys, lm._logp, lm._bow, lm._has_bow = keys, logps, bows, has
        return lm

    def __repr__(self) -> str:
        return (f"KneserNeyLM(order={self.order}, discount={self.discount}, "
                f"convention={self.convention!r}, vocab={len(self._vocab)})")  # fmt: skip


_HEADER = re.compile(r"#\s*fastrnn KneserNeyLM\b.*\bconvention=(\w+)")
_NGRAM_LINE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)$")


def _read_arpa(
    path: str | os.PathLike[str],
) -> tuple[list[list[tuple[list[str], float, float | None]]], str | None]:
    """Entries per order [(words, log10 p, log10 backoff or None)], and our header's convention."""
    conv: str | None = None
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ValueError(f"path: cannot read {path!r}: {e.strerror}") from None
    with f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines) and lines[i].strip() != "\\data\\":
        m = _HEADER.match(lines[i].strip())
        if m:
            conv = m.group(1)
        i += 1
    if i == len(lines):
        raise ValueError(f"{path}: not an ARPA file (no \\data\\ line)")
    i += 1
    counts: list[int] = []
    while i < len(lines) and not lines[i].strip().startswith("\\"):
        s = lines[i].strip()
        if s:
            m = _NGRAM_LINE.match(s)
            if not m:
                raise ValueError(f"{path}:{i + 1}: expected 'ngram K=COUNT', got {s!r}")
            if int(m.group(1)) != len(counts) + 1:
                raise ValueError(
                    f"{path}:{i + 1}: expected 'ngram {len(counts) + 1}=...', got {s!r}"
                )
            counts.append(int(m.group(2)))
        i += 1
    if not counts:
        raise ValueError(f"{path}: no 'ngram K=COUNT' lines after \\data\\")
    entries: list[list[tuple[list[str], float, float | None]]] = []
    for k in range(1, len(counts) + 1):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i == len(lines) or lines[i].strip() != f"\\{k}-grams:":
            got = lines[i].strip() if i < len(lines) else "the end of the file"
            raise ValueError(f"{path}:{i + 1}: expected '\\{k}-grams:', got {got!r}")
        i += 1
        rows: list[tuple[list[str], float, float | None]] = []
        while i < len(lines) and not lines[i].strip().startswith("\\"):
            parts = lines[i].split()
            if parts:
                if len(parts) not in (k + 1, k + 2):
                    raise ValueError(f"{path}:{i + 1}: a {k}-gram line needs log10 p, {k} "
                                     f"words and an optional backoff, got {lines[i]!r}")  # fmt: skip
                try:
                    lp = float(parts[0])
                    bw = float(parts[k + 1]) if len(parts) == k + 2 else None
                except ValueError:
                    raise ValueError(f"{path}:{i + 1}: not a number in {lines[i]!r}") from None
                if not math.isfinite(lp) or lp > 0 or (bw is not None and not math.isfinite(bw)):
                    raise ValueError(f"{path}:{i + 1}: expected log10 p <= 0 and a finite "
                                     f"backoff, got {lines[i]!r}")  # fmt: skip
                rows.append((parts[1 : k + 1], lp, bw))
            i += 1
        if len(rows) != counts[k - 1]:
            raise ValueError(f"{path}: the header announces {counts[k - 1]} {k}-grams, the "
                             f"section holds {len(rows)}")  # fmt: skip
        entries.append(rows)
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or lines[i].strip() != "\\end\\":
        raise ValueError(f"{path}: missing '\\end\\' after the {len(counts)}-grams")
    if conv is not None and conv not in CONVENTIONS:
        conv = None
    return entries, conv
