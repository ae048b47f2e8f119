"""Readable NumPy references of the word2vec and GloVe objectives and updates (float64), used by
tests/test_embeddings*.py; the gradients here are themselves checked by finite differences."""

from __future__ import annotations

import numpy as np


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x: float) -> float:
    return float(np.logaddexp(0.0, x))


# ---- one logistic output layer: -log s(u_t . v) for the positives, -log s(-u_t . v) for the rest


def pair_loss(v: np.ndarray, U: np.ndarray, targets: list[int], labels: list[float]) -> float:
    """Negative log-likelihood of one input vector v (D,) against output rows U[targets]."""
    return sum(
        softplus(-(U[t] @ v)) if lab > 0 else softplus(U[t] @ v) for t, lab in zip(targets, labels)
    )


def pair_grad(
    v: np.ndarray, U: np.ndarray, targets: list[int], labels: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dv (D,), dL/dU (V, D)) of pair_loss: dL/df = sigmoid(f) - label for f = u_t . v."""
    dv = np.zeros_like(v)
    dU = np.zeros_like(U)
    for t, lab in zip(targets, labels):
        r = sigmoid(U[t] @ v) - lab
        dv += r * U[t]
        dU[t] += r * v
    return dv, dU


def output_step(
    v: np.ndarray, U: np.ndarray, targets: list[int], labels: list[float], alpha: float
) -> tuple[np.ndarray, float]:
    """word2vec.c's order: each target's row is updated right after its own dot product, the
    input gradient e is accumulated and returned (v itself is not changed here)."""
    e = np.zeros_like(v)
    loss = 0.0
    for t, lab in zip(targets, labels):
        f = U[t] @ v
        loss += softplus(-f) if lab > 0 else softplus(f)
        if abs(f) >= 6:
            continue
        g = (lab - sigmoid(f)) * alpha
        e += g * U[t]
        U[t] += g * v
    return e, loss


def hs_targets(
    word: int, codes: np.ndarray, points: np.ndarray, start: np.ndarray
) -> tuple[list[int], list[float]]:
    """The inner nodes on word's Huffman path and their labels 1 - code."""
    k = slice(int(start[word]), int(start[word + 1]))
    return [int(p) for p in points[k]], [1.0 - float(c) for c in codes[k]]


def w2v_sentence(
    syn0: np.ndarray,
    syn1: np.ndarray | None,
    syn1neg: np.ndarray | None,
    sent: list[int],
    window: int,
    sg: bool,
    negatives: dict[int, list[int]] | None,
    hs: tuple | None,
    alpha: float,
    cbow_mean: bool = True,
) -> float:
    """One sentence of word2vec with a fixed window (no shrinking, no subsampling) and given noise
    words per predicted position (negatives[pos]); updates the arrays in place, returns the loss.
    Output units with |u . v| >= 6 are left alone, as in word2vec.c and gensim (the tests keep
    |u . v| well below that)."""
    loss = 0.0
    n = len(sent)

    def out(v: np.ndarray, pos: int) -> np.ndarray:
        nonlocal loss
        e = np.zeros_like(v)
        if hs is not None:
            t, lab = hs_targets(sent[pos], *hs)
            de, dl = output_step(v, syn1, t, lab, alpha)
            e += de
            loss += dl
        if negatives is not None:
            t = [sent[pos]] + [w for w in negatives[pos] if w != sent[pos]]
            lab = [1.0] + [0.0] * (len(t) - 1)
            de, dl = output_step(v, syn1neg, t, lab, alpha)
            e += de
            loss += dl
        return e

    for pos in range(n):
        ctx = [c for c in range(max(0, pos - window), min(n, pos + window + 1)) if c != pos]
        if sg:
            for c in ctx:
                syn0[sent[c]] += out(syn0[sent[c]].copy(), pos)
        elif ctx:
            v = syn0[[sent[c] for c in ctx]].sum(axis=0)
            if cbow_mean:
                v = v / len(ctx)
            e = out(v, pos)
            if not cbow_mean:  # gensim divides the gradient of a sum among the context words
                e = e / len(ctx)
            for c in ctx:
                syn0[sent[c]] += e
    return loss


# ---- GloVe


def glove_cost(w, wc, b, bc, i, j, x, x_max, alpha) -> float:
    """1/2 f(x) (w_i . wc_j + b_i + bc_j - log x)^2, f(x) = min(1, (x/x_max)^alpha)."""
    f = 1.0 if x > x_max else (x / x_max) ** alpha
    d = w[i] @ wc[j] + b[i] + bc[j] - np.log(x)
    return 0.5 * f * d * d


def glove_grad(w, wc, b, bc, i, j, x, x_max, alpha):
    """(dw_i, dwc_j, db_i, dbc_j) of glove_cost."""
    f = 1.0 if x > x_max else (x / x_max) ** alpha
    d = w[i] @ wc[j] + b[i] + bc[j] - np.log(x)
    return f * d * wc[j], f * d * w[i], f * d, f * d


def glove_step(w, wc, b, bc, gw, gwc, gb, gbc, i, j, x, x_max, alpha, eta) -> float:
    """One AdaGrad step on one record (in place), as glove.c: step eta * grad / sqrt(G), where G
    (initialised to 1) then accumulates the squared (eta-scaled) gradient."""
    cost = glove_cost(w, wc, b, bc, i, j, x, x_max, alpha)
    dwi, dwj, dbi, dbj = glove_grad(w, wc, b, bc, i, j, x, x_max, alpha)
    dwi, dwj, dbi, dbj = eta * dwi, eta * dwj, eta * dbi, eta * dbj
    w[i] -= dwi / np.sqrt(gw[i])
    wc[j] -= dwj / np.sqrt(gwc[j])
    gw[i] += dwi**2
    gwc[j] += dwj**2
    b[i] -= dbi / np.sqrt(gb[i])
    bc[j] -= dbj / np.sqrt(gbc[j])
    gb[i] += dbi**2
    gbc[j] += dbj**2
    return cost


def cooccurrence(sentences: list[list[int]], V: int, window: int) -> np.ndarray:
    """Dense X (V, V): X_ij += 1/d for every pair at distance d <= window, both orders."""
    X = np.zeros((V, V))
    for s in sentences:
        for p in range(len(s)):
            for c in range(max(0, p - window), p):
                X[s[p], s[c]] += 1.0 / (p - c)
                X[s[c], s[p]] += 1.0 / (p - c)
    return X


def finite_diff(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of x (in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        k = it.multi_index
        old = x[k]
        x[k] = old + eps
        fp = f()
        x[k] = old - eps
        fm = f()
        x[k] = old
        g[k] = (fp - fm) / (2 * eps)
    return g
