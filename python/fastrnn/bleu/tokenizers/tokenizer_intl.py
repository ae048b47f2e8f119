"""sacrebleu's "intl" tokenizer: mteval-v14.pl's international tokenization.

Unicode punctuation (category P*) is split from a neighbour that is not a number (N*) on either
side, so 1,000.5 stays whole; symbols (S*) always stand alone. As in mteval-v14 (and sacrebleu), a
number followed by a final period keeps it: "in 2024." -> "in 2024.".

Categories come from the `regex` module when it is installed (sacrebleu's own dependency, so the
Unicode version is the one sacrebleu uses); otherwise from the interpreter's `unicodedata`, which
agrees except on characters added to Unicode since (see `_unicode.py`).
"""

from __future__ import annotations

import functools
import re

from ._unicode import NUMBER, PUNCT, SYMBOL, category_flags, char_class
from .base import Tokenizer


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    p, n, s = char_class(PUNCT), char_class(NUMBER), char_class(SYMBOL)
    return (
        re.compile(f"([^{n}])([{p}])"),  # punctuation after a non-number
        re.compile(f"([{p}])([^{n}])"),  # punctuation before a non-number
        re.compile(f"([{s}])"),  # symbols
    )


class TokenizerIntl(Tokenizer):
    """mteval-v14 international tokenization (Unicode punctuation and symbols)."""

    signature = "intl"
    native = "intl"

    def __call__(self, line: str) -> str:
        after, before, symbol = _patterns()
        line = after.sub(r"\1 \2 ", line)
        line = before.sub(r" \1 \2", line)
        line = symbol.sub(r" \1 ", line)
        return " ".join(line.split())

    def table(self) -> bytes:
        return category_flags()
