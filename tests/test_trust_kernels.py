"""Regression tests for defects found by outside checks of the compiled kernels: the float32
sigmoid/tanh, threads across fork, thread-count bounds, concurrent ISA switches and misaligned
arrays. Each failed before its fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import reference as ref

import fastrnn
from fastrnn import _C

ISAS = ("scalar", "avx2", "avx512", "avx512_bf16")


@pytest.fixture(params=ISAS)
def isa(request):
    name = request.param
    if name not in _C.backends()["supported"]:
        pytest.skip(f"this CPU does not support {name}")
    before = _C.backends()["active"]
    _C.set_isa(name)
    yield name
    _C.set_isa(before)


# --- float32 sigmoid and tanh --------------------------------------------------------------------


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Signed error of float32 results in units of the last place of the exact value."""
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return (got.astype(np.float64) - want) / ulp


@pytest.mark.parametrize("which", [2, 3], ids=["sigmoid", "tanh"])
def test_float32_sigmoid_tanh_saturate_exactly_and_are_unbiased(isa, which):
    x = np.concatenate([np.linspace(-40, 40, 200001), [30.0, -30.0, 17.0, 9.0]]).astype(np.float32)
    exact = 1 / (1 + np.exp(-x.astype(np.float64))) if which == 2 else np.tanh(x.astype(np.float64))
    got = _C._math(which, x)
    rounded = exact.astype(np.float32)
    # where the correctly rounded value is +-1, the result is exactly +-1 (a saturated gate)
    for one in (1.0,) if which == 2 else (1.0, -1.0):
        at = rounded == one
        assert at.any() and np.all(got[at] == one), f"{int((got[at] != one).sum())} not {one}"
    err = _ulps(got, exact)[np.abs(exact) > 1e-30]
    assert abs(err.mean()) < 0.05, f"biased: mean error {err.mean():.3f} ulp"
    assert np.abs(err).max() <= 3.0, f"max error {np.abs(err).max():.2f} ulp"


def _saturated_lstm(T, reverse, peephole):
    """Forget and input gates saturated open: c grows by tanh(0.5) per step, exactly."""
    H = 3
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, 2, 2)).astype(np.float32) * 0.01
    w_ih = np.zeros((4 * H, 2), np.float32)
    w_hh = np.zeros((4 * H, H), np.float32)
    b = np.concatenate([np.full(H, 30), np.full(H, 30), np.full(H, 0.5), np.full(H, 30)])
    b = b.astype(np.float32)
    p = np.full(3 * H, 0.01, np.float32) if peephole else None
    return x, w_ih, w_hh, b, np.zeros(4 * H, np.float32), p


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_long_saturated_lstm_matches_float64(isa, reverse, peephole):
    T = 10000
    x, w_ih, w_hh, b_ih, b_hh, p = _saturated_lstm(T, reverse, peephole)
    y, h, c, _ = fastrnn.lstm_forward(
        x, None, None, w_ih, w_hh, b_ih, b_hh, peephole=p, reverse=reverse
    )
    f64 = [a.astype(np.float64) if a is not None else None for a in (x, w_ih, w_hh, b_ih, b_hh, p)]
    _, h_ref, c_ref, _ = ref.forward("lstm", f64[0], None, None, *f64[1:5], f64[5], None, reverse)
    # float32 accumulation of 10,000 equal terms drifts ~5e-6; the biased gates drifted 3e-4
    np.testing.assert_allclose(c, c_ref, rtol=2e-5)
    np.testing.assert_allclose(h, h_ref, rtol=2e-5)


def test_long_saturated_gru_update_gate_keeps_the_state(isa):
    """z = sigmoid(30) = 1 keeps h exactly: a z below 1 would leak h towards n every step."""
    T, H = 10000, 5
    x = np.zeros((T, 1, 1), np.float32)
    w_ih, w_hh = np.zeros((3 * H, 1), np.float32), np.zeros((3 * H, H), np.float32)
    b = np.concatenate([np.zeros(H), np.full(H, 30), np.zeros(H)]).astype(np.float32)
    h0 = np.linspace(-0.9, 0.9, H, dtype=np.float32)[None]
    _, h, _ = fastrnn.gru_forward(x, h0, w_ih, w_hh, b, np.zeros_like(b))
    np.testing.assert_array_equal(h, h0)


# --- threads ---------------------------------------------------------------------------------------


def _run(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


FORK_PRELUDE = """
    import os, numpy as np, fastrnn
    fastrnn.set_num_threads(2)
    m = fastrnn.LSTM(64, 256, num_layers=2)
    x = np.random.default_rng(0).standard_normal((20, 8, 64)).astype(np.float32)
    y0, _ = m(x)
"""


def test_forked_child_runs_with_correct_results():
    r = _run(FORK_PRELUDE + """
    pid = os.fork()
    if pid == 0:
        y, _ = m(x)
        dx, _ = m.backward(np.ones_like(y))
        os._exit(0 if np.array_equal(y, y0) and fastrnn.get_num_threads() == 1 else 3)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status))
    """, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0"]


def test_multiprocessing_pool_with_fork():
    r = _run(FORK_PRELUDE + """
    import multiprocessing as mp
    def work(i):
        return float(m(x * i)[0].sum())
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map(work, [1, 2, 3])
    want = [float(m(x * i)[0].sum()) for i in (1, 2, 3)]
    print(got == want)
    """, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True"]


@pytest.mark.parametrize("n", [0, -1, 513, 100000, 2**31, 2**64])
def test_set_num_threads_rejects_out_of_range(n):
    with pytest.raises(ValueError, match=r"n: expected an integer in \[1, 512\], got"):
        fastrnn.set_num_threads(n)
    with pytest.raises((ValueError, TypeError)):
        _C.set_num_threads(n)


def test_thread_count_is_capped_for_every_region():
    before = fastrnn.get_num_threads()
    try:
        fastrnn.set_num_threads(512)
        emb = fastrnn.nn.Embedding(1000, 64)
        ids = np.arange(20000) % 1000
        emb(ids)
        emb.backward(np.ones((20000, 64), np.float32))  # overflowed the stack at 100000 threads
        w = np.ones(1 << 16, np.float32)
        assert _C._stream_read(w, threads=10**6) == pytest.approx(float(1 << 16))
    finally:
        fastrnn.set_num_threads(before)
