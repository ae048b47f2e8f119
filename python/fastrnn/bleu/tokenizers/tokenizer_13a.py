"""sacrebleu's default "13a" tokenizer: the tokenization of mteval-v13a.pl, used by WMT.

Steps, in order: drop "<skipped>"; join lines ("-\\n" vanishes, other newlines become spaces);
unescape &quot; &amp; &lt; &gt; (in that order); pad the line with a space each side; put spaces
around the ASCII punctuation and symbols other than ' , - . ; split a period or comma from a
preceding non-digit, then from a following non-digit (so 3.5 and 1,000 stay whole); split a dash
from a preceding digit; collapse whitespace.
"""

from __future__ import annotations

import re

from .base import Tokenizer

# Everything in 0x20-0x2F but ' , - . , and all of 0x3A-0x40, 0x5B-0x60, 0x7B-0x7E.
_SEPARATED = "".join(
    chr(c)
    for c in (*range(0x20, 0x27), *range(0x28, 0x2C), 0x2F, *range(0x3A, 0x41))
    + (*range(0x5B, 0x61), *range(0x7B, 0x7F))
)
_PAD = str.maketrans({c: f" {c} " for c in _SEPARATED})
_AFTER_NON_DIGIT = re.compile(r"([^0-9])([.,])")
_BEFORE_NON_DIGIT = re.compile(r"([.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")


class Tokenizer13a(Tokenizer):
    """mteval-v13a tokenization (Western punctuation; Unicode text passes through)."""

    signature = "13a"
    native = "13a"

    def __call__(self, line: str) -> str:
        line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
        if "&" in line:
            for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
                line = line.replace(entity, char)
        line = f" {line} ".translate(_PAD)
        line = _AFTER_NON_DIGIT.sub(r"\1 \2 ", line)
        line = _BEFORE_NON_DIGIT.sub(r" \1 \2", line)
        line = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line)
        return " ".join(line.split())
