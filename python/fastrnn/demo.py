"""A short demo: run a PyTorch-layout LSTM in fastrnn, check it against a plain NumPy loop, time it.

Run with ``python -m fastrnn.demo``. Prints the kernel path in use, the agreement with NumPy and
the median times of fastrnn and the NumPy loop for one sequence batch."""

from __future__ import annotations

import time

import numpy as np

import fastrnn


def numpy_lstm(x, sd):
    """The textbook LSTM, one matrix product per step, PyTorch's gate order (i, f, g, o)."""
    w_ih, w_hh = sd["weight_ih_l0"], sd["weight_hh_l0"]
    b = sd["bias_ih_l0"] + sd["bias_hh_l0"]
    H = w_hh.shape[1]
    h = np.zeros((x.shape[1], H), x.dtype)
    c = np.zeros_like(h)
    sig = lambda v: 1 / (1 + np.exp(-v))
    out = []
    for xt in x:
        g = xt @ w_ih.T + h @ w_hh.T + b
        i, f, gg, o = (
            sig(g[:, :H]),
            sig(g[:, H : 2 * H]),
            np.tanh(g[:, 2 * H : 3 * H]),
            sig(g[:, 3 * H :]),
        )
        c = f * c + i * gg
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out)


def median_time(f, repeat=5):
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    T, B, I, H = 100, 32, 256, 256
    print(f"fastrnn {fastrnn.__version__}, kernels: {fastrnn.backends()}")
    m = fastrnn.LSTM(I, H, seed=0)
    m.eval()
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    out, _ = m(x)
    ref = numpy_lstm(x, m.state_dict())
    print(f"LSTM T={T} B={B} I={I} H={H}: max |fastrnn - numpy| = {np.abs(out - ref).max():.2e}")
    t_fast = median_time(lambda: m(x))
    t_np = median_time(lambda: numpy_lstm(x, m.state_dict()))
    flops = 2 * 4 * H * (I + H) * B * T
    print(
        f"forward: fastrnn {t_fast * 1e3:.2f} ms ({flops / t_fast / 1e9:.0f} GFLOP/s), "
        f"numpy loop {t_np * 1e3:.2f} ms, speedup {t_np / t_fast:.1f}x"
    )


if __name__ == "__main__":
    main()
