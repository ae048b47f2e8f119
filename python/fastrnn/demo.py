"""``python -m fastrnn.demo``: which kernels run here, a correctness check, and a timing.

Prints the CPU kernel path and thread count (and whether a GPU path exists), checks an LSTM
forward against a plain float64 NumPy implementation, then times the same forward in fastrnn and
in PyTorch (``torch.nn.LSTM``, same weights and thread count) when torch is installed, or in a
NumPy loop otherwise, and states the ratio of the medians.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import fastrnn

T, B, I, H = 100, 32, 256, 256
REPEAT = 7
_ISA_NAMES = {
    "scalar": "scalar (no SIMD)",
    "avx2": "AVX2+FMA",
    "avx512": "AVX-512",
    "avx512_bf16": "AVX-512 with bfloat16 dot products",
    "amx_bf16": "AVX-512 with AMX bfloat16 tiles",
}


def numpy_lstm(x: np.ndarray, sd: dict[str, np.ndarray]) -> np.ndarray:
    """The textbook LSTM, one matrix product per step, PyTorch's gate order (i, f, g, o)."""
    w_ih, w_hh = sd["weight_ih_l0"], sd["weight_hh_l0"]
    b = sd["bias_ih_l0"] + sd["bias_hh_l0"]
    n = w_hh.shape[1]
    h = np.zeros((x.shape[1], n), x.dtype)
    c = np.zeros_like(h)
    out = []
    for xt in x:
        g = xt @ w_ih.T + h @ w_hh.T + b
        i, f = 1 / (1 + np.exp(-g[:, :n])), 1 / (1 + np.exp(-g[:, n : 2 * n]))
        gg, o = np.tanh(g[:, 2 * n : 3 * n]), 1 / (1 + np.exp(-g[:, 3 * n :]))
        c = f * c + i * gg
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out)


def median_ms(f: Callable[[], Any], repeat: int = REPEAT) -> float:
    f()  # warm-up: packing, allocation, first-touch
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def kernels_line(threads: int) -> str:
    b = fastrnn.backends()
    active = b["active"]
    others = [s for s in b["supported"] if s != active]
    also = f" (FASTRNN_ISA= can pick {', '.join(others)})" if others else ""
    return (
        f"{active}: {_ISA_NAMES.get(active, active)}, {threads} thread{'s' * (threads != 1)}{also}"
    )


def gpu_line() -> str:
    cuda = fastrnn.backends()["cuda"]
    if cuda["available"]:
        names = ", ".join(f"cuda:{d.get('index', i)} {d.get('name', '')}".rstrip()
                          for i, d in enumerate(cuda["devices"]))  # fmt: skip
        return f"{names} (layers made with device='cuda')"
    if cuda["compiled"]:
        return "CUDA module built; no usable GPU on this machine"
    build = str(cuda.get("build") or "").removeprefix("off: ")
    return "not built" + (f" ({build})" if build else "")


def torch_run(
    sd: dict[str, np.ndarray], x: np.ndarray, threads: int, bf16: bool = False
) -> tuple[str, float, np.ndarray] | None:
    """torch.nn.LSTM on the same weights, in inference mode (with bf16: under
    torch.autocast("cpu", bfloat16)): (name, median ms, output); None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    m = torch.nn.LSTM(I, H)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    m.eval()
    xt = torch.from_numpy(x)

    def run() -> Any:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return m(xt)[0]

    name = f"PyTorch {torch.__version__.split('+')[0]}"
    return name, median_ms(run), run().float().numpy()


def autocast_lines(m: Any, sd: dict[str, np.ndarray], x: np.ndarray, ref: np.ndarray,
                   threads: int) -> list[str]:  # fmt: skip
    """fastrnn.autocast next to torch.autocast on the same forward, with their errors."""
    with fastrnn.autocast("bfloat16"):
        t = median_ms(lambda: m(x))
        out, _ = m(x)
    rows = [("fastrnn", t, float(np.abs(out - ref).max()))]
    other = torch_run(sd, x, threads, bf16=True)
    if other is not None:
        rows.append((other[0], other[1], float(np.abs(other[2] - ref).max())))
    width = max(len(r[0]) for r in rows)
    lines = ["  bfloat16 the same forward with bfloat16 products (fastrnn.autocast on AMX tiles"
             + (", torch.autocast" if other is not None else "") + "):"]  # fmt: skip
    for name, ms, e in rows:
        lines.append(f"             {name:<{width}}  {ms:8.2f} ms   max |error| {e:.1e}")
    return lines


def main() -> int:
    threads = fastrnn.get_num_threads()
    print(f"fastrnn {fastrnn.__version__}")
    print(f"  kernels  {kernels_line(threads)}")
    print(f"  GPU      {gpu_line()}")

    m = fastrnn.LSTM(I, H, seed=0).eval()
    sd = m.state_dict()
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    out, _ = m(x)
    ref = numpy_lstm(x.astype(np.float64), {k: v.astype(np.float64) for k, v in sd.items()})
    err = float(np.abs(out - ref).max())
    ok = err < 1e-4
    print(
        f"  check    LSTM forward (T={T}, B={B}, I={I}, H={H}) against a float64 NumPy "
        f"reference: max |error| {err:.1e}, {'ok' if ok else 'MISMATCH'}"
    )

    t_fast = median_ms(lambda: m(x))
    torch_result = torch_run(sd, x, threads)
    other = (
        None if torch_result is None else (f"{torch_result[0]} (torch.nn.LSTM)", torch_result[1])
    )
    if other is None:
        xs = {k: v for k, v in sd.items()}
        other = ("NumPy loop (PyTorch is not installed)",
                 median_ms(lambda: numpy_lstm(x, xs)))  # fmt: skip
    name, t_other = other
    print(f"  speed    the same forward, median of {REPEAT} runs, {threads} threads each:")
    width = max(len(name), len("fastrnn"))
    print(f"             {'fastrnn':<{width}}  {t_fast:8.2f} ms")
    print(f"             {name:<{width}}  {t_other:8.2f} ms")
    ratio = t_other / t_fast
    verdict = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    print(f"           fastrnn is {verdict} than {name.split(' (')[0]} on this machine")
    if fastrnn.backends()["active"] == "amx_bf16":
        print("\n".join(autocast_lines(m, sd, x, ref, threads)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
