"""ONNX in and out: `export` fastrnn models for onnxruntime, `load` ONNX RNN/GRU/LSTM nodes.

Needs the optional extra ``pip install "fastrnn[onnx]"`` (the onnx package; onnxruntime to run
what `export` writes).

    >>> import numpy as np, fastrnn, fastrnn.onnx
    >>> m = fastrnn.LSTM(8, 16, num_layers=2, bidirectional=True, seed=0)
    >>> model = fastrnn.onnx.export(m, "lstm.onnx")             # inputs x, outputs output, h_n, c_n
    >>> m2 = fastrnn.onnx.load("lstm.onnx", node=0)             # the first layer's LSTM node

What maps to what:

- fastrnn.RNN / GRU / LSTM (and the fastrnn.nn versions): one ONNX RNN / GRU / LSTM node per
  layer (``layout=0``; Transpose around it for ``batch_first``), gates reordered to ONNX's
  (LSTM i, o, f, c; GRU z, r, h), PyTorch's reset-after GRU as ``linear_before_reset=1``, the
  reset-before GRU (``reset_after=False``) as ONNX's default, peepholes as ``P`` in ONNX's order
  (i, o, f), ``nonlinearity="relu"`` as ``activations=["Relu"]``. Optional inputs ``lengths``
  (the node's ``sequence_lens``) and ``h0`` / ``c0``.
- RNNCell / GRUCell / LSTMCell: the same node over one step (inputs x, h[, c]; outputs h1[, c1]).
- nn.Linear (MatMul + Add), nn.Embedding (Gather), Tanh / Sigmoid / ReLU, Dropout and Identity
  (nothing: inference), nn.Sequential of those, models.RNNLanguageModel (tokens -> logits and
  states), models.Seq2Seq's encoder (src -> attention keys and the decoder's initial state);
  ``softmax=True`` appends a Softmax over the last axis.

`load` goes the other way for one ONNX RNN/GRU/LSTM node (either GRU form, peepholes, all three
directions, both layouts): a fastrnn layer whose call, given what the node is given, returns what
the node returns in fastrnn's shapes; `run` returns them in ONNX's shapes. Attributes fastrnn
cannot honour (``clip``, ``input_forget=1``, activations other than the defaults and an RNN's
Relu) are ValueErrors naming the attribute.
"""

from __future__ import annotations

from ._export import export
from ._load import Reversed, load, run

__all__ = ["Reversed", "export", "load", "run"]
