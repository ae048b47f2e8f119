"""Validation of every argument fastrnn.bleu takes, and every error message, in one place.

Messages name the argument (and the item: "refs[1][7]"), and say what was expected and what was
given. Corpora are checked in bulk (a set of item types), item by item only to name an offender,
so checking costs little next to scoring. This module does no scoring.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Union

import numpy as np

from ._score import SMOOTH_DEFAULTS

NRefs = Union[int, str]  # a count, or "var" when segments have different numbers of references


class Options(NamedTuple):
    smooth_method: str
    smooth_value: float | None
    max_ngram_order: int
    effective_order: bool


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def options(
    smooth_method: Any, smooth_value: Any, max_ngram_order: Any, effective_order: Any
) -> Options:
    if not isinstance(smooth_method, str) or smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(
            f"smooth_method: expected one of 'exp', 'floor', 'add-k', 'none', got {smooth_method!r}"
        )
    if smooth_value is not None:
        if isinstance(smooth_value, (bool, np.bool_)) or not isinstance(smooth_value, numbers.Real):
            raise TypeError(f"smooth_value: expected a number or None, got {smooth_value!r}")
        if not (math.isfinite(float(smooth_value)) and float(smooth_value) >= 0):
            raise ValueError(f"smooth_value: expected a finite number >= 0, got {smooth_value!r}")
        if not isinstance(smooth_value, (int, float)):
            smooth_value = float(smooth_value)  # NumPy scalars: as the float sacrebleu would see
    if isinstance(max_ngram_order, (bool, np.bool_)) or not isinstance(
        max_ngram_order, numbers.Integral
    ):
        raise TypeError(f"max_ngram_order: expected a positive integer, got {max_ngram_order!r}")
    if not 1 <= int(max_ngram_order) <= 1000:
        raise ValueError(
            f"max_ngram_order: expected an integer in [1, 1000], got {max_ngram_order}"
        )
    return Options(
        smooth_method, smooth_value, int(max_ngram_order), flag("effective_order", effective_order)
    )


def _kind(value: Any) -> str:
    return type(value).__name__


def _sequence(value: Any, name: str, what: str) -> Any:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        hint = f"; wrap a single one in a list: {name}=[...]" if isinstance(value, str) else ""
        raise TypeError(f"{name}: expected {what}, got {_kind(value)}{hint}")
    return value


def _strings(lines: Sequence[Any], name: str, allow_none: bool) -> tuple[list[Any], bool]:
    """The lines as a list, and whether any is None."""
    lines = list(lines)
    types = set(map(type, lines))
    allowed = {str, type(None)} if allow_none else {str}
    if not types <= allowed:  # fast path above; item by item to name the culprit
        for i, line in enumerate(lines):
            if not (isinstance(line, str) or (allow_none and line is None)):
                expected = "str or None" if allow_none else "str"
                raise TypeError(f"{name}[{i}]: expected {expected}, got {_kind(line)}")
    return lines, type(None) in types


def text_corpus(hyps: Any, refs: Any) -> tuple[list[str], list[list[str | None]], NRefs]:
    """hyps [N] str; refs: R streams [N] of str or None (None: no such reference there)."""
    hyps, _ = _strings(_sequence(hyps, "hyps", "a list of str"), "hyps", allow_none=False)
    if not hyps:
        raise ValueError("hyps: the corpus is empty (expected at least one hypothesis)")
    refs = _sequence(refs, "refs", "a list of reference streams (lists of str)")
    if len(refs) == 0:
        raise ValueError("refs: expected at least one reference stream, got none")
    streams, gaps = [], False
    for r, stream in enumerate(refs):
        what = f"a list of {len(hyps)} str (one reference per hypothesis)"
        stream = _sequence(stream, f"refs[{r}]", what)
        if isinstance(stream, np.ndarray) and stream.ndim != 1:
            raise ValueError(f"refs[{r}]: expected {what}, got an array of shape {stream.shape}")
        if len(stream) != len(hyps):
            raise ValueError(
                f"refs[{r}]: expected {len(hyps)} references (as many as hyps), got {len(stream)}"
            )
        lines, has_none = _strings(stream, f"refs[{r}]", allow_none=True)
        streams.append(lines)
        gaps |= has_none
    if not gaps:
        return hyps, streams, len(streams)
    present = np.array([[line is not None for line in s] for s in streams], dtype=np.uint8)
    return hyps, streams, _nrefs(present)


def _nrefs(present: np.ndarray) -> NRefs:
    """present (R, N): the signature's nrefs, after checking every segment has a reference."""
    counts = present.sum(axis=0, dtype=np.int64)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(
            f"refs: hypothesis {int(missing[0])} has no reference (every stream holds None there)"
        )
    return int(counts[0]) if np.all(counts == counts[0]) else "var"


def text_sentence(hyp: Any, refs: Any) -> tuple[str, list[str]]:
    """One hypothesis and its references (None entries dropped, as sacrebleu does)."""
    if not isinstance(hyp, str):
        raise TypeError(f"hyp: expected str, got {_kind(hyp)}")
    refs = _sequence(refs, "refs", "a list of reference strings")
    lines = [r for r in _strings(refs, "refs", allow_none=True)[0] if r is not None]
    if not lines:
        raise ValueError("refs: expected at least one reference string, got none")
    return hyp, lines  # type: ignore[return-value]


def text_list(lines: Any, name: str) -> list[str]:
    lines, _ = _strings(_sequence(lines, name, "a list of str"), name, allow_none=False)
    if not lines:
        raise ValueError(f"{name}: expected at least one sentence, got none")
    return lines  # type: ignore[return-value]


# --- token ids -------------------------------------------------------------------------------


class FlatIds(NamedTuple):
    """Sentences of token ids, concatenated: sentence i is ids[off[i]:off[i + 1]]."""

    ids: np.ndarray  # (total,) int64
    off: np.ndarray  # (N + 1,) int64
    present: np.ndarray  # (N,) uint8; 0 where the caller gave None


_INT64 = np.iinfo(np.int64)
_INT64_RANGE = "the int64 range [-2**63, 2**63 - 1]"


def _fit_int64(arr: np.ndarray, name: str) -> np.ndarray:
    """An integer array as int64, refusing values int64 cannot hold (rather than wrapping)."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize >= 8 and arr.size:
        top = int(arr.max())
        if top > _INT64.max:
            raise ValueError(f"{name}: token ids must be in {_INT64_RANGE}, got {top}")
    return arr.astype(np.int64, copy=False)


def _id_array(seq: Any, name: str) -> np.ndarray:
    if isinstance(seq, np.ndarray):
        arr = seq
    else:
        try:
            arr = np.asarray(seq)
        except (ValueError, TypeError):  # NumPy's "inhomogeneous shape"
            raise ValueError(
                f"{name}: expected a flat sequence of token ids (ints), got nested sequences"
            ) from None
        if arr.dtype.kind in "fO" and arr.ndim == 1:
            ints = [x for x in seq if isinstance(x, numbers.Integral) and not isinstance(x, bool)]
            big = [int(x) for x in ints if not _INT64.min <= int(x) <= _INT64.max]
            if big and len(ints) == arr.size:  # Python ints too large for any NumPy integer
                raise ValueError(f"{name}: token ids must be in {_INT64_RANGE}, got {big[0]}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer token ids, got dtype {arr.dtype}")
    return _fit_int64(arr, name)


def id_sentences(seqs: Any, name: str, allow_none: bool, exclude: np.ndarray) -> FlatIds:
    """A list of 1-D integer sequences (None allowed where `allow_none`) or a 2-D integer array
    (one row per sentence, padded with an id in `exclude`)."""
    if isinstance(seqs, np.ndarray) and seqs.ndim == 2:
        if seqs.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integer token ids, got dtype {seqs.dtype}")
        n, t = seqs.shape
        ids = _fit_int64(seqs, name).ravel()
        off = np.arange(n + 1, dtype=np.int64) * t
        present = np.ones(n, np.uint8)
    else:
        seqs = _sequence(seqs, name, "a list of token-id sequences or a 2-D integer array")
        if isinstance(seqs, np.ndarray) and seqs.dtype != object:
            raise ValueError(
                f"{name}: expected a list of token-id sequences or a 2-D integer array, "
                f"got an array of shape {seqs.shape}"
            )
        parts, present_list = [], []
        for i, seq in enumerate(seqs):
            if seq is None and allow_none:
                parts.append(np.zeros(0, np.int64))
                present_list.append(0)
                continue
            if seq is None or isinstance(seq, (str, bytes)):
                expected = (
                    "a sequence of token ids or None" if allow_none else "a sequence of token ids"
                )
                raise TypeError(f"{name}[{i}]: expected {expected}, got {_kind(seq)}")
            parts.append(_id_array(seq, f"{name}[{i}]"))
            present_list.append(1)
        lengths = np.fromiter((p.size for p in parts), np.int64, count=len(parts))
        off = np.zeros(len(parts) + 1, np.int64)
        np.cumsum(lengths, out=off[1:])
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        present = np.asarray(present_list, np.uint8)
    if exclude.size:
        keep = ~np.isin(ids, exclude)
        kept = np.zeros(ids.size + 1, np.int64)
        np.cumsum(keep, out=kept[1:])
        ids, off = ids[keep], kept[off]
    return FlatIds(np.ascontiguousarray(ids), np.ascontiguousarray(off), present)


def exclude_ids(exclude: Any) -> np.ndarray:
    """Token ids to drop before counting (padding, BOS, EOS): None, an int, or ints."""
    if exclude is None:
        return np.zeros(0, np.int64)
    if isinstance(exclude, numbers.Integral) and not isinstance(exclude, (bool, np.bool_)):
        exclude = [exclude]
    if isinstance(exclude, (str, bytes)) or not isinstance(exclude, (Iterable, np.ndarray)):
        raise TypeError(f"exclude: expected token ids (an int or a list of ints), got {exclude!r}")
    values = exclude.ravel() if isinstance(exclude, np.ndarray) else list(exclude)
    return _id_array(values, "exclude")


def id_corpus(hyps: Any, refs: Any, exclude: np.ndarray) -> tuple[FlatIds, FlatIds, int, NRefs]:
    """Flat hyps (N sentences) and refs (R streams of N, stream-major), R, and nrefs."""
    h = id_sentences(hyps, "hyps", False, exclude)
    n = h.off.size - 1
    if n == 0:
        raise ValueError("hyps: the corpus is empty (expected at least one hypothesis)")
    if isinstance(refs, np.ndarray) and refs.ndim == 3:
        refs = list(refs)  # (R, N, T): R padded streams
    refs = _sequence(refs, "refs", "a list of reference streams")
    if len(refs) == 0:
        raise ValueError("refs: expected at least one reference stream, got none")
    streams = []
    for r, stream in enumerate(refs):
        s = id_sentences(stream, f"refs[{r}]", True, exclude)
        if s.off.size - 1 != n:
            raise ValueError(
                f"refs[{r}]: expected {n} references (as many as hyps), got {s.off.size - 1}"
            )
        streams.append(s)
    ids = np.concatenate([s.ids for s in streams])
    shifts = np.cumsum([0] + [s.ids.size for s in streams[:-1]])
    off = np.concatenate([streams[0].off[:1]] + [s.off[1:] + k for s, k in zip(streams, shifts)])
    present = np.concatenate([s.present for s in streams])
    nrefs = _nrefs(present.reshape(len(streams), n))
    return h, FlatIds(ids, off, present), len(streams), nrefs


# --- chrF and significance tests -------------------------------------------------------------


class ChrfOptions(NamedTuple):
    char_order: int
    word_order: int
    beta: int | float
    lowercase: bool
    whitespace: bool
    eps_smoothing: bool


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value}")
    return int(value)


def chrf_options(
    char_order: Any,
    word_order: Any,
    beta: Any,
    lowercase: Any,
    whitespace: Any,
    eps_smoothing: Any,
) -> ChrfOptions:
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real):
        raise TypeError(f"beta: expected a number >= 0, got {beta!r}")
    if not (math.isfinite(float(beta)) and float(beta) >= 0):
        raise ValueError(f"beta: expected a finite number >= 0, got {beta!r}")
    if not isinstance(beta, (int, float)):  # NumPy scalars: as the Python number sacrebleu sees
        beta = int(beta) if isinstance(beta, numbers.Integral) else float(beta)
    return ChrfOptions(
        _integer("char_order", char_order, 1, 1000),
        _integer("word_order", word_order, 0, 1000),
        beta,
        flag("lowercase", lowercase),
        flag("whitespace", whitespace),
        flag("eps_smoothing", eps_smoothing),
    )


def systems(value: Any) -> list[tuple[str, list[str]]]:
    """Named systems for a paired test: a dict (or list of pairs) of name -> hypotheses, the
    first being the baseline; every system as long as the first."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)) and all(
        isinstance(p, tuple) and len(p) == 2 for p in value
    ):
        items = list(value)
    else:
        raise TypeError(
            "systems: expected a dict of system name -> list of hypotheses (the first is the "
            f"baseline), got {_kind(value)}"
        )
    if len(items) < 2:
        raise ValueError(
            f"systems: a paired test needs a baseline and at least one system, got {len(items)}"
        )
    out: list[tuple[str, list[str]]] = []
    for name, hyps in items:
        if not isinstance(name, str):
            raise TypeError(f"systems: expected str names, got {_kind(name)} ({name!r})")
        lines, _ = _strings(
            _sequence(hyps, f"systems[{name!r}]", "a list of str"), f"systems[{name!r}]", False
        )
        if len(lines) != len(out[0][1] if out else lines):
            raise ValueError(
                f"systems[{name!r}]: expected {len(out[0][1])} hypotheses (as many as the "
                f"baseline), got {len(lines)}"
            )
        out.append((name, lines))
    if not out[0][1]:
        raise ValueError("systems: the corpus is empty (expected at least one hypothesis)")
    return out
