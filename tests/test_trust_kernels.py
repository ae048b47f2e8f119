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
from conftest import ISAS

import fastrnn
from fastrnn import _C

# --- float32 sigmoid and tanh --------------------------------------------------------------------


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Signed error of float32 results in units of the last place of the exact value."""
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return (got.astype(np.float64) - want) / ulp


@pytest.mark.parametrize("which", [2, 3], ids=["sigmoid", "tanh"])
def test_float32_sigmoid_tanh_within_one_ulp_unbiased_and_saturate_exactly(isa, which):
    rng = np.random.default_rng(which)
    x = np.concatenate(
        [
            np.linspace(-40, 40, 200001),
            rng.uniform(-90, 90, 300000),
            rng.standard_normal(300000),
            np.sign(rng.standard_normal(200000)) * np.exp(rng.uniform(-80, 0, 200000)),
            [30.0, -30.0, 17.0, 9.0, 8.49106, -8.49106],
        ]
    ).astype(np.float32)
    exact = 1 / (1 + np.exp(-x.astype(np.float64))) if which == 2 else np.tanh(x.astype(np.float64))
    got = _C._math(which, x)
    rounded = exact.astype(np.float32)
    # where the correctly rounded value is +-1, the result is exactly +-1 (a saturated gate)
    for one in (1.0,) if which == 2 else (1.0, -1.0):
        at = rounded == one
        assert at.any() and np.all(got[at] == one), f"{int((got[at] != one).sum())} not {one}"
    err = _ulps(got, exact)[np.abs(exact) > 1e-30]
    assert abs(err.mean()) < 0.05, f"biased: mean error {err.mean():.3f} ulp"
    assert np.abs(err).max() <= 1.0, f"max error {np.abs(err).max():.2f} ulp"


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
    with pytest.raises(ValueError, match=r"n: expected an integer >= 1 and <= 512, got"):
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


# --- private entry points: sizes, concurrent ISA switches -----------------------------------------


def test_bleu_id_stats_refuses_overflowing_reference_counts():
    ids = np.array([1, 2, 3], np.int64)
    off = np.array([0, 3], np.int64)
    present = np.ones(1, np.uint8)
    for nrefs in (2**62, 2**63 - 1):  # nrefs * n + 1 wrapped and passed the size check
        with pytest.raises(ValueError, match="refs"):
            _C._bleu_id_stats(ids, off, ids, off, present, nrefs, 4)
    for order in (0, 2**30, 2**40):  # 2 + 2 * order overflowed an int
        with pytest.raises(ValueError, match="max_ngram_order"):
            _C._bleu_id_stats(ids, off, ids, off, present, 1, order)
        with pytest.raises(ValueError, match="max_ngram_order"):
            _C._bleu_scores(np.zeros((1, 4), np.int64), order, "exp", 0.0, False, False)


def test_cache_bytes_per_step_refuses_overflow():
    assert _C.cache_bytes_per_step("lstm", 64, 512, 4) == 4 * 64 * 512 * 7
    with pytest.raises(ValueError, match="overflows"):
        _C.cache_bytes_per_step("lstm", 2**40, 2**30, 4)
    with pytest.raises(ValueError, match="negative"):
        _C.cache_bytes_per_step("lstm", -1, 512, 4)


def test_set_isa_during_a_running_layer_gives_one_isas_result():
    """Switching the ISA while another thread runs the same layer: every call gives bitwise the
    result of one ISA (the packed weights of a call are never re-packed under it)."""
    isas = [i for i in ISAS if i in _C.backends()["supported"]]
    if len(isas) < 2:
        pytest.skip("needs two ISAs")
    before = _C.backends()["active"]
    rng = np.random.default_rng(3)
    H, I = 96, 40
    w = _C.Weights("lstm", *(rng.standard_normal(s).astype(np.float32) * 0.2
                             for s in ((4 * H, I), (4 * H, H))))  # fmt: skip
    x = rng.standard_normal((30, 5, I)).astype(np.float32)
    want = {}
    for name in isas:
        _C.set_isa(name)
        want[name] = w.forward(x)[0]
    stop = threading.Event()

    def switch():
        k = 0
        while not stop.is_set():
            _C.set_isa(isas[k % len(isas)])
            k += 1

    t = threading.Thread(target=switch)
    t.start()
    try:
        for _ in range(60):
            y = w.forward(x)[0]
            assert any(np.array_equal(y, v) for v in want.values()), "matches no ISA"
    finally:
        stop.set()
        t.join()
        _C.set_isa(before)


# --- misaligned arrays ---------------------------------------------------------------------------------


def misaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `a` whose data pointer is not aligned for its dtype."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out.flags.writeable = True
    out[...] = a
    assert out.flags.c_contiguous and (a.itemsize == 1 or not out.flags.aligned)
    return out


def test_misaligned_arrays_give_the_aligned_result():
    rng = np.random.default_rng(4)
    T, B, I, H = 6, 3, 5, 9
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32)
    lengths = np.array([6, 2, 4])
    want = fastrnn.lstm_forward(x, None, None, w_ih, w_hh, lengths=lengths)[0]
    got = fastrnn.lstm_forward(
        misaligned(x), None, None, misaligned(w_ih), misaligned(w_hh), lengths=misaligned(lengths)
    )[0]
    np.testing.assert_array_equal(got, want)
    w = _C.Weights("lstm", w_ih, w_hh)
    np.testing.assert_array_equal(
        w.forward(misaligned(x), None, None, misaligned(lengths))[0], want
    )
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 3))
    np.testing.assert_array_equal(_C.nn_matmul(misaligned(a), misaligned(b)), _C.nn_matmul(a, b))
    dweight = np.zeros((10, 4))
    ids = np.array([1, 3, 1, 9])
    _C.embedding_backward(dweight, misaligned(ids), misaligned(np.ones((4, 4))))
    np.testing.assert_array_equal(dweight.sum(1), [0, 8, 0, 4, 0, 0, 0, 0, 0, 4])
    with pytest.raises(ValueError, match="dweight: expected a writeable, C-contiguous, aligned"):
        _C.embedding_backward(misaligned(dweight), ids, np.ones((4, 4)))
    ids2 = np.array([5, 6, 7], np.int64)
    off = np.array([0, 3], np.int64)
    stats = _C._bleu_id_stats(ids2, off, ids2, off, np.ones(1, np.uint8), 1, 4)
    got = _C._bleu_id_stats(misaligned(ids2), misaligned(off), misaligned(ids2), misaligned(off),
                            misaligned(np.ones(1, np.uint8)), 1, 4)  # fmt: skip
    np.testing.assert_array_equal(got, stats)


# --- bfloat16 inference: a row's result does not depend on its batch ----------------------------


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "gru_reset_before", "lstm"])
def test_bfloat16_rows_do_not_depend_on_the_batch(isa, cell):
    make = {
        "rnn_tanh": lambda: fastrnn.RNN(48, 80, seed=0),
        "gru": lambda: fastrnn.GRU(48, 80, seed=0),
        "gru_reset_before": lambda: fastrnn.GRU(48, 80, reset_after=False, seed=0),
        "lstm": lambda: fastrnn.LSTM(48, 80, peephole=True, seed=0),
    }[cell]
    m = make().eval()
    m.inference_dtype = "bfloat16"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 37, 48)).astype(np.float32)
    x[3, :, :5] = 1e-39  # float32 denormals in the input
    full = m(x)[0]
    for lo, hi in ((0, 1), (1, 3), (3, 6), (6, 14), (14, 37), (5, 6)):
        np.testing.assert_array_equal(m(x[:, lo:hi])[0], full[:, lo:hi], err_msg=f"rows {lo}:{hi}")
