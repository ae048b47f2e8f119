"""GloVe (Pennington, Socher and Manning 2014): word vectors fitted to the logarithm of word-word
co-occurrence counts, trained by fastrnn's C++ kernels.

The algorithm is the reference implementation's (glove.c with cooccur.c and shuffle.c): counts
X_ij summed with weight 1/distance over a symmetric window, collected in bounded memory (a dense
table for frequent pairs, sorted runs spilled to temporary files and merged for the rest), the
records shuffled once, then AdaGrad on the weighted least squares

    J = sum_ij f(X_ij) (w_i . wc_j + b_i + bc_j - log X_ij)^2,   f(x) = min(1, (x / x_max)^alpha)

with lock-free updates from `workers` threads. The vectors in ``wv`` are the mean of the word and
context vectors (w + wc) / 2. Not here: the reference's other output modes (w only, w with wc
concatenated) — ``model.w`` and ``model.wc`` hold both sets. The merged co-occurrence records
(12 bytes per nonzero pair) are kept in memory for training; only the counting is bounded.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from typing import Any

import numpy as np

from .. import _C
from . import _corpus
from ._corpus import PathLike
from .keyedvectors import KeyedVectors

logger = logging.getLogger(__name__)


class GloVe:
    """GloVe embeddings with gensim-style arguments and a ``wv`` KeyedVectors.

    Parameters
    ----------
    sentences : iterable of list of str, optional
        The corpus (restartable); trained right away if given (or `corpus_file`).
    corpus_file : path, optional
        Instead of `sentences`: one sentence per line, whitespace-separated tokens.
    vector_size : int
        D.
    window : int
        Context words on each side counted as co-occurring.
    min_count : int
        Words occurring fewer times are dropped.
    x_max, alpha : float
        The weighting function f(x) = min(1, (x / x_max)^alpha).
    epochs : int
        AdaGrad passes over the co-occurrence records.
    learning_rate : float
        AdaGrad's initial step (glove.c's eta).
    workers : int, optional
        Threads (default ``fastrnn.get_num_threads()``).
    seed : int
        Seeds the initial vectors and the shuffle.
    distance_weighting : bool
        Count 1/distance (True, the reference's default) or 1 per co-occurrence.
    memory : float
        Gigabytes the co-occurrence counting may use before spilling sorted runs to disk.
    max_final_vocab : int, optional
        Keep at most this many of the most frequent words.

    Attributes
    ----------
    wv : KeyedVectors
        (w + wc) / 2 for every word (V, D).
    w, wc : numpy.ndarray (V, D)
        Word and context vectors; ``b``, ``bc`` (V,) their biases.
    losses : list of float
        Mean cost per record of each epoch.
    """

    def __init__(
        self,
        sentences: Any = None,
        corpus_file: PathLike | None = None,
        vector_size: int = 100,
        window: int = 10,
        min_count: int = 5,
        x_max: float = 100.0,
        alpha: float = 0.75,
        epochs: int = 25,
        learning_rate: float = 0.05,
        workers: int | None = None,
        seed: int = 1,
        distance_weighting: bool = True,
        memory: float = 1.0,
        max_final_vocab: int | None = None,
    ) -> None:
        self.vector_size = _corpus.int_arg("vector_size", vector_size, 1)
        self.window = _corpus.int_arg("window", window, 1)
        self.min_count = _corpus.int_arg("min_count", min_count, 1)
        self.x_max = _corpus.float_arg("x_max", x_max, 0.0, lo_open=True)
        self.alpha = _corpus.float_arg("alpha", alpha, 0.0)
        self.epochs = _corpus.int_arg("epochs", epochs, 1)
        self.learning_rate = _corpus.float_arg("learning_rate", learning_rate, 0.0, lo_open=True)
        self.workers = _corpus.workers_arg(workers)
        self.seed = _corpus.seed_arg(seed)
        self.distance_weighting = bool(distance_weighting)
        self.memory = _corpus.float_arg("memory", memory, 0.0, lo_open=True)
        if self.memory * 2**30 < 1024:
            raise ValueError(
                f"memory: expected at least 1 KiB ({1024 / 2**30:.2g} GB), got {memory} GB"
            )
        self.max_final_vocab = (
            None
            if max_final_vocab is None
            else _corpus.int_arg("max_final_vocab", max_final_vocab, 1)
        )
        self.wv = KeyedVectors(self.vector_size)
        self.losses: list[float] = []
        self.spills = 0
        self.corpus_count = 0
        self.corpus_total_words = 0
        self._records: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences, corpus_file=corpus_file)
            self.train()

    def build_vocab(self, corpus_iterable: Any = None, corpus_file: PathLike | None = None) -> None:
        """Counts the words, then the co-occurrences (bounded memory), shuffles the records once
        and initialises the weights as glove.c does (uniform in [-0.5, 0.5) / D, AdaGrad sums 1)."""
        _corpus.check_corpus(corpus_iterable, corpus_file)
        if corpus_iterable is None and corpus_file is None:
            raise TypeError("build_vocab: give corpus_iterable or corpus_file")
        words, counts, tokens, n_sent = _corpus.count_words(corpus_iterable, corpus_file)
        keys, kept = _corpus.build_vocab(words, counts, self.min_count, self.max_final_vocab)
        self.corpus_count, self.corpus_total_words = int(n_sent), int(tokens)
        ids, starts, _ = _corpus.encode(keys, corpus_iterable, corpus_file)
        V, D = len(keys), self.vector_size
        t0 = time.perf_counter()
        rows, cols, vals, self.spills = _C.emb_cooccurrence(
            ids,
            starts,
            V,
            self.window,
            self.distance_weighting,
            int(min(self.memory * 2**30, 2**62)),
            tempfile.gettempdir(),
        )
        if len(rows) == 0:
            raise ValueError("sentences: no two vocabulary words co-occur (sentences of one word?)")
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(rows))
        self._records = (rows[perm], cols[perm], vals[perm])
        logger.info(
            "co-occurrences: %d nonzero pairs over %d words in %.2fs (%d runs spilled)",
            len(rows), V, time.perf_counter() - t0, self.spills,
        )  # fmt: skip

        def init(*shape: int) -> np.ndarray:
            return ((rng.random(shape, dtype=np.float32) - np.float32(0.5)) / np.float32(D)).astype(
                np.float32
            )

        self.w, self.wc = init(V, D), init(V, D)
        self.b, self.bc = init(V), init(V)
        self._gw, self._gwc = np.ones((V, D), np.float32), np.ones((V, D), np.float32)
        self._gb, self._gbc = np.ones(V, np.float32), np.ones(V, np.float32)
        self.wv = KeyedVectors.from_arrays(keys, (self.w + self.wc) / 2, kept)
        self.losses = []

    @property
    def num_records(self) -> int:
        """Nonzero co-occurrence pairs (the updates of one epoch)."""
        return 0 if self._records is None else len(self._records[0])

    def train(self, epochs: int | None = None, report_delay: float = 1.0) -> list[float]:
        """Runs `epochs` (default: the constructor's) more AdaGrad passes; returns their mean
        costs. Progress (updates/s, cost, ETA) is logged at INFO level."""
        if self._records is None:
            raise ValueError(
                "train: no co-occurrences yet; call build_vocab first (or pass a corpus to GloVe)"
            )
        epochs = self.epochs if epochs is None else _corpus.int_arg("epochs", epochs, 1)
        rows, cols, vals = self._records
        t0 = last = time.perf_counter()
        out = []
        for e in range(epochs):
            cost = _C.emb_glove_epoch(
                self.w, self.wc, self.b, self.bc, self._gw, self._gwc, self._gb, self._gbc,
                rows, cols, vals, self.x_max, self.alpha, self.learning_rate, self.workers,
            )  # fmt: skip
            out.append(cost / len(rows))
            now = time.perf_counter()
            if now - last >= report_delay or e == epochs - 1:
                last = now
                el = now - t0
                logger.info(
                    "GloVe epoch %d/%d: cost %.6f, %.0f updates/s, ETA %.0fs",
                    e + 1, epochs, out[-1], (e + 1) * len(rows) / el, el / (e + 1) * (epochs - e - 1),
                )  # fmt: skip
        self.losses.extend(out)
        self.wv.vectors = (self.w + self.wc) / 2
        self.wv.norms = None
        return out

    _PARAMS = ("vector_size", "window", "min_count", "x_max", "alpha", "epochs", "learning_rate",
               "workers", "seed", "distance_weighting", "memory", "max_final_vocab")  # fmt: skip

    def save(self, fname: PathLike) -> None:
        """Saves the model, co-occurrence records and AdaGrad state in one .npz (no pickle)."""
        meta = {"format": "fastrnn.GloVe", "version": 1, "losses": self.losses,
                **{k: getattr(self, k) for k in self._PARAMS}}  # fmt: skip
        if self._records is None:
            raise ValueError("save: the model has no vocabulary yet")
        arrays = dict(w=self.w, wc=self.wc, b=self.b, bc=self.bc, gw=self._gw, gwc=self._gwc, gb=self._gb,
                      gbc=self._gbc, rows=self._records[0], cols=self._records[1], vals=self._records[2],
                      keys=np.array(self.wv.index_to_key, dtype=object).astype(str),
                      counts=self.wv.expandos["count"])  # fmt: skip
        with open(fname, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, fname: PathLike) -> GloVe:
        """Loads what `save` wrote; training can continue."""
        with np.load(fname, allow_pickle=False) as z:
            if "meta" not in z or json.loads(str(z["meta"])).get("format") != "fastrnn.GloVe":
                raise ValueError(f"{fname}: not a file written by GloVe.save")
            meta = json.loads(str(z["meta"]))
            m = cls(**{k: meta[k] for k in cls._PARAMS})
            m.losses = list(meta["losses"])
            m.w, m.wc, m.b, m.bc = (z[k].copy() for k in ("w", "wc", "b", "bc"))
            m._gw, m._gwc, m._gb, m._gbc = (z[k].copy() for k in ("gw", "gwc", "gb", "gbc"))
            m._records = (z["rows"].copy(), z["cols"].copy(), z["vals"].copy())
            m.wv = KeyedVectors.from_arrays(
                [str(k) for k in z["keys"]], (m.w + m.wc) / 2, z["counts"].copy()
            )
        return m

    def __repr__(self) -> str:
        return f"GloVe<vocab={len(self.wv)}, vector_size={self.vector_size}, records={self.num_records}>"
