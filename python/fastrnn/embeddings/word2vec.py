"""Word2Vec: skip-gram and CBOW, with negative sampling and/or hierarchical softmax (Mikolov et al.
2013), trained by fastrnn's C++ kernels with gensim 4's API.

Arguments, defaults and attribute names are gensim's (``Word2Vec(sentences, vector_size=100,
window=5, min_count=5, sg=0, hs=0, negative=5, ...)``, ``model.wv``, ``model.syn1neg``,
``model.train``), and the algorithm is word2vec.c's as gensim runs it: frequent-word subsampling,
a window shrunk at random per position, noise words from the unigram distribution to the power
0.75, a Huffman tree for hierarchical softmax, a learning rate falling linearly from alpha to
min_alpha, and lock-free (Hogwild) updates from `workers` threads.

Differences: sentences longer than 10000 words are cut into pieces (gensim drops the rest),
noise words come from an exact alias table (gensim: a cumulative table searched by bisection),
the sigmoid is computed exactly (word2vec.c and gensim: a 1000-entry table; as gensim does,
output units with |x| >= 6 are not updated),
and ``workers`` defaults to ``fastrnn.get_num_threads()``. With ``workers=1`` and a seed, training
is bitwise reproducible; with more threads, as in gensim, it is not.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

from .. import _C
from . import _corpus
from ._corpus import PathLike
from .keyedvectors import KeyedVectors

logger = logging.getLogger(__name__)


class Word2Vec:
    """Word2vec embeddings; gensim 4's ``gensim.models.Word2Vec`` API.

    Parameters
    ----------
    sentences : iterable of list of str, optional
        The corpus (restartable: it is read once to count words and once to encode them). If
        given (or `corpus_file`), the vocabulary is built and the model trained right away.
    corpus_file : path, optional
        Instead of `sentences`: a text file, one sentence per line, tokens separated by
        whitespace (gensim's LineSentence format), read by C++.
    vector_size : int
        D, the length of the vectors.
    window : int
        Maximal distance between the current and a predicted word.
    min_count : int
        Words occurring fewer times are dropped.
    sg : {0, 1}
        1 skip-gram, 0 CBOW.
    hs : {0, 1}
        1: hierarchical softmax (set ``negative=0`` for it alone).
    negative : int
        Noise words per positive example (0: no negative sampling).
    ns_exponent : float
        Noise distribution: counts to this power.
    cbow_mean : {0, 1}
        CBOW input: 1 the mean of the context vectors, 0 their sum.
    sample : float
        Subsampling threshold of frequent words (0: off).
    alpha, min_alpha : float
        Learning rate, falling linearly from alpha to min_alpha over all epochs.
    epochs : int
        Passes over the corpus.
    workers : int, optional
        Threads (default ``fastrnn.get_num_threads()``).
    seed : int
        Seeds the initial vectors and every random stream.
    max_final_vocab : int, optional
        Keep at most this many of the most frequent words.
    batch_words : int
        Words per job handed to a thread.
    compute_loss : bool
        Sum the negative log-likelihood while training (``get_latest_training_loss``).

    Attributes
    ----------
    wv : KeyedVectors
        The trained word vectors (V, D) (the input vectors, syn0).
    syn1neg : numpy.ndarray (V, D) or None
        Negative sampling's output vectors.
    syn1 : numpy.ndarray (V-1, D) or None
        Hierarchical softmax's inner-node vectors.
    """

    def __init__(
        self,
        sentences: Any = None,
        corpus_file: PathLike | None = None,
        vector_size: int = 100,
        alpha: float = 0.025,
        window: int = 5,
        min_count: int = 5,
        sample: float = 1e-3,
        seed: int = 1,
        workers: int | None = None,
        min_alpha: float = 0.0001,
        sg: int = 0,
        hs: int = 0,
        negative: int = 5,
        ns_exponent: float = 0.75,
        cbow_mean: int = 1,
        epochs: int = 5,
        max_final_vocab: int | None = None,
        batch_words: int = 10000,
        compute_loss: bool = False,
    ) -> None:
        self.vector_size = _corpus.int_arg("vector_size", vector_size, 1)
        self.alpha = _corpus.float_arg("alpha", alpha, 0.0, lo_open=True)
        self.min_alpha = _corpus.float_arg("min_alpha", min_alpha, 0.0)
        self.window = _corpus.int_arg("window", window, 1)
        self.min_count = _corpus.int_arg("min_count", min_count, 1)
        self.sample = _corpus.float_arg("sample", sample, 0.0)
        self.seed = _corpus.seed_arg(seed)
        self.workers = _corpus.workers_arg(workers)
        self.sg = _corpus.int_arg("sg", sg, 0, 1)
        self.hs = _corpus.int_arg("hs", hs, 0, 1)
        self.negative = _corpus.int_arg("negative", negative, 0, 1000)
        if not self.hs and not self.negative:
            raise ValueError(
                "hs=0 and negative=0: choose hierarchical softmax (hs=1) and/or negative sampling (negative > 0)"
            )
        self.ns_exponent = _corpus.float_arg("ns_exponent", ns_exponent, -1e9)
        self.cbow_mean = _corpus.int_arg("cbow_mean", cbow_mean, 0, 1)
        self.epochs = _corpus.int_arg("epochs", epochs, 1)
        self.max_final_vocab = (
            None
            if max_final_vocab is None
            else _corpus.int_arg("max_final_vocab", max_final_vocab, 1)
        )
        self.batch_words = _corpus.int_arg("batch_words", batch_words, 1)
        self.compute_loss = bool(compute_loss)
        self.wv = KeyedVectors(self.vector_size)
        self.syn1neg: np.ndarray | None = None
        self.syn1: np.ndarray | None = None
        self.corpus_count = 0
        self.corpus_total_words = 0
        self.running_training_loss = 0.0
        self.train_count = 0
        self._tables: dict[str, Any] = {}
        if sentences is not None or corpus_file is not None:
            _corpus.check_corpus(sentences, corpus_file)
            self.build_vocab(sentences, corpus_file=corpus_file)
            self.train(sentences, corpus_file=corpus_file)

    # ---- vocabulary -------------------------------------------------------------------------

    def build_vocab(self, corpus_iterable: Any = None, corpus_file: PathLike | None = None) -> None:
        """Counts the words, keeps those with count >= min_count (most frequent first) and
        initialises the weights: input vectors uniform in [-0.5, 0.5) / D, outputs zero."""
        _corpus.check_corpus(corpus_iterable, corpus_file)
        if corpus_iterable is None and corpus_file is None:
            raise TypeError("build_vocab: give corpus_iterable or corpus_file")
        words, counts, tokens, n_sent = _corpus.count_words(corpus_iterable, corpus_file)
        keys, kept = _corpus.build_vocab(words, counts, self.min_count, self.max_final_vocab)
        self.corpus_count = int(n_sent)
        self.corpus_total_words = int(tokens)
        V, D = len(keys), self.vector_size
        rng = np.random.default_rng(self.seed)
        syn0 = ((rng.random((V, D), dtype=np.float32) - np.float32(0.5)) / np.float32(D)).astype(
            np.float32
        )
        self.wv = KeyedVectors.from_arrays(keys, syn0, kept)
        self.syn1neg = np.zeros((V, D), np.float32) if self.negative else None
        self.syn1 = np.zeros((max(V - 1, 0), D), np.float32) if self.hs else None
        self._make_tables()
        logger.info(
            "vocabulary: %d words of %d distinct (min_count=%d), %d tokens",
            V,
            len(words),
            self.min_count,
            tokens,
        )

    def _make_tables(self) -> None:
        counts = self.wv.expandos["count"]
        t: dict[str, Any] = {
            "keep": _C.emb_subsample_table(counts, self.sample) if self.sample > 0 else None
        }
        if self.negative:
            t["alias_prob"], t["alias_idx"] = _C.emb_alias_table(
                counts.astype(np.float64) ** self.ns_exponent
            )
        else:
            t["alias_prob"] = t["alias_idx"] = None
        if self.hs:
            t["codes"], t["points"], t["code_start"] = _C.emb_huffman(counts)
        else:
            t["codes"] = t["points"] = t["code_start"] = None
        self._tables = t

    # ---- training ---------------------------------------------------------------------------

    def train(
        self,
        corpus_iterable: Any = None,
        corpus_file: PathLike | None = None,
        total_examples: int | None = None,
        total_words: int | None = None,
        epochs: int | None = None,
        start_alpha: float | None = None,
        end_alpha: float | None = None,
        compute_loss: bool | None = None,
        report_delay: float = 1.0,
    ) -> tuple[int, int]:
        """Trains on a corpus (the vocabulary is not extended: unknown words are skipped).

        gensim's signature; `total_examples` and `total_words` are accepted and not needed (the
        corpus is encoded first). Progress (words/s, loss, ETA) is logged at INFO level every
        `report_delay` seconds. Returns (effective words trained, raw words).
        """
        if not len(self.wv):
            raise ValueError(
                "train: the vocabulary is empty; call build_vocab first (or pass a corpus to Word2Vec)"
            )
        _corpus.check_corpus(corpus_iterable, corpus_file)
        if corpus_iterable is None and corpus_file is None:
            raise TypeError("train: give corpus_iterable or corpus_file")
        epochs = self.epochs if epochs is None else _corpus.int_arg("epochs", epochs, 1)
        a0 = (
            self.alpha
            if start_alpha is None
            else _corpus.float_arg("start_alpha", start_alpha, 0.0)
        )
        a1 = self.min_alpha if end_alpha is None else _corpus.float_arg("end_alpha", end_alpha, 0.0)
        if compute_loss is not None:
            self.compute_loss = bool(compute_loss)
        ids, starts, read = _corpus.encode(self.wv.index_to_key, corpus_iterable, corpus_file)
        N = len(ids)
        if N == 0:
            raise ValueError("train: no word of the corpus is in the vocabulary")
        job_sent = _job_bounds(starts, self.batch_words)
        J = len(job_sent) - 1
        seg = max(1, (1 << 20) // self.batch_words)  # ~1M words between progress checks
        t = self._tables
        self.running_training_loss = 0.0
        eff_total = 0
        t0 = last = time.perf_counter()
        for epoch in range(epochs):
            for j0 in range(0, J, seg):
                j1 = min(J, j0 + seg)
                loss, words, eff = _C.emb_w2v_train(
                    self.wv.vectors, self.syn1, self.syn1neg, t["keep"], t["alias_prob"], t["alias_idx"],
                    t["codes"], t["points"], t["code_start"], ids, starts, job_sent, j0, j1,
                    self.sg, self.hs, self.negative, self.window, self.cbow_mean, self.compute_loss,
                    a0, a1, float(epoch * N), float(epochs * N),
                    (self.seed + 0x9E3779B9 * self.train_count) & 0xFFFFFFFFFFFFFFFF, epoch, self.workers,
                )  # fmt: skip
                self.running_training_loss += loss
                eff_total += eff
                now = time.perf_counter()
                if now - last >= report_delay:
                    last = now
                    done = (epoch * N + int(starts[job_sent[j1]])) / (epochs * N)
                    el = now - t0
                    logger.info(
                        "EPOCH %d - PROGRESS: %.1f%%, %.0f words/s%s, ETA %.0fs",
                        epoch + 1, 100 * done, done * epochs * N / el,
                        f", loss {self.running_training_loss:.4g}" if self.compute_loss else "",
                        el * (1 - done) / max(done, 1e-9),
                    )  # fmt: skip
        el = time.perf_counter() - t0
        self.train_count += 1
        self.wv.norms = None
        logger.info(
            "training on %d raw words (%d effective words) took %.1fs, %.0f effective words/s",
            epochs * N, eff_total, el, eff_total / max(el, 1e-9),
        )  # fmt: skip
        return eff_total, epochs * N

    def get_latest_training_loss(self) -> float:
        """The summed negative log-likelihood of the last `train` call (compute_loss=True)."""
        return self.running_training_loss

    # ---- persistence ------------------------------------------------------------------------

    _PARAMS = ("vector_size", "alpha", "min_alpha", "window", "min_count", "sample", "seed", "workers",
               "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs", "max_final_vocab",
               "batch_words", "compute_loss", "corpus_count", "corpus_total_words", "train_count")  # fmt: skip

    def save(self, fname: PathLike) -> None:
        """Saves the whole model (to continue training) in one .npz file (no pickle)."""
        meta = {
            "format": "fastrnn.Word2Vec",
            "version": 1,
            **{k: getattr(self, k) for k in self._PARAMS},
        }
        arrays = {"keys": np.array(self.wv.index_to_key, dtype=object).astype(str), "syn0": self.wv.vectors,
                  "counts": self.wv.expandos["count"]}  # fmt: skip
        if self.syn1neg is not None:
            arrays["syn1neg"] = self.syn1neg
        if self.syn1 is not None:
            arrays["syn1"] = self.syn1
        with open(fname, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, fname: PathLike) -> Word2Vec:
        """Loads what `save` wrote; training can continue."""
        with np.load(fname, allow_pickle=False) as z:
            if "meta" not in z or json.loads(str(z["meta"])).get("format") != "fastrnn.Word2Vec":
                raise ValueError(f"{fname}: not a file written by Word2Vec.save")
            meta = json.loads(str(z["meta"]))
            m = cls(**{k: meta[k] for k in cls._PARAMS[:17]})
            for k in cls._PARAMS[17:]:
                setattr(m, k, meta[k])
            m.wv = KeyedVectors.from_arrays(
                [str(k) for k in z["keys"]], z["syn0"].copy(), z["counts"].copy()
            )
            m.syn1neg = z["syn1neg"].copy() if "syn1neg" in z else None
            m.syn1 = z["syn1"].copy() if "syn1" in z else None
        m._make_tables()
        return m

    def __repr__(self) -> str:
        return (f"Word2Vec<vocab={len(self.wv)}, vector_size={self.vector_size}, "
                f"{'sg' if self.sg else 'cbow'}, hs={self.hs}, negative={self.negative}, alpha={self.alpha}>")  # fmt: skip


def _job_bounds(starts: np.ndarray, batch_words: int) -> np.ndarray:
    """Sentence indices where jobs of about batch_words tokens begin, plus S at the end."""
    S = len(starts) - 1
    if S == 0:
        return np.zeros(1, np.int64)
    block = starts[:-1] // batch_words
    first = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    return np.r_[first, S].astype(np.int64)
