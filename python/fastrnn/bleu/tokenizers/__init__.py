"""BLEU tokenizers, one small module each, looked up by name with `get_tokenizer`.

Names and behaviour are sacrebleu's: "13a" (the default, mteval-v13a), "intl" (mteval-v14's
Unicode-aware rules), "char" (characters), "none" (whitespace only). sacrebleu's tokenizers that
need external models or dictionaries ("zh", "ja-mecab", "ko-mecab", "spm", "flores101",
"flores200", "spBLEU-1K") are not provided: tokenize with them first and score with "none".
"""

from __future__ import annotations

import functools
from importlib import import_module

from .base import Tokenizer

_REGISTRY = {
    "13a": ("tokenizer_13a", "Tokenizer13a"),
    "intl": ("tokenizer_intl", "TokenizerIntl"),
    "char": ("tokenizer_char", "TokenizerChar"),
    "none": ("tokenizer_none", "TokenizerNone"),
}
_SACREBLEU_ONLY = ("zh", "ja-mecab", "ko-mecab", "spm", "flores101", "flores200", "spBLEU-1K")

#: The tokenizer names `get_tokenizer` accepts.
TOKENIZERS: tuple[str, ...] = tuple(_REGISTRY)
DEFAULT_TOKENIZER = "13a"

__all__ = ["DEFAULT_TOKENIZER", "TOKENIZERS", "Tokenizer", "get_tokenizer"]


def get_tokenizer(name: str) -> Tokenizer:
    """The tokenizer called `name` (one of TOKENIZERS); raises ValueError for any other name."""
    if not isinstance(name, str):
        raise TypeError(f"tokenize: expected a tokenizer name (str), got {type(name).__name__}")
    if name not in _REGISTRY:
        choices = ", ".join(repr(n) for n in TOKENIZERS)
        hint = ""
        if name in _SACREBLEU_ONLY:
            hint = (
                f"; sacrebleu's {name!r} tokenizer needs external tools and is not built in: "
                "tokenize the text with it first and score with tokenize='none'"
            )
        raise ValueError(f"tokenize: expected one of {choices}, got {name!r}{hint}")
    return _load(name)


@functools.cache
def _load(name: str) -> Tokenizer:  # imported on first use, as sacrebleu does
    module, cls = _REGISTRY[name]
    tokenizer: Tokenizer = getattr(import_module(f".{module}", __name__), cls)()
    return tokenizer
