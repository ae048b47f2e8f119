"""Recurrent layers and cells as `Module`s, on the fused kernels.

`RNN`, `GRU`, `LSTM` are fastrnn.RNN/GRU/LSTM themselves (one class per concept: every layer is
a Module, with parameters, accumulating gradients and PyTorch's state_dict names); they are
re-exported here so that `fastrnn.nn` holds every building block.

`RNNCell`, `GRUCell`, `LSTMCell` are fastrnn's cells themselves too: one step with a backward.
Each training-mode call runs the fused kernel over one step and pushes what its backward needs
onto the cell's tape; each `backward` pops the most recent step. A decoder loop is therefore
differentiated by the same loop run in reverse. `clear_caches()` (or `eval()`) drops a tape whose
backward will not come.

Dimension letters: T steps, B batch, I input, H hidden, G gates, L layers, D directions.
"""

from __future__ import annotations

from ..rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]
