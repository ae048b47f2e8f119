"""fastrnn.embeddings.GloVe: co-occurrence counting (in memory and spilled to disk) against a
dense NumPy count, the AdaGrad kernel against the reference step and finite differences,
planted analogies, determinism, save/load and bad input."""

from __future__ import annotations

import embeddings_reference as ref
import numpy as np
import pytest

from fastrnn import _C
from fastrnn.embeddings import GloVe


def soft_corpus(n_entities: int = 8, K: int = 30, n_sent: int = 6000, seed: int = 0):
    """Words e{i}_{g} whose 6 context words are drawn from a shared pool with
    P(c | i, g) ~ exp(A[i, c] + B[g, c]): log co-occurrence counts are additive in entity and
    attribute, which GloVe's log-bilinear model fits, so e{i}_m : e{i}_f :: e{j}_m : e{j}_f.
    (Contexts that never co-occur give GloVe no constraint at all, hence a shared pool.)"""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_entities, K))
    B = rng.standard_normal((2, K))
    sents = []
    for _ in range(n_sent):
        i, g = rng.integers(n_entities), rng.integers(2)
        p = np.exp(A[i] + B[g])
        p /= p.sum()
        ctx = [f"c{k}" for k in rng.choice(K, 6, p=p)]
        sents.append(ctx[:3] + [f"e{i}_{'mf'[g]}"] + ctx[3:])
    lines = [": planted"] + [
        f"e{i}_m e{i}_f e{j}_m e{j}_f"
        for i in range(n_entities)
        for j in range(n_entities)
        if i != j
    ]
    return sents, lines


def _random_ids(V=12, S=40, seed=0):
    rng = np.random.default_rng(seed)
    sents = [list(rng.integers(0, V, rng.integers(1, 15))) for _ in range(S)]
    ids = np.array([w for s in sents for w in s], np.int32)
    starts = np.r_[0, np.cumsum([len(s) for s in sents])].astype(np.int64)
    return sents, ids, starts


@pytest.mark.parametrize("memory", [1 << 20, 1024, 2048], ids=["in-memory", "spilled", "spilled-2"])
@pytest.mark.parametrize("window", [1, 3, 10])
def test_cooccurrence_matches_dense_count(tmp_path, memory, window):
    V = 12
    sents, ids, starts = _random_ids(V)
    rows, cols, vals, spills = _C.emb_cooccurrence(
        ids, starts, V, window, True, memory, str(tmp_path)
    )
    X = ref.cooccurrence(sents, V, window)
    got = np.zeros((V, V))
    got[rows, cols] = vals
    np.testing.assert_allclose(got, X, rtol=1e-6)
    assert len(rows) == np.count_nonzero(X)  # unique pairs, zeros never stored
    key = rows.astype(np.int64) * V + cols
    assert np.all(np.diff(key) > 0)  # sorted by (row, col)
    if memory == 1024:
        assert spills > 0
    assert list(tmp_path.iterdir()) == []  # temporary runs are gone


def test_cooccurrence_unweighted():
    V = 5
    sents, ids, starts = _random_ids(V, S=10, seed=2)
    rows, cols, vals, _ = _C.emb_cooccurrence(ids, starts, V, 2, False, 1 << 20, "/tmp")
    X = np.zeros((V, V))
    for s in sents:
        for p in range(len(s)):
            for c in range(max(0, p - 2), p):
                X[s[p], s[c]] += 1
                X[s[c], s[p]] += 1
    got = np.zeros((V, V))
    got[rows, cols] = vals
    np.testing.assert_array_equal(got, X)


def _state(V, D, seed):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.uniform(-0.5, 0.5, s).astype(np.float32)  # noqa: E731
    g = lambda *s: rng.uniform(1.0, 2.0, s).astype(np.float32)  # noqa: E731
    return [f(V, D), f(V, D), f(V), f(V), g(V, D), g(V, D), g(V), g(V)]


@pytest.mark.parametrize("x", [0.5, 3.0, 250.0])
def test_glove_gradient_finite_differences(x):
    V, D, i, j = 4, 6, 1, 3
    w, wc, b, bc, *_ = [a.astype(np.float64) for a in _state(V, D, 0)]
    dwi, dwj, dbi, dbj = ref.glove_grad(w, wc, b, bc, i, j, x, 100.0, 0.75)
    cost = lambda: ref.glove_cost(w, wc, b, bc, i, j, x, 100.0, 0.75)  # noqa: E731
    np.testing.assert_allclose(ref.finite_diff(cost, w)[i], dwi, atol=1e-8)
    np.testing.assert_allclose(ref.finite_diff(cost, wc)[j], dwj, atol=1e-8)
    np.testing.assert_allclose(ref.finite_diff(cost, b)[i], dbi, atol=1e-8)
    np.testing.assert_allclose(ref.finite_diff(cost, bc)[j], dbj, atol=1e-8)


def test_glove_kernel_matches_reference_steps():
    V, D = 5, 7
    st = _state(V, D, 1)
    rng = np.random.default_rng(1)
    R = 30
    rows = rng.integers(0, V, R).astype(np.int32)
    cols = rng.integers(0, V, R).astype(np.int32)
    vals = rng.uniform(0.1, 150, R).astype(np.float32)
    r = [a.astype(np.float64) for a in st]
    want = sum(
        ref.glove_step(*r, int(rows[k]), int(cols[k]), float(vals[k]), 100.0, 0.75, 0.05)
        for k in range(R)
    )
    got = _C.emb_glove_epoch(*st, rows, cols, vals, 100.0, 0.75, 0.05, 1)
    assert got == pytest.approx(want, rel=1e-4)
    for a, b in zip(st, r):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_planted_analogies_recovered(tmp_path):
    sents, lines = soft_corpus()
    q = tmp_path / "questions.txt"
    q.write_text("\n".join(lines) + "\n")
    m = GloVe(sents, vector_size=16, window=3, min_count=1, epochs=50, x_max=10, workers=2, seed=1)
    acc, _ = m.wv.evaluate_word_analogies(q)
    assert acc >= 0.9, acc
    assert m.losses[-1] < m.losses[0] / 5


def test_deterministic_with_one_worker_and_save_load(tmp_path):
    sents, _ = soft_corpus(n_sent=500)
    a = GloVe(sents, vector_size=8, window=3, min_count=1, epochs=3, workers=1, seed=4)
    b = GloVe(sents, vector_size=8, window=3, min_count=1, epochs=3, workers=1, seed=4)
    c = GloVe(sents, vector_size=8, window=3, min_count=1, epochs=3, workers=1, seed=5)
    assert np.array_equal(a.wv.vectors, b.wv.vectors) and a.losses == b.losses
    assert not np.array_equal(a.wv.vectors, c.wv.vectors)
    np.testing.assert_array_equal(a.wv.vectors, (a.w + a.wc) / 2)
    a.save(tmp_path / "g.npz")
    a2 = GloVe.load(tmp_path / "g.npz")
    a.train(epochs=2)
    a2.train(epochs=2)
    assert np.array_equal(a.wv.vectors, a2.wv.vectors) and a.losses == a2.losses


def test_corpus_file_and_spilling_give_the_same_counts(tmp_path):
    sents, _ = soft_corpus(n_sent=300)
    f = tmp_path / "c.txt"
    f.write_text("\n".join(" ".join(s) for s in sents))
    a = GloVe(sents, vector_size=8, window=3, min_count=1, epochs=1, workers=1)
    b = GloVe(corpus_file=f, vector_size=8, window=3, min_count=1, epochs=1, workers=1, memory=4e-6)
    assert b.spills > 0 and a.spills == 0
    assert a.wv.index_to_key == b.wv.index_to_key and a.num_records == b.num_records
    ka = np.lexsort((a._records[1], a._records[0]))
    kb = np.lexsort((b._records[1], b._records[0]))
    np.testing.assert_array_equal(a._records[0][ka], b._records[0][kb])
    np.testing.assert_allclose(a._records[2][ka], b._records[2][kb], rtol=1e-5)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        GloVe([[]], min_count=1)
    with pytest.raises(ValueError, match="min_count"):
        GloVe([["a", "b"]], min_count=5)
    with pytest.raises(ValueError, match="co-occur"):
        GloVe([["a"], ["b"]], min_count=1)
    with pytest.raises(ValueError, match="memory"):
        GloVe(memory=1e-9)
    with pytest.raises(ValueError, match="x_max"):
        GloVe(x_max=0)
    with pytest.raises(ValueError, match="build_vocab"):
        GloVe().train()
    with pytest.raises(TypeError, match="generator"):
        GloVe(iter([["a", "b"]]), min_count=1)
    st = _state(3, 2, 0)
    with pytest.raises(ValueError, match="rows: id 3"):
        _C.emb_glove_epoch(
            *st,
            np.array([3], np.int32),
            np.array([0], np.int32),
            np.ones(1, np.float32),
            100,
            0.75,
            0.05,
            1,
        )
    with pytest.raises(ValueError, match="vals"):
        _C.emb_glove_epoch(
            *st,
            np.array([0], np.int32),
            np.array([0], np.int32),
            np.zeros(1, np.float32),
            100,
            0.75,
            0.05,
            1,
        )
    with pytest.raises(ValueError, match="memory"):
        _C.emb_cooccurrence(
            np.zeros(2, np.int32), np.array([0, 2], np.int64), 1, 2, True, 10, "/tmp"
        )
    with pytest.raises(RuntimeError, match="temporary file"):
        _, ids, starts = _random_ids(12, S=200)
        _C.emb_cooccurrence(ids, starts, 12, 5, True, 1024, str(tmp_path / "no" / "such" / "dir"))
