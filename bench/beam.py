"""Beam-search overhead: time spent outside the model's step, at B=32 sentences, beam 5, V=10,000.

Usage:
    python bench/beam.py                       # the issue's case, one thread
    python bench/beam.py --batch 32 --beam 5 --vocab 10000 --hidden 512 --max-len 40 --repeat 5

The model is a GRU decoder step as a translation system would run it: embedding lookup,
fastrnn.GRUCell (E=256 -> H), output projection H x V, log-softmax, all float32; its state is the
hidden state (N, H). The search runs to max_len (untrained weights rarely choose EOS), so every
step carries the full B * beam rows.

Prints, as medians over --repeat searches (after a warm-up): the whole search, the time inside
step(), the overhead outside it (absolute and as % of the total; the target is < 10%), per step
in ms; then the per-step candidate selection alone on the same log-probs (N, V): fastrnn's
group-bounded top-k against np.argpartition (a selection) and np.argsort (a full sort), with the
ratio other/fastrnn. BLAS and fastrnn run on --threads threads (default 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--vocab", type=int, default=10_000)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--embed", type=int, default=256)
    p.add_argument("--max-len", type=int, default=40)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np

    import fastrnn
    from fastrnn.decoding import _BeamSearch, batch_beam_search

    fastrnn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    V, E, H = args.vocab, args.embed, args.hidden
    emb = (rng.standard_normal((V, E)) * 0.1).astype(np.float32)
    cell = fastrnn.GRUCell(E, H, seed=0).eval()  # inference: no tape for backward
    w_out = (rng.standard_normal((H, V)) / np.sqrt(H)).astype(np.float32)
    b_out = np.zeros(V, np.float32)
    inside = [0.0]

    def step(tokens: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        h = cell(emb[tokens], h)
        z = h @ w_out + b_out
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        inside[0] += time.perf_counter() - t0
        return z, h

    h0 = (rng.standard_normal((args.batch, H)) * 0.5).astype(np.float32)
    kw = dict(bos=1, eos=2, beam_size=args.beam, max_len=args.max_len)
    batch_beam_search(step, h0, **kw)  # warm-up
    totals, steps_in = [], []
    for _ in range(args.repeat):
        inside[0] = 0.0
        t0 = time.perf_counter()
        batch_beam_search(step, h0, **kw)
        totals.append(time.perf_counter() - t0)
        steps_in.append(inside[0])
    total, ins = float(np.median(totals)), float(np.median(steps_in))
    over = [t - s for t, s in zip(totals, steps_in)]
    over_m = float(np.median(over))
    pct = float(np.median([o / t for o, t in zip(over, totals)])) * 100
    n = args.max_len
    print(
        f"beam search: B={args.batch} beam={args.beam} V={V} H={H} steps={n} threads={args.threads}"
    )
    print(f"  total          {total * 1e3:9.1f} ms   ({total / n * 1e3:.2f} ms/step)")
    print(f"  inside step()  {ins * 1e3:9.1f} ms   ({ins / n * 1e3:.2f} ms/step)")
    print(
        f"  overhead       {over_m * 1e3:9.1f} ms   ({over_m / n * 1e3:.2f} ms/step) = {pct:.1f}% of total"
    )

    # Candidate selection alone, on one step's log-probs for N = B * beam rows.
    N = args.batch * args.beam
    z = rng.standard_normal((N, V)).astype(np.float32) * 3
    z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
    cum = np.sort(rng.standard_normal(N) - 5)[::-1].copy()
    sent = np.repeat(np.arange(args.batch), args.beam)
    search = _BeamSearch(step, args.beam, 1, 2, 0.0, "length", np.full(args.batch, n))
    k = args.beam

    def ours() -> object:
        return search.select(z, cum, sent)

    def partition() -> object:
        s = (cum[:, None] + z.astype(np.float64)).reshape(args.batch, k * V)
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        return np.take_along_axis(s, idx, 1)

    def full_sort() -> object:
        s = (cum[:, None] + z.astype(np.float64)).reshape(args.batch, k * V)
        return np.argsort(-s, axis=1, kind="stable")[:, :k]

    def median_ms(f, reps: int = 21) -> float:
        f()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts)) * 1e3

    t_ours, t_part, t_sort = median_ms(ours), median_ms(partition), median_ms(full_sort)
    print(f"top-{k} of {N} x {V} per step (median of 21):")
    print(f"  fastrnn group-bounded {t_ours:8.3f} ms")
    print(f"  np.argpartition        {t_part:8.3f} ms   ({t_part / t_ours:.1f}x)")
    print(f"  np.argsort (full sort) {t_sort:8.3f} ms   ({t_sort / t_ours:.1f}x)")


if __name__ == "__main__":
    sys.exit(main())
