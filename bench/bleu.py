"""BLEU speed, side by side with sacrebleu on the same synthetic corpus, with identical results.

Usage:
    python bench/bleu.py                      # 100,000-sentence corpus; 20,000 sentence scores
    python bench/bleu.py --sentences 20000 --sentence-level 5000 --repeat 3 --tokenize 13a,intl
    python bench/bleu.py --systems 16 --sig-sentences 3000 --bs 1000 --ar 10000   # significance

The corpus is generated (seeded): Zipf-distributed words, capitals, punctuation, numbers such as
3.5 and 1,000, hyphens and a few accented words, 3-40 words per sentence; each reference is its
hypothesis with about one word in six substituted, dropped or inserted.

Prints a markdown table, one row per case, with medians over --repeat runs: fastrnn ms, sacrebleu
ms, the ratio sacrebleu/fastrnn (the issue's targets: corpus >= 10x, batched sentence BLEU >= 20x),
and whether every number is identical (corpus: score, counts, totals, precisions, bp, lengths;
sentence level: every score, bit for bit). Cases:
  corpus-<tok>    corpus_bleu of the whole corpus vs sacrebleu.corpus_bleu
  batch-sentence  batch_sentence_bleu of --sentence-level pairs vs a loop of
                  BLEU(effective_order=True).sentence_score (sacrebleu's fastest per-sentence loop;
                  the loop over sacrebleu.sentence_bleu is reported too)
  pairwise        pairwise_sentence_bleu, --pairwise hyps x --pairwise refs, vs the same loop
  corpus-chrF / chrF++ corpus_chrf of --chrf-sentences sentences vs CHRF(...).corpus_score
  batch-sentence-chrF batch_sentence_chrf of --sentence-level pairs vs a CHRF().sentence_score loop
  paired-bs-<metric>  paired_bootstrap of --systems systems x --sig-sentences sentences with --bs
                  resamples vs sacrebleu's PairedTest (test_type="bs", one job), the issue's case
  paired-ar-<metric>  paired_randomization with --ar trials vs PairedTest(test_type="ar")
Each sacrebleu run builds a fresh metric object, so its caches start empty every time. The
significance cases include counting every system's statistics (as sacrebleu's do) and are timed
once for sacrebleu (they take seconds to minutes there). BLEU and chrF statistics are counted on
one thread; the resampling runs on fastrnn.get_num_threads() threads.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(20000)]
    extra = [
        "the",
        "a",
        "of",
        "to",
        "and",
        "in",
        "is",
        "for",
        "that",
        "on",
        "naïve",
        "café",
        "Zürich",
    ]
    punct = [",", ".", ";", ":", "!", "?", "'s", "(", ")", '"', "-", "--"]
    numbers = ["3.5", "1,000", "2024", "10-12", "42", "0.75"]

    def word() -> str:
        x = rng.random()
        if x < 0.3:
            return rng.choice(extra)
        if x < 0.36:
            return rng.choice(numbers)
        w = words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1)]
        return w.capitalize() if rng.random() < 0.1 else w

    hyps, refs = [], []
    for _ in range(n):
        ws = [word() for _ in range(rng.randint(3, 40))]
        out = []
        for w in ws:
            out.append(w)
            if rng.random() < 0.08:
                out.append(rng.choice(punct))
        ref = " ".join(out) + rng.choice([".", "?", "!", ""])
        hyp = []
        for w in out:
            x = rng.random()
            if x < 0.06:
                continue
            if x < 0.12:
                hyp.append(word())
            elif x < 0.17:
                hyp += [w, word()]
            else:
                hyp.append(w)
        hyps.append(" ".join(hyp) + rng.choice([".", ""]))
        refs.append(ref)
    return hyps, refs


def median_time(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def stats(s: Any) -> tuple[Any, ...]:
    return (s.score, list(s.counts), list(s.totals), list(s.precisions), s.bp, s.sys_len, s.ref_len)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=100_000, help="corpus size")
    p.add_argument("--sentence-level", type=int, default=20_000, help="pairs for batch-sentence")
    p.add_argument("--pairwise", type=int, default=100, help="hyps (and refs) for pairwise")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tokenize", default="13a", help="comma-separated tokenizers for corpus cases")
    p.add_argument("--chrf-sentences", type=int, default=20_000, help="corpus size for chrF")
    p.add_argument("--systems", type=int, default=16, help="systems in the significance cases")
    p.add_argument("--sig-sentences", type=int, default=3000, help="test set for significance")
    p.add_argument("--bs", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--ar", type=int, default=10000, help="approximate randomization trials")
    p.add_argument("--skip", default="", help="comma-separated case prefixes to leave out")
    args = p.parse_args()

    import numpy as np
    import sacrebleu
    from sacrebleu.metrics import BLEU

    from fastrnn import bleu

    hyps, refs = corpus(args.sentences)
    rows = []
    for tok in args.tokenize.split(","):
        t_ours, ours = median_time(
            lambda tok=tok: bleu.corpus_bleu(hyps, [refs], tokenize=tok, force=True), args.repeat
        )
        t_sb, theirs = median_time(
            lambda tok=tok: BLEU(tokenize=tok, force=True).corpus_score(hyps, [refs]), args.repeat
        )
        rows.append(
            (f"corpus-{tok} ({len(hyps)} sentences)", t_ours, t_sb, stats(ours) == stats(theirs))
        )

    n = args.sentence_level
    sh, sr = hyps[:n], refs[:n]
    t_ours, ours_s = median_time(lambda: bleu.batch_sentence_bleu(sh, [sr]), args.repeat)

    def sb_loop() -> list[float]:
        m = BLEU(effective_order=True)
        return [m.sentence_score(h, [r]).score for h, r in zip(sh, sr)]

    t_sb, theirs_s = median_time(sb_loop, args.repeat)
    t_fn, theirs_f = median_time(
        lambda: [sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(sh, sr)], args.repeat
    )
    same = np.array_equal(ours_s, np.asarray(theirs_s)) and np.array_equal(ours_s, theirs_f)
    rows.append((f"batch-sentence ({n} pairs)", t_ours, t_sb, same))
    rows.append(("  vs sacrebleu.sentence_bleu loop", t_ours, t_fn, same))

    m = args.pairwise
    ph, pr = hyps[:m], refs[:m]
    t_ours, ours_p = median_time(lambda: bleu.pairwise_sentence_bleu(ph, pr), args.repeat)

    def sb_pairs() -> np.ndarray:
        metric = BLEU(effective_order=True)
        return np.array([[metric.sentence_score(h, [r]).score for r in pr] for h in ph])

    t_sb, theirs_p = median_time(sb_pairs, args.repeat)
    rows.append((f"pairwise ({m} x {m})", t_ours, t_sb, np.array_equal(ours_p, theirs_p)))

    rows += chrf_rows(args, hyps, refs)
    rows += significance_rows(args, hyps, refs)

    print(f"sacrebleu {sacrebleu.__version__}; medians of {args.repeat} runs\n")
    print("| case | fastrnn ms | sacrebleu ms | sacrebleu / fastrnn | identical |")
    print("|---|---:|---:|---:|---|")
    for name, a, b, same in rows:
        print(
            f"| {name} | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.1f}x | {'yes' if same else 'NO'} |"
        )


def chrf_rows(args: argparse.Namespace, hyps: list[str], refs: list[str]) -> list[Any]:
    import numpy as np
    from sacrebleu.metrics import CHRF

    from fastrnn import bleu

    rows = []
    n = args.chrf_sentences
    ch, cr = hyps[:n], refs[:n]
    for name, opts in (("chrF", {}), ("chrF++", {"word_order": 2})):
        t_ours, ours = median_time(
            lambda opts=opts: bleu.corpus_chrf(ch, [cr], **opts), args.repeat
        )
        t_sb, theirs = median_time(
            lambda opts=opts: CHRF(**opts).corpus_score(ch, [cr]), args.repeat
        )
        rows.append((f"corpus-{name} ({n} sentences)", t_ours, t_sb, ours.score == theirs.score))
    m = args.sentence_level
    t_ours, ours_s = median_time(
        lambda: bleu.batch_sentence_chrf(hyps[:m], [refs[:m]]), args.repeat
    )

    def sb_loop() -> list[float]:
        metric = CHRF()
        return [metric.sentence_score(h, [r]).score for h, r in zip(hyps[:m], refs[:m])]

    t_sb, theirs_s = median_time(sb_loop, args.repeat)
    same = np.array_equal(ours_s, np.asarray(theirs_s))
    rows.append((f"batch-sentence-chrF ({m} pairs)", t_ours, t_sb, same))
    return rows


def significance_rows(args: argparse.Namespace, hyps: list[str], refs: list[str]) -> list[Any]:
    """The issue's case: --bs resamples of a --sig-sentences test set with --systems systems."""
    import random as _random

    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    from fastrnn import bleu

    n = args.sig_sentences
    ref = refs[:n]
    rng = _random.Random(1)
    vocab = sorted({w for line in ref for w in line.split()})
    systems = {}
    for k in range(args.systems):  # each system: the hypotheses with its own share of edits
        rate = 0.05 + 0.3 * k / max(1, args.systems - 1)
        systems[f"sys{k}"] = [
            " ".join(w if rng.random() > rate else rng.choice(vocab) for w in h.split())
            for h in hyps[:n]
        ]
    rows = []
    skip = tuple(x for x in args.skip.split(",") if x)
    for test, samples in (("bs", args.bs), ("ar", args.ar)):
        for metric in ("bleu", "chrf"):
            case = f"paired-{test}-{metric}"
            if case.startswith(skip) if skip else False:
                continue
            fn = bleu.paired_bootstrap if test == "bs" else bleu.paired_randomization
            t_ours, ours = median_time(
                lambda fn=fn, metric=metric, samples=samples: fn(
                    systems, [ref], n_samples=samples, metric=metric
                ),
                args.repeat,
            )

            def sb(metric: str = metric, test: str = test, samples: int = samples) -> Any:
                m = BLEU(references=[ref]) if metric == "bleu" else CHRF(references=[ref])
                return PairedTest(
                    list(systems.items()), {"m": m}, None, test_type=test, n_samples=samples
                )()

            t_sb, (_, scores) = median_time(sb, 1)
            theirs = next(v for k, v in scores.items() if k != "System")
            same = all(
                getattr(r, k) == (None if getattr(t, k) is None else float(getattr(t, k)))
                for r, t in zip(ours.values(), theirs)
                for k in ("score", "p_value", "mean", "ci")
            )
            label = "resamples" if test == "bs" else "trials"
            rows.append(
                (f"{case} ({args.systems} systems x {n} sentences, {samples} {label})",
                 t_ours, t_sb, same)
            )  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
