"""What one worker does with one shard. Plain functions of picklable arguments: Dask ships them
by reference (this module is importable on every worker with fastrnn installed), and the
single-machine run calls the very same functions in order."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _C
from ..bleu import _checks as bleu_checks
from ..bleu._text import _lower
from ..bleu.tokenizers import get_tokenizer
from ..models.seq2seq import inference
from ..nn.losses import log_softmax
from ._models import cached_model
from ._shards import read_piece


def bleu_stats(
    hyp_piece: Any, ref_pieces: list[Any], tokenize: str, lowercase: bool, order: int
) -> tuple[np.ndarray, Any, int, int]:
    """(summed BLEU statistics (2 + 2 order,), nrefs, lines, lines ending in " .")."""
    hyps: Any = read_piece(hyp_piece, rstrip=True)
    streams: Any = [read_piece(p, rstrip=True) for p in ref_pieces]
    hyps, streams, nrefs = bleu_checks.text_corpus(hyps, streams)
    tokenized = sum(1 for h in hyps if h.endswith(" ."))
    if lowercase:
        hyps, streams = _lower(hyps), [_lower(s) for s in streams]
    tok = get_tokenizer(tokenize)
    stats = _C._bleu_text_stats(hyps, streams, tok.native, tok.table(), order)
    return stats.sum(axis=0, dtype=np.int64), nrefs, len(hyps), tokenized


def translate(
    model_path: str, src_piece: Any, beam_size: int, max_len: int, alpha: float,
    length_penalty: str, batch_size: int,
) -> list[str]:  # fmt: skip
    """Best beam-search translation of each source line ("" for an empty line)."""
    kind, model, vocabs, lock = cached_model(model_path)
    if kind != "seq2seq":
        raise ValueError(f"model: {model_path!r} holds a {kind} model, not a Seq2Seq")
    src_vocab, tgt_vocab = vocabs["src_vocab"], vocabs["tgt_vocab"]
    lines = read_piece(src_piece)
    out = [""] * len(lines)
    todo = [i for i, line in enumerate(lines) if src_vocab.tokenize(line)]
    with lock:
        for a in range(0, len(todo), batch_size):
            rows = todo[a : a + batch_size]
            src, lens = src_vocab.encode_batch([lines[i] for i in rows])
            best = model.beam_decode(src, lens, beam_size=beam_size, max_len=max_len,
                                     alpha=alpha, length_penalty=length_penalty)  # fmt: skip
            for i, hyps in zip(rows, best):
                out[i] = tgt_vocab.decode(hyps[0].tokens)
    return out


def lm_nll(model_path: str, text_piece: Any, batch_size: int) -> tuple[np.ndarray, int]:
    """Per-line scores and the number of tokens scored.

    Neural model: natural-log likelihood of each line as <bos> line <eos> (its tokens and <eos>,
    each given the ones before it, from a zero state). ARPA model: KneserNeyLM.scores (log10)
    of the whitespace-split lines."""
    kind, model, vocabs, lock = cached_model(model_path)
    lines = read_piece(text_piece)
    if kind == "ngram":
        sents = [line.split() for line in lines]
        if not sents:
            return np.zeros(0), 0
        per, count = model._sentence_log10(sents, "lines", True, True)
        return per, count
    if kind != "lm":
        raise ValueError(f"model: {model_path!r} holds a {kind} model, not a language model")
    vocab = vocabs["vocab"]
    seqs = [vocab.encode(line, add_bos=True, add_eos=True) for line in lines]
    out = np.zeros(len(seqs))
    count = 0
    with lock, inference(model):
        for a in range(0, len(seqs), batch_size):
            group = seqs[a : a + batch_size]
            T = max(s.size for s in group) - 1
            x = np.full((len(group), T), vocab.pad_index, np.int64)
            y = np.full((len(group), T), -1, np.int64)
            for r, s in enumerate(group):
                x[r, : s.size - 1], y[r, : s.size - 1] = s[:-1], s[1:]
            logits, _ = model.forward(x, None)
            lp = log_softmax(logits.astype(np.float64))
            picked = np.take_along_axis(lp, np.maximum(y, 0)[..., None], axis=2)[..., 0]
            for r, s in enumerate(group):
                out[a + r] = float(np.sum(picked[r, : s.size - 1]))
                count += s.size - 1
    return out, count


def segment_stats(
    metric: str, hyp_piece: Any, ref_pieces: list[Any], options: dict[str, Any], summed: bool
) -> tuple[np.ndarray, Any]:
    """One shard's statistics of `metric` ("bleu" or "chrf"), exactly as fastrnn.bleu's paired
    tests count them (per segment, or summed), and the shard's nrefs."""
    from ..bleu._significance import _metric

    hyps: Any = read_piece(hyp_piece, rstrip=True)
    streams: Any = [read_piece(p, rstrip=True) for p in ref_pieces]
    hyps, streams, nrefs = bleu_checks.text_corpus(hyps, streams)
    stats = _metric(metric, options).stats(hyps, streams)
    return (stats.sum(axis=0, dtype=np.int64) if summed else stats), nrefs


def evaluate_vectors(
    path: str, binary: bool, analogies: str | None, pairs: list[str], restrict_vocab: int
) -> dict[str, Any]:
    """One word-vector file: load it (word2vec text or binary format) and evaluate it."""
    from ..embeddings import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(path, binary=binary)
    out: dict[str, Any] = {"path": path, "words": len(kv.index_to_key)}
    if analogies is not None:
        accuracy, sections = kv.evaluate_word_analogies(analogies, restrict_vocab=restrict_vocab)
        out["analogy_accuracy"] = accuracy
        out["analogy_sections"] = [(s["section"], len(s["correct"]), len(s["incorrect"]))
                                   for s in sections]  # fmt: skip
    out["pairs"] = {p: kv.evaluate_word_pairs(p, restrict_vocab=restrict_vocab) for p in pairs}
    return out
