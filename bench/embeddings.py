"""Word embeddings, side by side with gensim on the same corpus and settings.

Usage:
    python bench/embeddings.py                        # 3M tokens, 1 seed
    python bench/embeddings.py --tokens 1000000 --seeds 1 2 3 --modes sg-ns cbow-ns

The corpus is built offline and deterministically by bench/embeddings_corpus.py (pydoc topics,
gensim's test corpora, fortunes if installed, man pages), unless it already exists at --corpus.
Settings (the issue's): 2 threads, 5 epochs, vector size 100, window 5, negative 5, min_count 5,
sample 1e-3; both libraries read the corpus file (gensim's corpus_file mode, its fastest). Every
(library, mode, seed) trains in its own subprocess, one after the other, so neither library's
threads or memory affect the other's timing.

Prints a markdown table, one row per mode and library: train wall time and words/s (raw corpus
tokens x epochs / time of train(), vocabulary building excluded and timed separately), the
ratio fastrnn/gensim of words/s, and quality: accuracy on questions-words.txt (restrict_vocab
30000), Spearman on wordsim353 and simlex999 (gensim's evaluate_* on our vectors too). Medians
over --seeds. GloVe (no gensim counterpart) reports co-occurrence counting time, nonzero pairs,
updates/s per epoch and the same quality numbers. Writes --json (default
bench/results/embeddings.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {"sg-ns": dict(sg=1, hs=0, negative=5), "cbow-ns": dict(sg=0, hs=0, negative=5),
         "sg-hs": dict(sg=1, hs=1, negative=0)}  # fmt: skip


def quality(kv: Any) -> dict[str, float]:
    """Analogy accuracy and Spearman, through gensim's evaluators (so both libraries' vectors are
    scored by the same code)."""
    from gensim.models import KeyedVectors as GKV
    from gensim.test.utils import datapath

    g = GKV(kv.vector_size)
    g.add_vectors(list(kv.index_to_key), kv.vectors)
    acc, _ = g.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30000)
    ws = g.evaluate_word_pairs(datapath("wordsim353.tsv"))
    sl = g.evaluate_word_pairs(datapath("simlex999.txt"))
    return {"analogy": float(acc), "wordsim353": float(ws[1][0]), "simlex999": float(sl[1][0]),
            "wordsim_oov": float(ws[2]), "simlex_oov": float(sl[2])}  # fmt: skip


def child(args: argparse.Namespace) -> None:
    """One training run; prints a JSON line."""
    import logging

    logging.disable(logging.CRITICAL)
    kw = dict(vector_size=args.dim, window=5, min_count=5, sample=1e-3, workers=args.workers,
              epochs=args.epochs, seed=args.seed, **MODES.get(args.mode, {}))  # fmt: skip
    out: dict[str, Any] = {}
    if args.lib == "gensim":
        from gensim.models import Word2Vec as GW

        m = GW(**kw)
        t = time.perf_counter()
        m.build_vocab(corpus_file=args.corpus)
        out["vocab_s"] = time.perf_counter() - t
        t = time.perf_counter()
        _, raw = m.train(corpus_file=args.corpus, total_examples=m.corpus_count,
                         total_words=m.corpus_total_words, epochs=args.epochs)  # fmt: skip
        out["train_s"] = time.perf_counter() - t
        out["tokens"] = m.corpus_total_words
        if raw != m.corpus_total_words * args.epochs:  # gensim's corpus_file mode skips long lines
            print(f"warning: gensim trained on {raw} of {m.corpus_total_words * args.epochs} words",
                  file=sys.stderr)  # fmt: skip
    elif args.mode == "glove":
        sys.path.insert(0, os.path.join(HERE, "..", "python"))
        from fastrnn.embeddings import GloVe

        m = GloVe(vector_size=args.dim, window=10, min_count=5, workers=args.workers, epochs=args.glove_epochs,
                  seed=args.seed)  # fmt: skip
        t = time.perf_counter()
        m.build_vocab(corpus_file=args.corpus)
        out["vocab_s"] = time.perf_counter() - t  # counting words + co-occurrences + shuffle
        t = time.perf_counter()
        m.train()
        out["train_s"] = time.perf_counter() - t
        out["records"] = m.num_records
        out["tokens"] = m.corpus_total_words
        out["updates_per_s"] = m.num_records * args.glove_epochs / out["train_s"]
    else:
        sys.path.insert(0, os.path.join(HERE, "..", "python"))
        from fastrnn.embeddings import Word2Vec

        m = Word2Vec(**kw)
        t = time.perf_counter()
        m.build_vocab(corpus_file=args.corpus)
        out["vocab_s"] = time.perf_counter() - t
        t = time.perf_counter()
        m.train(corpus_file=args.corpus)
        out["train_s"] = time.perf_counter() - t
        out["tokens"] = m.corpus_total_words
    epochs = args.glove_epochs if args.mode == "glove" else args.epochs
    out["words_per_s"] = out["tokens"] * epochs / out["train_s"]
    out["vocab"] = len(m.wv)
    out.update(quality(m.wv))
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="/tmp/fastrnn_emb_corpus.txt")
    ap.add_argument("--tokens", type=int, default=3_000_000)
    ap.add_argument("--modes", nargs="*", default=[*MODES, "glove"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[1])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--glove-epochs", type=int, default=25)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "embeddings.json"))
    ap.add_argument("--child", nargs=3, metavar=("LIB", "MODE", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.lib, args.mode, args.seed = args.child[0], args.child[1], int(args.child[2])
        child(args)
        return
    if not os.path.exists(args.corpus):
        subprocess.run([sys.executable, os.path.join(HERE, "embeddings_corpus.py"), "--out", args.corpus,
                        "--tokens", str(args.tokens)], check=True)  # fmt: skip
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for mode in args.modes:
        libs = ["fastrnn"] if mode == "glove" else ["fastrnn", "gensim"]
        for seed in args.seeds:
            for lib in libs:
                cmd = [sys.executable, __file__, "--corpus", args.corpus, "--epochs", str(args.epochs),
                       "--glove-epochs", str(args.glove_epochs), "--dim", str(args.dim), "--workers",
                       str(args.workers), "--child", lib, mode, str(seed)]  # fmt: skip
                res = json.loads(
                    subprocess.run(cmd, check=True, capture_output=True, text=True)
                    .stdout.strip()
                    .splitlines()[-1]
                )
                runs.setdefault(mode, {}).setdefault(lib, []).append(res)
                print(f"{mode:8} {lib:8} seed {seed}: {res['train_s']:.1f}s, {res['words_per_s'] / 1e6:.2f}M words/s, "
                      f"analogy {res['analogy']:.3f}, ws353 {res['wordsim353']:.3f}, simlex {res['simlex999']:.3f}",
                      file=sys.stderr, flush=True)  # fmt: skip
    med = {m: {lib: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for lib, rs in d.items()}
           for m, d in runs.items()}  # fmt: skip
    tokens = next(iter(next(iter(med.values())).values()))["tokens"]
    print(f"\nCorpus {args.corpus}: {int(tokens)} tokens; {args.workers} threads, dim {args.dim}, window 5 "
          f"(GloVe 10), negative 5, min_count 5, {args.epochs} epochs (GloVe {args.glove_epochs}); "
          f"medians over seeds {args.seeds}\n")  # fmt: skip
    print(
        "| mode | library | vocab build s | train s | words/s | fastrnn/gensim | analogy acc | wordsim353 rho | simlex999 rho |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, d in med.items():
        for lib, r in d.items():
            ratio = (
                ""
                if lib != "fastrnn" or "gensim" not in d
                else f"{r['words_per_s'] / d['gensim']['words_per_s']:.2f}x"
            )
            print(f"| {mode} | {lib} | {r['vocab_s']:.2f} | {r['train_s']:.1f} | {r['words_per_s'] / 1e6:.3f}M | {ratio} | "
                  f"{r['analogy']:.3f} | {r['wordsim353']:.3f} | {r['simlex999']:.3f} |")  # fmt: skip
    if "glove" in med:
        g = med["glove"]["fastrnn"]
        print(f"\nGloVe: co-occurrence counting (+ vocabulary, shuffle) {g['vocab_s']:.2f}s, {int(g['records'])} nonzero "
              f"pairs, {g['updates_per_s'] / 1e6:.2f}M updates/s per epoch")  # fmt: skip
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"settings": vars(args), "runs": runs, "medians": med}, f, indent=1)


if __name__ == "__main__":
    main()
