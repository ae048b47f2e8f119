"""The optional CUDA backend: fastrnn._C_cuda (csrc/cuda/) and its Python side (fastrnn._cuda).

Three tiers:

1. Build checks, run everywhere (CI has nvcc but no GPU): where the build found nvcc the CUDA
   module exists and imports; without a usable GPU it says why, and every call raises a Python
   exception (CudaError with CUDA's error string) instead of aborting.
2. The host build, fastrnn._C._cuda_host: the GPU path's sequence driver, kernel bodies (gate
   math from csrc/cells/, matrix-product tiles, row gathers) and bindings compiled for the CPU,
   with loops standing in for launches. Checked against tests/reference.py (float64, 1e-10), the
   CPU kernels, and - with fastrnn._cuda switched to it - the CPU layers. This is how the CPU test
   suite checks the formulas and indexing the GPU runs; the CUDA calls themselves are not covered.
3. GPU tests: every kernel against the CPU path and against torch CUDA (cuDNN, TF32 off), outputs
   and all gradients (float32 within 1e-5), lengths, determinism, interop and errors. Skipped with
   the reason where no CUDA device is usable.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import reference as ref
from test_determinism import VARIANTS
from test_kernels import OPTIONS, SHAPES, assert_close, flatten, make_problem, run_reference

import fastrnn
from fastrnn import _C, _cuda

HOST = _C._cuda_host  # the host build of the GPU path
CELLS = ref.CELLS + ("lstm_peephole",)

try:
    from fastrnn import _C_cuda  # type: ignore[attr-defined]
except ImportError:  # built without nvcc
    _C_cuda = None


def _gpu_reason() -> str | None:
    if _C_cuda is None:
        return f"fastrnn._C_cuda is not built ({HOST.build_status})"
    st = _cuda.status()
    return None if st["available"] else str(st["reason"])


GPU_REASON = _gpu_reason()
needs_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"no GPU: {GPU_REASON}")


def torch_cuda() -> Any:
    """torch with CUDA and TF32 off (full float32 products, as fastrnn's), or skip."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def split_cell(cell: str) -> tuple[str, bool]:
    return ("lstm", True) if cell == "lstm_peephole" else (cell, False)


# --------------------------------------------------------------------------------------------
# Running one layer and direction through a GPU-path module (the host build or _C_cuda)


def run_backend(
    b: Any,
    cell: str,
    p: dict[str, Any],
    reverse: bool,
    training: bool = True,
    persistent: str | None = "off",
) -> dict[str, Any]:
    """Forward (and backward when training) of one layer/direction through backend module b.
    `persistent`: the small-batch persistent kernel, 'off' (the standard per-step path, which
    this file checks; test_cuda_persistent.py checks the other), 'on', 'auto' or None (the
    environment variable FASTRNN_CUDA_PERSISTENT, else auto)."""
    w = b.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"], 0)
    T, B, I = p["x"].shape
    H = p["w_hh"].shape[1]
    dt = p["x"].dtype
    lstm = cell == "lstm"
    dev = lambda a: None if a is None else b.to_device(a)  # noqa: E731
    y, hn = b.zeros((T, B, H), dt), b.zeros((B, H), dt)
    cn = b.zeros((B, H), dt) if lstm else None
    ctx = w.forward(
        dev(p["x"]), dev(p["h0"]), dev(p["c0"]), p["lengths"], reverse, training, y, hn, cn,
        persistent=persistent,
    )  # fmt: skip
    host = lambda a: None if a is None else a.numpy()  # noqa: E731
    if not training:
        assert ctx is None
        return {"y": y.numpy(), "h_n": hn.numpy(), "c_n": host(cn)}
    dx, dh0 = b.zeros((T, B, I), dt), b.zeros((B, H), dt)
    dc0 = b.zeros((B, H), dt) if lstm else None
    g = w.backward(ctx, dev(p["dy"]), dev(p["dh_n"]), dev(p["dc_n"]), dx, False, dh0, dc0)
    grads = {k: host(v) for k, v in g.items()}
    return flatten(y.numpy(), hn.numpy(), host(cn), dx.numpy(), dh0.numpy(), host(dc0), grads)


def one_sequence(p: dict[str, Any], b: int) -> dict[str, Any]:
    """The problem p restricted to its sequence b (a batch of one)."""
    out = dict(p)
    for k in ("x", "dy"):
        out[k] = p[k][:, b : b + 1]
    for k in ("h0", "c0", "dh_n", "dc_n", "lengths"):
        if p[k] is not None:
            out[k] = p[k][b : b + 1]
    return out


def run_cpu_kernels(cell: str, p: dict[str, Any], reverse: bool) -> dict[str, Any]:
    w = _C.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"])
    y, h_n, c_n, ctx = w.forward(p["x"], p["h0"], p["c0"], p["lengths"], reverse, True)
    dx, dh0, dc0, grads = w.backward(ctx, p["dy"], p["dh_n"], p["dc_n"])
    return flatten(y, h_n, c_n, dx, dh0, dc0, grads)


# ============================================================================================
# 1. Build checks


def test_build_status_is_reported() -> None:
    status = HOST.build_status
    assert status.startswith(("on", "off")), status
    assert fastrnn.backends()["cuda"]["build"] == status


def test_cuda_module_is_built_where_nvcc_is() -> None:
    status = HOST.build_status
    if status.startswith("off: FASTRNN_CUDA=OFF"):
        pytest.skip("built with FASTRNN_CUDA=OFF")
    nvcc = shutil.which("nvcc") or os.environ.get("CUDACXX")
    if status.startswith("on"):
        assert _C_cuda is not None, "the build made fastrnn._C_cuda but it does not import"
        assert fastrnn.backends()["cuda"]["compiled"]
    elif nvcc:
        pytest.fail(f"nvcc is at {nvcc} but the build skipped the CUDA module: {status}")
    else:
        pytest.skip(f"no nvcc here; the build said: {status}")


@pytest.mark.skipif(_C_cuda is None, reason="fastrnn._C_cuda is not built")
def test_cuda_module_without_gpu_reports_and_raises() -> None:
    probe = _C_cuda.probe()
    assert probe["emulated"] is False
    if probe["devices"]:
        pytest.skip("a CUDA device is visible")
    assert isinstance(probe["error"], str) and probe["error"]
    st = fastrnn.backends()["cuda"]
    assert st["compiled"] and not st["available"]
    assert "no usable CUDA device" in st["reason"]
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        fastrnn.LSTM(3, 4, device="cuda")
    # every runtime call raises CudaError (a RuntimeError) with CUDA's message; nothing aborts
    for call in (
        lambda: _C_cuda.empty((2, 3), "float32", 0),
        lambda: _C_cuda.zeros((2,), "float64", 0),
        lambda: _C_cuda.to_device(np.zeros(3, np.float32), 0),
        lambda: _C_cuda.Weights("gru", np.zeros((6, 3), np.float32), np.zeros((6, 2), np.float32)),
        lambda: _C_cuda.synchronize(0),
    ):
        with pytest.raises(_C_cuda.CudaError, match="CUDA error"):
            call()
    assert issubclass(_C_cuda.CudaError, RuntimeError)
    assert issubclass(_C_cuda.CudaOutOfMemoryError, (_C_cuda.CudaError, MemoryError))
    # NumPy arrays are not device arrays, on any build
    assert not _cuda.is_device_array(np.zeros(3))


def test_without_the_cuda_module_layers_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cuda, "_backend", None)
    monkeypatch.setattr(_cuda, "_IMPORT_ERROR", "No module named 'fastrnn._C_cuda'")
    st = _cuda.status()
    assert not st["compiled"] and not st["available"]
    with pytest.raises(RuntimeError, match="not available"):
        fastrnn.GRU(3, 4, device="cuda")

    class FakeCudaArray:  # a CUDA array as far as the protocol goes
        __cuda_array_interface__ = {"shape": (2, 1, 3), "typestr": "<f4", "data": (0, False)}

    assert _cuda.is_device_array(FakeCudaArray())
    with pytest.raises(RuntimeError, match="CUDA array"):
        fastrnn.GRU(3, 4)(FakeCudaArray())
    # NumPy keeps working
    out, h_n = fastrnn.GRU(3, 4)(np.zeros((2, 1, 3), np.float32))
    assert out.shape == (2, 1, 4)


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "tpu:0"])
def test_bad_device_strings(bad: str) -> None:
    with pytest.raises(ValueError, match="device"):
        fastrnn.LSTM(3, 4, device=bad)


def test_cpu_device_strings() -> None:
    assert fastrnn.LSTM(3, 4).device == "cpu"
    assert fastrnn.GRU(3, 4, device="cpu").device == "cpu"
    assert _cuda.parse_device(None) is None


# ============================================================================================
# 2. The host build: the GPU path's driver and kernel bodies on the CPU


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize(
    "opts", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "plain"
)
@pytest.mark.parametrize("cell", CELLS)
def test_host_build_matches_reference_float64(cell: str, opts: dict, shape: tuple) -> None:
    """Gate formulas (csrc/cells/), packed-row indexing, lengths, reverse, the matrix-product
    tiles (several tiles in M, N and K for the larger shapes) and the post-loop gradients."""
    cell, peephole = split_cell(cell)
    p = make_problem(
        cell, *shape, lengths=opts["lengths"], bias=opts["bias"], peephole=peephole,
        seed=hash((cell, shape)) % 1000,
    )  # fmt: skip
    got = run_backend(HOST, cell, p, opts["reverse"])
    want = run_reference(cell, p, opts["reverse"])
    assert_close(got, want, 1e-10, f"host build/{cell}: ")


@pytest.mark.parametrize("cell", CELLS)
def test_host_build_float32_matches_cpu_kernels(cell: str) -> None:
    cell, peephole = split_cell(cell)
    p = make_problem(
        cell, 9, 11, 40, 70, lengths=True, bias=True, peephole=peephole, seed=3, dtype=np.float32
    )
    got = run_backend(HOST, cell, p, reverse=True)
    want = run_cpu_kernels(cell, p, reverse=True)
    assert_close(got, want, 1e-5, f"host build vs CPU kernels/{cell}: ")


@pytest.mark.parametrize("cell", CELLS)
def test_host_build_inference_matches_training(cell: str) -> None:
    cell, peephole = split_cell(cell)
    p = make_problem(cell, 5, 6, 4, 9, lengths=True, bias=True, peephole=peephole, seed=4)
    train = run_backend(HOST, cell, p, reverse=False)
    infer = run_backend(HOST, cell, p, reverse=False, training=False)
    for k in ("y", "h_n", "c_n"):
        if train[k] is not None:
            np.testing.assert_array_equal(infer[k], train[k])


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_before"])
def test_host_build_strided_views_and_accumulation(cell: str) -> None:
    """x, y, dy, dx as strided views (batch-first, one direction's half of the features) and dx
    accumulated over two calls, as the layers use them."""
    b = HOST
    T, B, I, H = 5, 3, 4, 6
    p = make_problem(cell, T, B, I, H, lengths=True, bias=True, peephole=False, seed=5)
    want = run_backend(b, cell, p, reverse=True)
    w = b.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, 0)
    xbf = b.to_device(np.ascontiguousarray(p["x"].transpose(1, 0, 2)))  # (B, T, I)
    x = xbf.view(0, (T, B, I), (I, T * I, 1))
    out = b.zeros((B, T, 2 * H), "float64")  # this direction writes features [H, 2H)
    y = out.view(H, (T, B, H), (2 * H, T * 2 * H, 1))
    hn = b.zeros((B, H), "float64")
    cn = b.zeros((B, H), "float64") if cell == "lstm" else None
    dev = lambda a: None if a is None else b.to_device(a)  # noqa: E731
    ctx = w.forward(x, dev(p["h0"]), dev(p["c0"]), p["lengths"], True, True, y, hn, cn)
    np.testing.assert_array_equal(out.numpy()[:, :, H:].transpose(1, 0, 2), want["y"])
    np.testing.assert_array_equal(out.numpy()[:, :, :H], 0)
    dybf = np.zeros((B, T, 2 * H))
    dybf[:, :, H:] = p["dy"].transpose(1, 0, 2)
    dyd = b.to_device(dybf)
    dy = dyd.view(H, (T, B, H), (2 * H, T * 2 * H, 1))
    dxbf = b.zeros((B, T, I), "float64")
    dx = dxbf.view(0, (T, B, I), (I, T * I, 1))
    dh0 = b.zeros((B, H), "float64")
    dc0 = b.zeros((B, H), "float64") if cell == "lstm" else None
    for accumulate in (False, True):
        w.backward(ctx, dy, dev(p["dh_n"]), dev(p["dc_n"]), dx, accumulate, dh0, dc0)
    np.testing.assert_allclose(dxbf.numpy().transpose(1, 0, 2), 2 * want["dx"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_host_build_results_do_not_depend_on_the_batch(cell: str) -> None:
    """A sequence's outputs are bitwise the same alone or in a batch with other lengths (each
    product sums over k in the same order whatever the tile configuration)."""
    p = make_problem(cell, 7, 20, 5, 11, lengths=True, bias=True, peephole=False, seed=6)
    full = run_backend(HOST, cell, p, reverse=False)
    b = 13
    alone = run_backend(HOST, cell, one_sequence(p, b), reverse=False)
    np.testing.assert_array_equal(alone["y"][:, 0], full["y"][:, b])
    np.testing.assert_array_equal(alone["h_n"][0], full["h_n"][b])
    np.testing.assert_array_equal(alone["dx"][:, 0], full["dx"][:, b])


def test_host_build_argument_errors() -> None:
    b = HOST
    w = b.Weights("gru", np.zeros((9, 4)), np.zeros((9, 3)), None, None, None, 0)
    x, y, hn = (
        b.zeros((2, 5, 4), "float64"),
        b.zeros((2, 5, 3), "float64"),
        b.zeros((5, 3), "float64"),
    )
    with pytest.raises(ValueError, match=r"y: expected shape \(2, 5, 3\)"):
        w.forward(x, None, None, None, False, False, b.zeros((2, 5, 4), "float64"), hn)
    with pytest.raises(TypeError, match="x: expected dtype float64, got float32"):
        w.forward(b.zeros((2, 5, 4), "float32"), None, None, None, False, False, y, hn)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        w.forward(np.zeros((2, 5, 4)), None, None, None, False, False, y, hn)
    with pytest.raises(ValueError, match="lengths"):
        w.forward(x, None, None, np.array([1, 2, 3, 0, 1]), False, False, y, hn)
    with pytest.raises(ValueError, match="c0: only the LSTM"):
        w.forward(x, None, b.zeros((5, 3), "float64"), None, False, False, y, hn)
    with pytest.raises(ValueError, match="view: outside"):
        x.view(1, (2, 5, 4), (20, 4, 1))
    # outputs whose elements overlap would be written by racing GPU threads: refused
    big = b.zeros((40,), "float64")
    for strides in [(0, 3, 1), (3, 3, 1), (15, 2, 1)]:  # a zero stride, two equal, interleaved
        with pytest.raises(ValueError, match="y: the output's elements overlap"):
            w.forward(x, None, None, None, False, False, big.view(0, (2, 5, 3), strides), hn)
    # strided views that do not overlap are fine: batch-first, and half of a wider row
    w.forward(x, None, None, None, False, False, big.view(0, (2, 5, 3), (3, 6, 1)), hn)
    wide = b.zeros((2, 5, 6), "float64")
    w.forward(x, None, None, None, False, False, wide.view(3, (2, 5, 3), (30, 6, 1)), hn)
    with pytest.raises(ValueError, match=r"w_ih: expected shape \(12, 4\)"):
        b.Weights("lstm", np.zeros((8, 4)), np.zeros((9, 3)), None, None, None, 0)


def test_dropout_kernel() -> None:
    b = HOST
    x = b.to_device(np.ones(100_000))
    y1, y2 = b.dropout(x, 0.25, 7).numpy(), b.dropout(x, 0.25, 7).numpy()
    np.testing.assert_array_equal(y1, y2)
    assert set(np.unique(y1)) <= {0.0, 1 / 0.75}
    assert abs((y1 == 0).mean() - 0.25) < 0.01
    assert not np.array_equal(y1, b.dropout(x, 0.25, 8).numpy())


def test_dlpack_export_and_import_in_the_host_build() -> None:
    b = HOST
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d = b.to_device(a)
    np.testing.assert_array_equal(np.from_dlpack(d), a)
    np.testing.assert_array_equal(np.from_dlpack(d[1]), a[1])  # a view at a byte offset
    v = d.view(1, (3, 2), (4, 12))  # non-contiguous
    np.testing.assert_array_equal(np.from_dlpack(v), a.reshape(2, 3, 4)[:, :, 1].T)
    np.testing.assert_array_equal(v.numpy(), a[:, :, 1].T)
    np.testing.assert_array_equal(v.contiguous().numpy(), a[:, :, 1].T)
    assert not hasattr(d, "__cuda_array_interface__")  # host memory: no CUDA interface
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)  # a kDLCPU producer
    imported = b.as_device_array(t)
    t[1, 2] = 42.0  # no copy was made
    assert imported.numpy()[1, 2] == 42.0
    del t
    assert imported.numpy()[1, 2] == 42.0  # the import keeps the producer's memory alive
    np.testing.assert_array_equal(torch.from_dlpack(d).numpy(), a)
    # a data pointer off its item size's alignment is refused (on a GPU the first load from it
    # would be a sticky misaligned-address error)
    misaligned = torch.frombuffer(bytearray(40), dtype=torch.float32, offset=1, count=8)
    with pytest.raises(ValueError, match="not aligned to its item size"):
        b.as_device_array(misaligned)


# --- the layers (fastrnn._cuda) on the host build ---------------------------------------------


@pytest.fixture
def host_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """fastrnn._cuda running on the host build: device="cuda" layers take HOST.DeviceArray."""
    monkeypatch.setattr(_cuda, "_backend", HOST)
    yield HOST


LAYERS = VARIANTS  # every layer variant: cell -> (class, constructor kwargs)
LAYER_CONFIGS = [
    {"id": "basic"},
    {"id": "2layers-bidir-lengths-h0", "L": 2, "bidir": True, "lengths": True, "h0": True},
    {"id": "batch_first-bidir-lengths", "batch_first": True, "bidir": True, "lengths": True},
    {"id": "unbatched-2layers-h0", "unbatched": True, "L": 2, "h0": True},
    {"id": "no-bias", "bias": False, "h0": True},
]


def layer_case(cell: str, cfg: dict[str, Any], dtype: str, device: Any) -> tuple[Any, dict]:
    cls, kw = LAYERS[cell]
    L, D = cfg.get("L", 1), 2 if cfg.get("bidir") else 1
    m = cls(5, 7, num_layers=L, bidirectional=D == 2, batch_first=cfg.get("batch_first", False),
            bias=cfg.get("bias", True), dtype=dtype, seed=0, device=device, **kw)  # fmt: skip
    rng = np.random.default_rng(1)
    T, B = 6, 4
    if cfg.get("unbatched"):
        xs, hs, os_ = (T, 5), (L * D, 7), (T, D * 7)
    elif cfg.get("batch_first"):
        xs, hs, os_ = (B, T, 5), (L * D, B, 7), (B, T, D * 7)
    else:
        xs, hs, os_ = (T, B, 5), (L * D, B, 7), (T, B, D * 7)
    r = lambda s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    lstm = cls is fastrnn.LSTM
    d = {"x": r(xs), "d_out": r(os_), "dh": r(hs), "dc": r(hs) if lstm else None}
    d["h0"] = r(hs) if cfg.get("h0") else None
    d["c0"] = r(hs) if cfg.get("h0") and lstm else None
    d["lengths"] = np.array([6, 2, 5, 1]) if cfg.get("lengths") else None
    return m, d


def _numpy(a: Any) -> Any:
    return a if isinstance(a, np.ndarray) else a.numpy()


def run_layer(m: Any, d: dict, conv: Any, to_host: Any = _numpy) -> dict[str, Any]:
    """Forward + backward of a layer with every array passed through conv (identity for NumPy,
    to_device for device arrays); returns the results through to_host (NumPy arrays)."""
    c = lambda a: None if a is None else conv(a)  # noqa: E731
    lstm = isinstance(m, fastrnn.LSTM)
    m.zero_grad()  # gradients accumulate across backwards, as in torch
    if lstm:
        hx = None if d["h0"] is None else (c(d["h0"]), c(d["c0"]))
        out, (h_n, c_n) = m(c(d["x"]), hx, lengths=d["lengths"])
        dx, (dh0, dc0) = m.backward(c(d["d_out"]), (c(d["dh"]), c(d["dc"])))
    else:
        out, h_n = m(c(d["x"]), c(d["h0"]), lengths=d["lengths"])
        c_n = dc0 = None
        dx, dh0 = m.backward(c(d["d_out"]), c(d["dh"]))
    host = lambda a: None if a is None else to_host(a)  # noqa: E731
    res = {"out": out, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0}
    res = {k: host(v) for k, v in res.items()}
    res.update({"d" + k: host(v) for k, v in m.grads.items()})
    return res


@pytest.mark.parametrize("cfg", LAYER_CONFIGS, ids=[c["id"] for c in LAYER_CONFIGS])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_layers_on_the_host_build_match_the_cpu_layers(
    host_backend: Any, cell: str, cfg: dict[str, Any]
) -> None:
    m, d = layer_case(cell, cfg, "float64", "cuda")
    want = run_layer(m, d, lambda a: a)  # NumPy: the CPU path, same layer
    got = run_layer(m, d, host_backend.to_device)
    assert set(got) == set(want)
    for k in want:
        if want[k] is None:
            assert got[k] is None, k
            continue
        assert got[k].shape == want[k].shape, k
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-10, err_msg=k)


def test_layer_eval_mode_and_pickling_on_the_host_build(host_backend: Any) -> None:
    m, d = layer_case("lstm", LAYER_CONFIGS[1], "float64", "cuda")
    train = run_layer(m, d, host_backend.to_device)
    m.eval()
    dev = host_backend.to_device
    out, _ = m(dev(d["x"]), (dev(d["h0"]), dev(d["c0"])), lengths=d["lengths"])
    np.testing.assert_array_equal(out.numpy(), train["out"])
    with pytest.raises(RuntimeError):
        m.backward(host_backend.to_device(d["d_out"]))
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.device == "cuda:0"
    out2, _ = m2(dev(d["x"]), (dev(d["h0"]), dev(d["c0"])), lengths=d["lengths"])
    np.testing.assert_array_equal(out2.numpy(), train["out"])


def test_layer_weights_follow_load_state_dict_on_the_host_build(host_backend: Any) -> None:
    m, d = layer_case("gru", LAYER_CONFIGS[0], "float64", "cuda")
    x = host_backend.to_device(d["x"])
    m(x)
    sd = {k: v * 0.5 for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    got = m(x)[0].numpy()
    np.testing.assert_allclose(got, m(d["x"])[0], rtol=0, atol=1e-12)


def test_dropout_backward_uses_the_forward_mask_on_the_host_build(host_backend: Any) -> None:
    """Finite differences through a 2-layer GRU with dropout: the GPU path regenerates the
    forward's mask from its seed in backward."""
    m = fastrnn.GRU(3, 4, num_layers=2, dropout=0.5, dtype="float64", seed=0, device="cuda")
    rng = np.random.default_rng(2)
    x, d_out = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 4))

    def loss(xv: np.ndarray) -> float:
        m._rng = np.random.default_rng(11)  # the same dropout seed on every forward
        out, _ = m(host_backend.to_device(xv))
        return float((out.numpy() * d_out).sum())

    loss(x)
    dx, _ = m.backward(host_backend.to_device(d_out))
    dx = dx.numpy()
    assert np.abs(dx).max() > 0
    eps = 1e-6
    for idx in [(0, 0, 0), (1, 1, 2), (3, 0, 1), (2, 1, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (loss(xp) - loss(xm)) / (2 * eps)
        assert abs(fd - dx[idx]) < 1e-6, (idx, fd, dx[idx])


def test_layer_argument_errors_on_the_host_build(host_backend: Any) -> None:
    dev = host_backend.to_device
    m = fastrnn.LSTM(5, 7, device="cuda")
    with pytest.raises(TypeError, match="expected dtype float32"):
        m(dev(np.zeros((3, 2, 5))))
    with pytest.raises(ValueError, match="x: expected a 3-D array"):
        m(dev(np.zeros((3, 2, 4), np.float32)))
    with pytest.raises(TypeError, match="h0: expected a CUDA array"):
        m(dev(np.zeros((3, 2, 5), np.float32)), (np.zeros((1, 2, 7), np.float32), None))
    with pytest.raises(ValueError, match="h0: expected shape"):
        m(dev(np.zeros((3, 2, 5), np.float32)), (dev(np.zeros((1, 3, 7), np.float32)), None))
    with pytest.raises(ValueError, match="lengths"):
        m(dev(np.zeros((3, 2, 5), np.float32)), lengths=[4, 1])
    out, _ = m(dev(np.zeros((3, 2, 5), np.float32)))
    with pytest.raises(ValueError, match="d_out: expected shape"):
        m.backward(dev(np.zeros((3, 2, 6), np.float32)))
    # a device array on a CPU layer, and NumPy on a CUDA layer
    with pytest.raises(TypeError, match="on the CPU"):
        fastrnn.LSTM(5, 7)(dev(np.zeros((3, 2, 5), np.float32)))
    out, _ = m(np.zeros((3, 2, 5), np.float32))
    assert isinstance(out, np.ndarray)  # NumPy stays on the CPU path


# ============================================================================================
# 3. On a GPU (skipped where none is usable)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v))
@pytest.mark.parametrize("cell", CELLS)
def test_gpu_kernels_match_cpu_kernels(cell: str, opts: dict, dtype: Any) -> None:
    """float64: many tiles in every product dimension, 1e-10; float32: the size and tolerance of
    the CPU suite's SIMD-vs-scalar check (different summation orders and tanh/exp)."""
    cell, peephole = split_cell(cell)
    shape, rtol = ((20, 70, 33, 130), 1e-10) if dtype == np.float64 else ((9, 11, 40, 100), 2e-5)
    p = make_problem(
        cell, *shape, lengths=opts["lengths"], bias=opts["bias"], peephole=peephole, seed=7,
        dtype=dtype,
    )  # fmt: skip
    got = run_backend(_C_cuda, cell, p, opts["reverse"])
    want = run_cpu_kernels(cell, p, opts["reverse"])
    assert_close(got, want, rtol, f"GPU/{cell}: ")


@needs_gpu
@pytest.mark.parametrize("cell", CELLS)
def test_gpu_kernels_match_reference_float64(cell: str) -> None:
    cell, peephole = split_cell(cell)
    p = make_problem(cell, 6, 3, 5, 7, lengths=True, bias=True, peephole=peephole, seed=8)
    got = run_backend(_C_cuda, cell, p, reverse=True)
    want = run_reference(cell, p, reverse=True)
    assert_close(got, want, 1e-10, f"GPU/{cell}: ")


@needs_gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_before", "rnn_relu"])
def test_gpu_is_deterministic_and_batch_independent(cell: str) -> None:
    p = make_problem(cell, 30, 40, 16, 96, lengths=True, bias=True, peephole=False, seed=9,
                     dtype=np.float32)  # fmt: skip
    a = run_backend(_C_cuda, cell, p, reverse=False)
    b = run_backend(_C_cuda, cell, p, reverse=False)
    for k in a:
        if a[k] is not None:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    i = 17
    alone = run_backend(_C_cuda, cell, one_sequence(p, i), reverse=False)
    np.testing.assert_array_equal(alone["y"][:, 0], a["y"][:, i])
    np.testing.assert_array_equal(alone["dx"][:, 0], a["dx"][:, i])


@needs_gpu
def test_gpu_out_of_memory_is_an_exception() -> None:
    with pytest.raises(MemoryError):
        _C_cuda.empty((1 << 50,), "float32", 0)
    with pytest.raises(_C_cuda.CudaOutOfMemoryError, match="out of memory"):
        _C_cuda.empty((1 << 50,), "float32", 0)
    _C_cuda.zeros((10,), "float32", 0)  # and the device still works


@needs_gpu
def test_gpu_mismatched_devices() -> None:
    if len(_cuda.status()["devices"]) < 2:
        pytest.skip("needs two CUDA devices")
    m = fastrnn.GRU(3, 4, device="cuda:0")
    x = _C_cuda.to_device(np.zeros((2, 1, 3), np.float32), 1)
    with pytest.raises(ValueError, match="mismatched devices"):
        m(x)


@needs_gpu
def test_gpu_dlpack_and_cuda_array_interface() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    d = _C_cuda.to_device(a, 0)
    cai = d.__cuda_array_interface__
    assert cai["shape"] == (3, 4) and cai["typestr"] == "<f4" and cai["version"] == 3
    assert d.__dlpack_device__() == (2, 0)
    np.testing.assert_array_equal(_C_cuda.as_device_array(d).numpy(), a)
    torch = torch_cuda()
    t = torch.from_dlpack(d)
    assert t.is_cuda and t.data_ptr() == d.ptr  # no copy
    np.testing.assert_array_equal(t.cpu().numpy(), a)
    back = _C_cuda.as_device_array(t[:, 1])  # a strided torch view, through CAI
    assert back.ptr == t[:, 1].data_ptr()
    np.testing.assert_array_equal(back.numpy(), a[:, 1])


@needs_gpu
def test_gpu_cupy_in_cupy_out() -> None:
    cupy = pytest.importorskip("cupy")
    m = fastrnn.LSTM(5, 7, device="cuda", seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    out, (h_n, c_n) = m(cupy.asarray(x))
    assert isinstance(out, cupy.ndarray) and isinstance(h_n, cupy.ndarray)
    want, _ = m(x)
    np.testing.assert_allclose(cupy.asnumpy(out), want, rtol=0, atol=1e-5)


TORCH_LAYERS = {
    "rnn_tanh": (fastrnn.RNN, "RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": (fastrnn.RNN, "RNN", {"nonlinearity": "relu"}),
    "gru": (fastrnn.GRU, "GRU", {}),
    "lstm": (fastrnn.LSTM, "LSTM", {}),
}
TORCH_CONFIGS = [
    {"id": "basic", "h0": True},
    {"id": "2layers-bidir-lengths", "L": 2, "bidir": True, "lengths": True, "h0": True},
    {"id": "batch_first-bidir-lengths", "batch_first": True, "bidir": True, "lengths": True},
    {"id": "wide", "T": 10, "B": 64, "I": 96, "H": 256, "lengths": True},
]


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", TORCH_CONFIGS, ids=[c["id"] for c in TORCH_CONFIGS])
@pytest.mark.parametrize("cell", list(TORCH_LAYERS))
def test_gpu_layers_match_torch_cuda(cell: str, cfg: dict[str, Any], dtype: str) -> None:
    """fastrnn on torch CUDA tensors vs torch.nn on the same tensors (cuDNN, TF32 off): out, h_n
    (c_n) and every gradient, torch tensors in and torch tensors out."""
    torch = torch_cuda()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    fast_cls, torch_name, kw = TORCH_LAYERS[cell]
    T, B, I, H = cfg.get("T", 6), cfg.get("B", 4), cfg.get("I", 5), cfg.get("H", 7)
    L, D, bf = cfg.get("L", 1), 2 if cfg.get("bidir") else 1, cfg.get("batch_first", False)
    tdt = getattr(torch, dtype)
    torch.manual_seed(0)
    tm = getattr(torch.nn, torch_name)(I, H, num_layers=L, bidirectional=D == 2, batch_first=bf,
                                       **kw).to("cuda", tdt)  # fmt: skip
    fm = fast_cls(I, H, num_layers=L, bidirectional=D == 2, batch_first=bf, dtype=dtype,
                  device="cuda", **kw)  # fmt: skip
    fm.load_state_dict({k: v.detach().cpu().numpy() for k, v in tm.state_dict().items()})
    g = torch.Generator().manual_seed(1)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=tdt).to("cuda")  # noqa: E731
    x = rnd(*((B, T, I) if bf else (T, B, I)))
    h0 = rnd(L * D, B, H) if cfg.get("h0") else None
    lstm = cell == "lstm"
    c0 = rnd(L * D, B, H) if cfg.get("h0") and lstm else None
    lengths = None
    if cfg.get("lengths"):
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
    d_out = rnd(*((B, T, D * H) if bf else (T, B, D * H)))
    dh = rnd(L * D, B, H)
    dc = rnd(L * D, B, H) if lstm else None

    # torch
    xt = x.clone().requires_grad_()
    h0t = None if h0 is None else h0.clone().requires_grad_()
    c0t = None if c0 is None else c0.clone().requires_grad_()
    inp = xt if lengths is None else pack_padded_sequence(xt, lengths, bf, enforce_sorted=False)
    out_t, hn_t = tm(inp, None if h0t is None else ((h0t, c0t) if lstm else h0t))
    if lengths is not None:
        out_t, _ = pad_packed_sequence(out_t, bf, total_length=T)
    hn_t, cn_t = hn_t if lstm else (hn_t, None)
    loss = (out_t * d_out).sum() + (hn_t * dh).sum() + ((cn_t * dc).sum() if lstm else 0)
    loss.backward()

    # fastrnn on the same device tensors
    lens = None if lengths is None else lengths.numpy()
    if lstm:
        out_f, (hn_f, cn_f) = fm(x, None if h0 is None else (h0, c0), lengths=lens)
        dx_f, (dh0_f, dc0_f) = fm.backward(d_out, (dh, dc))
    else:
        out_f, hn_f = fm(x, h0, lengths=lens)
        dx_f, dh0_f = fm.backward(d_out, dh)
    assert isinstance(out_f, torch.Tensor) and out_f.is_cuda

    rtol = 1e-5 if dtype == "float32" else 1e-10

    def close(name: str, got: Any, want: Any) -> None:
        got, want = got.detach().double().cpu().numpy(), want.detach().double().cpu().numpy()
        assert got.shape == want.shape, name
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-3)
        err = float(np.abs(got - want).max(initial=0.0))
        assert err <= rtol * scale, f"{name}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"

    close("out", out_f, out_t)
    close("h_n", hn_f, hn_t)
    close("dx", dx_f, xt.grad)
    if lstm:
        close("c_n", cn_f, cn_t)
    if h0 is not None:
        close("dh0", dh0_f, h0t.grad)
        if lstm:
            close("dc0", dc0_f, c0t.grad)
    grads = fm.grads
    assert set(grads) == {k for k, _ in tm.named_parameters()}
    for k, prm in tm.named_parameters():
        close(f"grads[{k}]", grads[k], prm.grad)
