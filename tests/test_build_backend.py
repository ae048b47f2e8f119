"""tools/fastrnn_build_backend.py: a build directory left by a deleted pip build environment is
kept for the next build (the README's second command); anything else is left to
scikit-build-core, which starts afresh."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

scikit_build_core = pytest.importorskip("scikit_build_core", reason="in the test extra")

TOOLS = Path(__file__).resolve().parent.parent / "tools" / "fastrnn_build_backend.py"


def backend():
    spec = importlib.util.spec_from_file_location("fastrnn_build_backend", TOOLS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_info(root: Path, name: str, **changes: str) -> Path:
    info = {
        "source_dir": str(root.resolve()),
        "build_dir": str(root / "build" / name),
        "skbuild_path": "/nonexistent/pip-build-env-gone/scikit_build_core",
        "skbuild_version": scikit_build_core.__version__,
        "python_executable": sys.executable,
    }
    info.update(changes)
    path = root / "build" / name / ".skbuild-info.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(info))
    return path


def test_adopts_only_a_build_from_a_deleted_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = str(Path(scikit_build_core.__file__).parent.resolve())
    gone = write_info(tmp_path, "a")
    other_python = write_info(tmp_path, "b", python_executable="/usr/bin/python-other")
    other_version = write_info(tmp_path, "c", skbuild_version="0.0.1")
    alive = write_info(tmp_path, "d", skbuild_path=str(tmp_path))  # still exists: not ours
    moved = write_info(tmp_path, "e", source_dir="/elsewhere")
    backend()._adopt_build_dirs()
    assert json.loads(gone.read_text())["skbuild_path"] == here
    for path in (other_python, other_version, alive, moved):
        assert json.loads(path.read_text())["skbuild_path"] != here


def test_exposes_the_pep517_hooks():
    mod = backend()
    for hook in ("build_wheel", "build_sdist", "build_editable", "get_requires_for_build_wheel"):
        assert callable(getattr(mod, hook))
