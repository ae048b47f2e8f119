"""BLEU of text: corpus and sentence scores identical to sacrebleu, and batched sentence scores.

Each call lowercases (optionally) in Python, then hands the lines to C++ (fastrnn._C), which
tokenizes, counts clipped n-grams and, for the batched forms, scores every row; the corpus score
is `compute_bleu` of the summed statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from .. import _C
from . import _checks
from ._score import MAX_NGRAM_ORDER, SMOOTH_DEFAULTS, BLEUScore, compute_bleu, signature
from .tokenizers import DEFAULT_TOKENIZER, get_tokenizer

logger = logging.getLogger("fastrnn.bleu")

# Whether this interpreter's sum() of floats is compensated (Neumaier; CPython >= 3.12). The
# batched C++ scores must add log-precisions the way sacrebleu's sum() does here.
COMPENSATED_SUM = sum([1.0, 1e100, 1.0, -1e100]) == 2.0

Refs = Sequence[Sequence[Optional[str]]]


def _lower(lines: list[Any]) -> list[Any]:
    return [line.lower() if line is not None else None for line in lines]


def _warn_if_tokenized(hyps: list[str]) -> None:
    # sacrebleu's check for output that was not detokenized (lines ending in " .")
    if sum(1 for h in hyps if h.endswith(" .")) >= 100:
        logger.warning(
            "That's 100 lines that end in a tokenized period ('.'). It looks like you forgot to "
            "detokenize your test data, which may hurt your score. If you insist your data is "
            "detokenized, or don't care, pass force=True to silence this message."
        )


def _warn_sentence_without_effective_order(effective_order: bool) -> None:
    if not effective_order:
        logger.warning("It is recommended to enable `effective_order` for sentence-level BLEU.")


def corpus_bleu(
    hyps: Sequence[str],
    refs: Refs,
    *,
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = False,
    force: bool = False,
) -> BLEUScore:
    """Corpus BLEU of `hyps` against reference streams `refs`, identical to sacrebleu's.

    Same result, every statistic included, as ``sacrebleu.metrics.BLEU(...).corpus_score(hyps,
    refs)`` with the same arguments.

    Parameters
    ----------
    hyps : list of str, (N,)
        Detokenized hypotheses.
    refs : list of R lists of str, (R, N)
        Reference streams, each as long as `hyps`: `refs[r][i]` is the r-th reference of
        hyps[i]. None marks a missing reference (segments may have different numbers of
        references, then the signature says "nrefs:var"); each segment needs at least one.
    tokenize : {"13a", "intl", "char", "none"}
        The tokenizer (see fastrnn.bleu.tokenizers); None means "13a".
    lowercase : bool
        Lowercase hypotheses and references first (case-insensitive BLEU).
    smooth_method : {"exp", "floor", "add-k", "none"}
    smooth_value : float or None
        For "floor" (default 0.1) and "add-k" (default 1).
    max_ngram_order : int
    effective_order : bool
        Average only over orders that have any n-gram (meant for sentence BLEU).
    force : bool
        Silence the warning about hypotheses that look tokenized (100+ lines ending in " .").

    Returns
    -------
    BLEUScore
        .score, .counts, .totals, .precisions, .bp, .sys_len, .ref_len, .signature.

    Raises
    ------
    TypeError
        An item of `hyps` is not a str, or of `refs` neither str nor None.
    ValueError
        Empty corpus, a reference stream of another length than `hyps`, a segment without any
        reference, an unknown tokenizer or smoothing method.
    """
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    lowercase = _checks.flag("lowercase", lowercase)
    hyps, streams, nrefs = _checks.text_corpus(hyps, refs)
    if not _checks.flag("force", force):
        _warn_if_tokenized(hyps)
    if lowercase:
        hyps, streams = _lower(hyps), [_lower(s) for s in streams]
    stats = _C._bleu_text_stats(hyps, streams, tok.native, tok.table(), opt.max_ngram_order)
    return corpus_score(stats, opt, nrefs, tok.signature, lowercase)


def score_of_totals(total: list[int], opt: _checks.Options) -> BLEUScore:
    """BLEU of summed statistics [sys_len, ref_len, matches per order, totals per order]."""
    k = opt.max_ngram_order
    return compute_bleu(
        total[2 : 2 + k],
        total[2 + k :],
        total[0],
        total[1],
        smooth_method=opt.smooth_method,
        smooth_value=opt.smooth_value,
        effective_order=opt.effective_order,
        max_ngram_order=k,
    )


def corpus_score(
    stats: np.ndarray, opt: _checks.Options, nrefs: _checks.NRefs, tok: str, lowercase: bool | None
) -> BLEUScore:
    total = stats.sum(axis=0, dtype=np.int64).tolist()  # Python ints, as sacrebleu sums them
    result = score_of_totals(total, opt)
    result.signature = signature(
        nrefs,
        tokenize=tok,
        smooth_method=opt.smooth_method,
        smooth_value=opt.smooth_value,
        effective_order=opt.effective_order,
        lowercase=lowercase,
    )
    return result


def sentence_bleu(
    hyp: str,
    refs: Sequence[str],
    *,
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = True,
) -> BLEUScore:
    """BLEU of one hypothesis against its references, identical to ``sacrebleu.sentence_bleu``.

    Parameters
    ----------
    hyp : str
    refs : list of str
        This sentence's references (None entries are skipped); at least one.
    tokenize, lowercase, smooth_method, smooth_value, max_ngram_order
        As in `corpus_bleu`.
    effective_order : bool
        True by default, as in sacrebleu's sentence_bleu: orders longer than the sentence do
        not zero the score.

    Returns
    -------
    BLEUScore
    """
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    lowercase = _checks.flag("lowercase", lowercase)
    hyp, lines = _checks.text_sentence(hyp, refs)
    _warn_sentence_without_effective_order(opt.effective_order)
    if lowercase:
        hyp, lines = hyp.lower(), _lower(lines)
    stats = _C._bleu_text_stats(
        [hyp], [[r] for r in lines], tok.native, tok.table(), opt.max_ngram_order
    )
    return corpus_score(stats, opt, len(lines), tok.signature, lowercase)


def batch_sentence_bleu(
    hyps: Sequence[str],
    refs: Refs,
    *,
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = True,
) -> np.ndarray:
    """Sentence BLEU of every hypothesis against its own references, in one call.

    ``out[i] == sentence_bleu(hyps[i], [s[i] for s in refs], ...).score`` exactly.

    Parameters
    ----------
    hyps : list of str, (N,)
    refs : list of R lists of str, (R, N)
        Reference streams as in `corpus_bleu`.
    tokenize, lowercase, smooth_method, smooth_value, max_ngram_order, effective_order
        As in `sentence_bleu`.

    Returns
    -------
    numpy.ndarray of float64, (N,)
    """
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    lowercase = _checks.flag("lowercase", lowercase)
    hyps, streams, _ = _checks.text_corpus(hyps, refs)
    _warn_sentence_without_effective_order(opt.effective_order)
    if lowercase:
        hyps, streams = _lower(hyps), [_lower(s) for s in streams]
    stats = _C._bleu_text_stats(hyps, streams, tok.native, tok.table(), opt.max_ngram_order)
    return row_scores(stats, opt)


def smooth_value_of(opt: _checks.Options) -> float:
    """The smoothing value in effect, as a float for C++ (0.0 where the method takes none)."""
    value = SMOOTH_DEFAULTS[opt.smooth_method] if opt.smooth_value is None else opt.smooth_value
    return float(value or 0.0)


def row_scores(stats: np.ndarray, opt: _checks.Options) -> np.ndarray:
    """sacrebleu's sentence BLEU of each statistics row (N, 2 + 2 * order) -> (N,)."""
    return np.asarray(
        _C._bleu_scores(
            stats,
            opt.max_ngram_order,
            opt.smooth_method,
            smooth_value_of(opt),
            opt.effective_order,
            COMPENSATED_SUM,
        )
    )


def pairwise_sentence_bleu(
    hyps: Sequence[str],
    refs: Sequence[str],
    *,
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = True,
) -> np.ndarray:
    """Sentence BLEU of every hypothesis against every single reference: an (N, M) matrix.

    ``out[i, j] == sentence_bleu(hyps[i], [refs[j]], ...).score`` exactly. For n-best
    reranking (rows: candidates; columns: references) and for consensus decoding (pass the same
    list twice: each candidate against every other).

    Parameters
    ----------
    hyps : list of str, (N,)
    refs : list of str, (M,)
        One reference per column.
    tokenize, lowercase, smooth_method, smooth_value, max_ngram_order, effective_order
        As in `sentence_bleu`.

    Returns
    -------
    numpy.ndarray of float64, (N, M)
    """
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    lowercase = _checks.flag("lowercase", lowercase)
    hyps = _checks.text_list(hyps, "hyps")
    refs = _checks.text_list(refs, "refs")
    _warn_sentence_without_effective_order(opt.effective_order)
    if lowercase:
        hyps, refs = _lower(hyps), _lower(refs)
    return np.asarray(
        _C._bleu_pairwise_text(
            hyps,
            refs,
            tok.native,
            tok.table(),
            opt.max_ngram_order,
            opt.smooth_method,
            smooth_value_of(opt),
            opt.effective_order,
            COMPENSATED_SUM,
        )
    )


def bleu_statistics(
    hyps: Sequence[str],
    refs: Refs,
    *,
    tokenize: str | None = DEFAULT_TOKENIZER,
    lowercase: bool = False,
    max_ngram_order: int = MAX_NGRAM_ORDER,
) -> np.ndarray:
    """Per-segment BLEU statistics, (N, 2 + 2 * max_ngram_order) int64.

    Rows are [sys_len, ref_len, correct_1..correct_k, total_1..total_k] (see `compute_bleu`);
    ``compute_bleu`` of their column sums is `corpus_bleu`'s score, so shards can be counted
    apart and summed. Arguments as in `corpus_bleu`.
    """
    tok = get_tokenizer(DEFAULT_TOKENIZER if tokenize is None else tokenize)
    opt = _checks.options("none", None, max_ngram_order, False)
    lowercase = _checks.flag("lowercase", lowercase)
    hyps, streams, _ = _checks.text_corpus(hyps, refs)
    if lowercase:
        hyps, streams = _lower(hyps), [_lower(s) for s in streams]
    return _C._bleu_text_stats(hyps, streams, tok.native, tok.table(), opt.max_ngram_order)
