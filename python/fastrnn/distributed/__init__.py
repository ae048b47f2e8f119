"""fastrnn.distributed: scoring and decoding over shards, on a Dask cluster or on this machine.

    >>> from dask.distributed import Client
    >>> client = Client("tcp://scheduler:8786")               # or Client(LocalCluster(...))
    >>> from fastrnn import distributed
    >>> distributed.corpus_bleu(Path("hyp.txt"), [Path("ref.txt")], client=client).score

- `corpus_bleu`, `corpus_chrf`: per-shard statistics, summed; the result (score, every statistic
  and the signature) is the one fastrnn.bleu.corpus_bleu / corpus_chrf give for the whole corpus.
- `paired_bootstrap`, `paired_randomization`: every system's per-segment statistics counted over
  shards, gathered in order, then fastrnn.bleu's resampling (sacrebleu's, same seed): the same
  p-values, means and intervals.
- `translate`: beam search with a Seq2Seq saved by `save_seq2seq`; each worker loads the model
  once; lines come back in input order.
- `perplexity`: a neural language model saved by `save_language_model`, or an n-gram model in
  an ARPA file (fastrnn.models.ngram.KneserNeyLM, KenLM, SRILM), over the lines of a corpus.
- `evaluate_vectors`: many word-vector files (word2vec format, e.g. fastrnn.embeddings' or
  gensim's), one task each: analogy accuracy and word-pair correlations, as KeyedVectors gives.

Inputs are lists of lines (str), a path (str or pathlib.Path) of a UTF-8 text file, or a list of
pathlib.Path shards read in order. Files are read by the workers (they need the paths: a shared
file system, or the same files on every machine); lists travel with the tasks. `shard_size`
lines make one task. `client=None` uses the current Dask client if one is registered
(`distributed.Client(...)` registers itself) and otherwise runs the same tasks here, one after
the other, without Dask. Results do not depend on the sharding or the number of workers: sums
of integer statistics, and float sums taken exactly (math.fsum) over per-line values.

Command line: ``python -m fastrnn.distributed {bleu,translate,perplexity,vectors} ... --scheduler
ADDRESS`` (a local cluster by default). Install Dask with ``pip install "fastrnn[distributed]"``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import bleu
from ..bleu import _checks as bleu_checks
from ..bleu._chrf import CHRFScore
from ..bleu._chrf import _score as chrf_score
from ..bleu._score import MAX_NGRAM_ORDER, BLEUScore
from ..bleu._significance import PairedResults, _metric, _samples, _seed
from ..bleu._text import _warn_if_tokenized, corpus_score
from ..bleu.tokenizers import DEFAULT_TOKENIZER, get_tokenizer
from ..decoding import _penalty_arg
from . import _tasks
from ._models import load_model, save_language_model, save_seq2seq
from ._shards import Source, check_shard_size, shard_ranges

__all__ = [
    "PerplexityResult",
    "corpus_bleu",
    "corpus_chrf",
    "evaluate_vectors",
    "paired_bootstrap",
    "paired_randomization",
    "load_model",
    "perplexity",
    "save_language_model",
    "save_seq2seq",
    "translate",
]


def _client(client: Any) -> Any:
    """The client to use: the given one, else Dask's current one, else None (run here)."""
    if client is not None:
        if not hasattr(client, "submit") or not hasattr(client, "gather"):
            raise TypeError(f"client: expected a dask.distributed.Client or None, got "
                            f"{type(client).__name__}")  # fmt: skip
        return client
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client registered
        return None


def _run(
    client: Any, fn: Callable[..., Any], args: list[tuple[Any, ...]], timeout: float | None
) -> list[Any]:
    """fn(*a) for each a, in order: as Dask tasks when there is a client, else here."""
    client = _client(client)
    if client is None:
        return [fn(*a) for a in args]
    futures = [client.submit(fn, *a, pure=False) for a in args]
    deadline = None if timeout is None else time.monotonic() + timeout
    try:  # Future.result re-raises a task's exception here, with its type and message
        return [
            f.result(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.001))
            for f in futures
        ]
    finally:
        for f in futures:
            f.release()


def _timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout: expected None or seconds > 0, got {timeout!r}")
    return float(timeout)


def corpus_bleu(
    hyps: Any,
    refs: Sequence[Any],
    client: Any = None,
    *,
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = False,
    force: bool = False,
    shard_size: int = 20_000,
    timeout: float | None = None,
) -> BLEUScore:
    """Corpus BLEU over shards; the same BLEUScore as fastrnn.bleu.corpus_bleu(hyps, refs, ...).

    Parameters
    ----------
    hyps : list of str, a path, or a list of pathlib.Path
        N hypotheses.
    refs : list of R reference streams, each like `hyps` (N lines)
    client : dask.distributed.Client or None
        See the module docstring.
    tokenize, lowercase, smooth_method, smooth_value, max_ngram_order, effective_order, force
        As in fastrnn.bleu.corpus_bleu (sacrebleu's arguments).
    shard_size : int
        Lines per task.
    timeout : float or None
        Seconds to wait for the cluster before raising TimeoutError.
    """
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = bleu_checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    lowercase = bleu_checks.flag("lowercase", lowercase)
    shard_size = check_shard_size(shard_size)
    h = Source(hyps, "hyps")
    if isinstance(refs, (str, os.PathLike)) or not isinstance(refs, Sequence) or not refs:
        raise TypeError("refs: expected a non-empty list of reference streams (each a list of "
                        "lines, a path or a list of paths)")  # fmt: skip
    streams = [Source(r, f"refs[{i}]") for i, r in enumerate(refs)]
    if h.n == 0:
        raise ValueError("hyps: the corpus is empty (expected at least one hypothesis)")
    for i, s in enumerate(streams):
        if s.n != h.n:
            raise ValueError(f"refs[{i}]: expected {h.n} references (as many as hyps), got {s.n}")
    args = [(h.take(a, b), [s.take(a, b) for s in streams], tok.signature, lowercase,
             opt.max_ngram_order) for a, b in shard_ranges(h.n, shard_size)]  # fmt: skip
    parts = _run(client, _tasks.bleu_stats, args, _timeout(timeout))
    nrefs_all = {p[1] for p in parts}
    nrefs = nrefs_all.pop() if len(nrefs_all) == 1 else "var"
    if not bleu_checks.flag("force", force) and sum(p[3] for p in parts) >= 100:
        _warn_if_tokenized([" ."] * 100)
    stats = np.stack([p[0] for p in parts])
    return corpus_score(stats, opt, nrefs, tok.signature, lowercase)


def _text_sources(hyps: Any, refs: Any, name: str = "hyps") -> tuple[Source, list[Source]]:
    h = Source(hyps, name)
    if isinstance(refs, (str, os.PathLike)) or not isinstance(refs, Sequence) or not refs:
        raise TypeError("refs: expected a non-empty list of reference streams (each a list of "
                        "lines, a path or a list of paths)")  # fmt: skip
    streams = [Source(r, f"refs[{i}]") for i, r in enumerate(refs)]
    if h.n == 0:
        raise ValueError(f"{name}: the corpus is empty (expected at least one hypothesis)")
    for i, s in enumerate(streams):
        if s.n != h.n:
            raise ValueError(f"refs[{i}]: expected {h.n} references (as many as {name}), got {s.n}")
    return h, streams


def _nrefs(values: Any) -> Any:
    seen = set(values)
    return seen.pop() if len(seen) == 1 else "var"


def corpus_chrf(
    hyps: Any,
    refs: Sequence[Any],
    client: Any = None,
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
    shard_size: int = 20_000,
    timeout: float | None = None,
) -> CHRFScore:
    """Corpus chrF (chrF++ with word_order=2) over shards; the same CHRFScore as
    fastrnn.bleu.corpus_chrf(hyps, refs, ...) (and sacrebleu's). Inputs, `client`, `shard_size`
    and `timeout` as in `corpus_bleu`."""
    opt = bleu_checks.chrf_options(char_order, word_order, beta, lowercase, whitespace,
                                   eps_smoothing)  # fmt: skip
    options = {"char_order": char_order, "word_order": word_order, "beta": beta,
               "lowercase": lowercase, "whitespace": whitespace, "eps_smoothing": eps_smoothing}  # fmt: skip
    h, streams = _text_sources(hyps, refs)
    args = [("chrf", h.take(a, b), [s.take(a, b) for s in streams], options, True)
            for a, b in shard_ranges(h.n, check_shard_size(shard_size))]  # fmt: skip
    parts = _run(client, _tasks.segment_stats, args, _timeout(timeout))
    return chrf_score(np.stack([p[0] for p in parts]), opt, _nrefs(p[1] for p in parts))


def _system_stats(
    systems: Any, refs: Any, client: Any, metric: str, options: dict[str, Any],
    shard_size: int, timeout: float | None,
) -> tuple[dict[str, np.ndarray], Any]:  # fmt: skip
    """Per-segment statistics of every system, gathered in segment order, and nrefs."""
    if not isinstance(systems, Mapping) or len(systems) < 2:
        raise TypeError("systems: expected a dict of system name -> hypotheses with the baseline "
                        "first and at least one other system")  # fmt: skip
    _metric(metric, options)  # checks the metric's name and options here, before any task
    names = [str(k) for k in systems]
    srcs: list[Source] = []
    for i, (name, hyps) in enumerate(systems.items()):
        h, streams = _text_sources(hyps, refs, f"systems[{name!r}]")
        if i and h.n != srcs[0].n:
            raise ValueError(f"systems[{name!r}]: expected {srcs[0].n} lines (as the baseline), "
                             f"got {h.n}")  # fmt: skip
        srcs.append(h)
    ranges = shard_ranges(srcs[0].n, check_shard_size(shard_size))
    args = [(metric, h.take(a, b), [s.take(a, b) for s in streams], dict(options), False)
            for h in srcs for a, b in ranges]  # fmt: skip
    parts = _run(client, _tasks.segment_stats, args, _timeout(timeout))
    per = len(ranges)
    stats = {name: np.concatenate([p[0] for p in parts[i * per : (i + 1) * per]])
             for i, name in enumerate(names)}  # fmt: skip
    return stats, _nrefs(p[1] for p in parts[:per])


def paired_bootstrap(
    systems: Mapping[str, Any],
    refs: Sequence[Any],
    client: Any = None,
    *,
    n_samples: int = 1000,
    seed: int | None = 12345,
    metric: str = "bleu",
    shard_size: int = 20_000,
    timeout: float | None = None,
    **options: Any,
) -> PairedResults:
    """fastrnn.bleu.paired_bootstrap (sacrebleu's --paired-bs) with each system's segment
    statistics counted over shards; the resampling then runs here, on the gathered statistics,
    so p-values, means and intervals are identical. `systems`: name -> hypotheses (a list of
    lines, a path or a list of pathlib.Path shards), the baseline first."""
    _samples(n_samples), _seed(seed)  # refused before any counting
    stats, nrefs = _system_stats(systems, refs, client, metric, options, shard_size,
                                 _timeout(timeout))  # fmt: skip
    return bleu.paired_bootstrap_from_stats(stats, n_samples=n_samples, seed=seed,
                                            metric=metric, nrefs=nrefs, **options)  # fmt: skip


def paired_randomization(
    systems: Mapping[str, Any],
    refs: Sequence[Any],
    client: Any = None,
    *,
    n_samples: int = 10000,
    seed: int | None = 12345,
    metric: str = "bleu",
    shard_size: int = 20_000,
    timeout: float | None = None,
    **options: Any,
) -> PairedResults:
    """fastrnn.bleu.paired_randomization (sacrebleu's --paired-ar) over sharded statistics; see
    `paired_bootstrap`."""
    _samples(n_samples), _seed(seed)  # refused before any counting
    stats, nrefs = _system_stats(systems, refs, client, metric, options, shard_size,
                                 _timeout(timeout))  # fmt: skip
    return bleu.paired_randomization_from_stats(stats, n_samples=n_samples, seed=seed,
                                                metric=metric, nrefs=nrefs, **options)  # fmt: skip


def translate(
    model: str | os.PathLike[str],
    src: Any,
    client: Any = None,
    *,
    out: str | os.PathLike[str] | None = None,
    beam_size: int = 4,
    max_len: int = 100,
    alpha: float = 0.0,
    length_penalty: str = "length",
    batch_size: int = 32,
    shard_size: int = 1000,
    timeout: float | None = None,
) -> list[str]:
    """Beam-search translations of every source line, in input order.

    Parameters
    ----------
    model : path
        A file written by `save_seq2seq` (model, source and target vocabularies); each worker
        loads it once.
    src : list of str, a path, or a list of pathlib.Path
    out : path or None
        Also write the translations there, one per line.
    beam_size, max_len, alpha, length_penalty
        As in Seq2Seq.beam_decode (the best hypothesis is kept). An empty source line gives "".
    batch_size : int
        Sentences decoded together on a worker (the result does not depend on it).
    """
    from ..nn import _checks as nn_checks

    path = _model_path(model)
    beam_size = nn_checks.positive_int("beam_size", beam_size)
    max_len = nn_checks.positive_int("max_len", max_len)
    batch_size = nn_checks.positive_int("batch_size", batch_size)
    length_penalty = _penalty_arg(length_penalty)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"alpha: expected a finite number, got {alpha!r}")
    s = Source(src, "src")
    args = [(path, s.take(a, b), beam_size, max_len, float(alpha), length_penalty, batch_size)
            for a, b in shard_ranges(s.n, check_shard_size(shard_size))]  # fmt: skip
    lines = [
        line for part in _run(client, _tasks.translate, args, _timeout(timeout)) for line in part
    ]
    if out is not None:
        with open(out, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(line + "\n" for line in lines)
    return lines


@dataclass(frozen=True)
class PerplexityResult:
    """Perplexity over every scored token of a corpus.

    perplexity : exp(nll / tokens) (neural), 10 ** (-log10_prob / tokens) (n-gram)
    log10_prob : total log10 probability (the n-gram models' unit; neural: nll / -ln 10)
    nll : total negative natural-log likelihood
    tokens : tokens scored (each line's tokens and its end of sentence)
    lines : lines scored
    """

    perplexity: float
    log10_prob: float
    nll: float
    tokens: int
    lines: int


def perplexity(
    model: str | os.PathLike[str],
    texts: Any,
    client: Any = None,
    *,
    batch_size: int = 32,
    shard_size: int = 5000,
    timeout: float | None = None,
) -> PerplexityResult:
    """Perplexity of a language model over the lines of a corpus, each line a sentence.

    Parameters
    ----------
    model : path
        A file of `save_language_model` (RNNLanguageModel + Vocab; a line is scored as <bos>
        line <eos> from a zero state, tokens as its Vocab splits them), or an ARPA file (lines
        split at whitespace, as KenLM's query reads them; the number is
        KneserNeyLM.from_arpa(path).perplexity([line.split() for line in lines])).
    texts : list of str, a path, or a list of pathlib.Path
    batch_size : int
        Lines per forward pass of a neural model (the result does not depend on it).
    """
    from ..nn import _checks as nn_checks

    path = _model_path(model)
    batch_size = nn_checks.positive_int("batch_size", batch_size)
    s = Source(texts, "texts")
    if s.n == 0:
        raise ValueError("texts: the corpus is empty")
    args = [(path, s.take(a, b), batch_size)
            for a, b in shard_ranges(s.n, check_shard_size(shard_size))]  # fmt: skip
    parts = _run(client, _tasks.lm_nll, args, _timeout(timeout))
    per = np.concatenate([p[0] for p in parts])
    count = sum(p[1] for p in parts)
    if count == 0:
        raise ValueError("texts: no tokens to score")
    total = math.fsum(per.tolist())
    if load_kind(path) == "ngram":
        return PerplexityResult(float(10.0 ** (-total / count)), total,
                                -total * math.log(10.0), count, s.n)  # fmt: skip
    return PerplexityResult(math.exp(-total / count), total / math.log(10.0), -total, count, s.n)


def load_kind(path: str) -> str:
    with open(path, "rb") as f:
        return "lm" if f.read(4) == b"PK\x03\x04" else "ngram"


def _model_path(model: Any) -> str:
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected the path of a saved model, got {type(model).__name__}")
    path = os.path.abspath(os.fspath(model))
    if not os.path.isfile(path):
        raise ValueError(f"model: no such file: {path!r}")
    return path


def evaluate_vectors(
    paths: Sequence[str | os.PathLike[str]],
    client: Any = None,
    *,
    analogies: str | os.PathLike[str] | None = None,
    pairs: Sequence[str | os.PathLike[str]] = (),
    binary: bool = False,
    restrict_vocab: int = 300000,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Evaluate many word-vector files, one task per file (each worker loads its file).

    Parameters
    ----------
    paths : paths of files in word2vec's text (binary=False) or binary format
    analogies : path of a questions-words file, or None
    pairs : paths of word-pair similarity files (wordsim353.tsv, simlex999.txt, ...)
    restrict_vocab : as in KeyedVectors.evaluate_word_analogies / evaluate_word_pairs

    Returns
    -------
    One dict per file, in order: "path", "words", and "analogy_accuracy" with
    "analogy_sections" [(section, correct, incorrect)] when `analogies` is given, and "pairs"
    {path: ((pearson, p), (spearman, p), oov_percent)}: what KeyedVectors' methods return for
    that file on one machine.
    """
    from ..nn import _checks as nn_checks

    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("paths: expected a list of vector files, got one path; wrap it in a list")
    files = [os.fspath(p) for p in paths]
    if not files:
        raise ValueError("paths: no vector files given")
    for f in [*files, *([] if analogies is None else [analogies]), *pairs]:
        if not os.path.isfile(f):
            raise ValueError(f"paths: {os.fspath(f)!r} is not a file")
    restrict = nn_checks.positive_int("restrict_vocab", restrict_vocab)
    ana = None if analogies is None else os.fspath(analogies)
    pair_files = [os.fspath(p) for p in pairs]
    args = [(f, bool(binary), ana, pair_files, restrict) for f in files]
    return _run(client, _tasks.evaluate_vectors, args, _timeout(timeout))
