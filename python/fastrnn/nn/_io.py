"""Atomic file writes and `.npz` archives of named arrays (state dicts, checkpoints).

A write goes to a temporary file in the target's folder, is flushed to disk, then renamed over the
target (`os.replace`, atomic on POSIX and Windows): a crash or Ctrl-C mid-write leaves the old file
intact and never a truncated one. Archives are read with `allow_pickle=False`: loading a file
never runs code.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np

__all__ = ["atomic_write", "load_npz", "save_npz"]

_META_KEY = "__meta__"


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Call write(f) on a temporary binary file, then move it to `path` in one step."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself (not possible on every OS)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def save_npz(
    path: str | os.PathLike[str], arrays: Mapping[str, Any], meta: Mapping[str, Any] | None = None
) -> None:
    """Write named arrays (and an optional JSON-serializable `meta` dict) to `path` atomically.

    The file is an ordinary uncompressed `.npz`; `np.load(path)` reads it too."""
    if _META_KEY in arrays:
        raise ValueError(f"arrays: the name {_META_KEY!r} is reserved for metadata")
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    for name, a in payload.items():
        if a.dtype == object:
            raise TypeError(f"arrays[{name!r}]: expected a numeric array, got dtype object")
    if meta is not None:
        payload[_META_KEY] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **payload))  # type: ignore[arg-type]


def load_npz(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) from a file written by `save_npz` (meta is {} when there is none)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError (pickled objects), ...
        raise ValueError(f"path: {path!r} is not a readable .npz archive: {e}") from None
    meta: dict[str, Any] = {}
    if _META_KEY in arrays:
        meta = json.loads(str(arrays.pop(_META_KEY)))
    return arrays, meta
