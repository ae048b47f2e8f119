"""Puts tests/ on sys.path so test files can `from reference import ...` (tests/reference.py,
the readable NumPy reference of every cell)."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
