"""The compiled kernels (fastrnn._C) on every ISA path: against the NumPy reference in float64,
against the scalar path in float32, and their building blocks (vectorized math, GEMM).

A path the CPU lacks is reported as skipped, never as passed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import reference as ref
from conftest import ISAS

from fastrnn import _C

CELLS = ref.CELLS


def make_problem(cell, T, B, I, H, *, lengths, bias, peephole, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    G = ref.GATES[cell]
    s = 1.0 / np.sqrt(H)
    p = dict(
        w_ih=rng.uniform(-s, s, (G * H, I)),
        w_hh=rng.uniform(-s, s, (G * H, H)),
        b_ih=rng.uniform(-s, s, G * H) if bias else None,
        b_hh=rng.uniform(-s, s, G * H) if bias else None,
        peephole=rng.uniform(-s, s, 3 * H) if peephole else None,
        x=rng.standard_normal((T, B, I)),
        h0=rng.standard_normal((B, H)),
        c0=rng.standard_normal((B, H)) if cell == "lstm" else None,
        lengths=rng.integers(1, T + 1, B) if lengths else None,
        dy=rng.standard_normal((T, B, H)),
        dh_n=rng.standard_normal((B, H)),
        dc_n=rng.standard_normal((B, H)) if cell == "lstm" else None,
    )
    return {
        k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
        for k, v in p.items()
    }


def run_kernel(cell, p, reverse):
    w = _C.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"])
    y, h_n, c_n, ctx = w.forward(p["x"], p["h0"], p["c0"], p["lengths"], reverse, True)
    dx, dh0, dc0, grads = w.backward(ctx, p["dy"], p["dh_n"], p["dc_n"])
    return flatten(y, h_n, c_n, dx, dh0, dc0, grads)


def run_reference(cell, p, reverse):
    y, h_n, c_n, cache = ref.forward(
        cell,
        p["x"],
        p["h0"],
        p["c0"],
        p["w_ih"],
        p["w_hh"],
        p["b_ih"],
        p["b_hh"],
        p["peephole"],
        p["lengths"],
        reverse,
    )
    dx, dh0, dc0, grads = ref.backward(cell, cache, p["dy"], p["dh_n"], p["dc_n"])
    return flatten(y, h_n, c_n, dx, dh0, dc0, grads)


def flatten(y, h_n, c_n, dx, dh0, dc0, grads):
    out = {"y": y, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0}
    out.update({"d" + k: v for k, v in grads.items()})
    return out


def assert_close(got, want, rtol, what=""):
    assert set(got) == set(want)
    for k in want:
        if want[k] is None:
            assert got[k] is None, f"{what}{k}: expected None"
            continue
        scale = max(1.0, float(np.abs(want[k]).max()))
        err = float(np.abs(got[k] - want[k]).max())
        assert err <= rtol * scale, f"{what}{k}: max error {err:.3g} > {rtol:g} * {scale:.3g}"


# (T, B, I, H): odd sizes so that every vector tail, row remainder and thread split is hit
# (20, 70, ...) spans three input-projection chunks (512 rows // B = 7 steps each)
# the last two: one or two rows over several hidden-unit blocks
SHAPES = [(1, 1, 1, 1), (6, 3, 5, 7), (5, 9, 17, 33), (4, 13, 8, 70), (20, 70, 6, 9),
          (7, 1, 5, 100), (5, 2, 3, 170)]  # fmt: skip
OPTIONS = [
    dict(lengths=False, bias=True, reverse=False),
    dict(lengths=True, bias=True, reverse=False),
    dict(lengths=True, bias=False, reverse=True),
    dict(lengths=False, bias=True, reverse=True),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize(
    "opts", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "plain"
)
@pytest.mark.parametrize("cell", CELLS + ("lstm_peephole",))
def test_kernel_matches_reference_float64(isa, cell, opts, shape):
    peephole = cell == "lstm_peephole"
    cell = "lstm" if peephole else cell
    p = make_problem(
        cell,
        *shape,
        lengths=opts["lengths"],
        bias=opts["bias"],
        peephole=peephole,
        seed=hash((cell, shape)) % 1000,
    )
    got = run_kernel(cell, p, opts["reverse"])
    want = run_reference(cell, p, opts["reverse"])
    assert_close(got, want, 1e-10, f"{isa}/{cell}: ")


@pytest.mark.parametrize("cell", CELLS + ("lstm_peephole",))
def test_simd_path_matches_scalar_float32(isa, cell):
    peephole = cell == "lstm_peephole"
    cell = "lstm" if peephole else cell
    p = make_problem(
        cell, 9, 11, 40, 100, lengths=True, bias=True, peephole=peephole, seed=3, dtype=np.float32
    )
    got = run_kernel(cell, p, reverse=True)
    _C.set_isa("scalar")
    want = run_kernel(cell, p, reverse=True)
    _C.set_isa(isa)
    assert_close(got, want, 2e-5, f"{isa} vs scalar/{cell}: ")


@pytest.mark.parametrize("cell", CELLS)
def test_step_matches_one_step_forward(isa, cell):
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        p = make_problem(
            cell,
            1,
            5,
            12,
            45,
            lengths=False,
            bias=True,
            peephole=cell == "lstm",
            seed=7,
            dtype=dtype,
        )
        w = _C.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"])
        y, h_n, c_n, _ = w.forward(p["x"], p["h0"], p["c0"])
        h1, c1 = w.step(p["x"][0], p["h0"], p["c0"])
        assert h1.dtype == dtype
        np.testing.assert_allclose(h1, h_n, rtol=0, atol=tol)
        if cell == "lstm":
            np.testing.assert_allclose(c1, c_n, rtol=0, atol=tol)


MATH = {0: np.exp, 1: np.expm1, 2: lambda v: 1 / (1 + np.exp(-v)), 3: np.tanh}


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 3e-7), (np.float64, 1e-15)])
@pytest.mark.parametrize("which", list(MATH), ids=["exp", "expm1", "sigmoid", "tanh"])
def test_vector_math_relative_accuracy(isa, which, dtype, rtol):
    lim = 80 if which < 2 else 40
    x = np.concatenate(
        [
            np.linspace(-lim, lim, 20001),
            np.geomspace(1e-12, 1, 500),
            -np.geomspace(1e-12, 1, 500),
            [0.0],
        ]
    ).astype(dtype)
    y = _C._math(which, x)
    want = MATH[which](x.astype(np.float64))
    tiny = np.finfo(dtype).tiny
    ok = np.abs(want) > tiny * 1e3  # relative error is meaningless among denormals
    rel = np.abs(y[ok] - want[ok]) / np.abs(want[ok])
    assert rel.max() <= rtol * 4, f"max relative error {rel.max():.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_math_propagates_nan_and_saturates(isa, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1e6, -1e6], dtype=dtype)
    for which in (2, 3):
        y = _C._math(which, x)
        assert np.isnan(y[0])
        want = MATH[which](np.array([np.inf, -np.inf, 1e6, -1e6]))
        np.testing.assert_allclose(y[1:], want, atol=1e-30)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 33, 5), (130, 70, 300), (300, 2100, 20)])
def test_gemm_matches_numpy(isa, m, n, k, ta, tb):
    rng = np.random.default_rng(m * n + k)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
        got = _C.nn_matmul(a, b, ta, tb)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.sqrt(k) * 4)


def test_two_python_threads_get_correct_results():
    """Kernels release the GIL: two threads running different layers at once must each get the
    result they would get alone."""
    problems = [
        make_problem(c, 20, 8, 30, 64, lengths=True, bias=True, peephole=False, seed=i)
        for i, c in enumerate(("lstm", "gru"))
    ]
    cells = ("lstm", "gru")
    alone = [run_kernel(c, p, reverse=False) for c, p in zip(cells, problems)]
    results = [[None] * 5, [None] * 5]

    def work(i):
        for r in range(5):
            results[i][r] = run_kernel(cells[i], problems[i], reverse=False)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        for r in range(5):
            for k, v in alone[i].items():
                if v is not None:
                    assert np.array_equal(results[i][r][k], v), f"thread {i} run {r}: {k}"


def test_forward_is_bitwise_independent_of_batch_and_threads():
    p = make_problem(
        "lstm", 12, 17, 24, 70, lengths=True, bias=True, peephole=True, seed=5, dtype=np.float32
    )
    w = _C.Weights("lstm", p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"])
    full = w.forward(p["x"], p["h0"], p["c0"], p["lengths"], True, False)
    threads = _C.get_num_threads()
    try:
        for n in (1, 2, 3):
            _C.set_num_threads(n)
            again = w.forward(p["x"], p["h0"], p["c0"], p["lengths"], True, False)
            assert np.array_equal(again[0], full[0]) and np.array_equal(again[1], full[1])
    finally:
        _C.set_num_threads(threads)
    for b in (0, 6, 16):  # alone, with its own length and padding after it
        L = int(p["lengths"][b])
        xs = np.zeros((12, 1, 24), np.float32)
        xs[:L, 0] = p["x"][:L, b]
        one = w.forward(
            xs, p["h0"][b : b + 1], p["c0"][b : b + 1], np.array([L], np.int64), True, False
        )
        assert np.array_equal(one[0][:, 0], full[0][:, b])
        assert np.array_equal(one[1][0], full[1][b]) and np.array_equal(one[2][0], full[2][b])


def test_cache_bytes_per_step_is_documented_size():
    assert _C.cache_bytes_per_step("lstm", 64, 512, 4) == 4 * 64 * 512 * 7
    assert _C.cache_bytes_per_step("rnn_tanh", 1, 8, 8) == 8 * 8 * 2


@pytest.mark.parametrize("name", ISAS)
def test_fastrnn_isa_environment_variable_forces_the_path(name):
    """FASTRNN_ISA is read at import: a fresh interpreter must run the named path, or refuse a
    path this CPU lacks with a clear error instead of crashing."""
    code = "import fastrnn; print(fastrnn.backends()['active'])"
    env = dict(os.environ, FASTRNN_ISA=name)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if name in _C.backends()["supported"]:
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == name
    else:
        assert p.returncode != 0 and "does not support" in p.stderr


def test_unknown_fastrnn_isa_is_a_clear_error():
    code = "import fastrnn; fastrnn.backends()"
    env = dict(os.environ, FASTRNN_ISA="sse9")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert p.returncode != 0
    assert "unknown ISA 'sse9'" in p.stderr and "Segmentation" not in p.stderr
