"""fastrnn.distributed throughput on a local Dask cluster: 1 worker vs 2 workers, and identical
results.

Usage:
    python bench/distributed.py                        # defaults below, 3 runs per case
    python bench/distributed.py --bleu-lines 200000 --translate-lines 600 --lm-lines 4000 --repeat 3

Builds (seeded) in a temporary folder: a BLEU corpus file (hypotheses, one reference stream;
bench/bleu.py's generator), a random-weight Seq2Seq (char vocabularies, E=H=64) with source lines
of 10-40 characters, and a random-weight character LSTM language model (E=64, H=256) with text
lines of 40-200 characters. Then, for each of 1 and 2 workers (a LocalCluster of worker
processes, one thread each, started once per worker count and warmed up with one run), times:
  bleu        fastrnn.distributed.corpus_bleu over the files     (--bleu-lines)
  translate   fastrnn.distributed.translate, beam 4               (--translate-lines)
  perplexity  fastrnn.distributed.perplexity of the LSTM LM       (--lm-lines)
Every worker runs fastrnn with one thread (client.run(fastrnn.set_num_threads, 1), and
OMP_NUM_THREADS=1 in their environment), as does the single-machine run.

Prints a markdown table: median seconds over --repeat runs and lines per second for 1 and 2
workers, the speedup, and whether the 2-worker result equals the 1-worker one and the
single-machine (client=None) one. The machine's cores bound the speedup (2 cores: at most 2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# This file's name would shadow the `distributed` package (Dask's) for this process and for the
# worker processes, which inherit sys.path: take bench/ off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def _bleu_corpus(n: int) -> tuple[list[str], list[str]]:
    """bench/bleu.py's seeded generator."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_bleu", os.path.join(_HERE, "bleu.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.corpus(n)


def build(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from fastrnn import distributed as fd
    from fastrnn.models import RNNLanguageModel, Seq2Seq, Vocab

    hyps, refs = _bleu_corpus(args.bleu_lines)
    (folder / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (folder / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz ")
    src_vocab, tgt_vocab = Vocab(letters, level="char"), Vocab(list("0123456789-"), level="char")
    s2s = Seq2Seq(len(src_vocab), len(tgt_vocab), 64, 64, seed=1, pad_index=tgt_vocab.pad_index,
                  bos_index=tgt_vocab.bos_index, eos_index=tgt_vocab.eos_index)  # fmt: skip
    fd.save_seq2seq(folder / "s2s.npz", s2s, src_vocab, tgt_vocab)
    src = [
        "".join(rng.choice(letters, int(n))).strip() or "a"
        for n in rng.integers(10, 40, args.translate_lines)
    ]
    (folder / "src.txt").write_text("\n".join(src) + "\n", encoding="utf-8")
    lm = RNNLanguageModel(len(src_vocab), 64, 256, 1, "lstm", seed=2)
    fd.save_language_model(folder / "lm.npz", lm, src_vocab)
    text = ["".join(rng.choice(letters, int(n))) for n in rng.integers(40, 200, args.lm_lines)]
    (folder / "text.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return {"bleu": args.bleu_lines, "translate": args.translate_lines, "perplexity": args.lm_lines}


def cases(folder: Path) -> dict[str, Any]:
    from fastrnn import distributed as fd

    return {
        "bleu": lambda c: fd.corpus_bleu(
            folder / "hyp.txt", [folder / "ref.txt"], c, shard_size=10_000, force=True
        ).format(4),  # fmt: skip
        "translate": lambda c: fd.translate(
            folder / "s2s.npz", folder / "src.txt", c, beam_size=4, max_len=30, shard_size=50
        ),  # fmt: skip
        "perplexity": lambda c: fd.perplexity(
            folder / "lm.npz", folder / "text.txt", c, shard_size=250
        ),  # fmt: skip
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bleu-lines", type=int, default=200_000)
    p.add_argument("--translate-lines", type=int, default=600)
    p.add_argument("--lm-lines", type=int, default=4000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the worker processes
    from distributed import Client, LocalCluster

    import fastrnn

    fastrnn.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = build(folder, args)
        fns = cases(folder)
        local = {name: fn(None) for name, fn in fns.items()}
        times: dict[tuple[str, int], float] = {}
        results: dict[tuple[str, int], Any] = {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster:  # fmt: skip
                with Client(cluster, set_as_default=False) as client:
                    client.run(fastrnn.set_num_threads, 1)
                    for name, fn in fns.items():
                        fn(client)  # warm-up: models loaded, imports done
                        runs = []
                        for _ in range(args.repeat):
                            t0 = time.perf_counter()
                            results[name, workers] = fn(client)
                            runs.append(time.perf_counter() - t0)
                        times[name, workers] = statistics.median(runs)
        print(f"cores: {os.cpu_count()}, median of {args.repeat} runs\n")
        print(
            "| case | lines | 1 worker s | lines/s | 2 workers s | lines/s | speedup | identical |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name in fns:
            n, t1, t2 = sizes[name], times[name, 1], times[name, 2]
            same = results[name, 1] == results[name, 2] == local[name]
            print(f"| {name} | {n:,} | {t1:.2f} | {n / t1:,.0f} | {t2:.2f} | {n / t2:,.0f} | "
                  f"{t1 / t2:.2f}x | {'yes' if same else 'NO'} |")  # fmt: skip


if __name__ == "__main__":
    main()
