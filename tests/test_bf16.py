"""Reduced-precision inference: bfloat16 weights in the step-by-step products, float32 sums and
state. Opt-in per layer or cell through `inference_dtype`; training never uses it."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import _C

LAYERS = [
    ("rnn_tanh", lambda: fastrnn.RNN(64, 96, seed=0)),
    ("gru", lambda: fastrnn.GRU(64, 96, seed=0)),
    ("gru_reset_before", lambda: fastrnn.GRU(64, 96, reset_after=False, seed=0)),
    ("lstm", lambda: fastrnn.LSTM(64, 96, seed=0)),
    (
        "lstm_peephole_bi_2layer",
        lambda: fastrnn.LSTM(64, 96, 2, bidirectional=True, peephole=True, seed=0),
    ),
]


def first(out):
    return out[0]


@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
def test_bfloat16_layer_stays_within_1e_2_over_100_steps(isa, name, make):
    m = make().eval()
    x = np.random.default_rng(1).standard_normal((100, 3, 64)).astype(np.float32)
    lengths = np.array([100, 57, 1])
    full = first(m(x, lengths=lengths))
    m.inference_dtype = "bfloat16"
    assert m.inference_dtype == "bfloat16"
    half = first(m(x, lengths=lengths))
    assert half.dtype == np.float32
    err = np.abs(half - full).max() / np.abs(full).max()
    assert 0 < err <= 1e-2, f"relative error {err:.3g}"
    assert np.all(half[57:, 1] == 0) and np.all(half[1:, 2] == 0)  # lengths still hold
    m.inference_dtype = "float32"
    assert np.array_equal(first(m(x, lengths=lengths)), full)


def test_training_forward_ignores_bfloat16():
    m = fastrnn.GRU(16, 24, seed=0)
    x = np.random.default_rng(2).standard_normal((7, 2, 16)).astype(np.float32)
    want = first(m(x))
    m.inference_dtype = "bfloat16"
    assert np.array_equal(first(m.train()(x)), want)
    dx, _ = m.backward(np.ones_like(want))
    assert np.all(np.isfinite(dx))


@pytest.mark.parametrize("cls", [fastrnn.RNNCell, fastrnn.GRUCell, fastrnn.LSTMCell])
def test_bfloat16_cell(isa, cls):
    c = cls(48, 80, seed=0)
    x = np.random.default_rng(3).standard_normal((2, 48)).astype(np.float32)
    full = c(x)
    c.inference_dtype = "bfloat16"
    half = c(x)
    f, h = (full[0], half[0]) if isinstance(full, tuple) else (full, half)
    err = np.abs(h - f).max() / np.abs(f).max()
    assert 0 < err <= 1e-2


def test_bad_inference_dtype():
    with pytest.raises(ValueError, match="needs a float32 module"):
        fastrnn.LSTM(4, 4, dtype="float64").inference_dtype = "bfloat16"
    with pytest.raises(ValueError, match="inference_dtype: expected"):
        fastrnn.LSTM(4, 4).inference_dtype = "float16"
    w = _C.Weights("gru", np.zeros((6, 3)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="float32"):
        w.bf16 = True
