"""The tokenizer interface: a name for the signature, a readable Python reference, a fast path.

Every tokenizer reproduces one of sacrebleu's, applied (as sacrebleu does) to `line.rstrip()`
after optional lowercasing. Python's `__call__` is the specification, written to be read and
checked against sacrebleu in the tests; scoring uses the C++ twin named by `native`, which the
tests check against the Python one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ... import _C


class Tokenizer:
    """A BLEU tokenizer: `tok(line)` returns the line's tokens joined by single spaces."""

    #: The name in BLEU signatures (`tok:<signature>`) and in `get_tokenizer()`.
    signature: ClassVar[str] = ""
    #: The C++ tokenizer that does the same for scoring.
    native: ClassVar[str] = ""

    def __call__(self, line: str) -> str:
        raise NotImplementedError

    def table(self) -> bytes | None:
        """Data the C++ tokenizer needs (intl: Unicode category flags), or None."""
        return None

    def batch(self, lines: Sequence[str]) -> list[str]:
        """`[self(line.rstrip()) for line in lines]`, computed in C++."""
        return list(_C._bleu_tokenize(list(lines), self.native, self.table()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
