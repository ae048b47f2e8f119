"""chrF and chrF++ identical to sacrebleu 2.x's (score and signature), statistics counted in C++.

The metric is `compute_chrf`, a pure function of summed statistics written to be read: it
repeats sacrebleu's `CHRF._compute_f_score` operation for operation, so equal statistics give
bit-identical scores. `chrf_statistics` gives the per-segment statistics (for sharded or
distributed scoring: sum the rows, then `compute_chrf`).

Statistics of a segment: one triple per order, character orders 1..char_order first, then word
orders 1..word_order: [hypothesis n-grams, reference n-grams, matching n-grams] (matches: the
sum over n-grams of min(hypothesis count, reference count); hypothesis n-grams count 0 for an
order the reference has none of). With several references a segment keeps the statistics of
its best-scoring reference (the first of equals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .. import _C
from . import _checks
from ._score import format_score
from ._text import Refs, _lower

Number = Union[int, float]

CHAR_ORDER = 6
WORD_ORDER = 0
BETA = 2
_EPS = 1e-16  # chrF++.py's epsilon, as sacrebleu uses it


@dataclass(repr=False)
class CHRFScore:
    """A chrF score, as sacrebleu's CHRFScore.

    Attributes
    ----------
    score : float
        chrF in [0, 100].
    char_order, word_order : int
    beta : int or float
    signature : str
        sacrebleu's format, e.g. "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:fastrnn-0.1.0".
    name : str
        "chrF2" (beta 2), with one "+" per word order: "chrF2++" is chrF++.
    """

    score: float
    char_order: int
    word_order: int
    beta: Number
    signature: str = field(default="")
    mean: float | None = None  # bootstrap estimate and 95% half-width (command line's -ci)
    ci: float | None = None

    @property
    def name(self) -> str:
        return f"chrF{self.beta}" + "+" * self.word_order

    def format(
        self,
        width: int = 2,
        score_only: bool = False,
        signature: str | None = None,
        is_json: bool = False,
    ) -> str:
        """sacrebleu's score line, "chrF2|<signature> = 12.34", the score alone, or JSON."""
        return format_score(
            self.name, self.score, self.mean, self.ci, None, width, score_only, signature, is_json
        )

    def __repr__(self) -> str:
        return self.format()


def compute_chrf(
    stats: Sequence[Number],
    char_order: int = CHAR_ORDER,
    word_order: int = WORD_ORDER,
    beta: Number = BETA,
    eps_smoothing: bool = False,
) -> CHRFScore:
    """chrF of summed statistics: the F-beta score of averaged n-gram precision and recall.

    Without `eps_smoothing` (sacrebleu's default), precision and recall are averaged over the
    orders where both hypothesis and reference have n-grams, then combined into one F-beta.
    With it, the F-beta of each order (1e-16 where undefined) is averaged (chrF++.py, NLTK).

    Parameters
    ----------
    stats : sequence of numbers, (3 * (char_order + word_order),)
        Summed segment statistics (see the module docstring).
    char_order, word_order : int
    beta : number
        Weight of recall relative to precision.
    eps_smoothing : bool

    Returns
    -------
    CHRFScore
        Without a signature.
    """
    order = char_order + word_order
    if len(stats) != 3 * order:
        raise ValueError(f"stats: expected {3 * order} values (3 per order), got {len(stats)}")
    factor = beta**2
    score = 0.0
    avg_prec = avg_rec = 0.0
    effective_order = 0
    for i in range(order):
        n_hyp, n_ref, n_match = stats[3 * i : 3 * i + 3]
        prec = n_match / n_hyp if n_hyp > 0 else _EPS
        rec = n_match / n_ref if n_ref > 0 else _EPS
        denom = factor * prec + rec
        score += ((1 + factor) * prec * rec / denom) if denom > 0 else _EPS
        if n_hyp > 0 and n_ref > 0:
            avg_prec += prec
            avg_rec += rec
            effective_order += 1
    if eps_smoothing:
        value = 100 * score / order
    else:
        if effective_order:
            avg_prec /= effective_order
            avg_rec /= effective_order
        else:
            avg_prec = avg_rec = 0.0
        if avg_prec + avg_rec:
            value = (1 + factor) * avg_prec * avg_rec
            value /= factor * avg_prec + avg_rec
            value = 100 * value
        else:
            value = 0.0
    return CHRFScore(value, char_order, word_order, beta)


def signature(nrefs: Any, opt: _checks.ChrfOptions, extra: Sequence[tuple[str, Any]] = ()) -> str:
    """sacrebleu's chrF signature; `extra` fields (bs, ar, seed) follow nrefs, as there."""
    from .. import __version__

    fields = [("nrefs", nrefs), *extra]
    fields += [
        ("case", "lc" if opt.lowercase else "mixed"),
        ("eff", "no" if opt.eps_smoothing else "yes"),
        ("nc", opt.char_order),
        ("nw", opt.word_order),
        ("space", "yes" if opt.whitespace else "no"),
        ("version", f"fastrnn-{__version__}"),
    ]
    return "|".join(f"{k}:{v}" for k, v in fields)


def _stats(hyps: list[str], streams: list[list[Any]], opt: _checks.ChrfOptions) -> np.ndarray:
    if opt.lowercase:
        hyps, streams = _lower(hyps), [_lower(s) for s in streams]
    return _C._chrf_stats(
        hyps,
        streams,
        opt.char_order,
        opt.word_order,
        float(opt.beta),
        opt.whitespace,
        opt.eps_smoothing,
    )


def _score(total: np.ndarray, opt: _checks.ChrfOptions, nrefs: Any) -> CHRFScore:
    result = compute_chrf(
        total.sum(axis=0, dtype=np.int64).tolist(),  # Python ints, as sacrebleu sums them
        opt.char_order,
        opt.word_order,
        opt.beta,
        opt.eps_smoothing,
    )
    result.signature = signature(nrefs, opt)
    return result


def chrf_statistics(
    hyps: Sequence[str],
    refs: Refs,
    *,
    char_order: int = CHAR_ORDER,
    word_order: int = WORD_ORDER,
    beta: Number = BETA,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> np.ndarray:
    """Per-segment chrF statistics, (N, 3 * (char_order + word_order)) int64.

    ``compute_chrf(stats.sum(0).tolist(), ...)`` is `corpus_chrf`'s score; rows of shards can be
    summed in any order. `beta` and `eps_smoothing` only matter with several references (they
    decide which reference a segment keeps). Arguments as in `corpus_chrf`.
    """
    opt = _checks.chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing)
    hyps, streams, _ = _checks.text_corpus(hyps, refs)
    return _stats(hyps, streams, opt)


def corpus_chrf(
    hyps: Sequence[str],
    refs: Refs,
    *,
    char_order: int = CHAR_ORDER,
    word_order: int = WORD_ORDER,
    beta: Number = BETA,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> CHRFScore:
    """Corpus chrF (chrF++ with word_order=2) identical to sacrebleu's.

    Same score and signature as ``sacrebleu.metrics.CHRF(...).corpus_score(hyps, refs)`` with
    the same arguments.

    Parameters
    ----------
    hyps : list of str, (N,)
    refs : list of R lists of str, (R, N)
        Reference streams, as in `corpus_bleu` (None marks a missing reference).
    char_order : int
        Character n-gram order (6).
    word_order : int
        Word n-gram order: 0 for chrF, 2 for chrF++.
    beta : number
        Weight of recall relative to precision (2).
    lowercase : bool
        Case-insensitive (Python's str.lower()).
    whitespace : bool
        Keep whitespace in character n-grams (by default it is removed first).
    eps_smoothing : bool
        chrF++.py / NLTK / Moses style smoothing instead of sacrebleu's effective order.

    Returns
    -------
    CHRFScore
        .score, .name ("chrF2", "chrF2++"), .signature.
    """
    opt = _checks.chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing)
    hyps, streams, nrefs = _checks.text_corpus(hyps, refs)
    return _score(_stats(hyps, streams, opt), opt, nrefs)


def sentence_chrf(
    hyp: str,
    refs: Sequence[str],
    *,
    char_order: int = CHAR_ORDER,
    word_order: int = WORD_ORDER,
    beta: Number = BETA,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> CHRFScore:
    """chrF of one hypothesis against its references, identical to ``sacrebleu.sentence_chrf``."""
    opt = _checks.chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing)
    hyp, lines = _checks.text_sentence(hyp, refs)
    return _score(_stats([hyp], [[r] for r in lines], opt), opt, len(lines))


def batch_sentence_chrf(
    hyps: Sequence[str],
    refs: Refs,
    *,
    char_order: int = CHAR_ORDER,
    word_order: int = WORD_ORDER,
    beta: Number = BETA,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> np.ndarray:
    """Sentence chrF of every hypothesis against its own references: (N,) float64.

    ``out[i] == sentence_chrf(hyps[i], [s[i] for s in refs], ...).score`` exactly.
    """
    opt = _checks.chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing)
    hyps, streams, _ = _checks.text_corpus(hyps, refs)
    return row_scores(_stats(hyps, streams, opt), opt)


def row_scores(stats: np.ndarray, opt: _checks.ChrfOptions) -> np.ndarray:
    """`compute_chrf` of each statistics row, (N, W) -> (N,), in C++."""
    return np.asarray(
        _C._chrf_scores(stats, opt.char_order, opt.word_order, float(opt.beta), opt.eps_smoothing)
    )


def pairwise_sentence_chrf(
    hyps: Sequence[str],
    refs: Sequence[str],
    *,
    char_order: int = CHAR_ORDER,
    word_order: int = WORD_ORDER,
    beta: Number = BETA,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> np.ndarray:
    """Sentence chrF of every hypothesis against every single reference: an (N, M) matrix.

    ``out[i, j] == sentence_chrf(hyps[i], [refs[j]], ...).score`` exactly (n-best reranking,
    consensus decoding).
    """
    opt = _checks.chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing)
    hyps = _checks.text_list(hyps, "hyps")
    refs = _checks.text_list(refs, "refs")
    if opt.lowercase:
        hyps, refs = _lower(hyps), _lower(refs)
    return np.asarray(
        _C._chrf_pairwise(
            hyps,
            refs,
            opt.char_order,
            opt.word_order,
            float(opt.beta),
            opt.whitespace,
            opt.eps_smoothing,
        )
    )
