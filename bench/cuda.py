"""Side-by-side GPU benchmark: fastrnn's CUDA path vs PyTorch CUDA (cuDNN), LSTM and GRU.

Usage (on a machine with an NVIDIA GPU, fastrnn built with nvcc, and a CUDA build of torch):
    python bench/cuda.py                              # LSTM, GRU x B {1, 8, 64} x H {256, 1024}
                                                      #   x float32, bfloat16
    python bench/cuda.py --cells lstm --batch 64 --hidden 1024 --steps 100 --repeat 50
    python bench/cuda.py --dtypes float64

Both libraries run one layer, one direction, I = H, T = --steps (100), in each of --dtypes
(float32 and bfloat16 by default) with TF32 off on both sides. float32 / float64: fastrnn's products
run on CUDA cores in the input dtype and cuDNN is kept to the same precision, like for like.
bfloat16 / float16 rows: both store 16 bits; fastrnn widens to float32 and runs its products on
CUDA cores (no tensor cores), while cuDNN may use tensor cores - these rows show what 16-bit
storage buys each library, not an equal-arithmetic comparison. Inputs are torch CUDA tensors, passed to
fastrnn without copies. Modes: `fwd` (eval-mode forward; torch under no_grad) and `train` (training
forward + backward of sum(out * d_out)). Every time is the median of --repeat timed calls after
--warmup calls, each call ended by a device synchronization (fastrnn synchronizes before it
returns).

fastrnn runs its standard per-step path (FASTRNN_CUDA_PERSISTENT=0) and, where B <= 8, the dtype
is float32 or float64 and the persistent kernels fit the GPU (`_C_cuda.persistent_plan`), its
persistent small-batch kernels (FASTRNN_CUDA_PERSISTENT=1: one cooperative launch per recurrence,
W_hh slices kept in shared memory); "-" where they do not run.

Prints, per case, milliseconds for each library and path, the ratio torch/fastrnn (fastrnn's
faster path; above 1: fastrnn is faster), the achieved GFLOP/s and their percentage of the GPU's
measured matrix-multiply rate in that dtype (torch.matmul on 8192 x 8192 operands for float32,
4096 otherwise, TF32 off, measured in the same run; in bfloat16 that rate is a tensor-core rate),
and the largest difference between torch's output and either fastrnn path's as a sanity check.
Writes the table to
bench/results/cuda.md and the raw numbers to bench/results/cuda.json.

FLOPs: forward 2*G*H*(I+H)*B*T (G = 4 LSTM, 3 GRU); forward+backward counted as 3x that.
fastrnn's matrix products are its own tiled shared-memory kernels (csrc/cuda/gemm.h), not
cuBLAS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import fastrnn

HERE = Path(__file__).resolve().parent
GATES = {"lstm": 4, "gru": 3}


def parse_list(s: str, cast: Any = int) -> list:
    return [cast(v) for v in s.split(",") if v]


def median_ms(f: Any, torch: Any, repeat: int, warmup: int) -> float:
    for _ in range(warmup):
        f()
    torch.cuda.synchronize()
    start = [torch.cuda.Event(enable_timing=True) for _ in range(repeat)]
    end = [torch.cuda.Event(enable_timing=True) for _ in range(repeat)]
    for i in range(repeat):
        start[i].record()
        f()
        end[i].record()
        torch.cuda.synchronize()
    return float(np.median([s.elapsed_time(e) for s, e in zip(start, end)]))


def fmt_ms(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}"


def matmul_rate(torch: Any, dtype: Any) -> float:
    """GFLOP/s of torch.matmul on large square operands (TF32 off): the reference rate."""
    n = 8192 if dtype == torch.float32 else 4096
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    ms = median_ms(lambda: torch.matmul(a, b), torch, repeat=10, warmup=3)
    return 2.0 * n**3 / (ms * 1e-3) / 1e9


def run_case(torch: Any, cell: str, B: int, H: int, T: int, mode: str, dtype: str,
             repeat: int, warmup: int) -> dict:  # fmt: skip
    tdt = getattr(torch, dtype)
    torch.manual_seed(0)
    tm = getattr(torch.nn, cell.upper())(H, H).to("cuda", tdt)
    fm = getattr(fastrnn, cell.upper())(H, H, dtype=dtype, device="cuda")
    fm.load_state_dict(tm.state_dict())  # torch tensors, bfloat16 ones included
    x = torch.randn(T, B, H, device="cuda", dtype=tdt)
    d_out = torch.randn(T, B, H, device="cuda", dtype=tdt)

    if mode == "fwd":
        fm.eval()
        tm.eval()

        def run_fast() -> Any:
            return fm(x)[0]

        def run_torch() -> Any:
            with torch.no_grad():
                return tm(x)[0]

    else:
        fm.train()
        tm.train()

        def run_fast() -> Any:
            out = fm(x)[0]
            fm.backward(d_out)
            return out

        def run_torch() -> Any:
            tm.zero_grad(set_to_none=True)
            out = tm(x)[0]
            (out * d_out).sum().backward()
            return out

    from fastrnn import _cuda

    want = run_torch().detach().double()
    if dtype in ("float32", "float64"):
        plan = _cuda._backend.persistent_plan(cell, H, B, dtype)
    else:  # the persistent kernels keep float32 or float64 weights only
        plan = {"fits": False, "reason": "16-bit storage"}
    paths = {"standard": "0", "persistent": "1"} if plan["fits"] else {"standard": "0"}
    times: dict[str, float | None] = {"standard": None, "persistent": None}
    diff = 0.0
    saved = os.environ.get("FASTRNN_CUDA_PERSISTENT")
    try:
        for path, env in paths.items():
            os.environ["FASTRNN_CUDA_PERSISTENT"] = env
            diff = max(diff, float((run_fast().double() - want).abs().max()))
            times[path] = median_ms(run_fast, torch, repeat, warmup)
    finally:
        if saved is None:
            os.environ.pop("FASTRNN_CUDA_PERSISTENT", None)
        else:
            os.environ["FASTRNN_CUDA_PERSISTENT"] = saved
    t_fast = min(t for t in times.values() if t is not None)
    t_torch = median_ms(run_torch, torch, repeat, warmup)
    flops = 2.0 * GATES[cell] * H * (H + H) * B * T * (3 if mode == "train" else 1)
    return {
        "cell": cell, "B": B, "H": H, "T": T, "mode": mode, "dtype": dtype,
        "standard_ms": times["standard"], "persistent_ms": times["persistent"],
        "persistent_plan": plan, "fastrnn_ms": t_fast, "torch_ms": t_torch,
        "ratio": t_torch / t_fast, "fastrnn_gflops": flops / (t_fast * 1e-3) / 1e9,
        "torch_gflops": flops / (t_torch * 1e-3) / 1e9, "max_diff": diff,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--batch", default="1,8,64")
    ap.add_argument("--hidden", default="256,1024")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--modes", default="fwd,train")
    ap.add_argument("--dtypes", default="float32,bfloat16",
                    help="comma-separated: float32, float64, bfloat16, float16")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "cuda"))
    args = ap.parse_args()
    dtypes = parse_list(args.dtypes, str)
    for dt in dtypes:
        if dt not in ("float32", "float64", "bfloat16", "float16"):
            sys.exit(f"--dtypes: unknown dtype {dt!r}")

    import torch

    cuda = fastrnn.backends()["cuda"]
    if not cuda["available"]:
        sys.exit(f"fastrnn's CUDA path is not usable here: {cuda['reason']}")
    if not torch.cuda.is_available():
        sys.exit("this torch has no CUDA")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False

    gpu = torch.cuda.get_device_name(0)
    peaks = {dt: matmul_rate(torch, getattr(torch, dt)) for dt in dtypes}
    rows = []
    for cell in parse_list(args.cells, str):
        for H in parse_list(args.hidden):
            for B in parse_list(args.batch):
                for mode in parse_list(args.modes, str):
                    for dt in dtypes:  # the dtypes of one case side by side
                        r = run_case(torch, cell, B, H, args.steps, mode, dt, args.repeat,
                                     args.warmup)  # fmt: skip
                        r["fastrnn_pct_peak"] = 100 * r["fastrnn_gflops"] / peaks[dt]
                        r["torch_pct_peak"] = 100 * r["torch_gflops"] / peaks[dt]
                        rows.append(r)
                        print(
                            f"{cell} H={H} B={B} {mode} {dt}: fastrnn {r['standard_ms']:.3f} ms, "
                            f"persistent {fmt_ms(r['persistent_ms'])} ms, "
                            f"torch {r['torch_ms']:.3f} ms, ratio {r['ratio']:.2f}",
                            file=sys.stderr,
                        )

    head = (
        f"GPU: {gpu}; torch {torch.__version__} (cuDNN {torch.backends.cudnn.version()}), "
        f"fastrnn {fastrnn.__version__}; TF32 off, T={args.steps}, I=H; matmul reference rates "
        + ", ".join(f"{dt} {p:.0f} GFLOP/s" for dt, p in peaks.items())
        + "\n\n| cell | H | B | mode | dtype | fastrnn ms | persistent ms | torch ms "
        "| torch/fastrnn | fastrnn % peak | torch % peak | max diff |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    table = head + "".join(
        f"| {r['cell']} | {r['H']} | {r['B']} | {r['mode']} | {r['dtype']} | "
        f"{r['standard_ms']:.3f} | {fmt_ms(r['persistent_ms'])} | {r['torch_ms']:.3f} | "
        f"{r['ratio']:.2f} | {r['fastrnn_pct_peak']:.1f} | "
        f"{r['torch_pct_peak']:.1f} | {r['max_diff']:.1e} |\n"
        for r in rows
    )
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table)
    meta = {"gpu": gpu, "torch": torch.__version__, "peak_gflops": peaks, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
