"""`Vocab`: tokens <-> ids for character- or word-level models, with special tokens.

Specials come first, in a fixed order: <pad> = 0, <unk> = 1, <bos> = 2, <eos> = 3 (by default),
then the corpus tokens by decreasing frequency (ties alphabetical), so a vocabulary built twice
from the same text is identical. Tokens seen fewer than `min_freq` times map to <unk>.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..nn._io import atomic_write

__all__ = ["Vocab", "tokenize"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
DEFAULT_SPECIALS = (PAD, UNK, BOS, EOS)

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str, level: str = "char", lower: bool = False) -> list[str]:
    """ "char": every character (spaces and newlines included); "word": words, with punctuation
    marks as tokens of their own ("don't" stays one word)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    if level == "char":
        return list(text)
    if level == "word":
        return _WORD.findall(text)
    raise ValueError(f"level: expected 'char' or 'word', got {level!r}")


class Vocab:
    """An ordered token list with its inverse map.

    Parameters
    ----------
    tokens : sequence of str
        The non-special tokens, in id order (after the specials).
    level : {"char", "word"}
        How `encode` splits text and `decode` joins tokens ("" for chars, " " for words).
    specials : sequence of str
        Must include "<unk>"; "<pad>", "<bos>", "<eos>" are optional but expected by the models.
    lower : bool
        Lower-case text before tokenizing.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        level: str = "char",
        specials: Sequence[str] = DEFAULT_SPECIALS,
        lower: bool = False,
    ) -> None:
        if level not in ("char", "word"):
            raise ValueError(f"level: expected 'char' or 'word', got {level!r}")
        if UNK not in specials:
            raise ValueError(f"specials: must include {UNK!r}, got {list(specials)}")
        itos = list(specials) + [t for t in tokens if t not in specials]
        if len(set(itos)) != len(itos):
            dup = next(t for t, n in Counter(itos).items() if n > 1)
            raise ValueError(f"tokens: {dup!r} appears more than once")
        if len(itos) == len(specials):
            raise ValueError("tokens: empty vocabulary (no token besides the specials)")
        self.level = level
        self.lower = bool(lower)
        self.specials = tuple(specials)
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}

    @classmethod
    def build(
        cls,
        texts: Iterable[str] | str,
        level: str = "char",
        min_freq: int = 1,
        max_size: int | None = None,
        lower: bool = False,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> Vocab:
        """Count tokens over `texts` (one string or an iterable of strings) and keep those seen
        at least `min_freq` times, the `max_size` most frequent at most (specials not counted)."""
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq: expected an integer >= 1, got {min_freq!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size: expected an integer >= 1 or None, got {max_size!r}")
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter[str] = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}]: expected a str, got {type(text).__name__}")
            counts.update(tokenize(text, level, lower))
        for s in specials:
            counts.pop(s, None)
        kept = sorted(
            (t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[:max_size]
        if not kept:
            total = sum(counts.values())
            raise ValueError(
                f"texts: empty vocabulary: no token occurs at least min_freq={min_freq} times "
                f"({total} tokens, {len(counts)} distinct)"
            )
        return cls(kept, level, specials, lower)

    # --- lookups -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of `token` (<unk>'s for unknown tokens)."""
        return self.stoi.get(token, self.unk_index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.itos, self.level, self.lower) == (
            other.itos,
            other.level,
            other.lower,
        )

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, level={self.level!r})"

    def _special(self, tok: str) -> int:
        if tok not in self.stoi:
            raise KeyError(f"this vocabulary has no {tok} token (specials: {list(self.specials)})")
        return self.stoi[tok]

    @property
    def pad_index(self) -> int:
        return self._special(PAD)

    @property
    def unk_index(self) -> int:
        return self.stoi[UNK]

    @property
    def bos_index(self) -> int:
        return self._special(BOS)

    @property
    def eos_index(self) -> int:
        return self._special(EOS)

    # --- encode / decode -----------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, self.level, self.lower)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """text -> int64 ids (unknown tokens -> <unk>)."""
        unk = self.unk_index
        ids = [self.stoi.get(t, unk) for t in self.tokenize(text)]
        if add_bos:
            ids.insert(0, self.bos_index)
        if add_eos:
            ids.append(self.eos_index)
        return np.array(ids, dtype=np.int64)

    def encode_batch(
        self,
        texts: Sequence[str],
        add_bos: bool = False,
        add_eos: bool = False,
        max_len: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Texts -> (ids (B, T) padded with <pad>, lengths (B,)); longer ones cut at max_len."""
        seqs = [self.encode(t, add_bos, add_eos) for t in texts]
        if not seqs:
            raise ValueError("texts: expected at least one text")
        if max_len is not None:
            seqs = [s[:max_len] for s in seqs]
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        out = np.full((len(seqs), max(int(lens.max()), 1)), self.pad_index, dtype=np.int64)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = s
        return out, lens

    def decode(
        self, ids: Iterable[int] | np.ndarray, skip_specials: bool = True, stop_at_eos: bool = True
    ) -> str:
        """ids -> text, joined with "" (chars) or " " (words). By default stops at the first
        <eos> and leaves out <pad>, <bos> and <eos> (but not <unk>)."""
        eos = self.stoi.get(EOS)
        drop = {self.stoi[s] for s in self.specials if s != UNK} if skip_specials else set()
        out = []
        n = len(self.itos)
        for i in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= i < n:
                raise IndexError(f"ids: id {i} is out of range [0, {n})")
            if stop_at_eos and i == eos:
                break
            if i in drop:
                continue
            out.append(self.itos[i])
        return ("" if self.level == "char" else " ").join(out)

    # --- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        n = len(self.specials)
        return {
            "level": self.level,
            "lower": self.lower,
            "specials": list(self.specials),
            "tokens": self.itos[n:],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocab:
        return cls(d["tokens"], d["level"], d["specials"], d.get("lower", False))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically."""
        data = json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")

        def write(f: Any) -> None:
            f.write(data)

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
