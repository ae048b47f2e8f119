"""Side-by-side benchmark: fastrnn vs PyTorch CPU vs ONNX Runtime vs plain NumPy.

Usage:
    python bench/run.py                 # the core cases (a few minutes on 2 cores)
    python bench/run.py --full          # the whole grid: cells x H x B x modes, 1 and 2 threads
    python bench/run.py --threads 1     # every case on one thread
    python bench/run.py --libs fastrnn,torch --cells lstm --hidden 512 --batch 64
    python bench/run.py --full --cells lstm --libs fastrnn,torch --modes stream,stream_layer

Prints a markdown table and writes bench/results/results.json and results.md. Every time is the
median of --repeat calls after a warm-up (with --runs N: the median over N runs of the whole
suite, for a shared machine whose speed drifts between runs); each library runs in its own
subprocess, so their thread pools never compete. Reported per case: milliseconds per library,
GFLOP/s and % of the machine's float32 matrix-multiply peak (measured in the same run: the best
of NumPy's BLAS as shipped, the same BLAS with its AVX-512 kernels forced through
OPENBLAS_CORETYPE=SkylakeX, and fastrnn's own GEMM), and the ratio other/fastrnn (above 1:
fastrnn is faster). The committed results: `python bench/run.py --full --repeat 5 --runs 3`.

FLOPs: forward 2*G*H*(I+H)*B*T; forward+backward counted as 3x that. Modes: `fwd` (inference),
`train` (forward + backward), `stream` (B=1, one Python call per step; microseconds per step;
`stream_bf16`: fastrnn's cell in its bfloat16 inference mode against the others' float32 cells;
`stream_layer`: the layer called with T=1 per step, the state passed back, as real-time loops call
nn.LSTM, with fastrnn's cell time and the ratio layer/cell in the note, and the floor of reading
W_ih and W_hh once per step),
`bf16` (fastrnn's bfloat16 inference mode against the others' float32 forward; its error against
fastrnn float32 is reported), `int8` (fastrnn's int8 weights, `fastrnn.quantize_dynamic`, against
the others' float32 forward and torch's int8; fastrnn's own bfloat16 mode is timed on the same
model and reported in the note as int8's speedup over it), `autocast` and `autocast_train`
(fastrnn under `fastrnn.autocast("bfloat16")`: bfloat16 products on AMX tiles, float32 state, error
against float64 reported; its GFLOP/s are a % of the machine's bfloat16 GEMM rate, the best of
torch's and fastrnn's at 2048^3). For B=1 forwards the suite also measures the weight-streaming floor:
T times the time to read the layer's W_hh once with vector loads on the same threads, and reports
fastrnn's time as a multiple of it. Machine details (CPU, caches, library versions) head the
results; with matplotlib installed, results/speedup.png plots fastrnn's speedup vs batch size.
Libraries that are not installed are skipped with a note. Bench dependencies: `pip install
".[bench]" torch==2.13.0`.

Reduced-precision peers, as their users run them: `torch-bf16` is the same torch module under
`torch.autocast("cpu", dtype=torch.bfloat16)` (oneDNN's AMX/AVX512-BF16 kernels where the CPU has
them; forward under inference_mode, and training), `torch-int8` its dynamically quantized copy
(`torch.ao.quantization.quantize_dynamic`, fbgemm; forward at B <= 8). Every reduced-precision row
reports its error against a float64 run of the same weights (max |out - ref| / max |ref|), and the
peak line adds torch's bfloat16 GEMM rate at 2048^3 (the machine's AMX/BF16 matrix rate).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GATES = {"rnn_tanh": 1, "gru": 3, "lstm": 4}
FWD_MODES = ("fwd", "bf16", "int8", "autocast")  # one forward call, inference
TRAIN_MODES = ("train", "autocast_train")  # forward + backward
HERE = Path(__file__).resolve().parent


def median_time(f, repeat: int, min_time: float = 0.05) -> float:
    """Median seconds per call of f; calls are batched so one sample lasts at least min_time."""
    f()
    t = time.perf_counter()
    f()
    once = max(time.perf_counter() - t, 1e-7)
    inner = max(1, int(min_time / once))
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            f()
        samples.append((time.perf_counter() - t) / inner)
    return float(np.median(samples))


def aligned_ones(nbytes: int) -> np.ndarray:
    """float32 ones of `nbytes` bytes starting on a cache line: what the weight-streaming floor
    reads. NumPy's large arrays start 16 bytes past a page, and every unaligned 64-byte load
    then touches two cache lines: that halves the rate read from L2 on this CPU (measured:
    92 against 176 GB/s at 512 KiB), while the packed weights the kernels read are aligned."""
    n = nbytes // 4
    buf = np.ones(n + 16, np.float32)
    start = (-buf.ctypes.data % 64) // 4
    return buf[start : start + n]


def flops(case: dict) -> float:
    G, H, I, B, T = GATES[case["cell"]], case["H"], case["H"], case["B"], case["T"]
    f = 2.0 * G * H * (I + H) * B * T * case.get("layers", 1) * case.get("dirs", 1)
    if case.get("dirs", 1) == 2 and case.get("layers", 1) > 1:  # upper layers see 2H inputs
        f += 2.0 * G * H * H * B * T * (case["layers"] - 1) * 2
    return 3 * f if case["mode"] in TRAIN_MODES else f


def machine_details() -> dict:
    """CPU model, cores and caches (lscpu), and the versions of the libraries compared."""
    info = {"python": sys.version.split()[0], "numpy": np.__version__}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in (
                "Model name",
                "CPU(s)",
                "Thread(s) per core",
                "L1d cache",
                "L2 cache",
                "L3 cache",
            ):
                info[key.strip()] = value.strip()
    except OSError:
        pass
    for name in ("fastrnn", "torch", "onnxruntime"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = "not installed"
    try:
        import fastrnn

        info["fastrnn kernels"] = fastrnn.backends()["active"]
    except ImportError:
        pass
    return info


# ---------------------------------------------------------------------------------------------
# Workers: one library, many cases, in a fresh process.


def torch_module(case, torch):
    cls = {"rnn_tanh": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[case["cell"]]
    torch.manual_seed(0)
    return cls(
        case["H"],
        case["H"],
        num_layers=case.get("layers", 1),
        bidirectional=case.get("dirs", 1) == 2,
    )


def run_fastrnn(case, x, repeat):
    import fastrnn

    cls = {"rnn_tanh": fastrnn.RNN, "gru": fastrnn.GRU, "lstm": fastrnn.LSTM}[case["cell"]]
    m = cls(
        case["H"],
        case["H"],
        num_layers=case.get("layers", 1),
        bidirectional=case.get("dirs", 1) == 2,
        seed=0,
    )
    if case["mode"] in FWD_MODES:
        m.eval()
        extra = {}
        if case["mode"] in ("bf16", "int8", "autocast"):
            ref = cls(
                case["H"], case["H"], num_layers=case.get("layers", 1),
                bidirectional=case.get("dirs", 1) == 2, dtype="float64",
            ).eval()  # fmt: skip
            ref.load_state_dict(m.state_dict())
            want = ref(x.astype(np.float64))[0]
            if case["mode"] == "autocast":  # bfloat16 products, float32 state (AMX tiles)
                with fastrnn.autocast("bfloat16"):
                    extra["rel_err"] = _rel_err(m(x)[0], want)
                    return median_time(lambda: m(x), repeat), extra
            m.inference_dtype = "bfloat16"
            if case["mode"] == "int8":  # fastrnn's own bfloat16 mode, the peer to beat
                extra["rel_err_bf16"] = _rel_err(m(x)[0], want)
                extra["bf16_s"] = median_time(lambda: m(x), repeat)
                m = fastrnn.quantize_dynamic(m)
            extra["rel_err"] = _rel_err(m(x)[0], want)
        t = median_time(lambda: m(x), repeat)
        if case["B"] == 1 and case.get("layers", 1) == 1 and case.get("dirs", 1) == 1:
            from fastrnn import _C

            nbytes = m.state_dict()["weight_hh_l0"].nbytes
            if case["mode"] == "bf16":
                nbytes //= 2  # the same bytes as bfloat16
            if case["mode"] == "int8":
                nbytes //= 4  # the same bytes as int8
            w_hh = aligned_ones(nbytes)
            threads = fastrnn.get_num_threads()
            extra["floor_s"] = case["T"] * median_time(
                lambda: _C._stream_read(w_hh, threads), repeat
            )
        return t, extra
    if case["mode"] in TRAIN_MODES:
        m.train()
        out = m(x)[0]
        d = np.ones_like(out)
        m.compute_dtype = "bfloat16" if case["mode"] == "autocast_train" else None

        def step():
            m(x)
            m.backward(d, None)

        return median_time(step, repeat)
    cell_cls = {"rnn_tanh": fastrnn.RNNCell, "gru": fastrnn.GRUCell, "lstm": fastrnn.LSTMCell}
    cell = cell_cls[case["cell"]](case["H"], case["H"]).eval()  # inference, as torch's below
    if case["mode"] == "stream_bf16":
        cell.inference_dtype = "bfloat16"
    h = np.zeros((1, case["H"]), np.float32)
    state = (h, h.copy()) if case["cell"] == "lstm" else h

    def loop():
        s = state
        for t in range(x.shape[0]):
            s = cell(x[t], s)

    cell_s = median_time(loop, repeat) / x.shape[0]
    if case["mode"] != "stream_layer":
        return cell_s
    # The layer fed one step at a time (x[t : t + 1], the state passed back), as real-time loops
    # call nn.LSTM; next to the cell, and to the floor: reading W_ih and W_hh once per step.
    m.eval()
    from fastrnn import _C

    def layer_loop():
        s = None
        for t in range(x.shape[0]):
            s = m(x[t : t + 1], s)[1]

    w = aligned_ones(sum(v.nbytes for v in m.state_dict().values() if v.ndim == 2))
    threads = fastrnn.get_num_threads()
    extra = {"cell_s": cell_s, "floor_s": median_time(lambda: _C._stream_read(w, threads), repeat)}
    return median_time(layer_loop, repeat) / x.shape[0], extra


def run_torch(case, x, repeat):
    import torch

    m = torch_module(case, torch)
    xt = torch.from_numpy(x)
    if case["mode"] in FWD_MODES:
        with torch.inference_mode():
            return median_time(lambda: m(xt), repeat)
    if case["mode"] in TRAIN_MODES:
        xg = xt.clone().requires_grad_()

        def step():
            out = m(xg)[0]
            out.backward(torch.ones_like(out))

        return median_time(step, repeat)
    if case["mode"] == "stream_layer":

        def layer_loop():
            s = None
            with torch.inference_mode():
                for t in range(xt.shape[0]):
                    s = m(xt[t : t + 1], s)[1]

        return median_time(layer_loop, repeat) / x.shape[0]
    cell_cls = {"rnn_tanh": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}
    cell = cell_cls[case["cell"]](case["H"], case["H"])
    h = torch.zeros(1, case["H"])
    state = (h, h.clone()) if case["cell"] == "lstm" else h

    def loop():
        s = state
        with torch.inference_mode():
            for t in range(xt.shape[0]):
                s = cell(xt[t], s)

    return median_time(loop, repeat) / x.shape[0]


def _rel_err(out, ref) -> float:
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def run_torch_reduced(case, x, repeat, kind):
    """torch in bfloat16 autocast (kind "bf16") or dynamically quantized to int8 ("int8")."""
    import torch

    m = torch_module(case, torch)
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        ref = m.double()(xt.double())[0].numpy()
        m.float()
    if kind == "int8":
        if case["mode"] not in FWD_MODES or case["B"] > 8:
            return None
        # quantize_dynamic swaps submodules only: the layer goes in a container
        q = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(m), {type(m)}, dtype=torch.qint8
        )[0]
        with torch.inference_mode():
            err = _rel_err(q(xt)[0], ref)
            return median_time(lambda: q(xt), repeat), {"rel_err": err}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    if case["mode"] in FWD_MODES:
        with torch.inference_mode(), autocast:
            err = _rel_err(m(xt)[0].float(), ref)
            return median_time(lambda: m(xt), repeat), {"rel_err": err}
    if case["mode"] in TRAIN_MODES:
        xg = xt.clone().requires_grad_()

        def step():
            with autocast:
                out = m(xg)[0]
            out.float().backward(torch.ones_like(out, dtype=torch.float32))

        return median_time(step, repeat)
    return None


def run_onnxruntime(case, x, repeat, threads):
    if case["mode"] not in FWD_MODES:
        return None
    import tempfile

    import onnxruntime as ort
    import torch

    m = torch_module(case, torch)
    path = Path(tempfile.mkdtemp()) / "model.onnx"
    torch.onnx.export(m, (torch.from_numpy(x),), str(path), input_names=["x"], dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return median_time(lambda: sess.run(None, {"x": x}), repeat)


def run_numpy(case, x, repeat):
    if case["mode"] not in FWD_MODES or case.get("layers", 1) > 1 or case.get("dirs", 1) > 1:
        return None
    G, H = GATES[case["cell"]], case["H"]
    rng = np.random.default_rng(0)
    w_ih = rng.uniform(-0.05, 0.05, (G * H, H)).astype(np.float32)
    w_hh = rng.uniform(-0.05, 0.05, (G * H, H)).astype(np.float32)
    b = np.zeros(G * H, np.float32)

    def sig(v):
        return 1 / (1 + np.exp(-v))

    def forward():
        h = np.zeros((x.shape[1], H), np.float32)
        c = np.zeros_like(h)
        xp = (x.reshape(-1, H) @ w_ih.T + b).reshape(x.shape[0], x.shape[1], G * H)
        for t in range(x.shape[0]):
            g = xp[t] + h @ w_hh.T
            if case["cell"] == "lstm":
                i, f, gg, o = (
                    sig(g[:, :H]),
                    sig(g[:, H : 2 * H]),
                    np.tanh(g[:, 2 * H : 3 * H]),
                    sig(g[:, 3 * H :]),
                )
                c = f * c + i * gg
                h = o * np.tanh(c)
            elif case["cell"] == "gru":  # reset-after, biases zero
                r, z = sig(g[:, :H]), sig(g[:, H : 2 * H])
                n = np.tanh(xp[t][:, 2 * H :] + r * (h @ w_hh[2 * H :].T))
                h = (1 - z) * n + z * h
            else:
                h = np.tanh(g)

    return median_time(forward, repeat)


def worker(lib: str, cases: list, repeat: int) -> None:
    threads = cases[0]["threads"]
    if lib == "fastrnn":
        import fastrnn

        fastrnn.set_num_threads(threads)
    elif lib in ("torch", "torch-bf16", "torch-int8", "onnxruntime"):
        import torch

        torch.set_num_threads(threads)
    results = []
    for case in cases:
        x = (
            np.random.default_rng(1)
            .standard_normal((case["T"], case["B"], case["H"]))
            .astype(np.float32)
        )
        try:
            if lib == "fastrnn":
                t = run_fastrnn(case, x, repeat)
            elif lib == "torch":
                t = run_torch(case, x, repeat)
            elif lib in ("torch-bf16", "torch-int8"):
                t = run_torch_reduced(case, x, repeat, lib.split("-")[1])
            elif lib == "onnxruntime":
                t = run_onnxruntime(case, x, repeat, threads)
            else:
                t = run_numpy(case, x, repeat)
        except Exception as e:  # a library that cannot run a case is reported, not fatal
            print(f"# {lib} {case}: {type(e).__name__}: {e}", file=sys.stderr)
            t = None
        t, extra = t if isinstance(t, tuple) else (t, {})
        results.append({"t": t, **extra})
    print(json.dumps(results))


def peak_worker(threads: int) -> None:
    """float32 GEMM GFLOP/s at 2048^3: NumPy's BLAS, and fastrnn's own GEMM."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    out = {"numpy": 2 * n**3 / median_time(lambda: a @ a, 5) / 1e9}
    try:
        from fastrnn import _C

        _C.set_num_threads(threads)
        out["fastrnn"] = 2 * n**3 / median_time(lambda: _C.nn_matmul(a, a), 5) / 1e9
        if "amx_bf16" in _C.backends()["supported"]:  # the AMX tiles' rate (autocast's GEMM)
            out["fastrnn_bf16"] = (
                2 * n**3 / median_time(lambda: _C.nn_matmul(a, a, autocast=True), 5) / 1e9
            )
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(threads)
        ab = torch.from_numpy(a).to(torch.bfloat16)
        out["torch_bf16"] = 2 * n**3 / median_time(lambda: ab @ ab, 5) / 1e9
    except ImportError:
        pass
    print(json.dumps(out))


def subprocess_json(args: list, env_extra: dict) -> object:
    env = dict(os.environ, **env_extra)
    p = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())] + args,
        env=env,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr)
        return None
    sys.stderr.write("".join(line + "\n" for line in p.stderr.splitlines() if line.startswith("#")))
    return json.loads(p.stdout.strip().splitlines()[-1])


def thread_env(threads: int) -> dict:
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def measure_peak(threads: int) -> dict:
    env = thread_env(threads)
    default = subprocess_json(["--peak-worker", str(threads)], env) or {}
    forced = (
        subprocess_json(["--peak-worker", str(threads)], dict(env, OPENBLAS_CORETYPE="SkylakeX"))
        or {}
    )
    peak = {
        "numpy_blas": default.get("numpy"),
        "numpy_blas_avx512": forced.get("numpy"),
        "fastrnn_gemm": default.get("fastrnn"),
    }
    peak["peak"] = max(v for v in peak.values() if v)
    peak["bf16_gemm_torch"] = default.get("torch_bf16")  # not part of the float32 peak
    peak["bf16_gemm_fastrnn"] = default.get("fastrnn_bf16")
    return peak


def plot_speedup(rows: list, path: Path) -> None:
    """fastrnn's speedup over each library vs batch size, one panel per cell (forward, H=512)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("# matplotlib not installed: no chart", file=sys.stderr)
        return
    cells = sorted({r["case"]["cell"] for r in rows})
    fig, axes = plt.subplots(1, len(cells), figsize=(4.5 * len(cells), 3.6), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        for lib in ("torch", "onnxruntime", "numpy"):
            pts = sorted(
                (r["case"]["B"], r[f"ratio_{lib}"])
                for r in rows
                if r["case"]["cell"] == cell
                and r["case"]["mode"] == "fwd"
                and r["case"]["H"] == 512
                and r["case"]["threads"] == 2
                and r.get(f"ratio_{lib}")
                and r["case"].get("layers", 1) == 1
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"vs {lib}")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{cell} forward, H=512, 2 threads")
        ax.set_xlabel("batch size")
        ax.set_ylabel("speedup (other time / fastrnn time)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# issue #12's autocast targets: forward at B=64 (H=512, 1024), B=16 and B=1 (H=256..1024),
# training at B=64
AUTOCAST_CASES = [
    ("lstm", 512, 64, "autocast"),
    ("lstm", 1024, 64, "autocast"),
    ("lstm", 512, 16, "autocast"),
    ("gru", 512, 64, "autocast"),
    ("lstm", 256, 1, "autocast"),
    ("lstm", 512, 1, "autocast"),
    ("lstm", 1024, 1, "autocast"),
    ("lstm", 512, 64, "autocast_train"),
    ("gru", 512, 64, "autocast_train"),
]


def build_cases(args) -> list:
    cases = []
    cells = args.cells.split(",")
    if args.full:
        for threads in [1, 2] if args.threads is None else [args.threads]:
            for cell in cells:
                for H in (128, 256, 512, 1024):
                    for B in (1, 16, 64):
                        if threads == 1 and not (H == 512 and B in (1, 64)):
                            continue  # one thread: representative shapes only
                        for mode in ("fwd", "train"):
                            cases.append(
                                dict(cell=cell, H=H, B=B, T=100, mode=mode, threads=threads)
                            )
                    if cell == "lstm" and H in (128, 512):
                        cases.append(
                            dict(cell=cell, H=H, B=1, T=100, mode="stream_layer", threads=threads)
                        )
                    if threads == 2:
                        cases.append(
                            dict(cell=cell, H=H, B=1, T=100, mode="stream", threads=threads)
                        )
                        if H in (128, 512):
                            cases.append(
                                dict(cell=cell, H=H, B=1, T=100, mode="stream_bf16", threads=2)
                            )
                        if H >= 256:
                            cases.append(
                                dict(cell=cell, H=H, B=1, T=100, mode="bf16", threads=threads)
                            )
                        if H >= 512 and cell != "rnn_tanh":
                            cases.append(
                                dict(cell=cell, H=H, B=1, T=100, mode="int8", threads=threads)
                            )
            cases.append(
                dict(cell="lstm", H=256, B=16, T=100, mode="fwd", layers=2, dirs=2, threads=threads)
            )
            if threads == 2:
                for cell, H, B, mode in AUTOCAST_CASES:
                    if cell in cells:
                        cases.append(dict(cell=cell, H=H, B=B, T=100, mode=mode, threads=2))
        return cases
    threads = args.threads or 2
    hidden = [int(h) for h in args.hidden.split(",")] if args.hidden else None
    batch = [int(b) for b in args.batch.split(",")] if args.batch else None
    core = [
        ("lstm", 512, 64),
        ("lstm", 256, 1),
        ("gru", 512, 64),
        ("rnn_tanh", 512, 64),
        ("lstm", 1024, 64),
        ("gru", 256, 1),
    ]
    for cell, H, B in core:
        if cell not in cells or (hidden and H not in hidden) or (batch and B not in batch):
            continue
        for mode in ("fwd", "train"):
            cases.append(dict(cell=cell, H=H, B=B, T=100, mode=mode, threads=threads))
    if "lstm" in cells:
        cases.append(dict(cell="lstm", H=128, B=1, T=100, mode="stream", threads=threads))
        cases.append(dict(cell="lstm", H=128, B=1, T=100, mode="stream_bf16", threads=threads))
        cases.append(dict(cell="lstm", H=128, B=1, T=100, mode="stream_layer", threads=threads))
        cases.append(dict(cell="lstm", H=512, B=1, T=100, mode="fwd", threads=threads))
        cases.append(dict(cell="lstm", H=512, B=1, T=100, mode="bf16", threads=threads))
    for cell, H, B, mode in AUTOCAST_CASES:  # bfloat16 products against torch's autocast
        if cell in cells and (not hidden or H in hidden) and (not batch or B in batch):
            cases.append(dict(cell=cell, H=H, B=B, T=100, mode=mode, threads=threads))
    if batch is None or 1 in batch:  # int8 weights (B=1, weights beyond L2)
        for cell in ("lstm", "gru"):
            for H in (512, 1024):
                if cell in cells and (not hidden or H in hidden):
                    cases.append(dict(cell=cell, H=H, B=1, T=100, mode="int8", threads=threads))
    return cases


def _median(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def merge_runs(run_peaks: list, run_times: list, run_extras: list) -> tuple:
    """Per-case medians over whole-suite runs: of each library's time, of each peak, and of
    fastrnn's numeric extras (the floor); the per-run times stay in the extras as `runs_s`."""
    peaks = {
        t: {k: _median([p[t][k] for p in run_peaks]) for k in run_peaks[0][t]} for t in run_peaks[0]
    }
    times = {
        lib: [_median([rt[lib][i] for rt in run_times]) for i in range(len(run_times[0][lib]))]
        for lib in run_times[0]
    }
    extras = {}
    for lib in run_extras[0]:
        merged = []
        for i in range(len(run_extras[0][lib])):
            e = dict(run_extras[-1][lib][i])
            for k, v in e.items():
                if isinstance(v, float):
                    e[k] = _median([rx[lib][i].get(k) for rx in run_extras])
            if len(run_times) > 1:
                e["runs_s"] = [rt[lib][i] for rt in run_times]
            merged.append(e)
        extras[lib] = merged
    return peaks, times, extras


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--libs", default="fastrnn,torch,torch-bf16,torch-int8,onnxruntime,numpy")
    ap.add_argument("--cells", default="rnn_tanh,gru,lstm")
    ap.add_argument("--hidden")
    ap.add_argument("--batch")
    ap.add_argument("--modes", help="only the cases of these modes, e.g. stream,stream_layer")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument(
        "--runs", type=int, default=1, help="repeat the whole suite; report per-case medians"
    )
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--cases-json", help=argparse.SUPPRESS)
    ap.add_argument("--peak-worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peak_worker:
        return peak_worker(args.peak_worker)
    if args.worker:
        return worker(args.worker, json.loads(args.cases_json), args.repeat)

    cases = build_cases(args)
    if args.modes:
        cases = [c for c in cases if c["mode"] in args.modes.split(",")]
    libs = args.libs.split(",")
    by_threads = sorted({c["threads"] for c in cases})
    # per run: peaks[t], and per library the time and fastrnn's extras of every case
    run_peaks, run_times, run_extras = [], [], []
    for run in range(args.runs):
        if args.runs > 1:
            print(f"# run {run + 1} of {args.runs}", file=sys.stderr)
        peaks = {t: measure_peak(t) for t in by_threads}
        for t, p in peaks.items():
            print(
                f"# float32 GEMM GFLOP/s, {t} thread(s): "
                + ", ".join(f"{k} {v:.0f}" for k, v in p.items() if v)
            )
        times = {lib: [None] * len(cases) for lib in libs}
        extras = {lib: [{} for _ in cases] for lib in libs}
        for lib in libs:
            for t in by_threads:
                idx = [i for i, c in enumerate(cases) if c["threads"] == t]
                res = subprocess_json(
                    [
                        "--worker",
                        lib,
                        "--repeat",
                        str(args.repeat),
                        "--cases-json",
                        json.dumps([cases[i] for i in idx]),
                    ],
                    thread_env(t),
                )
                if res is None:
                    print(f"# {lib}: not available, skipped", file=sys.stderr)
                    continue
                for i, r in zip(idx, res):
                    times[lib][i] = r["t"]
                    extras[lib][i] = {k: v for k, v in r.items() if k != "t"}
        run_peaks.append(peaks)
        run_times.append(times)
        run_extras.append(extras)
    peaks, times, extras = merge_runs(run_peaks, run_times, run_extras)

    rows = []
    head = (
        ["case", "thr"]
        + [f"{lib} ms" for lib in libs]
        + ["fastrnn GF/s", "% peak"]
        + [f"{lib}/fastrnn" for lib in libs if lib != "fastrnn"]
        + ["fastrnn/floor", "note"]
    )
    for i, c in enumerate(cases):
        name = f"{c['cell']} {c['mode']} H={c['H']} B={c['B']}"
        if c.get("layers", 1) > 1 or c.get("dirs", 1) > 1:
            name += f" L={c['layers']} D={c['dirs']}"
        stream = c["mode"].startswith("stream")
        unit = 1e6 if stream else 1e3
        ft = times.get("fastrnn", [None] * len(cases))[i]
        row = {"case": c, "times_s": {lib: times[lib][i] for lib in libs}}
        cells_ = [name + (" (us/step)" if stream else ""), str(c["threads"])]
        cells_ += [f"{times[lib][i] * unit:.3f}" if times[lib][i] else "-" for lib in libs]
        if ft and not stream:
            gf = flops(c) / ft / 1e9
            row["gflops"] = gf
            p = peaks[c["threads"]]
            if c["mode"].startswith("autocast"):  # against the machine's bfloat16 GEMM rate
                bf = max(
                    v for v in (p.get("bf16_gemm_torch"), p.get("bf16_gemm_fastrnn"), 1.0) if v
                )
                row["pct_peak_bf16"] = 100 * gf / bf
                cells_ += [f"{gf:.0f}", f"{row['pct_peak_bf16']:.0f}% bf16"]
            else:
                row["pct_peak"] = 100 * gf / p["peak"]
                cells_ += [f"{gf:.0f}", f"{row['pct_peak']:.0f}%"]
        else:
            cells_ += ["-", "-"]
        for lib in libs:
            if lib == "fastrnn":
                continue
            r = times[lib][i] / ft if (ft and times[lib][i]) else None
            row[f"ratio_{lib}"] = r
            cells_.append(f"{r:.2f}x" if r else "-")
        extra = extras.get("fastrnn", [{}] * len(cases))[i]
        row.update(extra)
        floor = extra.get("floor_s")
        cells_.append(f"{ft / floor:.2f}x" if (ft and floor) else "-")
        errs = []
        if extra.get("cell_s") and ft:
            row["ratio_layer_cell"] = ft / extra["cell_s"]
            errs.append(
                f"fastrnn cell {extra['cell_s'] * 1e6:.2f} us/step, layer/cell {ft / extra['cell_s']:.2f}x"
            )
        if extra.get("bf16_s") and ft:
            row["ratio_fastrnn_bf16"] = extra["bf16_s"] / ft
            errs.append(
                f"fastrnn bf16 {extra['bf16_s'] * 1e3:.3f} ms ({extra['bf16_s'] / ft:.2f}x), "
                f"err {extra['rel_err_bf16']:.1e}"
            )
        for lib in libs:
            err = extras.get(lib, [{}] * len(cases))[i].get("rel_err")
            if err is not None:
                row[f"rel_err_{lib}"] = err
                errs.append(f"{lib} err {err:.1e}")
        cells_.append("; ".join(errs))
        rows.append((row, cells_))

    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(cells_) + " |" for _, cells_ in rows]
    text = "\n".join(md)
    print(text)
    machine = machine_details()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = [
        f"# fastrnn benchmark ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        "Command: `python bench/run.py " + " ".join(sys.argv[1:]) + "`",
        "",
    ]
    if args.runs > 1:
        header += [
            f"Every figure is the median over {args.runs} runs of the whole suite (each run's "
            f"figures are medians of {args.repeat} calls); peaks likewise.",
            "",
        ]
    header += [f"- {k}: {v}" for k, v in machine.items()] + [""]
    header += [
        f"float32 GEMM GFLOP/s, {t} thread(s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in p.items() if v)
        for t, p in peaks.items()
    ]
    (out / "results.md").write_text("\n".join(header) + "\n\n" + text + "\n")
    plot_speedup([r for r, _ in rows], out / "speedup.png")
    (out / "results.json").write_text(
        json.dumps({"machine": machine, "peaks": peaks, "results": [r for r, _ in rows]}, indent=1)
    )


if __name__ == "__main__":
    main()
