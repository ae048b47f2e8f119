"""Date translation with attention: human-readable dates in many formats -> ISO YYYY-MM-DD.

    python -m fastrnn.examples.dates [--time-limit 300] [--threads 2] [--out dates_out]

Generates its own data ("3 May 1979", "tuesday, march 4 2003", "12.09.21", ...; dates from
1950-01-01 to 2049-12-31, two-digit years 50-99 -> 19xx, 00-49 -> 20xx), trains a character-level
Seq2Seq (bidirectional LSTM encoder, additive attention, LSTM decoder) until the validation
exact-match accuracy reaches the target or the time limit passes, then reports exact-match
accuracy on 2,000 held-out dates (calendar days never used for training, in any format) and saves
an attention heatmap of a few examples (needs matplotlib; skipped with a message otherwise).
A checkpoint in the output folder lets an interrupted run resume.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import fastrnn

from ..models import Seq2Seq, Trainer, Vocab
from ..models.training import exit_on_checkpoint_mismatch
from ..nn import Adam

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]  # fmt: skip
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _case(s: str, rng: np.random.Generator) -> str:
    r = rng.random()
    return s if r < 0.5 else (s.title() if r < 0.85 else s.upper())


# Each format is unambiguous on its own: numeric formats are told apart by their separators and
# widths (dd.mm.yy, mm/dd/yyyy, yyyymmdd, ISO), so every string has exactly one reading.
FORMATS: list[Callable[[dt.date, np.random.Generator], str]] = [
    lambda d, r: f"{d.day} {_case(MONTHS[d.month - 1], r)} {d.year}",  # 3 May 1979
    lambda d, r: f"{d.day:02d} {_case(MONTHS[d.month - 1][:3], r)} {d.year}",  # 03 may 1979
    lambda d, r: _case(
        f"{DAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day} {d.year}", r
    ),  # tuesday, march 4 2003
    lambda d, r: _case(
        f"{DAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}", r
    ),  # Thursday 3 May 1979
    lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year % 100:02d}",  # 12.09.21
    lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 12.09.2021
    lambda d, r: f"{d.month}/{d.day}/{d.year}",  # 9/12/2021 (US)
    lambda d, r: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",  # 09/12/21 (US)
    lambda d, r: f"{_case(MONTHS[d.month - 1], r)} {d.day}, {d.year}",  # May 3, 1979
    lambda d, r: f"{_case(MONTHS[d.month - 1][:3], r)} {d.day}, {d.year}",  # Mar 4, 2003
    lambda d, r: _case(
        f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]}, {d.year}", r
    ),  # the 3rd of may, 1979
    lambda d, r: f"{d.day}-{_case(MONTHS[d.month - 1][:3], r)}-{d.year}",  # 4-Mar-2003
    lambda d, r: f"{d.year}{d.month:02d}{d.day:02d}",  # 19790503
    lambda d, r: d.isoformat(),  # 1979-05-03
    lambda d, r: f"{d.day} {_case(MONTHS[d.month - 1], r)} {d.year % 100:02d}",  # 3 may 79
    lambda d, r: _case(
        f"{DAYS[d.weekday()][:3]}, {d.day} {MONTHS[d.month - 1][:3]} {d.year}", r
    ),  # Tue, 4 Mar 2003
]

SRC_ALPHABET = "".join(sorted(set(
    "0123456789 ,./-" + "".join(MONTHS + DAYS) + "".join(MONTHS + DAYS).upper() + "".join(MONTHS + DAYS).title()
    + "stndrdthof" + "STNDRDTHOF"
)))  # fmt: skip


def random_dates(
    n: int, rng: np.random.Generator, exclude: set[int] | None = None
) -> list[dt.date]:
    """n random calendar days in [FIRST, LAST] (ordinals not in `exclude`)."""
    lo, hi = FIRST.toordinal(), LAST.toordinal()
    out: list[dt.date] = []
    while len(out) < n:
        o = rng.integers(lo, hi + 1, size=2 * (n - len(out)))
        if exclude:
            o = o[~np.isin(o, list(exclude))]
        out.extend(dt.date.fromordinal(int(x)) for x in o[: n - len(out)])
    return out


def render(dates: list[dt.date], rng: np.random.Generator) -> list[str]:
    """Each date in a random format."""
    fmts = rng.integers(0, len(FORMATS), size=len(dates))
    return [FORMATS[f](d, rng) for d, f in zip(dates, fmts)]


def make_vocabs() -> tuple[Vocab, Vocab]:
    src = Vocab(list(SRC_ALPHABET), level="char")
    tgt = Vocab(list("0123456789-"), level="char")
    return src, tgt


def encode_pairs(
    src_vocab: Vocab, tgt_vocab: Vocab, texts: list[str], dates: list[dt.date]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, lens = src_vocab.encode_batch(texts)
    tgt, _ = tgt_vocab.encode_batch([d.isoformat() for d in dates], add_bos=True, add_eos=True)
    return src, lens, tgt


def accuracy(
    model: Seq2Seq,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    texts: list[str],
    dates: list[dt.date],
    batch_size: int = 500,
    beam_size: int = 1,
) -> float:
    """Exact-match accuracy of greedy decoding (or beam search with beam_size > 1)."""
    right = 0
    for i in range(0, len(texts), batch_size):
        src, lens = src_vocab.encode_batch(texts[i : i + batch_size])
        if beam_size > 1:
            rows = [
                h[0].tokens for h in model.beam_decode(src, lens, beam_size=beam_size, max_len=12)
            ]
        else:
            rows = list(model.greedy_decode(src, lens, max_len=12))
        for row, d in zip(rows, dates[i : i + batch_size]):
            right += tgt_vocab.decode(row) == d.isoformat()
    return right / len(texts)


def save_heatmap(
    model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab, texts: list[str], path: str
) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed: skipping the attention heatmap (pip install matplotlib)"
        )
        return None
    src, lens = src_vocab.encode_batch(texts)
    ids, att = model.greedy_decode(src, lens, max_len=12, return_attention=True)
    fig, axes = plt.subplots(1, len(texts), figsize=(4.2 * len(texts), 4.2))
    for ax, text, row, a, n in zip(np.atleast_1d(axes), texts, ids, att, lens):
        out = tgt_vocab.decode(row, skip_specials=False, stop_at_eos=False)
        steps = min(len(tgt_vocab.decode(row)) + 1, a.shape[0])
        ax.imshow(a[:steps, :n], cmap="viridis", aspect="auto", vmin=0, vmax=1)
        ax.set_xticks(range(n))
        ax.set_xticklabels(list(text[:n]), fontsize=8)
        ylabels = [tgt_vocab.itos[t] for t in row[:steps]]
        ax.set_yticks(range(steps))
        ax.set_yticklabels(ylabels, fontsize=8)
        ax.set_title(f"{text!r}\n-> {out.split('<eos>')[0]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        prog="python -m fastrnn.examples.dates", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--time-limit", type=float, default=290.0, help="training seconds at most (default 290)"
    )
    p.add_argument(
        "--target", type=float, default=0.999, help="stop when validation accuracy reaches this"
    )
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--hidden", type=int, default=64, help="encoder units per direction")
    p.add_argument("--decoder-hidden", type=int, default=96)
    p.add_argument("--embedding", type=int, default=32)
    p.add_argument("--decay-steps", type=int, default=1500, help="learning rate decay horizon")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--beam", type=int, default=1, help="beam size for the test (1: greedy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="dates_out", help="folder for the checkpoint and heatmap")
    p.add_argument(
        "--no-resume", action="store_true", help="start afresh even if a checkpoint exists"
    )
    p.add_argument("--progress", default="auto", choices=["auto", "tqdm", "plain", "none"])
    args = p.parse_args(argv)
    if args.threads:
        fastrnn.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    src_vocab, tgt_vocab = make_vocabs()
    test_dates = random_dates(args.test_size, rng)
    val_dates = random_dates(1000, rng, exclude={d.toordinal() for d in test_dates})
    held_out = {d.toordinal() for d in test_dates + val_dates}
    test_texts = render(test_dates, rng)
    val_texts = render(val_dates, rng)

    model = Seq2Seq(
        len(src_vocab), len(tgt_vocab), embedding_dim=args.embedding, hidden_size=args.hidden,
        decoder_hidden_size=args.decoder_hidden, cell="lstm", attention="additive",
        pad_index=tgt_vocab.pad_index, bos_index=tgt_vocab.bos_index, eos_index=tgt_vocab.eos_index,
        seed=args.seed,
    )  # fmt: skip
    opt = Adam(model, lr=args.lr)
    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, "dates.ckpt.npz")
    if args.no_resume and os.path.exists(ckpt):
        os.remove(ckpt)
    trainer = Trainer(model, opt, clip_grad_norm=5.0, checkpoint=ckpt, checkpoint_every=500,
                      progress=args.progress)  # fmt: skip
    steps_per_epoch = 1000

    def batches(epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        # Fresh random dates each batch (never a held-out day), reproducible per epoch for resuming.
        r = np.random.default_rng([args.seed, epoch])
        for _ in range(steps_per_epoch):
            ds = random_dates(args.batch_size, r, exclude=held_out)
            yield encode_pairs(src_vocab, tgt_vocab, render(ds, r), ds)

    def train_step(batch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[float, int]:
        src, lens, tgt = batch
        # Linear decay to lr/10 over --decay-steps, by step count so that a run is reproducible
        # whatever the machine's speed
        frac = min(trainer.global_step / args.decay_steps, 1.0)
        opt.lr = args.lr * (1.0 - 0.9 * frac)
        return model.loss(src, tgt, lens)

    def evaluate() -> dict[str, Any]:
        return {"val_acc": accuracy(model, src_vocab, tgt_vocab, val_texts, val_dates)}

    t0 = time.perf_counter()
    with exit_on_checkpoint_mismatch(p.prog):  # another configuration: say to use --no-resume
        trainer.fit(
            batches, train_step, epochs=100, evaluate=evaluate, eval_every=args.eval_every,
            stop=lambda m: m["val_acc"] >= args.target, time_limit=args.time_limit,
            steps_per_epoch=steps_per_epoch,
        )  # fmt: skip
    wall = time.perf_counter() - t0
    model.eval()
    acc = accuracy(model, src_vocab, tgt_vocab, test_texts, test_dates, beam_size=args.beam)
    how = "greedy" if args.beam == 1 else f"beam {args.beam}"
    examples = ["3 May 1979", "tuesday, march 4 2003", "12.09.21", "the 21st of june, 1969"]
    src, lens = src_vocab.encode_batch(examples)
    for text, row in zip(examples, model.greedy_decode(src, lens, max_len=12)):
        print(f"  {text!r:32} -> {tgt_vocab.decode(row)}")
    heat = save_heatmap(
        model, src_vocab, tgt_vocab, examples[:3], os.path.join(args.out, "attention.png")
    )
    if heat:
        print(f"attention heatmap: {heat}")
    print(
        f"exact match on {len(test_texts)} held-out dates ({how}): {acc:.2%}  (trained {trainer.elapsed:.0f}s, "
        f"{trainer.global_step} steps of {args.batch_size}; wall {wall:.0f}s with {fastrnn.get_num_threads()} threads)"
    )
    return {
        "accuracy": acc,
        "train_seconds": trainer.elapsed,
        "steps": trainer.global_step,
        "wall": wall,
    }


if __name__ == "__main__":
    main()
    sys.exit(0)
