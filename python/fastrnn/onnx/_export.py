"""fastrnn model -> ONNX graph (see fastrnn.onnx).

Dimension letters: T steps, B batch, I input, H hidden, G gates, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._gates import cell_kind, onnx_bias, onnx_peephole, onnx_weight

DEFAULT_OPSET = 17  # RNN/GRU/LSTM with `layout` since 14; Squeeze/Unsqueeze axes as inputs since 13


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - the onnx extra is installed in CI
        raise ImportError('fastrnn.onnx needs the onnx package: pip install "fastrnn[onnx]"') from e
    return onnx


class _Graph:
    """Nodes, initializers, inputs and outputs of the graph being written, with fresh names."""

    def __init__(self, dtype: np.dtype) -> None:
        self.onnx = _onnx()
        self.dtype = np.dtype(dtype)
        self.elem = self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._count = 0

    def name(self, base: str) -> str:
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def ints(self, values: list[int]) -> str:
        return self.const("i64", np.asarray(values, np.int64))

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs, name=self.name(op), **attrs))
        return outs

    def op(self, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.node(op, inputs, 1, **attrs)[0]

    def rename(self, value: str, name: str) -> None:
        """Make the graph output `name` equal to the value `value`."""
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))

    def add_input(self, name: str, shape: list[Any], elem: int | None = None) -> str:
        self.inputs.append(
            self.onnx.helper.make_tensor_value_info(
                name, self.elem if elem is None else elem, shape
            )
        )
        return name

    def add_output(self, value: str, name: str, shape: list[Any], elem: int | None = None) -> None:
        self.rename(value, name)
        self.outputs.append(
            self.onnx.helper.make_tensor_value_info(
                name, self.elem if elem is None else elem, shape
            )
        )

    def model(self, graph_name: str, opset: int) -> Any:
        h = self.onnx.helper
        graph = h.make_graph(self.nodes, graph_name, self.inputs, self.outputs, self.inits)
        model = h.make_model(
            graph, opset_imports=[h.make_opsetid("", opset)], producer_name="fastrnn"
        )
        self.onnx.checker.check_model(model)
        return model


# --- recurrent layers and cells ------------------------------------------------------------------


def _config(m: Any) -> dict[str, Any]:
    """What a recurrent layer or cell is: its kind, sizes and parameters (state_dict names)."""
    kind = cell_kind(m)
    params = {k: np.asarray(v) for k, v in m.state_dict().items()}
    return {
        "kind": kind,
        "hidden_size": int(m.hidden_size),
        "num_layers": int(getattr(m, "num_layers", 1)),
        "num_dirs": 2 if getattr(m, "bidirectional", False) else 1,
        "batch_first": bool(getattr(m, "batch_first", False)),
        "params": params,
    }


def _node_attrs(kind: str, H: int, D: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "hidden_size": H,
        "direction": "bidirectional" if D == 2 else "forward",
    }
    if kind == "rnn_relu":
        attrs["activations"] = ["Relu"] * D
    if kind == "gru":  # PyTorch's reset-after form; reset-before is ONNX's default (0)
        attrs["linear_before_reset"] = 1
    return attrs


def _layer_inputs(g: _Graph, cfg: dict[str, Any], k: int, suffix: str) -> tuple[str, str, str, str]:
    """Initializers W (D, G*H, I_k), R (D, G*H, H), B (D, 2*G*H) or "", P (D, 3*H) or "" of layer k."""
    kind, p, D = cfg["kind"], cfg["params"], cfg["num_dirs"]
    names = [suffix.format(k=k, rev="_reverse" if d else "") for d in range(D)]
    W = np.stack([onnx_weight(kind, p["weight_ih" + n]) for n in names])
    R = np.stack([onnx_weight(kind, p["weight_hh" + n]) for n in names])
    B = ""
    if "bias_ih" + names[0] in p:
        Bv = np.stack([onnx_bias(kind, p["bias_ih" + n], p["bias_hh" + n]) for n in names])
        B = g.const("B", Bv)
    P = ""
    if "peephole" + names[0] in p:
        P = g.const("P", np.stack([onnx_peephole(p["peephole" + n]) for n in names]))
    return g.const("W", W), g.const("R", R), B, P


def _recurrent(
    g: _Graph, cfg: dict[str, Any], x: str, lengths: str, h0: str, c0: str, suffix: str
) -> tuple[str, str, str]:
    """x (T, B, I) -> out (T, B, D*H), h_n (L*D, B, H), c_n (L*D, B, H) or "" (LSTM only)."""
    kind, H, D, L = cfg["kind"], cfg["hidden_size"], cfg["num_dirs"], cfg["num_layers"]
    op = {"lstm": "LSTM", "gru": "GRU", "gru_reset_before": "GRU"}.get(kind, "RNN")
    lstm = op == "LSTM"
    hs, cs = [], []
    inp = x
    for k in range(L):
        W, R, B, P = _layer_inputs(g, cfg, k, suffix)
        part = [g.ints([k * D]), g.ints([(k + 1) * D]), g.ints([0])] if h0 and L > 1 else []
        h0_k = "" if not h0 else (h0 if L == 1 else g.op("Slice", [h0, *part]))
        c0_k = "" if not c0 else (c0 if L == 1 else g.op("Slice", [c0, *part]))
        ins = [inp, W, R, B, lengths, h0_k]
        if lstm:
            ins += [c0_k, P]
        while ins and ins[-1] == "":
            ins.pop()
        outs = g.node(op, ins, 3 if lstm else 2, **_node_attrs(kind, H, D))
        Y = outs[0]  # (T, D, B, H)
        hs.append(outs[1])
        if lstm:
            cs.append(outs[2])
        if D == 1:
            inp = g.op("Squeeze", [Y, g.ints([1])])
        else:
            inp = g.op("Reshape", [g.op("Transpose", [Y], perm=[0, 2, 1, 3]), g.ints([0, 0, -1])])
    h_n = hs[0] if L == 1 else g.op("Concat", hs, axis=0)
    c_n = "" if not lstm else (cs[0] if L == 1 else g.op("Concat", cs, axis=0))
    return inp, h_n, c_n


def _export_layer(g: _Graph, m: Any, lengths: bool, initial_state: bool, softmax: bool) -> None:
    cfg = _config(m)
    H, LD, lstm = cfg["hidden_size"], cfg["num_layers"] * cfg["num_dirs"], cfg["kind"] == "lstm"
    I = int(m.input_size)
    if cfg["batch_first"]:
        x = g.op("Transpose", [g.add_input("x", ["B", "T", I])], perm=[1, 0, 2])
    else:
        x = g.add_input("x", ["T", "B", I])
    lens = ""
    if lengths:
        raw = g.add_input("lengths", ["B"], g.onnx.TensorProto.INT64)
        lens = g.op("Cast", [raw], to=g.onnx.TensorProto.INT32)
    h0 = c0 = ""
    if initial_state:
        h0 = g.add_input("h0", [LD, "B", H])
        if lstm:
            c0 = g.add_input("c0", [LD, "B", H])
    out, h_n, c_n = _recurrent(g, cfg, x, lens, h0, c0, "_l{k}{rev}")
    D_H, main = cfg["num_dirs"] * H, "probs" if softmax else "output"
    if softmax:
        out = g.op("Softmax", [out], axis=-1)
    if cfg["batch_first"]:
        g.add_output(g.op("Transpose", [out], perm=[1, 0, 2]), main, ["B", "T", D_H])
    else:
        g.add_output(out, main, ["T", "B", D_H])
    g.add_output(h_n, "h_n", [LD, "B", H])
    if lstm:
        g.add_output(c_n, "c_n", [LD, "B", H])


def _export_cell(g: _Graph, m: Any, softmax: bool) -> None:
    cfg = _config(m)
    H, lstm = cfg["hidden_size"], cfg["kind"] == "lstm"
    axis0 = g.ints([0])
    x = g.op("Unsqueeze", [g.add_input("x", ["B", int(m.input_size)]), axis0])
    h = g.op("Unsqueeze", [g.add_input("h", ["B", H]), axis0])
    c = g.op("Unsqueeze", [g.add_input("c", ["B", H]), axis0]) if lstm else ""
    _, h1, c1 = _recurrent(g, cfg, x, "", h, c, "{rev}")
    h1 = g.op("Squeeze", [h1, axis0])
    g.add_output(
        g.op("Softmax", [h1], axis=-1) if softmax else h1, "probs" if softmax else "h1", ["B", H]
    )
    if lstm:
        g.add_output(g.op("Squeeze", [c1, axis0]), "c1", ["B", H])


# --- feed-forward modules ------------------------------------------------------------------------


def _feed_forward(g: _Graph, m: Any, x: str) -> str:
    """Append module m (Linear, Embedding, activations, Dropout, Identity, Sequential) to x."""
    from .. import nn

    if isinstance(m, nn.Sequential):
        for child in m:
            x = _feed_forward(g, child, x)
        return x
    if isinstance(m, nn.Linear):
        p = m.state_dict()
        y = g.op("MatMul", [x, g.const("weight_t", np.asarray(p["weight"]).T)])
        return g.op("Add", [y, g.const("bias", np.asarray(p["bias"]))]) if "bias" in p else y
    if isinstance(m, nn.Embedding):
        return g.op("Gather", [g.const("embedding", np.asarray(m.state_dict()["weight"])), x])
    ops = {nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid", nn.ReLU: "Relu"}
    for cls, op in ops.items():
        if isinstance(m, cls):
            return g.op(op, [x])
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return x  # inference: nothing
    raise TypeError(
        f"model: fastrnn.onnx.export has no ONNX form for {type(m).__name__} (supported: "
        "recurrent layers and cells, Linear, Embedding, Tanh, Sigmoid, ReLU, Dropout, Identity, "
        "Sequential, models.RNNLanguageModel)"
    )


def _first_param_dtype(m: Any) -> np.dtype:
    if not callable(getattr(m, "state_dict", None)):
        raise TypeError(
            f"model: expected a fastrnn layer, cell, nn module or language model, got "
            f"{type(m).__name__}"
        )
    for v in m.state_dict().values():
        return np.asarray(v).dtype
    return np.dtype(np.float32)


def _export_language_model(g: _Graph, m: Any, initial_state: bool) -> str:
    """tokens (B, T) int64 -> logits (B, T, V), plus h_n (and c_n)."""
    tokens = g.add_input("tokens", ["B", "T"], g.onnx.TensorProto.INT64)
    e = _feed_forward(g, m.embed, g.op("Transpose", [tokens], perm=[1, 0]))  # (T, B, E)
    cfg = _config(m.rnn)
    L, H, lstm = cfg["num_layers"], cfg["hidden_size"], cfg["kind"] == "lstm"
    h0 = g.add_input("h0", [L, "B", H]) if initial_state else ""
    c0 = g.add_input("c0", [L, "B", H]) if initial_state and lstm else ""
    y, h_n, c_n = _recurrent(g, cfg, e, "", h0, c0, "_l{k}{rev}")
    logits = g.op("Transpose", [_feed_forward(g, m.out, y)], perm=[1, 0, 2])
    g.add_output(h_n, "h_n", [L, "B", H])
    if lstm:
        g.add_output(c_n, "c_n", [L, "B", H])
    return logits


def _export_seq2seq_encoder(g: _Graph, m: Any, lengths: bool) -> None:
    """src (B, S) int64 [src_lengths (B,)] -> keys (B, S, 2H), s0 (B, Hd): what the decoder
    starts from (`Seq2Seq.init_state`'s "values" and "h")."""
    src = g.add_input("src", ["B", "S"], g.onnx.TensorProto.INT64)
    e = _feed_forward(g, m.src_embed, g.op("Transpose", [src], perm=[1, 0]))  # (S, B, E)
    lens = ""
    if lengths:
        raw = g.add_input("src_lengths", ["B"], g.onnx.TensorProto.INT64)
        lens = g.op("Cast", [raw], to=g.onnx.TensorProto.INT32)
    cfg = _config(m.encoder)
    out, h_n, _ = _recurrent(g, cfg, e, lens, "", "", "_l{k}{rev}")
    H2 = 2 * cfg["hidden_size"]
    LD = cfg["num_layers"] * cfg["num_dirs"]
    # the last layer's two directions, side by side: (2, B, H) -> (B, 2H)
    last = g.op("Slice", [h_n, g.ints([LD - 2]), g.ints([LD]), g.ints([0])])
    last = g.op("Reshape", [g.op("Transpose", [last], perm=[1, 0, 2]), g.ints([0, -1])])
    s0 = _feed_forward(g, m.bridge_act, _feed_forward(g, m.bridge, last))
    g.add_output(g.op("Transpose", [out], perm=[1, 0, 2]), "keys", ["B", "S", H2])
    g.add_output(s0, "s0", ["B", int(m.decoder_hidden_size)])


def export(
    model: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    lengths: bool = False,
    initial_state: bool = False,
    softmax: bool = False,
    input_dtype: Any = None,
    input_shape: Sequence[int | str] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Any:
    """Write `model` as an ONNX model (and return the onnx.ModelProto); inference semantics.

    Inputs and outputs, by name: layers ``x`` (T, B, I) (or (B, T, I) with batch_first)
    [``lengths``, ``h0``, ``c0``] -> ``output``, ``h_n`` [, ``c_n``]; cells ``x`` (B, I), ``h``
    [, ``c``] (B, H) -> ``h1`` [, ``c1``]; language models ``tokens`` (B, T) [``h0``, ``c0``] ->
    ``logits`` (B, T, V), ``h_n`` [, ``c_n``]; Seq2Seq ``src`` (B, S) [``src_lengths``] ->
    ``keys`` (B, S, 2H), ``s0`` (B, Hd) (the decoder's initial state); feed-forward models
    ``input`` -> ``output``.

    Parameters
    ----------
    model :
        fastrnn.RNN / GRU / LSTM (or fastrnn.nn's), a cell (RNNCell, GRUCell, LSTMCell, either
        module's), a feed-forward nn module (Linear, Embedding, Tanh, Sigmoid, ReLU, Dropout,
        Identity, or a Sequential of them), a models.RNNLanguageModel, or a models.Seq2Seq
        (its encoder: the decoder's attention step is not exported).
    path : str or PathLike, optional
        Where to save it; None only returns it.
    lengths : bool
        Recurrent layers: add an int64 input ``lengths`` (B,), the layer's `lengths=`;
        Seq2Seq: ``src_lengths``.
    initial_state : bool
        Recurrent layers and language models: add inputs ``h0`` (and ``c0``) (L*D, B, H).
    softmax : bool
        Append a Softmax over the last axis to the (last) output ("probs" instead of "output" /
        "logits").
    input_dtype : dtype, optional
        Feed-forward models only: the input's dtype (default: the parameters' dtype; use int64
        for a model that starts with an Embedding).
    input_shape : sequence of int or str, optional
        Feed-forward models only: the input's shape, str for a dimension named at run time
        (default: ("B", "T") before an Embedding, ("N", in_features) before a Linear).
    opset : int
        The ONNX opset to declare (at least 14).
    """
    from .. import models, nn

    if not isinstance(opset, int) or isinstance(opset, bool) or opset < 14:
        raise ValueError(f"opset: expected an int >= 14 (RNN layouts), got {opset!r}")
    for name, flag in (
        ("lengths", lengths),
        ("initial_state", initial_state),
        ("softmax", softmax),
    ):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}")
    kind = cell_kind(model, required=False)
    g = _Graph(_first_param_dtype(model))
    if kind is not None:
        is_cell = not hasattr(model, "num_layers")
        if is_cell and (lengths or initial_state):
            raise ValueError(
                "lengths / initial_state: a cell always takes its state (inputs h, c) and runs "
                "one step; these options are for layers"
            )
        if is_cell:
            _export_cell(g, model, bool(softmax))
        else:
            _export_layer(g, model, bool(lengths), bool(initial_state), bool(softmax))
    elif isinstance(model, models.Seq2Seq):
        if initial_state or softmax:
            raise ValueError(
                "initial_state / softmax: a Seq2Seq exports its encoder (src -> keys, s0) only"
            )
        _export_seq2seq_encoder(g, model, bool(lengths))
    elif isinstance(model, models.RNNLanguageModel):
        logits = _export_language_model(g, model, bool(initial_state))
        main_name = "probs" if softmax else "logits"
        y = g.op("Softmax", [logits], axis=-1) if softmax else logits
        g.add_output(y, main_name, ["B", "T", int(model.vocab_size)])
        g.outputs.insert(0, g.outputs.pop())
    elif isinstance(model, nn.Module):
        if lengths or initial_state:
            raise ValueError(
                "lengths / initial_state: only recurrent layers and language models take them"
            )
        first = next(iter(model.modules()), model)
        for sub in model.modules():
            if not isinstance(sub, nn.Sequential):
                first = sub
                break
        if input_dtype is not None:
            in_dtype = np.dtype(input_dtype)
        else:
            in_dtype = np.dtype(np.int64) if isinstance(first, nn.Embedding) else g.dtype
        elem = g.onnx.helper.np_dtype_to_tensor_dtype(in_dtype)
        if input_shape is not None:
            shape = list(input_shape)
        elif isinstance(first, nn.Embedding):
            shape = ["B", "T"]
        else:
            shape = ["N", int(getattr(first, "in_features", 0)) or "F"]
        y = _feed_forward(g, model, g.add_input("input", shape, elem))
        if softmax:
            y = g.op("Softmax", [y], axis=-1)
        rank = len(shape) + sum(isinstance(m, nn.Embedding) for m in model.modules())
        g.add_output(y, "probs" if softmax else "output", [f"d{i}" for i in range(rank)])
    else:
        raise TypeError(
            f"model: expected a fastrnn layer, cell, nn module or language model, got "
            f"{type(model).__name__}"
        )
    onnx_model = g.model(type(model).__name__, opset)
    if path is not None:
        g.onnx.save(onnx_model, os.fspath(path))
    return onnx_model
