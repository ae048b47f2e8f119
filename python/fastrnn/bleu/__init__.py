"""fastrnn.bleu: BLEU identical to sacrebleu's (score and every statistic), computed in C++.

    >>> from fastrnn import bleu
    >>> bleu.corpus_bleu(["the cat sat on the mat"], [["the cat sat on a mat"]]).score
    53.7284965911771

chrF and chrF++ (`corpus_chrf`, `sentence_chrf`, `batch_sentence_chrf`, `pairwise_sentence_chrf`,
the pure `compute_chrf`) and paired significance tests (`paired_bootstrap`, `paired_randomization`)
are identical to sacrebleu's too; `bleu_statistics` and `chrf_statistics` give per-segment
statistics for sharded scoring, and `paired_bootstrap_from_stats` /
`paired_randomization_from_stats` test systems from such statistics.

Text: `corpus_bleu`, `sentence_bleu` (sacrebleu's sentence defaults), `batch_sentence_bleu` (one
score per hypothesis) and `pairwise_sentence_bleu` (every hypothesis against every reference,
for n-best reranking). Token ids (model outputs): the same four with an `_ids` suffix. The metric
itself is `compute_bleu`, a pure function of summed statistics; tokenizers live in
`fastrnn.bleu.tokenizers`, one module each. Command line: ``python -m fastrnn.bleu REF [REF ...]
< HYP``.

Conventions are sacrebleu's: `refs` is a list of reference streams, each as long as `hyps`;
tokenizers "13a" (default), "intl", "char", "none"; smoothing "exp" (default), "floor",
"add-k", "none". The signature's version field names fastrnn ("version:fastrnn-X.Y.Z").
"""

from __future__ import annotations

from ._chrf import (
    CHRFScore,
    batch_sentence_chrf,
    chrf_statistics,
    compute_chrf,
    corpus_chrf,
    pairwise_sentence_chrf,
    sentence_chrf,
)
from ._ids import (
    batch_sentence_bleu_ids,
    corpus_bleu_ids,
    pairwise_sentence_bleu_ids,
    sentence_bleu_ids,
)
from ._score import MAX_NGRAM_ORDER, SMOOTH_DEFAULTS, BLEUScore, compute_bleu
from ._significance import (
    PairedResult,
    PairedResults,
    paired_bootstrap,
    paired_bootstrap_from_stats,
    paired_randomization,
    paired_randomization_from_stats,
)
from ._text import (
    batch_sentence_bleu,
    bleu_statistics,
    corpus_bleu,
    pairwise_sentence_bleu,
    sentence_bleu,
)
from .tokenizers import TOKENIZERS, get_tokenizer

__all__ = [
    "MAX_NGRAM_ORDER",
    "SMOOTH_DEFAULTS",
    "TOKENIZERS",
    "BLEUScore",
    "CHRFScore",
    "PairedResult",
    "PairedResults",
    "batch_sentence_bleu",
    "batch_sentence_bleu_ids",
    "batch_sentence_chrf",
    "bleu_statistics",
    "chrf_statistics",
    "compute_bleu",
    "compute_chrf",
    "corpus_bleu",
    "corpus_bleu_ids",
    "corpus_chrf",
    "get_tokenizer",
    "paired_bootstrap",
    "paired_bootstrap_from_stats",
    "paired_randomization",
    "paired_randomization_from_stats",
    "pairwise_sentence_bleu",
    "pairwise_sentence_bleu_ids",
    "pairwise_sentence_chrf",
    "sentence_bleu",
    "sentence_bleu_ids",
    "sentence_chrf",
]
