"""The Python cell registry (fastrnn._cells) agrees with the compiled cells (csrc/cells/).

Both sides describe the same cells: their names, gate counts, whether they carry a cell state c
and whether they accept peepholes. A cell added on one side only fails here.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from fastrnn import _C
from fastrnn._cells import CELL_NAMES, CELLS, GATES

I, H = 3, 5


def _weights(name: str, gates: int, peephole: bool = False) -> Any:
    rng = np.random.default_rng(0)
    return _C.Weights(
        name,
        rng.standard_normal((gates * H, I)),
        rng.standard_normal((gates * H, H)),
        None,
        None,
        rng.standard_normal(3 * H) if peephole else None,
    )


def test_compiled_module_lists_the_registry_cells_in_order() -> None:
    with pytest.raises(ValueError) as err:
        _weights("no_such_cell", 1)
    listed = re.search(r"expected one of (.*), got", str(err.value))
    assert listed is not None, str(err.value)
    assert tuple(listed.group(1).split(", ")) == CELL_NAMES


@pytest.mark.parametrize("name", CELL_NAMES)
def test_gate_count_matches(name: str) -> None:
    spec = CELLS[name]
    assert GATES[name] == spec.gates
    w = _weights(name, spec.gates)
    assert w.cell == name
    with pytest.raises(ValueError, match="w_ih: expected shape"):
        _weights(name, spec.gates + 1)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_cell_state_and_peephole_match(name: str) -> None:
    spec = CELLS[name]
    w = _weights(name, spec.gates)
    x = np.ones((2, 1, I))
    _, _, c_n, _ = w.forward(x, None, None, None, False, False)
    assert (c_n is not None) == spec.cell_state
    if spec.peephole:
        _weights(name, spec.gates, peephole=True)
    else:
        with pytest.raises(ValueError, match="peephole"):
            _weights(name, spec.gates, peephole=True)
