"""A layer fed one step at a time (eval mode) runs the streaming step kernel: bitwise the same as
the whole sequence, and as a training-mode forward of that one step."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn

LAYERS = {
    "rnn_relu_2layer": lambda: fastrnn.RNN(12, 20, 2, nonlinearity="relu", seed=0),
    "gru": lambda: fastrnn.GRU(12, 20, seed=0),
    "gru_reset_before_batch_first": lambda: fastrnn.GRU(
        12, 20, reset_after=False, batch_first=True, seed=0
    ),
    "lstm_peephole_3layer": lambda: fastrnn.LSTM(12, 20, 3, peephole=True, seed=0),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_step_by_step_equals_the_whole_sequence(name, dtype):
    m = LAYERS[name]().eval()
    m.inference_dtype = dtype
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 4, 12)).astype(np.float32)
    if m.batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    whole, state = m(x)
    outs, st = [], None
    for t in range(9):
        xt = x[:, t : t + 1] if m.batch_first else x[t : t + 1]
        y, st = m(xt, st)
        outs.append(y)
    stepped = np.concatenate(outs, axis=1 if m.batch_first else 0)
    np.testing.assert_array_equal(stepped, whole)
    for a, b in zip(
        st if isinstance(st, tuple) else (st,), state if isinstance(state, tuple) else (state,)
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_one_step_eval_equals_one_step_training_forward(bidirectional):
    m = fastrnn.LSTM(8, 16, 2, bidirectional=bidirectional, seed=0)
    x = np.random.default_rng(2).standard_normal((1, 3, 8)).astype(np.float32)
    h0 = (
        np.random.default_rng(3)
        .standard_normal((2 * (1 + bidirectional), 3, 16))
        .astype(np.float32)
    )
    trained = m.train()(x, (h0, h0 * 0.5))
    evaluated = m.eval()(x, (h0, h0 * 0.5))
    np.testing.assert_array_equal(evaluated[0], trained[0])
    np.testing.assert_array_equal(evaluated[1][0], trained[1][0])
    np.testing.assert_array_equal(evaluated[1][1], trained[1][1])
    with pytest.raises(RuntimeError):  # eval forwards keep nothing for backward
        m.backward(np.ones_like(evaluated[0]))
    x1 = x[:, 0]  # unbatched (T=1, I)
    np.testing.assert_array_equal(m(x1[None, 0])[0], m(x[:, :1])[0][:, 0])
