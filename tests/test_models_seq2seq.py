"""Seq2Seq: finite differences through the whole model, training and decoding paths agree,
greedy decoding, learning a small task, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.models import Seq2Seq, reorder_state

CONFIGS = [
    ("lstm", "additive", 1, None),
    ("lstm", "general", 2, None),
    ("lstm", "dot", 1, 8),
    ("gru", "additive", 2, None),
    ("gru", "scaled_dot", 1, 8),
]


def _model(cell, attention, layers, dec_hidden, dtype="float64", **kw):
    return Seq2Seq(7, 6, embedding_dim=3, hidden_size=4, num_layers=layers, decoder_hidden_size=dec_hidden or 5,
                   cell=cell, attention=attention, dtype=dtype, seed=1, **kw)  # fmt: skip


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 7, (3, 5))
    lens = np.array([5, 2, 4])
    tgt_in = rng.integers(0, 6, (3, 4))
    return src, lens, tgt_in


@pytest.mark.parametrize("cell,attention,layers,dec_hidden", CONFIGS)
def test_seq2seq_finite_differences(cell, attention, layers, dec_hidden):
    m = _model(cell, attention, layers, dec_hidden)
    src, lens, tgt_in = _batch()
    r = np.random.default_rng(1).standard_normal((3, 4, 6))

    def f():
        return float((m(src, tgt_in, lens) * r).sum())

    m.zero_grad()
    f()
    m.backward(r)
    params = dict(m.named_parameters())
    grads = m.grads
    assert set(grads) == set(params)
    # the target padding row is never trained (torch's padding_idx semantics); check the others
    emb = params.pop("tgt_embed.weight")
    g_emb = grads["tgt_embed.weight"]
    num = nn.numerical_grad(f, emb, indices=np.arange(3, emb.size))  # row 0 = pad
    np.testing.assert_allclose(g_emb.reshape(-1)[3:], num.reshape(-1)[3:], rtol=1e-5, atol=1e-8)
    nn.gradcheck(f, params, grads, max_entries=6)


def test_padding_after_source_length_changes_nothing():
    m = _model("lstm", "additive", 1, None)
    src, lens, tgt_in = _batch()
    a = m(src, tgt_in, lens)
    src2 = src.copy()
    src2[1, 2:] = 6
    np.testing.assert_array_equal(m(src2, tgt_in, lens), a)


@pytest.mark.parametrize("cell,attention,layers,dec_hidden", CONFIGS[:4])
def test_teacher_forcing_equals_step_by_step_decoding(cell, attention, layers, dec_hidden):
    """The training forward and the step protocol compute the same distributions."""
    m = _model(cell, attention, layers, dec_hidden)
    src, lens, tgt_in = _batch()
    logits = m(src, tgt_in, lens)
    m.eval()
    state = m.init_state(src, lens)
    for t in range(tgt_in.shape[1]):
        logp, state = m.step(tgt_in[:, t], state)
        np.testing.assert_allclose(logp, nn.log_softmax(logits[:, t]), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state["attention"].sum(axis=1), 1.0)
        assert np.all(state["attention"][1, 2:] == 0)  # masked source positions


def test_greedy_decode_and_reorder_state():
    m = _model("lstm", "additive", 1, None, dtype="float32")
    src, lens, _ = _batch()
    ids, att = m.greedy_decode(src, lens, max_len=7, return_attention=True)
    assert ids.shape[0] == 3 and ids.shape[1] <= 7 and att.shape == ids.shape + (5,)
    for row in ids:  # everything after the first <eos> is <pad>
        hit = np.flatnonzero(row == m.eos_index)
        if hit.size:
            assert np.all(row[hit[0] + 1 :] == m.pad_index)
    state = m.init_state(src, lens)
    re = reorder_state(state, [2, 2, 0])
    assert re["h"].shape == (3, 5) and np.array_equal(re["h"][0], state["h"][2])
    lp1, _ = m.step(np.array([2, 2, 2]), re)
    lp2, _ = m.step(np.array([2, 2, 2]), state)
    np.testing.assert_allclose(lp1[0], lp2[2], rtol=1e-6)


def test_seq2seq_learns_to_reverse_sequences():
    """A tiny attention model learns to reverse 3-5 digit strings (exercises the training loop
    end to end: loss, backward, clipping, Adam, greedy decoding)."""
    rng = np.random.default_rng(0)
    V = 8  # 0 pad, 1 unused, 2 bos, 3 eos, digits 4..7
    m = Seq2Seq(V, V, embedding_dim=8, hidden_size=16, decoder_hidden_size=24, seed=0)
    opt = nn.Adam(m, lr=0.02)

    def batch(n):
        lens = rng.integers(3, 6, n)
        src = np.zeros((n, 5), np.int64)
        tgt = np.zeros((n, 7), np.int64)
        for i, L in enumerate(lens):
            s = rng.integers(4, 8, L)
            src[i, :L] = s
            tgt[i, 0], tgt[i, 1 : L + 1], tgt[i, L + 1] = 2, s[::-1], 3
        return src, lens, tgt

    for _ in range(150):
        src, lens, tgt = batch(32)
        m.zero_grad()
        loss, n = m.loss(src, tgt, lens)
        nn.clip_grad_norm_(m, 5.0)
        opt.step()
    assert loss < 0.2
    src, lens, tgt = batch(100)
    ids = m.greedy_decode(src, lens, max_len=7)
    right = sum(np.array_equal(ids[i, : L + 1], tgt[i, 1 : L + 2]) for i, L in enumerate(lens))
    assert right >= 80


def test_seq2seq_bad_input():
    m = _model("lstm", "additive", 1, None, dtype="float32")
    src, lens, tgt_in = _batch()
    with pytest.raises(ValueError, match=r"tgt_in: batch size 2 does not match src's 3"):
        m(src, tgt_in[:2], lens)
    with pytest.raises(
        IndexError, match=r"src: token id 7 at position \(0, 1\) is out of range \[0, 7\)"
    ):
        bad = src.copy()
        bad[0, 1] = 7
        m(bad, tgt_in, lens)
    with pytest.raises(IndexError, match="tgt_in: token id -1"):
        m(src, tgt_in - 1, lens)
    with pytest.raises(
        ValueError, match=r"src_lengths: each must be in \[1, 5\], got src_lengths\[1\]=6"
    ):
        m(src, tgt_in, [5, 6, 1])
    with pytest.raises(ValueError, match=r"src_lengths: expected 3 lengths"):
        m(src, tgt_in, [5, 5])
    with pytest.raises(ValueError, match="src: expected a 2-D array"):
        m(src[0], tgt_in, lens)
    with pytest.raises(RuntimeError, match="no forward"):
        _model("gru", "additive", 1, None).backward(np.zeros((3, 4, 6)))
    with pytest.raises(ValueError, match="dot"):
        Seq2Seq(5, 5, hidden_size=4, decoder_hidden_size=5, attention="dot")
    with pytest.raises(ValueError, match=r"eos_index: expected an id in \[0, tgt_vocab_size=5\)"):
        Seq2Seq(5, 5, eos_index=9)
    state = m.init_state(src, lens)
    with pytest.raises(ValueError, match="tokens: expected 3 tokens"):
        m.step(np.array([2, 2]), state)


def test_beam_search_over_the_step_protocol():
    pytest.importorskip("fastrnn.beam_search")
    m = _model("lstm", "additive", 1, None, dtype="float64")
    src, lens, _ = _batch()
    greedy = m.greedy_decode(src, lens, max_len=6)
    beams1 = m.beam_decode(src, lens, beam_size=1, max_len=6)
    beams4 = m.beam_decode(src, lens, beam_size=4, max_len=6, n_best=2)
    for b in range(3):
        g = greedy[b]
        hit = np.flatnonzero(g == m.eos_index)
        g = g[: hit[0] + 1] if hit.size else g
        np.testing.assert_array_equal(beams1[b][0].tokens, g)
        assert len(beams4[b]) == 2 and beams4[b][0].score >= beams4[b][1].score
        assert beams4[b][0].log_prob >= beams1[b][0].log_prob - 1e-9 or not beams1[b][0].finished


def test_pickle_roundtrip_after_training_steps():
    import pickle

    m = _model("lstm", "additive", 1, None, dtype="float64")
    src, lens, tgt_in = _batch()
    opt = nn.SGD(m, lr=0.5)
    for _ in range(2):
        m.zero_grad()
        m.backward(np.ones_like(m(src, tgt_in, lens)))
        opt.step()
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2(src, tgt_in, lens), m(src, tgt_in, lens))
    np.testing.assert_array_equal(m2.greedy_decode(src, lens), m.greedy_decode(src, lens))
