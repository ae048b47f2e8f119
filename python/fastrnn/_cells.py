"""The cells, as the Python side knows them: one registry, mirroring csrc/cells/ (one header per
cell, whose ``kName`` is the name used here and by ``fastrnn._C``).

Adding a cell: add its entry here (see docs/architecture.md, "Add a cell").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellSpec:
    """What the Python layers need to know about one cell.

    name: the cell's name in ``fastrnn._C`` (``kName`` in csrc/cells/<cell>.h).
    gates: G, the gate blocks stacked in w_ih (G*H, I) and w_hh (G*H, H).
    cell_state: whether the cell carries a second state c (LSTM) besides h.
    peephole: whether the cell accepts peephole weights (3*H,).
    """

    name: str
    gates: int
    cell_state: bool = False
    peephole: bool = False


CELLS: dict[str, CellSpec] = {
    s.name: s
    for s in (
        CellSpec("rnn_tanh", gates=1),
        CellSpec("rnn_relu", gates=1),
        CellSpec("gru", gates=3),
        CellSpec("gru_reset_before", gates=3),
        CellSpec("lstm", gates=4, cell_state=True, peephole=True),
    )
}

CELL_NAMES: tuple[str, ...] = tuple(CELLS)
GATES: dict[str, int] = {name: s.gates for name, s in CELLS.items()}
