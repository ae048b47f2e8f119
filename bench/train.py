"""Training side by side: fastrnn.nn/models against the same models in PyTorch CPU.

Usage:
    python bench/train.py                     # both cases, 2 threads, 60 timed steps each
    python bench/train.py --threads 1 --steps 30 --cases dates
    python bench/train.py --json out.json     # also write the results as JSON

Cases (the two demos' models, same sizes, same data, same initial weights, same optimizer):
  dates   Seq2Seq: char embeddings 32, bidirectional LSTM encoder 2x64, additive attention,
          LSTM decoder 96, batch 128 of synthetic dates (python -m fastrnn.examples.dates);
  charlm  character LSTM language model: embeddings 64, LSTM 256, batch 32 x bptt 64, state
          carried across chunks (python -m fastrnn.examples.charlm).
Each step is forward + loss + backward + gradient clipping + Adam. Each library runs in its own
subprocess (their thread pools never compete); the PyTorch twin loads the fastrnn model's
state_dict, so both start from the same weights and see the same batches. Prints a markdown table:
median milliseconds per step of each, the ratio torch/fastrnn (above 1: fastrnn is faster), and
the loss after the timed steps (equal up to float32 rounding drift). Also prints the embedding
backward scatter-add (C++ in fastrnn) against NumPy formulations.

Needs torch (pip install torch==2.13.0); without it only fastrnn's times are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# --- data and fastrnn models (both subprocesses build the same ones) ---------------------------


def dates_setup(seed: int = 0):
    from fastrnn.examples import dates
    from fastrnn.models import Seq2Seq

    src_vocab, tgt_vocab = dates.make_vocabs()
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), embedding_dim=32, hidden_size=64, decoder_hidden_size=96,
                    cell="lstm", attention="additive", pad_index=tgt_vocab.pad_index,
                    bos_index=tgt_vocab.bos_index, eos_index=tgt_vocab.eos_index, seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed)

    def batches(n: int, batch_size: int = 128):
        out = []
        for _ in range(n):
            ds = dates.random_dates(batch_size, rng)
            out.append(dates.encode_pairs(src_vocab, tgt_vocab, dates.render(ds, rng), ds))
        return out

    return model, batches


def charlm_setup(seed: int = 0):
    from fastrnn.models import RNNLanguageModel, batchify

    V = 100
    model = RNNLanguageModel(V, 64, 256, seed=seed)
    rng = np.random.default_rng(seed)
    # A Zipf-like character stream stands in for the text: timing does not depend on the content.
    p = 1.0 / np.arange(1, V + 1)
    stream = rng.choice(V, size=32 * 64 * 400 + 1, p=p / p.sum())
    data = batchify(stream, 32)

    def batches(n: int):
        return [
            (data[:, i * 64 : (i + 1) * 64], data[:, i * 64 + 1 : (i + 1) * 64 + 1])
            for i in range(n)
        ]

    return model, batches


# --- the PyTorch twins ---------------------------------------------------------------------------


def torch_seq2seq(fr_model):
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, sd):
            super().__init__()
            for k in ("query_weight", "key_weight", "bias", "v"):
                setattr(self, k, nn.Parameter(torch.from_numpy(sd[k].copy())))

    class Twin(nn.Module):
        """fastrnn.models.Seq2Seq, line for line, in torch."""

        def __init__(self, m):
            super().__init__()
            E, H, Hd = m.embedding_dim, m.hidden_size, m.decoder_hidden_size
            self.pad = m.pad_index
            self.src_embed = nn.Embedding(m.src_vocab_size, E)
            self.tgt_embed = nn.Embedding(m.tgt_vocab_size, E, padding_idx=m.pad_index)
            self.encoder = nn.LSTM(E, H, num_layers=m.num_layers, bidirectional=True)
            self.bridge = nn.Linear(2 * H, Hd)
            sd = m.attention.state_dict()
            self.attention = Attention(sd)
            self.decoder = nn.LSTMCell(E + 2 * H, Hd)
            self.out = nn.Linear(Hd + 2 * H, m.tgt_vocab_size)
            self.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})

        def forward(self, src, lens, tgt_in):
            S = src.shape[1]
            x = self.src_embed(src.T)
            packed = nn.utils.rnn.pack_padded_sequence(x, lens, enforce_sorted=False)
            out, (h, _) = self.encoder(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=S)
            keys = out.transpose(0, 1)  # (B, S, 2H)
            s = torch.tanh(self.bridge(torch.cat([h[-2], h[-1]], dim=1)))
            c = torch.zeros_like(s)
            a = self.attention
            proj = keys @ a.key_weight.T + a.bias
            mask = torch.arange(S)[None, :] < lens[:, None]
            y = self.tgt_embed(tgt_in.T)
            states, contexts = [], []
            for t in range(tgt_in.shape[1]):
                e = torch.tanh((s @ a.query_weight.T)[:, None] + proj) @ a.v
                alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)
                ctx = torch.bmm(alpha[:, None], keys)[:, 0]
                s, c = self.decoder(torch.cat([y[t], ctx], dim=1), (s, c))
                states.append(s)
                contexts.append(ctx)
            o = torch.cat([torch.stack(states), torch.stack(contexts)], dim=2)
            return self.out(o).transpose(0, 1)

    return Twin(fr_model)


def torch_lm(fr_model):
    import torch
    from torch import nn

    class Twin(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.embed = nn.Embedding(m.vocab_size, m.embedding_dim)
            self.rnn = nn.LSTM(m.embedding_dim, m.hidden_size, m.num_layers)
            self.out = nn.Linear(m.hidden_size, m.vocab_size)
            self.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})

        def forward(self, x, state):
            y, state = self.rnn(self.embed(x.T), state)
            return self.out(y).transpose(0, 1), state

    return Twin(fr_model)


# --- workers ---------------------------------------------------------------------------------------


def run_fastrnn(case: str, steps: int, warmup: int, threads: int) -> dict:
    import fastrnn
    from fastrnn import nn

    fastrnn.set_num_threads(threads)
    if case == "dates":
        model, make = dates_setup()
        data = make(warmup + steps)
        opt = nn.Adam(model, lr=4e-3)

        def step(b, _state):
            model.zero_grad()
            loss, _ = model.loss(b[0], b[2], b[1])
            nn.clip_grad_norm_(model, 5.0)
            opt.step()
            return loss, None
    else:
        model, make = charlm_setup()
        data = make(warmup + steps)
        opt = nn.Adam(model, lr=3e-3)

        def step(b, state):
            model.zero_grad()
            loss, _, state = model.loss(b[0], b[1], state)
            nn.clip_grad_norm_(model, 1.0)
            opt.step()
            return loss, state

    return _timed(step, data, warmup)


def run_torch(case: str, steps: int, warmup: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    if case == "dates":
        fr, make = dates_setup()
        data = [tuple(torch.from_numpy(a) for a in b) for b in make(warmup + steps)]
        model = torch_seq2seq(fr)
        opt = torch.optim.Adam(model.parameters(), lr=4e-3)
        crit = torch.nn.CrossEntropyLoss(ignore_index=fr.pad_index)

        def step(b, _state):
            src, lens, tgt = b
            opt.zero_grad()
            logits = model(src, lens, tgt[:, :-1])
            loss = crit(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            return loss.item(), None
    else:
        fr, make = charlm_setup()
        data = [tuple(torch.from_numpy(a) for a in b) for b in make(warmup + steps)]
        model = torch_lm(fr)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        crit = torch.nn.CrossEntropyLoss()

        def step(b, state):
            x, y = b
            opt.zero_grad()
            logits, state = model(x, state)
            loss = crit(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item(), tuple(s.detach() for s in state)

    return _timed(step, data, warmup)


def _timed(step, data, warmup: int) -> dict:
    state = None
    times, losses = [], []
    for i, b in enumerate(data):
        t = time.perf_counter()
        loss, state = step(b, state)
        if i >= warmup:
            times.append(time.perf_counter() - t)
        losses.append(float(loss))
    return {"ms_per_step": 1e3 * float(np.median(times)), "total_s": float(np.sum(times)),
            "first_loss": losses[0], "last_loss": losses[-1]}  # fmt: skip


# --- embedding scatter-add ------------------------------------------------------------------------


def _scatter_add_at(V, D, ids, g):
    G = np.zeros((V, D), np.float32)
    np.add.at(G, ids, g)


def _scatter_sort_reduce(V, D, ids, g):
    G = np.zeros((V, D), np.float32)
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    G[s[starts]] = np.add.reduceat(g[order], starts, axis=0)


def _scatter_cpp(V, D, ids, g):
    from fastrnn import _C

    G = np.zeros((V, D), np.float32)
    _C.embedding_backward(G, ids, g)


def embedding_bench() -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    for V, D, N in [(100, 64, 4096), (10000, 128, 100000), (50000, 256, 32768)]:
        ids = rng.integers(0, V, N)
        g = rng.standard_normal((N, D)).astype(np.float32)
        add_at, sort_reduce, cpp = _scatter_add_at, _scatter_sort_reduce, _scatter_cpp
        t = {}
        for name, f in (
            ("np.add.at", add_at),
            ("argsort+reduceat", sort_reduce),
            ("fastrnn C++", cpp),
        ):
            f(V, D, ids, g)
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                f(V, D, ids, g)
                ts.append(time.perf_counter() - t0)
            t[name] = 1e3 * float(np.median(ts))
        best_np = min(t["np.add.at"], t["argsort+reduceat"])
        rows.append(f"| V={V} D={D} N={N} | {t['np.add.at']:.2f} | {t['argsort+reduceat']:.2f} | "
                    f"{t['fastrnn C++']:.2f} | {best_np / t['fastrnn C++']:.1f}x |")  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default="dates,charlm")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--worker", nargs=2, metavar=("LIB", "CASE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        lib, case = args.worker
        if case == "embedding":
            import fastrnn

            fastrnn.set_num_threads(args.threads)
            print(json.dumps(embedding_bench()))
            return
        fn = run_fastrnn if lib == "fastrnn" else run_torch
        print(json.dumps(fn(case, args.steps, args.warmup, args.threads)))
        return

    import importlib.util

    # No torch in this process: its OpenMP runtime would share the cores with fastrnn's.
    if importlib.util.find_spec("torch") is not None:
        libs = ["fastrnn", "torch"]
    else:
        libs = ["fastrnn"]
        print("torch is not installed: fastrnn only")
    env_note = (
        f"{args.threads} thread(s), {args.steps} timed steps after {args.warmup} warm-up steps"
    )
    results: dict = {"threads": args.threads, "steps": args.steps, "cases": {}}
    print(f"## Training steps, fastrnn vs PyTorch CPU ({env_note})\n")
    print(
        "| case | fastrnn ms/step | torch ms/step | torch/fastrnn | loss after (fastrnn / torch) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for case in args.cases.split(","):
        r = {}
        for lib in libs:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", lib, case, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(args.threads)]  # fmt: skip
            out = subprocess.run(
                cmd, capture_output=True, text=True, check=True, env=_env(args.threads)
            )
            r[lib] = json.loads(out.stdout.strip().splitlines()[-1])
        results["cases"][case] = r
        f = r["fastrnn"]
        t = r.get("torch")
        ratio = f"{t['ms_per_step'] / f['ms_per_step']:.2f}x" if t else "-"
        tl = f"{t['last_loss']:.4f}" if t else "-"
        print(f"| {case} | {f['ms_per_step']:.1f} | {t['ms_per_step']:.1f} | {ratio} | {f['last_loss']:.4f} / {tl} |"
              if t else f"| {case} | {f['ms_per_step']:.1f} | - | - | {f['last_loss']:.4f} / - |")  # fmt: skip
    print("\n## Embedding backward scatter-add (float32, ms, median of 5)\n")
    print("| size | np.add.at | argsort+reduceat | fastrnn C++ | vs best NumPy |")
    print("| --- | --- | --- | --- | --- |")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "fastrnn", "embedding",
           "--threads", str(args.threads)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_env(args.threads))
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    print("\n".join(rows))
    results["embedding"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _env(threads: int) -> dict:
    import os

    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        OPENBLAS_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    return env


if __name__ == "__main__":
    main()
