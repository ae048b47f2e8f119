"""Command line of fastrnn.embeddings: train word2vec or GloVe vectors, evaluate vectors.

    python -m fastrnn.embeddings train --corpus FILE --output vectors.bin --binary \\
        [--model word2vec|glove] [--sg 1] [--hs 0] [--negative 5] [--size 100] [--window 5] ...
    python -m fastrnn.embeddings eval VECTORS [--binary] [--analogies FILE] [--pairs FILE ...]

The corpus file holds one sentence per line, tokens separated by whitespace. Vectors are written
and read in word2vec's format (gensim and the C tools read them). For --analogies and --pairs, a
path that does not exist is looked up in gensim's test data (questions-words.txt, wordsim353.tsv,
simlex999.txt) when gensim is installed. Progress is printed to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

from .glove import GloVe
from .keyedvectors import KeyedVectors
from .word2vec import Word2Vec


def gensim_test_data(name: str) -> str | None:
    """The path of `name` in the installed gensim's test data (without importing gensim), or None."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = os.path.join(list(spec.submodule_search_locations)[0], "test", "test_data", name)
    return p if os.path.exists(p) else None


def data_path(name: str) -> str:
    """`name` if it exists, else the file of that name in gensim's test data."""
    if os.path.exists(name):
        return name
    p = gensim_test_data(name)
    if p is None:
        raise SystemExit(
            f"error: {name}: no such file (nor in gensim's test data: is gensim installed?)"
        )
    return p


def evaluate(
    kv: KeyedVectors, analogies: list[str], pairs: list[str], restrict_vocab: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in analogies:
        acc, sections = kv.evaluate_word_analogies(data_path(a), restrict_vocab=restrict_vocab)
        n = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
        out[os.path.basename(a)] = {"accuracy": acc, "questions": n}
    for p in pairs:
        try:
            (pe, _), (sp, _), oov = kv.evaluate_word_pairs(
                data_path(p), restrict_vocab=restrict_vocab
            )
        except ValueError as err:  # no pair in the vocabulary
            out[os.path.basename(p)] = {"error": str(err)}
            continue
        out[os.path.basename(p)] = {"pearson": pe, "spearman": sp, "oov_percent": oov}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m fastrnn.embeddings", description=__doc__.split("\n")[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train vectors on a corpus file")
    t.add_argument(
        "--corpus", required=True, help="one sentence per line, whitespace-separated tokens"
    )
    t.add_argument("--output", required=True, help="vectors file (word2vec format)")
    t.add_argument("--binary", action="store_true", help="binary word2vec format (default: text)")
    t.add_argument("--model", choices=["word2vec", "glove"], default="word2vec")
    t.add_argument("--size", type=int, default=100, help="vector size")
    t.add_argument("--window", type=int, default=None, help="default 5 (word2vec), 10 (GloVe)")
    t.add_argument("--min-count", type=int, default=5)
    t.add_argument("--epochs", type=int, default=None, help="default 5 (word2vec), 25 (GloVe)")
    t.add_argument("--workers", type=int, default=None, help="threads (default: fastrnn's)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument(
        "--sg", type=int, choices=[0, 1], default=1, help="word2vec: 1 skip-gram, 0 CBOW"
    )
    t.add_argument(
        "--hs", type=int, choices=[0, 1], default=0, help="word2vec: hierarchical softmax"
    )
    t.add_argument("--negative", type=int, default=5, help="word2vec: noise words (0: none)")
    t.add_argument("--sample", type=float, default=1e-3, help="word2vec: subsampling threshold")
    t.add_argument("--alpha", type=float, default=None, help="word2vec: learning rate (0.025)")
    t.add_argument("--x-max", type=float, default=100.0, help="GloVe: weighting cutoff")
    t.add_argument("--learning-rate", type=float, default=0.05, help="GloVe: AdaGrad step")
    t.add_argument("--memory", type=float, default=1.0, help="GloVe: GB for co-occurrence counting")
    t.add_argument(
        "--save-model", default=None, help="also save the whole model (.npz) to continue training"
    )
    t.add_argument("--analogies", nargs="*", default=[], help="evaluate after training")
    t.add_argument("--pairs", nargs="*", default=[], help="evaluate after training")
    e = sub.add_parser("eval", help="evaluate word2vec-format vectors")
    e.add_argument("vectors")
    e.add_argument("--binary", action="store_true")
    e.add_argument("--analogies", nargs="*", default=["questions-words.txt"])
    e.add_argument("--pairs", nargs="*", default=["wordsim353.tsv", "simlex999.txt"])
    for p in (t, e):
        p.add_argument("--restrict-vocab", type=int, default=300000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    if args.cmd == "train":
        t0 = time.perf_counter()
        try:
            if args.model == "word2vec":
                kw: dict[str, Any] = dict(
                    vector_size=args.size, window=args.window or 5, min_count=args.min_count,
                    epochs=args.epochs or 5, workers=args.workers, seed=args.seed, sg=args.sg,
                    hs=args.hs, negative=args.negative, sample=args.sample,
                )  # fmt: skip
                if args.alpha is not None:
                    kw["alpha"] = args.alpha
                model: Any = Word2Vec(corpus_file=args.corpus, **kw)
            else:
                model = GloVe(
                    corpus_file=args.corpus, vector_size=args.size, window=args.window or 10,
                    min_count=args.min_count, epochs=args.epochs or 25, workers=args.workers,
                    seed=args.seed, x_max=args.x_max, learning_rate=args.learning_rate, memory=args.memory,
                )  # fmt: skip
        except (ValueError, TypeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        logging.info("trained %d vectors in %.1fs", len(model.wv), time.perf_counter() - t0)
        model.wv.save_word2vec_format(args.output, binary=args.binary)
        if args.save_model:
            model.save(args.save_model)
        kv = model.wv
        analogies, pairs = args.analogies, args.pairs
    else:
        try:
            kv = KeyedVectors.load_word2vec_format(args.vectors, binary=args.binary)
        except (ValueError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        analogies, pairs = args.analogies, args.pairs
    if analogies or pairs:
        print(json.dumps(evaluate(kv, analogies, pairs, args.restrict_vocab), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
