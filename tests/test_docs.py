"""Every ```python block in docs/*.md runs, so the documentation's examples cannot rot.

The blocks of one page run in order in one namespace (later blocks use earlier names), in a
temporary working directory. Blocks in other languages (bash, text) are not run.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


PAGES = sorted(p for p in DOCS.glob("*.md") if python_blocks(p))


def test_docs_have_examples():
    assert len(PAGES) >= 5, [p.name for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_doc_examples_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    needs = {m for b in blocks for m in re.findall(r"^import (torch|onnxruntime)\b", b, re.M)}
    for mod in needs:
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{page.name} runs {mod}, which is not installed (the test extra has it)")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}, python block {i} failed: {e!r}\n{code}") from e
