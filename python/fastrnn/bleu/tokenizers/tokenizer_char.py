"""sacrebleu's "char" tokenizer: every character but whitespace is a token."""

from __future__ import annotations

from .base import Tokenizer


class TokenizerChar(Tokenizer):
    """Character-level BLEU (for languages written without spaces, or as a diagnostic)."""

    signature = "char"
    native = "char"

    def __call__(self, line: str) -> str:
        return " ".join(ch for ch in line if not ch.isspace())
