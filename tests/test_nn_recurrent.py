"""Recurrent Modules: layer wrappers and cells with backward, against torch and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn

CELLS = [
    ("LSTMCell", {}),
    ("GRUCell", {}),
    ("RNNCell", {}),
    ("RNNCell", {"nonlinearity": "relu"}),
    ("GRUCell", {"bias": False}),
]


def _run_cell(cell, xs, h0, c0):
    lstm = isinstance(cell, nn.LSTMCell)
    h, c, hs = h0, c0, []
    for x in xs:
        if lstm:
            h, c = cell(x, (h, c))
        else:
            h = cell(x, h)
        hs.append(h)
    return hs, h, c


def _backward_cell(cell, rs, T):
    lstm = isinstance(cell, nn.LSTMCell)
    dh = np.zeros_like(rs[0])
    dc = np.zeros_like(rs[0])
    dxs = [None] * T
    for t in reversed(range(T)):
        if lstm:
            dxs[t], (dh, dc) = cell.backward(dh + rs[t], dc)
        else:
            dxs[t], dh = cell.backward(dh + rs[t])
    return np.stack(dxs), dh, dc


@pytest.mark.parametrize("name,opts", CELLS)
def test_cell_loop_finite_differences(name, opts):
    rng = np.random.default_rng(0)
    cell = getattr(nn, name)(3, 4, dtype="float64", seed=0, **opts)
    xs, rs = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 4))
    h0, c0 = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    lstm = name == "LSTMCell"

    def f():
        hs, _, _ = _run_cell(cell, xs, h0, c0 if lstm else None)
        return float(sum((h * r).sum() for h, r in zip(hs, rs)))

    cell.zero_grad()
    f()
    dxs, dh0, dc0 = _backward_cell(cell, rs, 5)
    wrt = {"x": xs, "h0": h0, **dict(cell.named_parameters())}
    got = {"x": dxs, "h0": dh0, **cell.grads}
    if lstm:
        wrt["c0"], got["c0"] = c0, dc0
    nn.gradcheck(f, wrt, got)


@pytest.mark.parametrize("name,opts", CELLS)
def test_cell_loop_matches_torch(name, opts):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cell = getattr(nn, name)(3, 4, seed=0, **opts)
    tcell = getattr(torch.nn, name)(3, 4, **opts)
    tcell.load_state_dict({k: torch.from_numpy(v) for k, v in cell.state_dict().items()})
    xs, rs = (
        rng.standard_normal((5, 2, 3)).astype(np.float32),
        rng.standard_normal((5, 2, 4)).astype(np.float32),
    )
    lstm = name == "LSTMCell"
    hs, _, _ = _run_cell(cell, xs, None, None)
    dxs, _, _ = _backward_cell(cell, rs, 5)
    xt = torch.from_numpy(xs).requires_grad_()
    state = None
    loss = 0
    for t in range(5):
        state = tcell(xt[t], state)
        h = state[0] if lstm else state
        np.testing.assert_allclose(hs[t], h.detach().numpy(), rtol=1e-5, atol=1e-6)
        loss = loss + (h * torch.from_numpy(rs[t])).sum()
    loss.backward()
    np.testing.assert_allclose(dxs, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for k, p in tcell.named_parameters():
        np.testing.assert_allclose(cell.grads[k], p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


def test_cell_tape_and_modes():
    cell = nn.LSTMCell(2, 3, seed=0)
    x = np.ones((1, 2), np.float32)
    with pytest.raises(RuntimeError, match="no forward"):
        cell.backward(np.zeros((1, 3), np.float32))
    cell(x)
    cell(x)
    cell.backward(np.zeros((1, 3), np.float32))
    cell.backward(np.zeros((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="no forward"):
        cell.backward(np.zeros((1, 3), np.float32))
    cell(x)
    cell.eval()  # a mode change drops pending steps
    assert cell._tape == []
    h, c = cell(x)  # inference step, nothing kept
    assert cell._tape == [] and h.shape == (1, 3)
    h1, c1 = cell(np.ones(2, np.float32))  # unbatched
    assert h1.shape == (3,)
    cell.train()
    cell(x)
    with pytest.raises(ValueError, match="LSTMCell.backward"):
        cell.backward(np.zeros((2, 3), np.float32))  # wrong batch: the step stays on the tape
    cell.backward(np.zeros((1, 3), np.float32))


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_layer_modules_match_torch(name):
    torch = pytest.importorskip("torch")
    m = getattr(nn, name)(3, 4, num_layers=2, bidirectional=True, seed=0)
    t = getattr(torch.nn, name)(3, 4, num_layers=2, bidirectional=True)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)
    out, _ = m(x)
    xt = torch.from_numpy(x).requires_grad_()
    ot, _ = t(xt)
    r = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    ot.backward(torch.from_numpy(r))
    dx, _ = m.backward(r)
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for k, p in t.named_parameters():
        np.testing.assert_allclose(m.grads[k], p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    assert m.hidden_size == 4 and m.bidirectional


def test_layer_module_finite_differences_and_accumulation():
    m = nn.GRU(3, 4, num_layers=2, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 4))

    def f():
        return float((m(x)[0] * r).sum())

    m.zero_grad()
    f()
    dx, _ = m.backward(r)
    nn.gradcheck(f, {"x": x, **dict(m.named_parameters())}, {"x": dx, **m.grads}, max_entries=10)
    g = {k: v.copy() for k, v in m.grads.items()}
    f()
    m.backward(r)
    for k in g:
        np.testing.assert_allclose(m.grads[k], 2 * g[k])
