"""sacrebleu's "none" tokenizer: the line as it is (BLEU then splits it on whitespace)."""

from __future__ import annotations

from .base import Tokenizer


class TokenizerNone(Tokenizer):
    """No tokenization: for text that is already tokenized (or scored as is)."""

    signature = "none"
    native = "none"

    def __call__(self, line: str) -> str:
        return " ".join(line.split())
