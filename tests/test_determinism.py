"""Determinism: a sequence's results are bitwise the same whatever batch it sits in, whatever
padding follows its end, and whatever the thread count.

"Its results" are everything that depends on that sequence alone: its out, h_n, c_n, dx, dh0 and
dc0 (weight gradients sum over the batch, so only the thread-count check compares them). Sizes
are wide enough (H=40, up to 17 sequences) for the kernels to split work across threads and
across SIMD tails.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fastrnn

VARIANTS = {
    "rnn_tanh": (fastrnn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (fastrnn.RNN, {"nonlinearity": "relu"}),
    "gru": (fastrnn.GRU, {}),
    "gru_reset_before": (fastrnn.GRU, {"reset_after": False}),
    "lstm": (fastrnn.LSTM, {}),
    "lstm_peephole": (fastrnn.LSTM, {"peephole": True}),
}
DTYPES = ["float32", "float64"]
T, I, H = 7, 13, 40


@pytest.fixture
def threads() -> Iterator[None]:
    before = fastrnn.get_num_threads()
    yield
    fastrnn.set_num_threads(before)


def make(variant: str, dtype: str) -> Any:
    cls, kw = VARIANTS[variant]
    return cls(I, H, num_layers=2, bidirectional=True, dtype=dtype, seed=3, **kw)


def run(m: Any, x: np.ndarray, h0: np.ndarray, lengths: np.ndarray, d_out: np.ndarray,
        dh_n: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Forward + backward; per-sequence results with the batch on axis 1, and the weight grads."""
    lstm = isinstance(m, fastrnn.LSTM)
    m.zero_grad()  # gradients accumulate across backwards, as in torch
    out, hn = m(x, (h0, h0 * 0.5) if lstm else h0, lengths=lengths)
    dx, dhx = m.backward(d_out, (dh_n, dh_n * 0.5) if lstm else dh_n)
    res = {"out": out, "dx": dx}
    if lstm:
        res.update(h_n=hn[0], c_n=hn[1], dh0=dhx[0], dc0=dhx[1])
    else:
        res.update(h_n=hn, dh0=dhx)
    return res, {k: g.copy() for k, g in m.grads.items()}


def sequence(dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    """One sequence's data (batch axis of size 1) of length 5 within T=7 steps."""
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    return {
        "x": r(T, 1, I),
        "h0": r(4, 1, H),
        "d_out": r(T, 1, 2 * H),
        "dh_n": r(4, 1, H),
        "len": 5,
    }


def batch_with(
    seq: dict[str, np.ndarray], size: int, pos: int, dtype: str, steps: int = T
) -> tuple:
    """A batch of `size` random sequences of `steps` steps with `seq` at position `pos`; `seq`'s
    steps past its length are filled with noise (they must not matter)."""
    rng = np.random.default_rng(100 + size + pos)
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    x, h0, d_out, dh_n = r(steps, size, I), r(4, size, H), r(steps, size, 2 * H), r(4, size, H)
    lengths = rng.integers(1, steps + 1, size=size)
    n = seq["len"]
    x[:n, pos], d_out[:n, pos] = seq["x"][:n, 0], seq["d_out"][:n, 0]
    h0[:, pos], dh_n[:, pos], lengths[pos] = seq["h0"][:, 0], seq["dh_n"][:, 0], n
    return x, h0, lengths, d_out, dh_n


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_results_whatever_the_batch(variant: str, dtype: str) -> None:
    m = make(variant, dtype)
    seq = sequence(dtype)
    n = seq["len"]
    want = None
    for size, pos in [(1, 0), (5, 0), (5, 3), (17, 16), (17, 8)]:
        res, _ = run(m, *batch_with(seq, size, pos, dtype))
        got = {k: v[:, pos] for k, v in res.items()}
        assert not got["out"][n:].any(), "out must be 0 past the sequence's length"
        assert not got["dx"][n:].any(), "dx must be 0 past the sequence's length"
        if want is None:
            want = got
            continue
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{k}: B={size}, position {pos}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_results_whatever_the_padding(variant: str, dtype: str) -> None:
    """The sequence alone with no padding (T = its length), then with 2 and 9 padding steps in
    a batch of 5: bitwise equal on its own steps."""
    m = make(variant, dtype)
    seq = sequence(dtype, seed=1)
    n = seq["len"]
    alone = {k: (v[:n] if k in ("x", "d_out") else v) for k, v in seq.items() if k != "len"}
    want, _ = run(m, alone["x"], alone["h0"], None, alone["d_out"], alone["dh_n"])
    for steps, size, pos in [(n + 2, 1, 0), (n + 9, 5, 2)]:
        res, _ = run(m, *batch_with(seq, size, pos, dtype, steps=steps))
        for k, v in want.items():
            got = res[k][:, pos]
            if k in ("out", "dx"):
                assert not got[n:].any(), f"{k} must be 0 on padding steps"
                got = got[:n]
            np.testing.assert_array_equal(got, v[:, 0], err_msg=f"{k}: T={steps}, B={size}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_results_whatever_the_thread_count(variant: str, dtype: str, threads: None) -> None:
    m = make(variant, dtype)
    seq = sequence(dtype, seed=2)
    data = batch_with(seq, 17, 4, dtype)
    results = []
    for n in (1, 2, 1):
        fastrnn.set_num_threads(n)
        assert fastrnn.get_num_threads() == n
        results.append(run(m, *data))
    (want, want_g) = results[0]
    for got, got_g in results[1:]:
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        for k in want_g:
            np.testing.assert_array_equal(got_g[k], want_g[k], err_msg=k)


@pytest.mark.parametrize("variant", ["gru", "lstm_peephole"])
def test_cells_same_results_whatever_the_batch(variant: str, threads: None) -> None:
    cls = {"gru": fastrnn.GRUCell, "lstm_peephole": fastrnn.LSTMCell}[variant]
    c = cls(I, H, seed=4, **VARIANTS[variant][1])
    rng = np.random.default_rng(5)
    xs, h = (
        rng.standard_normal((17, I)).astype(np.float32),
        rng.standard_normal((17, H)).astype(np.float32),
    )
    state = (h, h * 0.5) if variant.startswith("lstm") else h
    want = c(xs[3:4], tuple(s[3:4] for s in state) if isinstance(state, tuple) else state[3:4])
    for n in (1, 2):
        fastrnn.set_num_threads(n)
        got = c(xs, state)
        for g, w in zip(got, want) if isinstance(got, tuple) else [(got, want)]:
            np.testing.assert_array_equal(g[3:4], w)


@pytest.mark.parametrize("variant", ["gru", "lstm"])
def test_two_python_threads_at_once_get_the_serial_results(variant: str) -> None:
    """The kernels release the GIL; two layers running in two Python threads at the same time
    must each get exactly what they get alone."""
    layers = [make(variant, "float32"), make(variant, "float32")]
    layers[1].load_state_dict({k: v * 0.5 for k, v in layers[0].state_dict().items()})
    datas = [batch_with(sequence("float32", seed=s), 17, s, "float32") for s in (0, 1)]
    want = [run(m, *d) for m, d in zip(layers, datas)]
    got: list[Any] = [None, None]
    errors: list[Exception] = []

    def work(k: int) -> None:
        try:
            for _ in range(5):
                got[k] = run(layers[k], *datas[k])
        except Exception as e:  # noqa: BLE001 (reported in the main thread)
            errors.append(e)

    threads_ = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    assert not errors, errors
    for (res, grads), (want_res, want_grads) in zip(got, want):
        for k in want_res:
            np.testing.assert_array_equal(res[k], want_res[k], err_msg=k)
        for k in want_grads:
            np.testing.assert_array_equal(grads[k], want_grads[k], err_msg=k)


@pytest.mark.parametrize("variant", ["gru_reset_before", "lstm_peephole"])
def test_recycled_scratch_blocks_do_not_change_results(variant: str) -> None:
    """Training caches and backward work of a megabyte or more are recycled through a pool (their
    old contents are still there); interleaving layers of different sizes, with contexts alive at
    the same time and released out of order, must give exactly the results each gets alone."""
    cls, kw = VARIANTS[variant]
    rng = np.random.default_rng(7)
    sizes = [(48, 24, 64), (64, 32, 96)]  # (T, B, H): caches of 2 to 6 MB
    layers = [cls(H_, H_, bidirectional=True, seed=s, **kw) for s, (_, _, H_) in enumerate(sizes)]
    data = [rng.standard_normal((T_, B_, H_)).astype(np.float32) for T_, B_, H_ in sizes]
    grads_out = [rng.standard_normal((T_, B_, 2 * H_)).astype(np.float32) for T_, B_, H_ in sizes]

    def alone(k: int) -> tuple:
        layers[k].zero_grad()  # gradients accumulate across backwards, as in torch
        out, _ = layers[k](data[k])
        dx, _ = layers[k].backward(grads_out[k])
        return out, dx, {n: g.copy() for n, g in layers[k].grads.items()}

    want = [alone(0), alone(1)]
    for order in ([0, 1, 1, 0], [1, 0, 0, 1]):
        outs = {}
        for k in order[:2]:
            outs[k] = layers[k](data[k])[0]  # each layer keeps its context until backward
        for k in order[2:]:
            layers[k].zero_grad()
            dx, _ = layers[k].backward(grads_out[k])
            np.testing.assert_array_equal(outs[k], want[k][0])
            np.testing.assert_array_equal(dx, want[k][1])
            for name, g in want[k][2].items():
                np.testing.assert_array_equal(layers[k].grads[name], g, err_msg=name)
