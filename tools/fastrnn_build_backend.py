"""The PEP 517 build backend: scikit-build-core, keeping its build directory across pip runs.

pip builds every `pip install .` in a fresh temporary environment, and scikit-build-core discards
a build directory made from another environment (its cache names the old one's paths). So the
README's two commands (`pip install .`, then `pip install ".[test]" ...`) compiled everything
twice. Here, a build directory whose recorded environment no longer exists (pip deleted it after
the last build) and that was made by the same scikit-build-core version and Python is adopted
by the current environment: CMake re-runs, and Ninja recompiles only what changed. The compile
lines do not name the temporary environment, as CMakeLists.txt copies pybind11's headers into
the build directory. Every other case is left to scikit-build-core.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import scikit_build_core
import scikit_build_core.build as _skbuild
from scikit_build_core.build import *  # noqa: F403  (the PEP 517 hooks not overridden here)


def _adopt_build_dirs() -> None:
    here = Path(scikit_build_core.__file__).parent.resolve()
    for info_path in Path("build").glob("*/.skbuild-info.json"):
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        old = info.get("skbuild_path")
        if (
            isinstance(info, dict)
            and old
            and not os.path.exists(old)
            and info.get("skbuild_version") == scikit_build_core.__version__
            and info.get("python_executable") == sys.executable
            and Path(info.get("source_dir", "")) == Path.cwd().resolve()
        ):
            info["skbuild_path"] = os.fspath(here)
            info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _adopt_build_dirs()
    return _skbuild.build_wheel(wheel_directory, config_settings, metadata_directory)


def __getattr__(name: str) -> Any:  # optional hooks (prepare_metadata_for_build_wheel, ...)
    return getattr(_skbuild, name)
