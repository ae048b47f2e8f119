"""fastrnn's layers, cells and functional forms against torch.nn.RNN/GRU/LSTM (the outside truth).

Each case loads a torch module's state_dict into fastrnn, runs the same input both ways and
compares out, h_n (c_n) and every gradient: dx, dh0 (dc0) and each parameter's. Variable lengths
go through torch's pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence. Skipped when
torch is not importable. The reset-before GRU and peepholes have no torch counterpart; they are
in test_layers_reference.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import fastrnn  # noqa: E402

# cell -> (fastrnn class, torch class, extra constructor kwargs for both)
LAYERS = {
    "rnn_tanh": (fastrnn.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (fastrnn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "gru": (fastrnn.GRU, torch.nn.GRU, {}),
    "lstm": (fastrnn.LSTM, torch.nn.LSTM, {}),
}
CELLS = {
    "rnn_tanh": (fastrnn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (fastrnn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "gru": (fastrnn.GRUCell, torch.nn.GRUCell, {}),
    "lstm": (fastrnn.LSTMCell, torch.nn.LSTMCell, {}),
}
DTYPES = ["float32", "float64"]
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}

# One row per layer configuration: T, B, I, H plus options. Sizes are small and odd on purpose
# (no multiple of a SIMD width), with one row wide enough to cross vector boundaries.
CONFIGS: list[dict[str, Any]] = [
    {"id": "basic"},
    {"id": "h0", "h0": True},
    {"id": "2layers", "L": 2, "h0": True},
    {"id": "bidir", "bidir": True},
    {"id": "2layers-bidir", "L": 2, "bidir": True, "h0": True},
    {"id": "batch_first", "batch_first": True, "h0": True},
    {"id": "batch_first-2layers-bidir", "batch_first": True, "L": 2, "bidir": True},
    {"id": "no-bias", "bias": False, "h0": True},
    {"id": "no-bias-2layers-bidir", "bias": False, "L": 2, "bidir": True},
    {"id": "lengths", "lengths": True, "h0": True},
    {"id": "lengths-2layers-bidir", "lengths": True, "L": 2, "bidir": True, "h0": True},
    {"id": "lengths-batch_first-bidir", "lengths": True, "batch_first": True, "bidir": True},
    {"id": "grad-out-only", "grad_h_n": False},
    {"id": "grad-h_n-only", "grad_out": False, "h0": True, "L": 2},
    {"id": "unbatched", "unbatched": True, "h0": True},
    {"id": "unbatched-2layers-bidir", "unbatched": True, "L": 2, "bidir": True},
    {"id": "unbatched-batch_first", "unbatched": True, "batch_first": True},
    {"id": "wide", "T": 3, "B": 9, "I": 37, "H": 41, "bidir": True, "h0": True, "lengths": True},
]
DEFAULTS = {
    "T": 6, "B": 4, "I": 5, "H": 7, "L": 1, "bidir": False, "batch_first": False, "bias": True, "h0": False,
    "lengths": False, "unbatched": False, "grad_out": True, "grad_h_n": True,
}  # fmt: skip


def assert_close(name: str, got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    """|got - want| within rtol of the largest |want| (1e-5 float32, 1e-10 float64)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != torch's {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{name}: dtype {got.dtype}, expected {dtype}"
    rtol = 1e-5 if dtype == "float32" else 1e-10
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-3)
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
    assert err <= rtol * scale, f"{name}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"


def make_layers(cell: str, cfg: dict[str, Any], dtype: str) -> tuple[Any, Any]:
    fast_cls, torch_cls, kw = LAYERS[cell]
    torch.manual_seed(0)
    opts = {
        "num_layers": cfg["L"], "bias": cfg["bias"], "batch_first": cfg["batch_first"],
        "bidirectional": cfg["bidir"],
    }  # fmt: skip
    tm = torch_cls(cfg["I"], cfg["H"], **opts, **kw).to(TORCH_DTYPE[dtype])
    fm = fast_cls(cfg["I"], cfg["H"], **opts, **kw, dtype=dtype)
    fm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return fm, tm


def make_data(cell: str, cfg: dict[str, Any], dtype: str, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    T, B, I, H = cfg["T"], cfg["B"], cfg["I"], cfg["H"]
    LD = cfg["L"] * (2 if cfg["bidir"] else 1)
    if cfg["unbatched"]:
        x_shape, out_shape, h_shape = (T, I), (T, LD // cfg["L"] * H), (LD, H)
    elif cfg["batch_first"]:
        x_shape, out_shape, h_shape = (B, T, I), (B, T, LD // cfg["L"] * H), (LD, B, H)
    else:
        x_shape, out_shape, h_shape = (T, B, I), (T, B, LD // cfg["L"] * H), (LD, B, H)
    r = lambda shape: rng.standard_normal(shape).astype(dtype)
    d: dict[str, Any] = {"x": r(x_shape)}
    lstm = cell == "lstm"
    d["h0"] = r(h_shape) if cfg["h0"] else None
    d["c0"] = r(h_shape) if cfg["h0"] and lstm else None
    d["lengths"] = None
    if cfg["lengths"]:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[rng.integers(B)] = T  # pad_packed_sequence needs some sequence of full length
        d["lengths"] = lengths
    d["d_out"] = r(out_shape) if cfg["grad_out"] else None
    d["dh_n"] = r(h_shape) if cfg["grad_h_n"] else None
    d["dc_n"] = r(h_shape) if cfg["grad_h_n"] and lstm else None
    return d


def run_torch(tm: Any, cell: str, cfg: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    lstm = cell == "lstm"
    t = lambda a: None if a is None else torch.from_numpy(a).requires_grad_()
    x, h0, c0 = t(d["x"]), t(d["h0"]), t(d["c0"])
    inp = x
    if d["lengths"] is not None:
        lengths = torch.from_numpy(d["lengths"]).to(torch.int64)
        inp = pack_padded_sequence(x, lengths, batch_first=cfg["batch_first"], enforce_sorted=False)
    hx = None if h0 is None else ((h0, c0) if lstm else h0)
    out, hn = tm(inp, hx)
    h_n, c_n = hn if lstm else (hn, None)
    if d["lengths"] is not None:
        out, _ = pad_packed_sequence(out, batch_first=cfg["batch_first"], total_length=cfg["T"])
    loss = out.sum() * 0
    for a, g in ((out, d["d_out"]), (h_n, d["dh_n"]), (c_n, d["dc_n"])):
        if g is not None:
            loss = loss + (a * torch.from_numpy(g)).sum()
    loss.backward()
    n = lambda a: None if a is None else a.detach().numpy()
    return {
        "out": n(out), "h_n": n(h_n), "c_n": n(c_n), "dx": n(x.grad),
        "dh0": None if h0 is None else n(h0.grad), "dc0": None if c0 is None else n(c0.grad),
        "grads": {k: n(p.grad) for k, p in tm.named_parameters()},
    }  # fmt: skip


def run_fast(fm: Any, cell: str, d: dict[str, Any]) -> dict[str, Any]:
    lstm = cell == "lstm"
    fm.train()
    if lstm:
        hx = None if d["h0"] is None else (d["h0"], d["c0"])
        out, (h_n, c_n) = fm(d["x"], hx, lengths=d["lengths"])
        dh = None if d["dh_n"] is None else (d["dh_n"], d["dc_n"])
        dx, (dh0, dc0) = fm.backward(d["d_out"], dh)
    else:
        out, h_n = fm(d["x"], d["h0"], lengths=d["lengths"])
        c_n = dc0 = None
        dx, dh0 = fm.backward(d["d_out"], d["dh_n"])
    return {
        "out": out, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0,
        "grads": fm.grads,
    }  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["id"] for c in CONFIGS])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_layer_matches_torch(cell: str, cfg: dict[str, Any], dtype: str) -> None:
    cfg = {**DEFAULTS, **cfg}
    fm, tm = make_layers(cell, cfg, dtype)
    d = make_data(cell, cfg, dtype)
    want, got = run_torch(tm, cell, cfg, d), run_fast(fm, cell, d)
    names = ["out", "h_n", "dx"] + (["c_n"] if cell == "lstm" else [])
    if d["h0"] is not None:
        names += ["dh0"] + (["dc0"] if cell == "lstm" else [])
    for name in names:
        assert_close(name, got[name], want[name], dtype)
    assert set(got["grads"]) == set(want["grads"]) == set(fm.state_dict())
    for name, g in want["grads"].items():
        assert_close(f"grads[{name}]", got["grads"][name], g, dtype)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_eval_forward_matches_training_forward(cell: str) -> None:
    cfg = {**DEFAULTS, "L": 2, "bidir": True, "lengths": True, "h0": True}
    fm, tm = make_layers(cell, cfg, "float64")
    d = make_data(cell, cfg, "float64")
    hx = (d["h0"], d["c0"]) if cell == "lstm" else d["h0"]
    train_out = fm(d["x"], hx, lengths=d["lengths"])
    eval_out = fm.eval()(d["x"], hx, lengths=d["lengths"])
    np.testing.assert_array_equal(train_out[0], eval_out[0])
    want = run_torch(tm, cell, cfg, d)
    assert_close("out", eval_out[0], want["out"], "float64")


@pytest.mark.parametrize("cell", list(LAYERS))
def test_dropout_in_eval_mode_is_identity_like_torch(cell: str) -> None:
    cfg = {**DEFAULTS, "L": 3, "h0": True}
    fast_cls, torch_cls, kw = LAYERS[cell]
    torch.manual_seed(0)
    tm = torch_cls(5, 7, num_layers=3, dropout=0.5, **kw).double().eval()
    fm = fast_cls(5, 7, num_layers=3, dropout=0.5, **kw, dtype="float64").eval()
    fm.load_state_dict(tm.state_dict())  # torch tensors are accepted as they are
    d = make_data(cell, cfg, "float64")
    want = run_torch(tm, cell, cfg, d)
    hx = (d["h0"], d["c0"]) if cell == "lstm" else d["h0"]
    assert_close("out", fm(d["x"], hx)[0], want["out"], "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_cell_matches_torch(cell: str, bias: bool, batched: bool, dtype: str) -> None:
    fast_cls, torch_cls, kw = CELLS[cell]
    torch.manual_seed(0)
    tc = torch_cls(5, 7, bias=bias, **kw).to(TORCH_DTYPE[dtype])
    fc = fast_cls(5, 7, bias=bias, **kw, dtype=dtype)
    fc.load_state_dict({k: v.detach().numpy() for k, v in tc.state_dict().items()})
    assert list(fc.state_dict()) == list(tc.state_dict())
    rng = np.random.default_rng(2)
    lead = (3,) if batched else ()
    xs = rng.standard_normal((4, *lead, 5)).astype(dtype)
    lstm = cell == "lstm"
    state: Any = None  # first step from zeros, like torch's hx=None
    tstate: Any = None
    with torch.no_grad():
        for x in xs:
            tstate = tc(torch.from_numpy(x), tstate)
            state = fc(x, state)
            for k, (got, want) in enumerate(zip(state, tstate) if lstm else [(state, tstate)]):
                assert_close(f"step output {k}", got, want.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", list(LAYERS))
def test_functional_matches_torch(cell: str, dtype: str) -> None:
    """The functional forms vs one bidirectional torch layer: forward direction with
    reverse=False, reverse direction (weights *_l0_reverse) with reverse=True, lengths given."""
    cfg = {**DEFAULTS, "bidir": True, "lengths": True, "h0": True}
    fm, tm = make_layers(cell, cfg, dtype)
    d = make_data(cell, cfg, dtype)
    want = run_torch(tm, cell, cfg, d)
    H, sd = cfg["H"], fm.state_dict()
    lstm = cell == "lstm"
    kind = cell.split("_")[0]
    fwd = getattr(fastrnn, f"{kind}_forward")
    bwd = getattr(fastrnn, f"{kind}_backward")
    kw = {"nonlinearity": cell.split("_")[1]} if kind == "rnn" else {}
    for k, suffix in enumerate(["_l0", "_l0_reverse"]):
        w = [sd[f"{name}{suffix}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        states = (d["h0"][k], d["c0"][k]) if lstm else (d["h0"][k],)
        res = fwd(d["x"], *states, *w, **kw, lengths=d["lengths"], reverse=k == 1, need_grad=True)
        y, h_n = res[0], res[1]
        assert_close("y", y, want["out"][:, :, k * H : (k + 1) * H], dtype)
        assert_close("h_n", h_n, want["h_n"][k], dtype)
        dy = d["d_out"][:, :, k * H : (k + 1) * H]
        grads_out = (d["dh_n"][k], d["dc_n"][k]) if lstm else (d["dh_n"][k],)
        back = bwd(res[-1], dy, *grads_out)
        if lstm:
            assert_close("c_n", res[2], want["c_n"][k], dtype)
            assert_close("dc0", back[2], want["dc0"][k], dtype)
        assert_close("dh0", back[1], want["dh0"][k], dtype)
        grads = back[-1]
        assert set(grads) == {"w_ih", "w_hh", "b_ih", "b_hh"}
        for short, name in zip(
            ["w_ih", "w_hh", "b_ih", "b_hh"], ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        ):
            assert_close(short, grads[short], want["grads"][name + suffix], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", list(CELLS))
def test_functional_cell_matches_torch(cell: str, dtype: str) -> None:
    _, torch_cls, kw = CELLS[cell]
    torch.manual_seed(0)
    tc = torch_cls(5, 7, **kw).to(TORCH_DTYPE[dtype])
    w = [p.detach().numpy() for p in (tc.weight_ih, tc.weight_hh, tc.bias_ih, tc.bias_hh)]
    rng = np.random.default_rng(3)
    x, h, c = (rng.standard_normal(s).astype(dtype) for s in [(3, 5), (3, 7), (3, 7)])
    kind = cell.split("_")[0]
    with torch.no_grad():
        if kind == "lstm":
            want = tc(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
            got = fastrnn.lstm_cell(x, h, c, *w)
            assert_close("h1", got[0], want[0].numpy(), dtype)
            assert_close("c1", got[1], want[1].numpy(), dtype)
        else:
            want = tc(torch.from_numpy(x), torch.from_numpy(h)).numpy()
            fkw = {"nonlinearity": cell.split("_")[1]} if kind == "rnn" else {}
            got = getattr(fastrnn, f"{kind}_cell")(x, h, *w, **fkw)
            assert_close("h1", got, want, dtype)
