"""Unicode general-category flags for the intl tokenizer: one byte per code point.

Built once, on first use, from the `regex` module's \\p{P}, \\p{S}, \\p{N} when it is importable
(the module sacrebleu's intl tokenizer uses, hence the same Unicode version), else from
`unicodedata.category`, whose Unicode version is the interpreter's.
"""

from __future__ import annotations

import functools

import numpy as np

PUNCT, SYMBOL, NUMBER = 1, 2, 4  # as kPunct, kSymbol, kNumber in csrc/bleu/bleu.h
SIZE = 0x110000


def _all_code_points() -> str:
    cps = np.arange(SIZE, dtype="<u4")
    cps[0xD800:0xE000] = 0x20  # surrogates (category Cs, no flag) cannot go through UTF-32
    return cps.tobytes().decode("utf-32-le")


@functools.cache
def category_flags() -> bytes:
    """SIZE bytes: bit PUNCT for categories P*, SYMBOL for S*, NUMBER for N*."""
    flags = np.zeros(SIZE, np.uint8)
    try:
        import regex  # type: ignore[import-untyped]
    except ImportError:
        import unicodedata

        bit = {"P": PUNCT, "S": SYMBOL, "N": NUMBER}
        for cp in range(SIZE):
            flags[cp] = bit.get(unicodedata.category(chr(cp))[0], 0)
    else:
        text = _all_code_points()
        for value, prop in ((PUNCT, "P"), (SYMBOL, "S"), (NUMBER, "N")):
            hits = [m.start() for m in regex.finditer(rf"\p{{{prop}}}", text)]
            flags[np.asarray(hits, dtype=np.intp)] |= value
    return flags.tobytes()


@functools.cache
def char_class(flag: int) -> str:
    """The body of a `re` character class ("a-zA-Z" style) matching the flagged code points."""
    table = np.frombuffer(category_flags(), np.uint8)
    on = np.flatnonzero(table & flag)
    if on.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(on) != 1)
    starts = np.concatenate(([on[0]], on[breaks + 1]))
    ends = np.concatenate((on[breaks], [on[-1]]))
    esc = lambda cp: f"\\U{int(cp):08x}"
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in zip(starts, ends))
