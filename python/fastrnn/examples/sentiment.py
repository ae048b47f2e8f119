"""Many-to-one classification: the sentiment of short synthetic reviews, negation and "but" included.

    python -m fastrnn.examples.sentiment [--time-limit 60] [--threads 2]

The demo writes its own reviews ("the plot was not bad but the acting was really dull .") whose
label follows simple rules a bag of words cannot learn: "not"/"never"/"hardly" flip the adjective
after them, and after "but" only the last clause counts. A word-level bidirectional GRU reads
each review and a linear layer on its final states gives one logit (binary cross-entropy).
Prints the held-out accuracy and the predictions for a few hand-written sentences.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

import fastrnn

from ..models import RNNClassifier, Trainer, Vocab
from ..nn import Adam

SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending",
            "the story", "the cast", "the script", "the dialogue", "it"]  # fmt: skip
VERBS = ["was", "is", "felt", "seemed"]
POSITIVE = ["good", "great", "wonderful", "brilliant", "fun", "moving", "excellent", "enjoyable",
            "clever", "beautiful"]  # fmt: skip
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "predictable", "annoying", "messy",
            "painful"]  # fmt: skip
INTENSIFIERS = ["", "", "really ", "very ", "quite ", "so ", "truly "]
NEGATORS = ["not ", "never ", "hardly "]
OPENERS = ["", "", "", "i watched it last night . ", "honestly , ", "overall , ", "well , "]


def clause(rng: np.random.Generator) -> tuple[str, int]:
    """One "subject verb [negator] [intensifier] adjective" clause and its polarity (1 = positive)."""
    positive = rng.random() < 0.5
    adj = rng.choice(POSITIVE if positive else NEGATIVE)
    negated = rng.random() < 0.35
    neg = rng.choice(NEGATORS) if negated else ""
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {neg}{rng.choice(INTENSIFIERS)}{adj}"
    return text, int(positive != negated)


def review(rng: np.random.Generator) -> tuple[str, int]:
    """A review and its label: one clause, two agreeing clauses joined by "and", or two clauses
    joined by "but" (the second decides)."""
    first, label = clause(rng)
    r = rng.random()
    if r < 0.4:
        body = first
    elif r < 0.6:
        while True:
            second, l2 = clause(rng)
            if l2 == label:
                break
        body = f"{first} and {second}"
    else:
        second, label = clause(rng)
        body = f"{first} but {second}"
    return f"{rng.choice(OPENERS)}{body} .", label


def reviews(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    pairs = [review(rng) for _ in range(n)]
    return [t for t, _ in pairs], np.array([y for _, y in pairs], np.int64)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        prog="python -m fastrnn.examples.sentiment", description=__doc__.split("\n")[0]
    )
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument(
        "--target", type=float, default=0.995, help="stop when validation accuracy reaches this"
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--hidden", type=int, default=48)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", default="auto", choices=["auto", "tqdm", "plain", "none"])
    args = p.parse_args(argv)
    if args.threads:
        fastrnn.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    train_texts, _ = reviews(5000, rng)
    vocab = Vocab.build(train_texts, level="word")
    val_x, val_y = reviews(1000, rng)
    test_x, test_y = reviews(args.test_size, rng)
    model = RNNClassifier(len(vocab), 1, embedding_dim=32, hidden_size=args.hidden, cell="gru",
                          pad_index=vocab.pad_index, seed=args.seed)  # fmt: skip
    opt = Adam(model, lr=args.lr)
    trainer = Trainer(model, opt, clip_grad_norm=5.0, progress=args.progress)

    def accuracy(texts: list[str], labels: np.ndarray) -> float:
        ids, lens = vocab.encode_batch(texts)
        return float(np.mean(model.predict(ids, lens) == labels))

    def batches(epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        r = np.random.default_rng([args.seed, epoch])
        for _ in range(200):
            texts, labels = reviews(args.batch_size, r)
            ids, lens = vocab.encode_batch(texts)
            yield ids, lens, labels

    def step(batch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[float, int]:
        ids, lens, labels = batch
        return model.loss(ids, labels, lens)

    trainer.fit(batches, step, epochs=100, evaluate=lambda: {"val_acc": accuracy(val_x, val_y)},
                eval_every=100, stop=lambda m: m["val_acc"] >= args.target,
                time_limit=args.time_limit, steps_per_epoch=200)  # fmt: skip
    acc = accuracy(test_x, test_y)
    demo = ["the acting was not bad at all .", "the plot was great but the ending was really dull .",
            "honestly , it was never boring .", "the cast was brilliant and the script was clever .",
            "the story seemed quite predictable ."]  # fmt: skip
    ids, lens = vocab.encode_batch(demo)
    for text, y in zip(demo, model.predict(ids, lens)):
        print(f"  {'positive' if y else 'negative':8}  {text}")
    print(f"accuracy on {len(test_x)} held-out reviews: {acc:.2%} (trained {trainer.elapsed:.0f}s, "
          f"{trainer.global_step} steps of {args.batch_size})")  # fmt: skip
    return {"accuracy": acc, "train_seconds": trainer.elapsed, "steps": trainer.global_step}


if __name__ == "__main__":
    main()
    sys.exit(0)
