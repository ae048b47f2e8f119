"""The persistent small-batch kernels of the GPU path (csrc/cuda/persistent.h).

For B <= 8 one cooperative launch runs every step of the forward recurrence, each block keeping
its hidden units' rows of W_hh in shared memory; likewise the backward recurrence with the
units' columns of W_hh. Tiers as in test_cuda.py:

1. The host build (fastrnn._C._cuda_host) runs the kernels' per-(block, step, phase) code with
   loops for blocks and threads and loop boundaries for the barriers. Checked against the
   standard per-step path (float64 1e-12, float32 1e-6 relative) and tests/reference.py, with
   either path's training cache feeding either path's backward; on two emulated devices: an
   H100 (one unit per block at these sizes) and a 4-multiprocessor device (several units per
   block, two passes over them, a shorter last block).
2. The selection: what fits where, the forced modes (argument and FASTRNN_CUDA_PERSISTENT) and
   their errors, auto choosing exactly where the plan fits.
3. GPU tests (skipped where no CUDA device is usable): the two paths on the device, and the
   layers with the persistent kernel against torch CUDA (cuDNN).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from test_cuda import (
    CELLS,
    HOST,
    LAYER_CONFIGS,
    _C_cuda,
    layer_case,
    needs_gpu,
    run_backend,
    run_layer,
    split_cell,
    torch_cuda,
)
from test_kernels import OPTIONS, assert_close, make_problem, run_reference

from fastrnn import _cuda

H100 = {"multiprocessors": 132, "shared_per_block": 227 * 1024, "cooperative": True}
SMALL = {"multiprocessors": 4, "shared_per_block": 96 * 1024, "cooperative": True}
DEVICES = {"h100": H100, "4sm": SMALL}
# (T, B, I, H); at H=33 on "4sm": 9 units per block (8 + 1: two passes), the last block has 6
SHAPES = [(1, 1, 1, 1), (6, 3, 5, 7), (5, 8, 4, 33), (7, 1, 3, 20)]


@pytest.fixture
def emulate() -> Iterator[Any]:
    """emulate(**settings): what the host build pretends the device offers; restored after."""
    saved = HOST._emulated_device()

    def set_device(**kw: Any) -> None:
        HOST._emulated_device(**kw)

    yield set_device
    HOST._emulated_device(**saved)


def opts_id(o: dict) -> str:
    return "-".join(k for k, v in o.items() if v) or "plain"


# ============================================================================================
# 1. The kernel's code on the host build


@pytest.mark.parametrize("device", list(DEVICES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("opts", OPTIONS, ids=opts_id)
@pytest.mark.parametrize("cell", CELLS)
def test_persistent_matches_standard_path_and_reference(
    emulate: Any, cell: str, opts: dict, shape: tuple, device: str
) -> None:
    """Outputs, and the gradients of the standard backward run on the persistent path's cache."""
    emulate(**DEVICES[device])
    cell, peephole = split_cell(cell)
    T, B, I, H = shape
    plan = HOST.persistent_plan(cell, H, B, "float64")
    assert plan["fits"], plan["reason"]
    p = make_problem(
        cell, *shape, lengths=opts["lengths"], bias=opts["bias"], peephole=peephole,
        seed=hash((cell, shape)) % 1000,
    )  # fmt: skip
    got = run_backend(HOST, cell, p, opts["reverse"], persistent="on")
    std = run_backend(HOST, cell, p, opts["reverse"], persistent="off")
    assert_close(got, std, 1e-12, f"persistent vs standard/{cell}: ")
    assert_close(got, run_reference(cell, p, opts["reverse"]), 1e-10, f"vs reference/{cell}: ")
    infer = run_backend(HOST, cell, p, opts["reverse"], training=False, persistent="on")
    for k in ("y", "h_n", "c_n"):
        if got[k] is not None:
            np.testing.assert_array_equal(infer[k], got[k], err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
def test_persistent_float32_matches_standard_path(emulate: Any, cell: str) -> None:
    emulate(**SMALL)
    cell, peephole = split_cell(cell)
    p = make_problem(
        cell, 9, 8, 12, 40, lengths=True, bias=True, peephole=peephole, seed=3, dtype=np.float32
    )
    got = run_backend(HOST, cell, p, True, persistent="on")
    std = run_backend(HOST, cell, p, True, persistent="off")
    assert_close(got, std, 1e-6, f"float32 persistent vs standard/{cell}: ")


def train_mixed(cell: str, p: dict, reverse: bool, fwd: bool, bwd: bool) -> dict[str, Any]:
    """Forward on one path and backward on the other (persistent where fwd / bwd): with
    persistent='auto' the backward plans again, and an emulated device without cooperative
    launches makes the plan fail."""
    b = HOST
    w = b.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"], 0)
    T, B, I = p["x"].shape
    H = p["w_hh"].shape[1]
    lstm = cell == "lstm"
    dev = lambda a: None if a is None else b.to_device(a)  # noqa: E731
    y, hn = b.zeros((T, B, H), "float64"), b.zeros((B, H), "float64")
    cn = b.zeros((B, H), "float64") if lstm else None
    HOST._emulated_device(cooperative=fwd)
    ctx = w.forward(dev(p["x"]), dev(p["h0"]), dev(p["c0"]), p["lengths"], reverse, True, y, hn,
                    cn, persistent="auto")  # fmt: skip
    HOST._emulated_device(cooperative=bwd)
    dx, dh0 = b.zeros((T, B, I), "float64"), b.zeros((B, H), "float64")
    dc0 = b.zeros((B, H), "float64") if lstm else None
    g = w.backward(ctx, dev(p["dy"]), dev(p["dh_n"]), dev(p["dc_n"]), dx, False, dh0, dc0)
    out = {"y": y.numpy(), "h_n": hn.numpy(), "dx": dx.numpy(), "dh0": dh0.numpy()}
    out.update({"d" + k: v.numpy() for k, v in g.items() if v is not None})
    if lstm:
        out.update(c_n=cn.numpy(), dc0=dc0.numpy())
    return out


@pytest.mark.parametrize("cell", CELLS)
def test_each_path_backward_on_the_other_path_cache(emulate: Any, cell: str) -> None:
    """The persistent forward writes the standard path's training cache (and the persistent
    backward reads it): every mix agrees, and the persistent runs are not the standard ones."""
    emulate(**SMALL)
    cell, peephole = split_cell(cell)
    p = make_problem(cell, 5, 4, 3, 40, lengths=True, bias=True, peephole=peephole, seed=12)
    std = train_mixed(cell, p, True, False, False)
    for fwd, bwd in ((True, False), (False, True), (True, True)):
        got = train_mixed(cell, p, True, fwd, bwd)
        assert_close(got, std, 1e-12, f"{cell} forward {fwd}, backward {bwd}: ")
        if fwd:  # the paths sum in different orders at H=40
            assert not np.array_equal(got["y"], std["y"])
        if bwd:
            assert not np.array_equal(got["dh0"], std["dh0"])


def test_persistent_padded_steps_and_all_rows_ending_early(emulate: Any) -> None:
    """Every sequence shorter than T: the launch stops at the longest; y stays 0 after each
    row's end and h_n is the state at its own last step."""
    emulate(**SMALL)
    p = make_problem("lstm", 8, 5, 3, 33, lengths=True, bias=True, peephole=True, seed=4)
    p["lengths"] = np.array([3, 5, 1, 5, 2])
    for reverse in (False, True):
        got = run_backend(HOST, "lstm", p, reverse, persistent="on")
        assert_close(got, run_reference("lstm", p, reverse), 1e-10, f"reverse={reverse}: ")
        assert not got["y"][5:].any()


@pytest.mark.parametrize("cfg", LAYER_CONFIGS, ids=[c["id"] for c in LAYER_CONFIGS])
@pytest.mark.parametrize("cell", ["gru", "gru_reset_before", "lstm_peephole", "rnn_relu"])
def test_layers_with_the_persistent_kernel_match_the_cpu_layers(
    monkeypatch: pytest.MonkeyPatch, emulate: Any, cell: str, cfg: dict[str, Any]
) -> None:
    """The layers (multi-layer, bidirectional, batch-first, unbatched) on the host build with
    FASTRNN_CUDA_PERSISTENT=1, against the same layers on NumPy arrays (the CPU path)."""
    monkeypatch.setattr(_cuda, "_backend", HOST)
    monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", "1")
    emulate(**SMALL)
    m, d = layer_case(cell, cfg, "float64", "cuda")
    want = run_layer(m, d, lambda a: a)
    got = run_layer(m, d, HOST.to_device)
    assert set(got) == set(want)
    for k in want:
        if want[k] is None:
            assert got[k] is None, k
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-10, err_msg=k)


# ============================================================================================
# 2. Selection


def test_plan_h100_sizes(emulate: Any) -> None:
    emulate(**H100)
    p = HOST.persistent_plan("lstm", 1024, 8, "float32")
    assert p["fits"] and p["reason"] is None
    assert (p["blocks"], p["units_per_block"], p["threads"], p["passes"]) == (128, 8, 256, 1)
    assert p["shared_bytes"] <= H100["shared_per_block"]
    # float64 needs twice the shared memory
    p = HOST.persistent_plan("lstm", 1024, 8, "float64")
    assert not p["fits"] and "shared memory" in p["reason"] and "227 KiB" in p["reason"]
    # one unit per block while H <= multiprocessors
    p = HOST.persistent_plan("gru", 100, 1, "float64")
    assert p["fits"] and (p["blocks"], p["units_per_block"], p["threads"]) == (100, 1, 32)


@pytest.mark.parametrize(
    "device, cell, H, B, dtype, match",
    [
        (H100, "gru", 64, 9, "float32", "B=9 rows; the persistent kernel takes at most 8"),
        (H100, "lstm", 2048, 1, "float32", "shared memory"),
        ({**H100, "cooperative": False}, "rnn_tanh", 8, 2, "float64", "cooperative"),
        (SMALL, "gru_reset_before", 400, 8, "float64", "shared memory"),
    ],
)
def test_plan_does_not_fit(
    emulate: Any, device: dict, cell: str, H: int, B: int, dtype: str, match: str
) -> None:
    emulate(**device)
    p = HOST.persistent_plan(cell, H, B, dtype)
    assert not p["fits"] and match in p["reason"]


def _forward_y(cell: str, p: dict, persistent: Any) -> np.ndarray:
    return run_backend(HOST, cell, p, False, training=False, persistent=persistent)["y"]


def test_forced_and_auto_modes(monkeypatch: pytest.MonkeyPatch, emulate: Any) -> None:
    emulate(**SMALL)
    p = make_problem("gru", 4, 3, 5, 40, lengths=True, bias=True, peephole=False, seed=5)
    on, off = _forward_y("gru", p, "on"), _forward_y("gru", p, "off")
    # the paths sum in different orders here, so bitwise equality tells which one ran
    assert not np.array_equal(on, off)
    np.testing.assert_allclose(on, off, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(_forward_y("gru", p, "auto"), on)
    np.testing.assert_array_equal(_forward_y("gru", p, True), on)
    np.testing.assert_array_equal(_forward_y("gru", p, False), off)
    monkeypatch.delenv("FASTRNN_CUDA_PERSISTENT", raising=False)
    np.testing.assert_array_equal(_forward_y("gru", p, None), on)  # default: auto
    for env, want in (("0", off), ("off", off), ("1", on), ("auto", on), ("ON", on)):
        monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", env)
        np.testing.assert_array_equal(_forward_y("gru", p, None), want, err_msg=env)
    monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", "0")
    np.testing.assert_array_equal(_forward_y("gru", p, "on"), on)  # the argument wins
    # auto where it does not fit: the standard path, silently
    emulate(cooperative=False)
    np.testing.assert_array_equal(_forward_y("gru", p, "auto"), off)


def test_forced_on_where_it_cannot_run_is_an_error(
    monkeypatch: pytest.MonkeyPatch, emulate: Any
) -> None:
    emulate(**SMALL)
    p = make_problem("lstm", 3, 9, 2, 6, lengths=False, bias=True, peephole=False, seed=6)
    with pytest.raises(ValueError, match="cannot run this layer: B=9 rows"):
        _forward_y("lstm", p, "on")
    monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", "1")
    with pytest.raises(ValueError, match="FASTRNN_CUDA_PERSISTENT=1"):
        _forward_y("lstm", p, None)
    # auto and off run it on the standard path
    monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", "auto")
    np.testing.assert_array_equal(_forward_y("lstm", p, None), _forward_y("lstm", p, "off"))
    p = make_problem("gru_reset_before", 2, 2, 3, 400, lengths=False, bias=True, peephole=False,
                     seed=7)  # fmt: skip
    with pytest.raises(ValueError, match="shared memory per block"):
        _forward_y("gru_reset_before", p, "on")


def test_bad_mode_values(monkeypatch: pytest.MonkeyPatch) -> None:
    p = make_problem("rnn_tanh", 2, 2, 3, 4, lengths=False, bias=True, peephole=False, seed=8)
    with pytest.raises(ValueError, match="persistent: expected 'auto', 'on'"):
        _forward_y("rnn_tanh", p, "yes")
    with pytest.raises(TypeError, match="persistent"):
        _forward_y("rnn_tanh", p, 2)
    monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", "2")
    with pytest.raises(ValueError, match="FASTRNN_CUDA_PERSISTENT: expected"):
        _forward_y("rnn_tanh", p, None)
    with pytest.raises(ValueError, match="cell"):
        HOST.persistent_plan("lstn", 8, 1, "float32")
    with pytest.raises(TypeError, match="dtype"):
        HOST.persistent_plan("lstm", 8, 1, "int32")


# ============================================================================================
# 3. On a GPU (skipped where none is usable)


@pytest.mark.skipif(_C_cuda is None, reason="fastrnn._C_cuda is not built")
def test_gpu_module_plan_without_a_device_raises() -> None:
    if _C_cuda.probe()["devices"]:
        pytest.skip("a CUDA device is visible")
    with pytest.raises(_C_cuda.CudaError, match="CUDA error"):
        _C_cuda.persistent_plan("lstm", 256, 8, "float32")


def _gpu_plan_or_skip(cell: str, H: int, B: int, dtype: str) -> None:
    plan = _C_cuda.persistent_plan(cell, H, B, dtype)
    if not plan["fits"]:
        pytest.skip(f"the persistent kernel does not fit this device: {plan['reason']}")


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(20, 8, 33, 130), (9, 1, 16, 256), (5, 3, 7, 7)],
                         ids=lambda s: "T{}B{}I{}H{}".format(*s))  # fmt: skip
@pytest.mark.parametrize("opts", OPTIONS, ids=opts_id)
@pytest.mark.parametrize("cell", CELLS)
def test_gpu_persistent_matches_standard_path(
    cell: str, opts: dict, shape: tuple, dtype: Any
) -> None:
    cell, peephole = split_cell(cell)
    _gpu_plan_or_skip(cell, shape[3], shape[1], np.dtype(dtype).name)
    p = make_problem(
        cell, *shape, lengths=opts["lengths"], bias=opts["bias"], peephole=peephole, seed=9,
        dtype=dtype,
    )  # fmt: skip
    got = run_backend(_C_cuda, cell, p, opts["reverse"], persistent="on")
    std = run_backend(_C_cuda, cell, p, opts["reverse"], persistent="off")
    assert_close(got, std, 1e-12 if dtype == np.float64 else 1e-5, f"GPU/{cell}: ")
    again = run_backend(_C_cuda, cell, p, opts["reverse"], persistent="on")
    for k in got:  # deterministic: fixed summation order, no atomics
        if got[k] is not None:
            np.testing.assert_array_equal(again[k], got[k], err_msg=k)


@needs_gpu
@pytest.mark.parametrize("H", [256, 1024])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gpu_persistent_large_hidden(cell: str, H: int) -> None:
    """The sizes the kernel is for (several units per block on a real device)."""
    _gpu_plan_or_skip(cell, H, 8, "float32")
    p = make_problem(cell, 12, 8, 64, H, lengths=True, bias=True, peephole=False, seed=10,
                     dtype=np.float32)  # fmt: skip
    got = run_backend(_C_cuda, cell, p, False, persistent="on")
    std = run_backend(_C_cuda, cell, p, False, persistent="off")
    assert_close(got, std, 1e-5, f"GPU/{cell}/H={H}: ")


@needs_gpu
def test_gpu_forced_on_where_it_cannot_run() -> None:
    p = make_problem("gru", 3, 9, 4, 16, lengths=False, bias=True, peephole=False, seed=11,
                     dtype=np.float32)  # fmt: skip
    with pytest.raises(ValueError, match="at most 8"):
        run_backend(_C_cuda, "gru", p, False, persistent="on")


@needs_gpu
@pytest.mark.parametrize("B", [1, 8])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_gpu_persistent_layers_match_torch_cuda(
    monkeypatch: pytest.MonkeyPatch, cell: str, B: int
) -> None:
    """FASTRNN_CUDA_PERSISTENT=1 layers on torch CUDA tensors vs torch.nn (cuDNN, TF32 off)."""
    torch = torch_cuda()
    import fastrnn

    monkeypatch.setenv("FASTRNN_CUDA_PERSISTENT", "1")
    T, I, H = 16, 32, 128
    name = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN"}[cell]
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(I, H).to("cuda")
    fm = getattr(fastrnn, name)(I, H, device="cuda")
    fm.load_state_dict({k: v.detach().cpu().numpy() for k, v in tm.state_dict().items()})
    x = torch.randn(T, B, I, device="cuda")
    d_out = torch.randn(T, B, H, device="cuda")
    xt = x.clone().requires_grad_()
    out_t = tm(xt)[0]
    (out_t * d_out).sum().backward()
    out_f = fm(x)[0]
    dx_f = fm.backward(d_out)[0]

    def close(name: str, got: Any, want: Any) -> None:
        got, want = got.detach().double().cpu().numpy(), want.detach().double().cpu().numpy()
        scale = max(float(np.abs(want).max()), 1e-3)
        assert float(np.abs(got - want).max()) <= 1e-5 * scale, name

    close("out", out_f, out_t)
    close("dx", dx_f, xt.grad)
    for k, prm in tm.named_parameters():
        close(k, fm.grads[k], prm.grad)
