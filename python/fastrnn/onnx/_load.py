"""ONNX RNN / GRU / LSTM node -> fastrnn layer (see fastrnn.onnx).

Dimension letters: T steps, B batch, I input, H hidden, G gates, D directions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._export import _onnx
from ._gates import torch_bias, torch_peephole, torch_weight

_DEFAULT_ACTIVATIONS = {
    "RNN": ["tanh"],
    "GRU": ["sigmoid", "tanh"],
    "LSTM": ["sigmoid", "tanh", "tanh"],
}
_KNOWN = {
    "hidden_size",
    "direction",
    "layout",
    "activations",
    "linear_before_reset",
    "input_forget",
}


class Reversed:
    """A one-direction layer run backwards in time: ONNX's ``direction="reverse"``.

    Each sequence is read from its own last step (``lengths``) to its first, as the reverse half
    of a bidirectional layer does; outputs are in the original time order. Calls take and return
    what the wrapped layer's calls do.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer

    def __getattr__(self, name: str) -> Any:  # sizes, batch_first, state_dict, eval, ...
        if name == "layer":
            raise AttributeError(name)
        return getattr(self.layer, name)

    def __repr__(self) -> str:
        return f"Reversed({self.layer!r})"

    def _flip(self, a: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        bf = bool(self.layer.batch_first)
        seq = a.transpose(1, 0, 2) if bf else a  # (T, B, F)
        T, B = seq.shape[0], seq.shape[1]
        t = np.arange(T)[:, None]
        idx = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
        out = seq[idx, np.arange(B)[None, :]]
        return np.ascontiguousarray(out.transpose(1, 0, 2) if bf else out)

    def forward(self, x: Any, hx: Any = None, lengths: Any = None) -> Any:
        """As the wrapped layer's forward, with each sequence read backwards."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(
                f"x: expected a batched (T, B, I) or (B, T, I) array, got shape {x.shape}"
            )
        T, B = (x.shape[1], x.shape[0]) if self.layer.batch_first else x.shape[:2]
        if lengths is None:
            lens = np.full(B, T, np.int64)
        else:
            lens = np.asarray(lengths)
            if (
                lens.shape != (B,)
                or lens.dtype.kind not in "iu"
                or lens.min() < 1
                or lens.max() > T
            ):
                raise ValueError(
                    f"lengths: expected {B} integers in [1, {T}], got {np.asarray(lengths)!r}"
                )
            lens = lens.astype(np.int64)
        out, state = self.layer(self._flip(x, lens), hx, lengths)
        return self._flip(out, lens), state

    __call__ = forward


def _model(model: Any) -> Any:
    onnx = _onnx()
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model))
    raise TypeError(f"model: expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")


def _constants(graph: Any, values: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    onnx = _onnx()
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = onnx.numpy_helper.to_array(a.t)
    for k, v in (values or {}).items():
        consts[k] = np.asarray(v)
    return consts


def _pick(graph: Any, node: int | str | None) -> Any:
    rec = [
        n for n in graph.node if n.op_type in _DEFAULT_ACTIVATIONS and n.domain in ("", "ai.onnx")
    ]
    if not rec:
        raise ValueError("model: the graph has no RNN, GRU or LSTM node")
    if node is None:
        if len(rec) > 1:
            names = [n.name or f"#{i}" for i, n in enumerate(rec)]
            raise ValueError(
                f"node: the graph has {len(rec)} recurrent nodes ({', '.join(names)}); pass "
                "node= (an index among them or a node name)"
            )
        return rec[0]
    if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
        if not -len(rec) <= int(node) < len(rec):
            raise ValueError(f"node: expected an index in [0, {len(rec)}), got {node}")
        return rec[int(node)]
    if isinstance(node, str):
        for n in rec:
            if n.name == node:
                return n
        raise ValueError(f"node: no recurrent node named {node!r} (have {[n.name for n in rec]})")
    raise TypeError(f"node: expected an int, a str or None, got {type(node).__name__}")


def _attributes(n: Any) -> dict[str, Any]:
    onnx = _onnx()
    out: dict[str, Any] = {}
    for a in n.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _unsupported(n: Any, name: str, value: Any, why: str) -> ValueError:
    return ValueError(
        f"{n.op_type} node {n.name or '(unnamed)'}: attribute {name}={value!r} is not supported: {why}"
    )


def load(
    model: Any, *, node: int | str | None = None, values: Mapping[str, Any] | None = None
) -> Any:
    """A fastrnn layer computing an ONNX RNN / GRU / LSTM node.

    Parameters
    ----------
    model : path, bytes or onnx.ModelProto
    node : int, str or None
        Which recurrent node (index among the graph's RNN/GRU/LSTM nodes, or node name); None
        when the graph has exactly one.
    values : mapping of name -> array, optional
        Values of the node's W, R, B, P when they are graph inputs rather than initializers or
        Constant nodes (as in ONNX's operator test cases).

    Returns
    -------
    fastrnn.RNN, GRU or LSTM (one layer; ``bidirectional`` for ``direction="bidirectional"``,
    ``batch_first`` for ``layout=1``, ``reset_after`` = ``linear_before_reset``, ``peephole`` when
    P is given), or `Reversed` wrapping a one-direction layer for ``direction="reverse"``. Call it
    as a fastrnn layer: ``layer(X, initial_h, lengths=sequence_lens)`` (LSTM: ``(initial_h,
    initial_c)``) returns ``out (T, B, D*H)`` and ``h_n`` (, ``c_n``); `run` returns ONNX's shapes.
    """
    from .. import rnn

    graph = _model(model).graph
    n = _pick(graph, node)
    attrs = _attributes(n)
    op = n.op_type
    for name in attrs:
        if name == "clip":
            raise _unsupported(n, "clip", attrs[name], "fastrnn does not clip pre-activations")
        if name in ("activation_alpha", "activation_beta"):
            raise _unsupported(n, name, attrs[name], "only the default activations are supported")
        if name not in _KNOWN or (name == "linear_before_reset" and op != "GRU"):
            raise _unsupported(n, name, attrs[name], f"not an attribute fastrnn knows for {op}")
    if attrs.get("input_forget", 0):
        raise _unsupported(n, "input_forget", attrs["input_forget"], "no coupled input-forget gate")
    direction = attrs.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise _unsupported(n, "direction", direction, "expected forward, reverse or bidirectional")
    D = 2 if direction == "bidirectional" else 1
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise _unsupported(n, "layout", layout, "expected 0 or 1")

    nonlinearity = "tanh"
    if "activations" in attrs:
        acts = [str(a).lower() for a in attrs["activations"]]
        default = _DEFAULT_ACTIVATIONS[op] * D
        if op == "RNN" and acts == ["relu"] * D:
            nonlinearity = "relu"
        elif acts != default:
            raise _unsupported(
                n, "activations", attrs["activations"],
                f"fastrnn runs {default}" + (" or Relu" if op == "RNN" else ""),
            )  # fmt: skip

    consts = _constants(graph, values)
    ins = list(n.input) + [""] * (8 - len(n.input))

    def get(i: int, what: str, required: bool = False) -> np.ndarray | None:
        name = ins[i]
        if not name:
            if required:
                raise ValueError(f"{op} node {n.name or '(unnamed)'}: input {what} is missing")
            return None
        if name not in consts:
            raise ValueError(
                f"{op} node {n.name or '(unnamed)'}: input {what} ({name!r}) is neither an "
                "initializer nor a Constant; pass its value as values={" + repr(name) + ": ...}"
            )
        return consts[name]

    W = get(1, "W", True)
    R = get(2, "R", True)
    B = get(3, "B")
    P = get(7, "P") if op == "LSTM" else None
    assert W is not None and R is not None
    dtype = W.dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{op} node: W is {dtype}; fastrnn runs float32 and float64")
    H = int(attrs["hidden_size"]) if "hidden_size" in attrs else int(R.shape[-1])
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    I = int(W.shape[-1])
    for what, arr, shape in (("W", W, (D, G * H, I)), ("R", R, (D, G * H, H)),
                             ("B", B, (D, 2 * G * H)), ("P", P, (D, 3 * H))):  # fmt: skip
        if arr is not None and arr.shape != shape:
            raise ValueError(f"{op} node: input {what}: expected shape {shape}, got {arr.shape}")

    common: dict[str, Any] = dict(
        bias=B is not None, batch_first=layout == 1, bidirectional=D == 2, dtype=dtype
    )
    family = op.lower()
    layer: Any
    if op == "RNN":
        layer = rnn.RNN(I, H, nonlinearity=nonlinearity, **common)
    elif op == "GRU":
        layer = rnn.GRU(I, H, reset_after=bool(attrs.get("linear_before_reset", 0)), **common)
    else:
        layer = rnn.LSTM(I, H, peephole=P is not None, **common)
    sd = {}
    for d in range(D):
        sfx = "_l0" + ("_reverse" if d else "")
        sd["weight_ih" + sfx] = torch_weight(family, W[d])
        sd["weight_hh" + sfx] = torch_weight(family, R[d])
        if B is not None:
            sd["bias_ih" + sfx], sd["bias_hh" + sfx] = torch_bias(family, B[d])
        if P is not None:
            sd["peephole" + sfx] = torch_peephole(P[d])
    layer.load_state_dict(sd)
    layer.eval()
    return Reversed(layer) if direction == "reverse" else layer


def run(
    layer: Any,
    X: Any,
    sequence_lens: Any = None,
    initial_h: Any = None,
    initial_c: Any = None,
) -> tuple[np.ndarray, ...]:
    """Run a one-layer fastrnn layer (e.g. from `load`) with an ONNX node's inputs and return the
    node's outputs in ONNX's shapes: (Y, Y_h) or, for an LSTM, (Y, Y_h, Y_c).

    ``layout`` is the layer's ``batch_first``: 0 -> X (T, B, I), Y (T, D, B, H), states (D, B, H);
    1 -> X (B, T, I), Y (B, T, D, H), states (B, D, H).
    """
    if getattr(layer, "num_layers", 1) != 1:
        raise ValueError(
            f"layer: run() follows one ONNX node, a one-layer layer; got num_layers={layer.num_layers}"
        )
    bf = bool(layer.batch_first)
    D = 2 if layer.bidirectional else 1
    H = int(layer.hidden_size)

    def state_in(s: Any) -> Any:
        return None if s is None else (np.asarray(s).transpose(1, 0, 2) if bf else s)

    def state_out(s: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(s.transpose(1, 0, 2)) if bf else s

    lstm = hasattr(layer, "peephole")
    lengths = None if sequence_lens is None else np.asarray(sequence_lens)
    if lstm:
        out, (h_n, c_n) = layer(X, (state_in(initial_h), state_in(initial_c)), lengths)
    else:
        out, h_n = layer(X, state_in(initial_h), lengths)
    a, b = out.shape[0], out.shape[1]
    Y = out.reshape(a, b, D, H)
    if not bf:
        Y = Y.transpose(0, 2, 1, 3)  # (T, D, B, H)
    Y = np.ascontiguousarray(Y)
    if lstm:
        return Y, state_out(h_n), state_out(c_n)
    return Y, state_out(h_n)
