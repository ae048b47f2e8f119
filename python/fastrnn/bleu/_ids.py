"""BLEU of token-id sequences: model outputs scored as they are, with no detokenize/retokenize
round trip. Each id is one token; the numbers are those text BLEU gives with tokenize="none" to
the ids written out as words.

A corpus of id sequences is a list of 1-D integer sequences (lists, tuples, arrays) or a 2-D
integer array with one padded row per sentence; ids listed in `exclude` (padding, BOS, EOS) are
dropped before counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from .. import _C
from . import _checks
from ._score import MAX_NGRAM_ORDER, BLEUScore
from ._text import (
    COMPENSATED_SUM,
    _warn_sentence_without_effective_order,
    corpus_score,
    row_scores,
    smooth_value_of,
)

IdCorpus = Union[Sequence[Any], np.ndarray]  # [N] 1-D integer sequences, or (N, T) integers
Exclude = Union[int, Iterable[int], None]

_TOK = "ids"  # the signature's tokenizer field


def _stats(hyps: Any, refs: Any, opt: _checks.Options, exclude: Any) -> tuple[np.ndarray, Any]:
    h, r, nstreams, nrefs = _checks.id_corpus(hyps, refs, _checks.exclude_ids(exclude))
    stats = _C._bleu_id_stats(h.ids, h.off, r.ids, r.off, r.present, nstreams, opt.max_ngram_order)
    return stats, nrefs


def corpus_bleu_ids(
    hyps: IdCorpus,
    refs: Sequence[IdCorpus],
    *,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = False,
    exclude: Exclude = None,
) -> BLEUScore:
    """Corpus BLEU of token-id sequences (see `corpus_bleu` for the scoring arguments).

    Parameters
    ----------
    hyps : list of 1-D int sequences (N,), or int array (N, T)
    refs : list of R such corpora, each of N sentences
        `refs[r][i]` is the r-th reference of `hyps[i]`; None marks a missing one.
    smooth_method, smooth_value, max_ngram_order, effective_order
        As in `corpus_bleu`.
    exclude : int, list of int or None
        Ids to drop from hypotheses and references before counting (padding, BOS, EOS).

    Returns
    -------
    BLEUScore
        Its signature reads "tok:ids" and has no case field.
    """
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    stats, nrefs = _stats(hyps, refs, opt, exclude)
    return corpus_score(stats, opt, nrefs, _TOK, None)


def sentence_bleu_ids(
    hyp: Sequence[int] | np.ndarray,
    refs: Sequence[Sequence[int] | np.ndarray],
    *,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = True,
    exclude: Exclude = None,
) -> BLEUScore:
    """Sentence BLEU of one token-id sequence against its references (each a 1-D sequence)."""
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    if isinstance(refs, np.ndarray) and refs.ndim == 1 and refs.dtype != object:
        raise TypeError(
            "refs: expected a list of reference id sequences, got one 1-D array; "
            "wrap a single reference in a list: refs=[ref]"
        )
    refs = [r for r in _checks._sequence(refs, "refs", "a list of id sequences") if r is not None]
    if not refs:
        raise ValueError("refs: expected at least one reference, got none")
    _warn_sentence_without_effective_order(opt.effective_order)
    stats, _ = _stats([hyp], [[r] for r in refs], opt, exclude)
    return corpus_score(stats, opt, len(refs), _TOK, None)


def batch_sentence_bleu_ids(
    hyps: IdCorpus,
    refs: Sequence[IdCorpus],
    *,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = True,
    exclude: Exclude = None,
) -> np.ndarray:
    """Sentence BLEU of each token-id hypothesis against its own references: (N,) float64.

    ``out[i] == sentence_bleu_ids(hyps[i], [s[i] for s in refs], ...).score``.
    """
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    _warn_sentence_without_effective_order(opt.effective_order)
    stats, _ = _stats(hyps, refs, opt, exclude)
    return row_scores(stats, opt)


def pairwise_sentence_bleu_ids(
    hyps: IdCorpus,
    refs: IdCorpus,
    *,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    max_ngram_order: int = MAX_NGRAM_ORDER,
    effective_order: bool = True,
    exclude: Exclude = None,
) -> np.ndarray:
    """Sentence BLEU of every token-id hypothesis against every single reference: (N, M).

    ``out[i, j] == sentence_bleu_ids(hyps[i], [refs[j]], ...).score``; for n-best reranking
    of beam-search outputs (see fastrnn.beam_search) without leaving token ids.
    """
    opt = _checks.options(smooth_method, smooth_value, max_ngram_order, effective_order)
    _warn_sentence_without_effective_order(opt.effective_order)
    ex = _checks.exclude_ids(exclude)
    h = _checks.id_sentences(hyps, "hyps", False, ex)
    r = _checks.id_sentences(refs, "refs", False, ex)
    for name, flat in (("hyps", h), ("refs", r)):
        if flat.off.size == 1:
            raise ValueError(f"{name}: expected at least one sentence, got none")
    return np.asarray(
        _C._bleu_pairwise_ids(
            h.ids,
            h.off,
            r.ids,
            r.off,
            opt.max_ngram_order,
            opt.smooth_method,
            smooth_value_of(opt),
            opt.effective_order,
            COMPENSATED_SUM,
        )
    )
