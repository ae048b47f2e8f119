"""RNNClassifier (many-to-one): finite differences, PyTorch, padding, the sentiment demo."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.examples import sentiment
from fastrnn.models import RNNClassifier


@pytest.mark.parametrize("cell,classes,layers", [("gru", 1, 1), ("lstm", 3, 2), ("rnn", 2, 1)])
def test_classifier_finite_differences(cell, classes, layers):
    m = RNNClassifier(
        9,
        classes,
        embedding_dim=3,
        hidden_size=4,
        num_layers=layers,
        cell=cell,
        dtype="float64",
        seed=0,
    )
    rng = np.random.default_rng(0)
    x = rng.integers(1, 9, (4, 6))
    lens = np.array([6, 2, 4, 1])
    y = rng.integers(0, max(classes, 2), 4)

    def f():
        return m.loss(x, y, lens, backward=False)[0]

    m.zero_grad()
    m.loss(x, y, lens)
    params = dict(m.named_parameters())
    grads = m.grads
    params.pop("embed.weight")  # row 0 is padding (never trained); the others:
    num = nn.numerical_grad(f, m.embed.weight, indices=np.arange(3, 27))
    np.testing.assert_allclose(
        grads["embed.weight"].reshape(-1)[3:], num.reshape(-1)[3:], rtol=1e-5, atol=1e-8
    )
    nn.gradcheck(f, params, grads, max_entries=8)


def test_classifier_matches_torch_and_ignores_padding():
    torch = pytest.importorskip("torch")
    m = RNNClassifier(9, 1, embedding_dim=3, hidden_size=4, seed=0)
    x = np.random.default_rng(0).integers(1, 9, (3, 5))
    lens = np.array([5, 2, 3])
    logits = m(x, lens)
    x2 = x.copy()
    x2[1, 2:] = 7
    np.testing.assert_array_equal(m(x2, lens), logits)
    emb = torch.nn.Embedding(9, 3, padding_idx=0)
    gru = torch.nn.GRU(3, 4, bidirectional=True)
    lin = torch.nn.Linear(8, 1)
    sd = m.state_dict()
    emb.weight.data = torch.from_numpy(sd["embed.weight"])
    gru.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in sd.items() if k.startswith("rnn.")})
    lin.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in sd.items() if k.startswith("out.")})
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        emb(torch.from_numpy(x.T)), torch.from_numpy(lens), enforce_sorted=False
    )
    _, h = gru(packed)
    tl = lin(torch.cat([h[-2], h[-1]], dim=1))[:, 0]
    np.testing.assert_allclose(logits, tl.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_classifier_bad_input():
    m = RNNClassifier(9, 1, hidden_size=4)
    x = np.ones((2, 3), np.int64)
    with pytest.raises(ValueError, match=r"labels: expected 0/1 labels"):
        m.loss(x, np.array([0, 2]))
    with pytest.raises(ValueError, match=r"labels: expected shape \(2,\)"):
        m.loss(x, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"lengths: each must be in \[1, 3\]"):
        m(x, [3, 4])
    with pytest.raises(IndexError, match="tokens: token id 9"):
        m(x * 9)


def test_sentiment_rules_and_demo(capsys):
    rng = np.random.default_rng(0)
    texts, labels = sentiment.reviews(2000, rng)
    seen = {}
    for t, y in zip(texts, labels):
        assert seen.setdefault(t, y) == y
    assert sentiment.review(np.random.default_rng(1))[0].endswith(" .")
    res = sentiment.main(
        ["--time-limit", "1", "--test-size", "200", "--threads", "1", "--progress", "none"]
    )
    assert 0.0 <= res["accuracy"] <= 1.0
    assert "held-out reviews" in capsys.readouterr().out
