"""Atomic file writes and `.npz` archives of named arrays (state dicts, checkpoints).

A write goes to a temporary file in the target's folder, is flushed to disk, then renamed over the
target (`os.replace`, atomic on POSIX and Windows): a crash or Ctrl-C mid-write leaves the old file
intact and never a truncated one. Like a careful tool (editors, rsync) it also

- writes through a symbolic link to the file the link names, and keeps the link;
- gives a new file the mode a plain `open()` would (0666 less the umask) and an existing file
  keeps its mode;
- names its temporary file `.<target>.<pid>.<random>.tmp`, shortened so that it never exceeds
  the file system's name limit, and removes the temporary files of the same target left behind
  by processes that no longer run (a kill mid-save), so they cannot accumulate.

Archives are read with `allow_pickle=False` (loading a file never runs code), and each member's
declared shape and size is checked before its data is read: a small compressed file cannot expand
into gigabytes, and with `expected` shapes a wrong file is refused before any array is read.
This module does no model logic.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np

__all__ = ["atomic_write", "load_npz", "save_npz"]

_META_KEY = "__meta__"
_META_MAX_BYTES = 64 << 20  # the JSON metadata (loop state, history) of a checkpoint
_NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
_TMP_SUFFIX = ".tmp"
_writing: set[str] = set()  # temporary files this process is writing now


def _name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return _NAME_MAX


def _tmp_prefix(base: str, limit: int) -> str:
    """`.<base>.<hash>.`: the part of a temporary name that identifies its target. The base is
    cut (by bytes) so that prefix + pid + random + suffix fit in `limit` bytes; the hash keeps
    targets whose names share a long beginning apart."""
    digest = hashlib.sha1(base.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    room = max(limit - (1 + 1 + 8 + 1 + 10 + 1 + 12 + len(_TMP_SUFFIX)), 1)
    raw = base.encode("utf-8", "surrogateescape")[:room]
    short = raw.decode("utf-8", "ignore") or "f"
    return f".{short}.{digest}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (someone else's), or we cannot tell: leave its file alone
    return True


def _remove_stale(folder: str, prefix: str) -> None:
    """Remove this target's temporary files whose writer no longer runs."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        full = os.path.join(folder, name)
        parts = name[len(prefix) : -len(_TMP_SUFFIX)].split(".")
        if len(parts) != 2 or not parts[0].isdigit() or full in _writing:
            continue
        if int(parts[0]) == os.getpid() or not _pid_alive(int(parts[0])):
            with contextlib.suppress(OSError):
                os.unlink(full)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Call write(f) on a temporary binary file, then move it to `path` in one step.

    A symbolic link at `path` is followed (its target is written, the link stays); a new file
    gets 0666 less the umask, an existing one keeps its mode."""
    path = os.path.realpath(os.fspath(path))
    folder = os.path.dirname(path)
    base = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    prefix = _tmp_prefix(base, _name_max(folder))
    _remove_stale(folder, prefix)
    while True:
        tmp = os.path.join(folder, f"{prefix}{os.getpid()}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
        try:
            # 0o666: the kernel applies the umask, exactly as open(path, "wb") would
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)  # fmt: skip
            break
        except FileExistsError:
            continue
    _writing.add(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode) if hasattr(os, "fchmod") else os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        _writing.discard(tmp)
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


# --- reading ---------------------------------------------------------------------------------------

Expected = Mapping[str, tuple[int, ...]] | Callable[[str], "tuple[int, ...] | None"]


def _header(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data bytes) from a member's .npy header, reading only the header."""
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        header_len = f.tell()
    if dtype.hasobject:
        raise ValueError("holds Python objects (pickles), which are never loaded")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if info.file_size != header_len + nbytes:
        raise ValueError(
            f"declares {info.file_size} bytes but its header describes {header_len + nbytes}"
        )
    return tuple(int(n) for n in shape), dtype, nbytes


def _open_archive(path: str) -> zipfile.ZipFile:
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file: {path!r}")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"path: {path!r} is not a readable .npz archive: {e}") from None


def _member_name(info: zipfile.ZipInfo) -> str:
    return info.filename[:-4] if info.filename.endswith(".npy") else info.filename


def _read_meta(path: str, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, Any]:
    try:
        shape, dtype, nbytes = _header(z, info)
        if shape != () or dtype.kind != "U" or nbytes > _META_MAX_BYTES:
            raise ValueError(f"expected one string of at most {_META_MAX_BYTES} bytes")
        with z.open(info) as f:
            text = str(np.lib.format.read_array(f, allow_pickle=False))
        meta = json.loads(text)
    except (ValueError, RecursionError, EOFError, zipfile.BadZipFile, OSError) as e:
        what = "too deeply nested" if isinstance(e, RecursionError) else str(e).split("\n")[0]
        raise ValueError(f"path: {path!r} has corrupt metadata ({_META_KEY}: {what})") from None
    if not isinstance(meta, dict):
        raise ValueError(
            f"path: {path!r} has corrupt metadata ({_META_KEY}: expected a JSON object, got "
            f"{type(meta).__name__})"
        )
    return meta


def npz_names(path: str | os.PathLike[str]) -> list[str]:
    """The array names of an archive (metadata excluded); nothing is read."""
    path = os.fspath(path)
    with _open_archive(path) as z:
        names = [_member_name(info) for info in z.infolist()]
    return [n for n in names if n != _META_KEY]


def load_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a file written by `save_npz` ({} when there is none); no array is
    read."""
    path = os.fspath(path)
    with _open_archive(path) as z:
        for info in z.infolist():
            if _member_name(info) == _META_KEY:
                return _read_meta(path, z, info)
    return {}


def load_npz(
    path: str | os.PathLike[str], expected: Expected | None = None, *, skip_unexpected: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) from a file written by `save_npz` (meta is {} when there is none).

    Every member's header is read first and its declared size checked against the data it
    describes. With `expected` (name -> shape, or a function name -> shape that returns None or
    raises for a name that does not belong), names and shapes are checked too, all before any
    array is read: a wrong or hostile file is refused without expanding it. With
    `skip_unexpected`, arrays that `expected` does not name are left unread (not returned) and
    missing ones are allowed."""
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    with _open_archive(path) as z:
        infos = z.infolist()
        members = []
        unexpected = []
        wrong: list[str] = []
        for info in infos:
            name = _member_name(info)
            if name == _META_KEY:
                meta = _read_meta(path, z, info)
                continue
            try:
                shape, dtype, _ = _header(z, info)
            except (ValueError, EOFError, zipfile.BadZipFile, OSError, RuntimeError) as e:
                msg = str(e).split("\n")[0]
                raise ValueError(f"path: {path!r}: array {name!r} {msg}") from None
            if dtype.kind not in "biufc":
                raise ValueError(f"path: {path!r}: array {name!r} has dtype {dtype}, not numeric")
            if expected is not None:
                want = expected(name) if callable(expected) else expected.get(name)
                if want is None:
                    if not skip_unexpected:
                        unexpected.append(name)
                    continue
                if tuple(want) != shape:
                    wrong.append(f"{name} has shape {shape}, expected {tuple(want)}")
            members.append((name, info))
        missing: list[str] = []
        if expected is not None and not callable(expected) and not skip_unexpected:
            have = {n for n, _ in members}
            missing = [k for k in expected if k not in have]
        if missing or unexpected:
            raise KeyError(
                f"path: {path!r} does not match: missing keys {missing}, unexpected keys "
                f"{unexpected}"
            )
        if wrong:
            raise ValueError(f"path: {path!r}: " + "; ".join(wrong))
        for name, info in members:
            try:
                with z.open(info) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
            except (ValueError, EOFError, zipfile.BadZipFile, OSError) as e:
                msg = str(e).split("\n")[0]
                raise ValueError(f"path: {path!r}: array {name!r} is unreadable: {msg}") from None
    return arrays, meta
