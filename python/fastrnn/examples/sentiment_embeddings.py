"""Sentiment from pretrained word vectors: their average -> Linear, vs the vectors -> GRU -> Linear.

    python -m fastrnn.examples.sentiment_embeddings [--folds 10] [--dim 50] [--threads 2] [--seed 0]

The labelled data are real movie-review sentences: the 200 of Pang and Lee's sentence polarity
data that gensim's test data ships (pang_lee_polarity.cor, half positive, half negative; needs
gensim installed). Word vectors are trained first with fastrnn.embeddings.Word2Vec (skip-gram,
negative sampling) on unlabelled text: those sentences without their labels, gensim's Lee news
corpora and Python's pydoc topics. Then, in k-fold cross-validation, two classifiers read the
frozen vectors:

(a) the mean of a sentence's word vectors -> Linear (logistic regression): a bag of words, so it
    cannot tell "good, not bad" from "bad, not good";
(b) the vectors, in order, -> bidirectional GRU -> its final states -> Linear: it sees word order.

Prints the mean held-out accuracy (and its spread over folds) of both. With 200 sentences the
estimates are rough (a fold's test set is 20 sentences); the point is the pipeline.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import numpy as np

import fastrnn

from ..embeddings import KeyedVectors, Word2Vec
from ..embeddings.__main__ import gensim_test_data
from ..models import RNNClassifier
from ..nn import Adam, Embedding, Linear
from ..nn.losses import binary_cross_entropy_with_logits_with_grad

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


def tokenize(text: str) -> list[str]:
    return WORD.findall(text.lower())


def load_polarity() -> tuple[list[list[str]], np.ndarray]:
    """The labelled sentences (tokens) and their labels (1 positive, 0 negative)."""
    path = gensim_test_data("pang_lee_polarity.cor")
    if path is None:
        raise SystemExit("this example needs gensim's test data: pip install gensim")
    texts, labels = [], []
    with open(path, encoding="latin-1") as f:  # the file is not UTF-8
        for line in f:
            label, _, text = line.partition(" ")
            if label in ("__label__pos", "__label__neg"):
                texts.append(tokenize(text))
                labels.append(int(label == "__label__pos"))
    return texts, np.array(labels, np.int64)


def unlabelled_text(texts: list[list[str]]) -> list[list[str]]:
    """Sentences to train the vectors on: the labelled ones without labels, plus news and docs."""
    sents = list(texts)
    for name in ("lee_background.cor", "lee.cor"):
        p = gensim_test_data(name)
        if p:
            with open(p, encoding="utf8", errors="replace") as f:
                sents += [tokenize(line) for line in f]
    try:
        from pydoc_data.topics import topics

        for t in topics.values():
            sents += [tokenize(line) for line in t.splitlines()]
    except ImportError:
        pass
    return [s for s in sents if len(s) >= 2]


def encode(texts: list[list[str]], kv: KeyedVectors, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """ids (B, T) padded with `pad`, lengths (B,) (unknown words dropped; empty -> [pad])."""
    rows = [[kv.key_to_index[w] for w in t if w in kv.key_to_index] or [pad] for t in texts]
    T = max(len(r) for r in rows)
    ids = np.full((len(rows), T), pad, np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids, np.array([len(r) for r in rows], np.int64)


def fit_average(feats: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> Linear:
    """Logistic regression on the averaged vectors (full-batch Adam)."""
    lin = Linear(feats.shape[1], 1, seed=seed)
    opt = Adam(lin, lr=0.05)
    for _ in range(epochs):
        loss, g = binary_cross_entropy_with_logits_with_grad(lin(feats)[:, 0], y.astype(np.float32))
        lin.zero_grad()
        lin.backward(g[:, None])
        opt.step()
    return lin


def fit_rnn(
    ids, lens, y, vectors: np.ndarray, hidden: int, epochs: int, seed: int
) -> RNNClassifier:
    """Frozen pretrained vectors -> bidirectional GRU -> Linear, minibatch Adam."""
    V, D = vectors.shape
    model = RNNClassifier(
        V, 1, embedding_dim=D, hidden_size=hidden, cell="gru", pad_index=V - 1, seed=seed
    )
    model.embed = Embedding.from_pretrained(vectors, freeze=True, padding_idx=V - 1)
    opt = Adam(model, lr=5e-3)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for lo in range(0, len(y), 16):
            b = order[lo : lo + 16]
            T = int(lens[b].max())
            model.zero_grad()
            model.loss(ids[b, :T], y[b], lens[b])
            opt.step()
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        prog="python -m fastrnn.examples.sentiment_embeddings", description=__doc__.split("\n")[0]
    )
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--dim", type=int, default=50, help="word vector size")
    p.add_argument("--w2v-epochs", type=int, default=10)
    p.add_argument("--epochs", type=int, default=30, help="classifier epochs (GRU); x10 for (a)")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        fastrnn.set_num_threads(args.threads)
    t0 = time.perf_counter()
    texts, y = load_polarity()
    corpus = unlabelled_text(texts)
    w2v = Word2Vec(corpus, vector_size=args.dim, window=5, min_count=1, sg=1, negative=5,
                   epochs=args.w2v_epochs, seed=args.seed + 1, workers=args.threads)  # fmt: skip
    kv = w2v.wv
    print(f"word vectors: {len(kv)} words x {args.dim}, trained on {sum(map(len, corpus))} tokens "
          f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    # unit-length vectors (word2vec's norms are small and track frequency) + the padding row
    vectors = np.vstack([kv.get_normed_vectors(), np.zeros((1, args.dim))]).astype(np.float32)
    pad = len(kv)
    ids, lens = encode(texts, kv, pad)
    mask = (np.arange(ids.shape[1])[None, :] < lens[:, None])[..., None]
    feats = ((vectors[ids] * mask).sum(axis=1) / lens[:, None]).astype(np.float32)  # (B, D) mean
    rng = np.random.default_rng(args.seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in (0, 1)])
    fold_of = np.empty(len(y), np.int64)
    fold_of[order] = np.arange(len(y)) % args.folds  # stratified folds
    acc: dict[str, list[float]] = {"average": [], "rnn": [], "average_train": [], "rnn_train": []}
    for k in range(args.folds):
        tr, te = fold_of != k, fold_of == k
        mu, sd = feats[tr].mean(axis=0), feats[tr].std(axis=0) + 1e-6  # standardised features
        z = ((feats - mu) / sd).astype(np.float32)
        lin = fit_average(z[tr], y[tr], 10 * args.epochs, args.seed + k)
        for name, sel in (("average", te), ("average_train", tr)):
            acc[name].append(float(np.mean((lin(z[sel])[:, 0] > 0) == y[sel])))
        rnn = fit_rnn(ids[tr], lens[tr], y[tr], vectors, args.hidden, args.epochs, args.seed + k)
        for name, sel in (("rnn", te), ("rnn_train", tr)):
            acc[name].append(float(np.mean(rnn.predict(ids[sel], lens[sel]) == y[sel])))
    res = {k: float(np.mean(v)) for k, v in acc.items()}
    print(f"{args.folds}-fold cross-validation on {len(y)} labelled sentences:")
    print(f"  (a) mean of word vectors -> Linear:   held-out {res['average']:.1%} "
          f"(std over folds {np.std(acc['average']):.1%}; train {res['average_train']:.1%})")  # fmt: skip
    print(f"  (b) word vectors -> GRU -> Linear:    held-out {res['rnn']:.1%} "
          f"(std over folds {np.std(acc['rnn']):.1%}; train {res['rnn_train']:.1%})")  # fmt: skip
    print(f"  chance 50.0%; (a) ignores word order, (b) reads it ({time.perf_counter() - t0:.0f}s)")
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
