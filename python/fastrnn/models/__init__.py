"""fastrnn.models: complete sequence models built from fastrnn.nn, and their training loop.

Vocab                     tokens <-> ids (char or word level, <pad> <unk> <bos> <eos>)
Seq2Seq                   bidirectional encoder + attention + LSTM/GRU decoder; greedy
                          decoding and the step protocol of fastrnn.beam_search
RNNLanguageModel          char- or word-level RNN/GRU/LSTM language model; truncated BPTT
  train_language_model,   (batchify, bptt_batches), held-out perplexity, sampling
  perplexity, sample      (temperature, top-k, seeded)
NGramLM                   interpolated n-gram baseline
KneserNeyLM               interpolated (modified) Kneser-Ney n-grams, ARPA export/import
Trainer                   training loop: progress, clipping, NaN checks, resumable
                          atomic checkpoints
"""

from __future__ import annotations

from .classifier import RNNClassifier
from .lm import RNNLanguageModel, batchify, bptt_batches, perplexity, sample, train_language_model
from .ngram import KneserNeyLM, NGramLM
from .seq2seq import Seq2Seq, reorder_state
from .training import Trainer
from .vocab import Vocab, tokenize

__all__ = [
    "KneserNeyLM",
    "NGramLM",
    "RNNClassifier",
    "RNNLanguageModel",
    "Seq2Seq",
    "Trainer",
    "Vocab",
    "batchify",
    "bptt_batches",
    "perplexity",
    "reorder_state",
    "sample",
    "tokenize",
    "train_language_model",
]
