"""Vocab, RNN language models (truncated BPTT, perplexity, sampling) and the n-gram baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.models import (
    NGramLM,
    RNNLanguageModel,
    Vocab,
    batchify,
    bptt_batches,
    perplexity,
    sample,
    tokenize,
)

# --- Vocab ---------------------------------------------------------------------------------------


def test_vocab_char_level_roundtrip(tmp_path):
    v = Vocab.build(["hello world", "hold"], level="char")
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert v.itos[4] == "l"  # most frequent first
    assert (v.pad_index, v.unk_index, v.bos_index, v.eos_index) == (0, 1, 2, 3)
    ids = v.encode("hello!", add_bos=True, add_eos=True)
    assert ids[0] == v.bos_index and ids[-1] == v.eos_index and ids[-2] == v.unk_index
    assert v.decode(ids) == "hello<unk>"
    assert v.decode(v.encode("world")) == "world"
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == v


def test_vocab_word_level_min_freq_and_batches():
    texts = ["the cat sat.", "the dog sat, didn't it?", "The end"]
    assert tokenize(texts[1], "word") == ["the", "dog", "sat", ",", "didn't", "it", "?"]
    v = Vocab.build(texts, level="word", min_freq=2, lower=True)
    assert set(v.itos[4:]) == {"the", "sat"}
    assert v.decode(v.encode("The cat sat")) == "the <unk> sat"
    ids, lens = v.encode_batch(["the sat", "sat"], add_eos=True)
    assert ids.shape == (2, 3) and list(lens) == [3, 2] and ids[1, 2] == v.pad_index


def test_vocab_bad_input():
    with pytest.raises(
        ValueError, match="texts: empty vocabulary: no token occurs at least min_freq=5"
    ):
        Vocab.build(["abc"], min_freq=5)
    with pytest.raises(ValueError, match="texts: empty vocabulary"):
        Vocab.build([])
    with pytest.raises(ValueError, match="tokens: empty vocabulary"):
        Vocab([])
    with pytest.raises(ValueError, match="level: expected 'char' or 'word'"):
        Vocab.build(["a"], level="byte")
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a str"):
        Vocab.build(["a", 3])
    v = Vocab.build("ab")
    with pytest.raises(IndexError, match=r"ids: id 99 is out of range \[0, 6\)"):
        v.decode([99])


# --- RNN language model --------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_lm_finite_differences(cell):
    m = RNNLanguageModel(9, 4, 5, num_layers=2, cell=cell, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 9, (3, 6)), rng.integers(0, 9, (3, 6))
    state0 = m.init_state(3)
    state0 = (state0[0] + 0.3, state0[1] - 0.2) if cell == "lstm" else state0 + 0.3

    def f():
        return m.loss(x, y, state0, backward=False)[0]

    m.zero_grad()
    m.loss(x, y, state0)
    nn.gradcheck(f, dict(m.named_parameters()), m.grads, max_entries=8)


def test_truncated_bptt_carries_the_state():
    """Two chunks with the carried state give the same outputs as one forward over both."""
    m = RNNLanguageModel(9, 4, 5, num_layers=2, dtype="float64", seed=0)
    m.eval()
    x = np.random.default_rng(0).integers(0, 9, (2, 10))
    full, _ = m(x)
    a, s = m(x[:, :4])
    b, _ = m(x[:, 4:], s)
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), full, rtol=1e-12)


def test_batchify_and_bptt_batches():
    data = batchify(np.arange(23), 4)
    assert data.shape == (4, 5) and list(data[1]) == [5, 6, 7, 8, 9]
    chunks = list(bptt_batches(data, 3))
    assert [c[0].shape[1] for c in chunks] == [3, 1]
    np.testing.assert_array_equal(chunks[0][1], data[:, 1:4])
    with pytest.raises(ValueError, match="too short for batch_size=16"):
        batchify(np.arange(20), 16)


def test_perplexity_of_an_untrained_uniform_model_is_the_vocabulary_size():
    m = RNNLanguageModel(11, 3, 4, seed=0)
    m.out.weight[...] = 0
    m.out.bias[...] = 0
    ids = np.random.default_rng(0).integers(0, 11, 400)
    np.testing.assert_allclose(perplexity(m, ids, batch_size=4, bptt=16), 11.0, rtol=1e-5)


def test_lm_learns_a_repeating_pattern_and_samples_it():
    pattern = np.array([4, 5, 6, 7, 5, 4])
    ids = np.tile(pattern, 120)
    m = RNNLanguageModel(8, 8, 24, seed=0)
    opt = nn.Adam(m, lr=0.02)
    data = batchify(ids, 4)
    for _ in range(6):
        state = None
        for x, y in bptt_batches(data, 12):
            m.zero_grad()
            _, _, state = m.loss(x, y, state)
            opt.step()
    assert perplexity(m, ids[:200], batch_size=2, bptt=20) < 1.3
    out = sample(m, 12, prefix=pattern[:3], temperature=0.5, top_k=1)
    np.testing.assert_array_equal(out[0], np.tile(pattern, 3)[3:15])


def test_sampling_is_seeded_and_top_k_restricts():
    m = RNNLanguageModel(20, 4, 8, seed=0)
    a = sample(m, 30, seed=7, num_samples=3)
    b = sample(m, 30, seed=7, num_samples=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 30) and not np.array_equal(a, sample(m, 30, seed=8, num_samples=3))
    g1 = sample(m, 10, top_k=1, seed=1)
    np.testing.assert_array_equal(g1, sample(m, 10, top_k=1, seed=2))  # greedy ignores the seed
    with pytest.raises(ValueError, match="temperature: expected a finite number > 0"):
        sample(m, 5, temperature=0)
    with pytest.raises(IndexError, match="prefix: token id 20"):
        sample(m, 5, prefix=[20])


def test_lm_step_protocol_matches_forward():
    m = RNNLanguageModel(9, 4, 5, num_layers=2, dtype="float64", seed=0)
    x = np.random.default_rng(0).integers(0, 9, (2, 6))
    m.eval()
    logits, _ = m(x)
    st = m.initial_step_state(2)
    for t in range(6):
        lp, st = m.step(x[:, t], st)
        np.testing.assert_allclose(lp, nn.log_softmax(logits[:, t]), rtol=1e-10, atol=1e-12)
    assert m.reorder_state(st, [1, 1])["h"].shape == (2, 2, 5)


def test_lm_bad_input():
    m = RNNLanguageModel(9, 4, 5)
    with pytest.raises(IndexError, match=r"tokens: token id 9 at position \(0, 2\)"):
        m(np.array([[1, 2, 9]]))
    with pytest.raises(ValueError, match=r"targets: expected shape \(1, 3\)"):
        m.loss(np.array([[1, 2, 3]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="tokens: expected a 2-D array"):
        m(np.array([1, 2]))


# --- n-gram ----------------------------------------------------------------------------------------


def test_ngram_by_hand():
    # stream a b a b a c over V=3 (a=0, b=1, c=2), bigrams, eps=0.5
    ids = np.array([0, 1, 0, 1, 0, 2])
    lm = NGramLM(2, 3, epsilon=0.5).fit(ids)
    uni = lambda w: 0.5 * np.bincount(ids, minlength=3)[w] / 6 + 0.5 / 3
    # after "a": b twice, c once (3 bigrams from context a)
    np.testing.assert_allclose(
        lm.next_distribution([0]),
        [0.5 * 0 + 0.5 * uni(0), 0.5 * 2 / 3 + 0.5 * uni(1), 0.5 * 1 / 3 + 0.5 * uni(2)],
    )
    np.testing.assert_allclose(
        lm.next_distribution([2]), [uni(0), uni(1), uni(2)]
    )  # unseen context
    p = [uni(0)] + [lm.next_distribution([ids[i - 1]])[ids[i]] for i in range(1, 6)]
    np.testing.assert_allclose(lm.perplexity(ids), math.exp(-np.mean(np.log(p))))


@pytest.mark.parametrize("n", [1, 3, 5])
def test_ngram_distributions_sum_to_one_and_beat_uniform(n):
    rng = np.random.default_rng(0)
    ids = np.tile(rng.integers(0, 10, 50), 20)
    lm = NGramLM(n, 12, epsilon=0.1).fit(ids)
    for ctx in ([], [3], [1, 2, 3, 4], [11, 11]):
        np.testing.assert_allclose(lm.next_distribution(np.array(ctx, np.int64)).sum(), 1.0)
    assert lm.perplexity(ids[:200]) < 12
    if n == 5:
        assert lm.perplexity(ids[:200]) < 1.5
    s = lm.sample(20, context=ids[:4], seed=0)
    np.testing.assert_array_equal(s, lm.sample(20, context=ids[:4], seed=0))


def test_ngram_sequences_do_not_cross_boundaries_and_bad_input():
    lm = NGramLM(2, 4).fit([np.array([0, 1]), np.array([2, 3])])
    # "1 2" would be a bigram of the concatenation; "1" ends its sequence, so it is no context
    np.testing.assert_allclose(lm.next_distribution([1]), lm.next_distribution([]))
    with pytest.raises(ValueError, match=r"epsilon: expected a number in \(0, 1\)"):
        NGramLM(2, 4, epsilon=0)
    with pytest.raises(IndexError, match="ids: token id 4"):
        NGramLM(2, 4).fit(np.array([0, 4]))
    with pytest.raises(RuntimeError, match="call fit"):
        NGramLM(2, 4).perplexity(np.array([0, 1]))
    with pytest.raises(ValueError, match="do not fit in 64-bit keys"):
        NGramLM(6, 2**11)
