"""Line sources cut into shards: in-memory lists, or text files read by the workers themselves.

A source is N lines, from a list of str or from one or more UTF-8 text files read one after the
other. Files are scanned once on the client for the byte offset of each line start; a shard is a
range of lines [a, b), which for a file source is a list of (path, first byte, end byte) pieces
that a worker reads with one seek each. Lines read as fastrnn.bleu's command line reads them
(split at "\\n"; for BLEU trailing whitespace stripped, otherwise only "\\r\\n" or "\\n"), so
a sharded file gives the same lines as the whole file read at once. Nothing here needs Dask.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 24


def line_starts(path: str) -> tuple[np.ndarray, int]:
    """(byte offset of each line start (N,), file size). A last line without "\\n" counts."""
    starts = [np.zeros(1, np.int64)]
    size = 0
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            nl = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10).astype(np.int64)
            starts.append(nl + size + 1)
            size += len(chunk)
            last = chunk[-1:]
    s = np.concatenate(starts)
    if last == b"\n":  # the offset after the final newline starts no line
        s = s[:-1]
    return s, size


@dataclass(frozen=True)
class FilePiece:
    """Bytes [start, end) of `path`: whole lines."""

    path: str
    start: int
    end: int

    def read(self, rstrip: bool) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            data = f.read(self.end - self.start)
        if len(data) != self.end - self.start:
            raise ValueError(f"{self.path}: the file changed while it was being read")
        text = data.decode("utf-8")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        if rstrip:
            return [line.rstrip() for line in lines]
        return [line[:-1] if line.endswith("\r") else line for line in lines]


Piece = Union[list, tuple]  # a list of str, or a tuple of FilePiece


def read_piece(piece: Any, rstrip: bool = False) -> list[str]:
    """The lines of a shard of one source (runs on a worker). From files: without their "\n" or
    "\r\n", and with `rstrip` without any trailing whitespace (as BLEU reads them)."""
    if isinstance(piece, tuple):
        out: list[str] = []
        for p in piece:
            out.extend(p.read(rstrip))
        return out
    return piece


class Source:
    """N lines from a list of str or from text files (a path, or a list of paths read in order).

    `name` is used in error messages ("hyps", "refs[1]", "src")."""

    def __init__(self, data: Any, name: str) -> None:
        self.name = name
        self.lines: list[Any] | None = None
        self.files: list[tuple[str, np.ndarray, int]] = []
        if isinstance(data, (str, os.PathLike)):
            data = [data]
            paths = True
        elif isinstance(data, Sequence) and not isinstance(data, (bytes, bytearray)):
            paths = len(data) > 0 and all(isinstance(p, os.PathLike) for p in data)
        else:
            raise TypeError(f"{name}: expected a list of lines (str), a path, or a list of "
                            f"pathlib.Path shards, got {type(data).__name__}")  # fmt: skip
        if paths:
            for p in data:
                path = os.fspath(p)
                if path.endswith((".gz", ".bz2", ".xz", ".zst")):
                    raise ValueError(f"{name}: {path!r} is compressed; workers read byte ranges "
                                     "of plain text files: decompress it first")  # fmt: skip
                try:
                    starts, size = line_starts(path)
                except OSError as e:
                    raise ValueError(f"{name}: cannot read {path!r}: {e.strerror}") from None
                self.files.append((path, starts, size))
            self.n = sum(s.size for _, s, _ in self.files)
        else:
            self.lines = list(data)
            self.n = len(self.lines)
        self._first = np.cumsum([0] + [s.size for _, s, _ in self.files])

    def take(self, a: int, b: int) -> Piece:
        """Lines [a, b) as a list (in memory) or a tuple of FilePiece."""
        if self.lines is not None:
            return self.lines[a:b]
        pieces = []
        for f, (path, starts, size) in enumerate(self.files):
            lo, hi = max(a, int(self._first[f])), min(b, int(self._first[f + 1]))
            if lo >= hi:
                continue
            i, j = lo - int(self._first[f]), hi - int(self._first[f])
            end = int(starts[j]) if j < starts.size else size
            pieces.append(FilePiece(path, int(starts[i]), end))
        return tuple(pieces)


def shard_ranges(n: int, shard_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + shard_size, n)) for a in range(0, n, shard_size)]


def check_shard_size(shard_size: Any) -> int:
    if (
        isinstance(shard_size, bool)
        or not isinstance(shard_size, (int, np.integer))
        or shard_size < 1
    ):
        raise ValueError(f"shard_size: expected an int >= 1 (lines per task), got {shard_size!r}")
    return int(shard_size)
