"""Puts tests/ on sys.path so test files can `from reference import ...` (tests/reference.py,
the readable NumPy reference of every cell), and provides the `isa` fixture: each test that takes
it runs once per SIMD path, reported as skipped where the CPU lacks that path."""

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

ISAS = ("scalar", "avx2", "avx512", "avx512_bf16", "amx_bf16")


@pytest.fixture(params=ISAS)
def isa(request):
    from fastrnn import _C

    name = request.param
    if name not in _C.backends()["supported"]:
        pytest.skip(f"this CPU does not support {name}")
    before = _C.backends()["active"]
    _C.set_isa(name)
    yield name
    _C.set_isa(before)
