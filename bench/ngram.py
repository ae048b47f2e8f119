"""Kneser-Ney n-gram models: fastrnn's KneserNeyLM vs NLTK's KneserNeyInterpolated, same numbers.

Usage:
    python bench/ngram.py                              # 600 training sentences, orders 2-4
    python bench/ngram.py --train 1000 --orders 2,3,4,5 --repeat 3

Data: English sentences of Python's own documentation (pydoc_data, shipped with CPython), the
first --train for training and the held-out ones whose words were all seen (NLTK gives unseen
words probability 0), at most --test of them. fastrnn runs with convention="nltk" and NLTK's
default discount 0.1, so both compute the same model.

Prints a markdown table per order: fit and perplexity seconds (medians of --repeat runs; NLTK's
perplexity once, it is slow), the speedups, and both perplexities with their relative difference.
Also the fit time of the default (modified Kneser-Ney) model on the charlm example's training
text, 5-grams of characters.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from typing import Any, Callable


def sentences() -> list[list[str]]:
    import pydoc_data.topics as topics

    text = " ".join(topics.topics[k] for k in sorted(topics.topics))
    parts = re.split(r"(?<=[.!?])\s+", text)
    return [s.split() for s in parts if 3 <= len(s.split()) <= 25]


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=600)
    p.add_argument("--test", type=int, default=150)
    p.add_argument("--orders", default="2,3,4")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    from fastrnn.models.ngram import KneserNeyLM

    sents = sentences()
    train = sents[: args.train]
    seen = {w for s in train for w in s}
    test = [s for s in sents[args.train :] if all(w in seen for w in s)][: args.test]
    print(f"{len(train)} training sentences ({sum(map(len, train)):,} words), {len(test)} "
          f"held-out ({sum(map(len, test)):,} words)\n")  # fmt: skip
    print("| order | fit fastrnn s | fit NLTK s | x | perplexity fastrnn s | NLTK s | x | "
          "perplexity fastrnn | NLTK | rel. diff |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for order in (int(o) for o in args.orders.split(",")):

        def fit_nltk(order: int = order) -> Any:
            lm = KneserNeyInterpolated(order, discount=0.1)
            lm.fit(*padded_everygram_pipeline(order, train))
            return lm

        t_fit_f, ours = median_time(
            lambda order=order: KneserNeyLM(order, 0.1, convention="nltk").fit(train), args.repeat
        )
        t_fit_n, ref = median_time(fit_nltk, args.repeat)
        grams = [g for s in test for g in ngrams(pad_both_ends(s, n=order), order)]
        t_ppl_f, pf = median_time(lambda m=ours: m.perplexity(test), args.repeat)
        t_ppl_n, pn = median_time(lambda m=ref, g=grams: m.perplexity(g), 1)
        print(f"| {order} | {t_fit_f:.4f} | {t_fit_n:.3f} | {t_fit_n / t_fit_f:,.0f} | "
              f"{t_ppl_f:.4f} | {t_ppl_n:.2f} | {t_ppl_n / t_ppl_f:,.0f} | {pf:.6f} | {pn:.6f} | "
              f"{abs(pf / pn - 1):.1e} |")  # fmt: skip

    from fastrnn.examples.charlm import load_texts, split

    text = split(load_texts()[0], 0)[0]
    t, lm = median_time(lambda: KneserNeyLM(5).fit([list(text)]), args.repeat)
    print(f"\nmodified Kneser-Ney 5-grams of {len(text):,} characters (charlm's training text): "
          f"fit {t:.3f} s (median of {args.repeat})")  # fmt: skip


if __name__ == "__main__":
    main()
