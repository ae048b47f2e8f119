"""Corpus handling shared by Word2Vec and GloVe: argument checks, vocabulary counting and the
encoding of a corpus (an iterable of token lists, or a file with one sentence per line) into a
flat array of word ids plus sentence starts, both done in C++ (fastrnn._C.EmbVocab)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Union

import numpy as np

from .. import _C
from .. import get_num_threads as _get_num_threads

PathLike = Union[str, "os.PathLike[str]"]

#: Longer sentences are cut into pieces of this many words (gensim truncates them instead).
MAX_SENTENCE_LEN = 10000
_CHUNK = 10000  # sentences handed to C++ per call


def check_corpus(sentences: Any, corpus_file: PathLike | None, name: str = "sentences") -> None:
    """Exactly one of the two; sentences restartable (it is read once per pass)."""
    if sentences is not None and corpus_file is not None:
        raise TypeError(f"{name}, corpus_file: give one of them, not both")
    if sentences is not None:
        if isinstance(sentences, (str, bytes)):
            raise TypeError(
                f"{name}: expected an iterable of token lists, got a {type(sentences).__name__}"
            )
        try:
            it = iter(sentences)
        except TypeError:
            raise TypeError(
                f"{name}: expected an iterable of token lists, got {type(sentences).__name__}"
            ) from None
        if it is sentences:
            raise TypeError(
                f"{name}: a generator or iterator can be read only once; pass a list or a restartable "
                "iterable (an object whose __iter__ starts over)"
            )
    if corpus_file is not None and not os.path.isfile(corpus_file):
        raise ValueError(f"corpus_file: no such file: {corpus_file}")


def _chunks(sentences: Iterable[Any]) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for s in sentences:
        chunk.append(s if isinstance(s, (list, tuple, str)) else list(s))
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def count_words(
    sentences: Any, corpus_file: PathLike | None
) -> tuple[list[str], np.ndarray, int, int]:
    """(words in first-seen order, their counts int64, total tokens, sentences)."""
    v = _C.EmbVocab()
    if corpus_file is not None:
        v.count_file(os.fspath(corpus_file))
    else:
        for chunk in _chunks(sentences):
            v.count(chunk)
    return v.items()


def build_vocab(
    words: list[str], counts: np.ndarray, min_count: int, max_final_vocab: int | None = None
) -> tuple[list[str], np.ndarray]:
    """Words with count >= min_count, most frequent first (ties in first-seen order)."""
    keep = np.flatnonzero(counts >= min_count)
    if len(keep) == 0:
        top = int(counts.max()) if len(counts) else 0
        raise ValueError(
            f"min_count: no word occurs {min_count} times or more (the most frequent occurs {top} "
            f"times in {len(counts)} distinct words); lower min_count or give a larger corpus"
            if len(counts)
            else "sentences: the corpus is empty (no tokens)"
        )
    order = keep[np.argsort(-counts[keep], kind="stable")]
    if max_final_vocab is not None:
        order = order[:max_final_vocab]
    return [words[i] for i in order], counts[order].astype(np.int64)


def encode(
    words: list[str], sentences: Any, corpus_file: PathLike | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """(ids int32 [N] of in-vocabulary tokens, sentence starts int64 [S+1], tokens read)."""
    v = _C.EmbVocab(words)
    if corpus_file is not None:
        return v.encode_file(os.fspath(corpus_file), MAX_SENTENCE_LEN)
    parts_ids: list[np.ndarray] = []
    parts_starts: list[np.ndarray] = [np.zeros(1, np.int64)]
    read = offset = 0
    for chunk in _chunks(sentences):
        ids, starts, n = v.encode(chunk, MAX_SENTENCE_LEN)
        parts_ids.append(ids)
        parts_starts.append(starts[1:] + offset)
        offset += len(ids)
        read += n
    ids = np.concatenate(parts_ids) if parts_ids else np.zeros(0, np.int32)
    return ids, np.concatenate(parts_starts), read


def workers_arg(workers: int | None) -> int:
    if workers is None:
        return _get_num_threads()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
    return int(workers)


def int_arg(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name}: expected an int {rng}, got {value}")
    return int(value)


def float_arg(name: str, value: Any, lo: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v < lo or (lo_open and v == lo):
        raise ValueError(
            f"{name}: expected a finite number {'>' if lo_open else '>='} {lo}, got {value}"
        )
    return v


def seed_arg(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF
