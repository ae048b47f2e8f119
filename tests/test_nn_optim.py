"""Optimizers and clipping: the same trajectories and norms as torch.optim / torch.nn.utils."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import nn

OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
]


def _grads_for(step, params, rng_seed=0):
    rng = np.random.default_rng(rng_seed + step)
    return {k: rng.standard_normal(v.shape) + 0.1 * v for k, v in params.items()}


@pytest.mark.parametrize("name,opts", OPTIMIZERS)
def test_optimizer_matches_torch(name, opts):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = getattr(nn, name)(params, **opts)
    topt = getattr(torch.optim, name)(list(tparams.values()), **opts)
    for step in range(6):
        grads = _grads_for(step, params)
        if step == 2:
            grads.pop("b")  # a parameter without a gradient is skipped, as in torch
        opt.step(grads)
        topt.zero_grad(set_to_none=True)
        for k, t in tparams.items():
            if k in grads:
                t.grad = torch.from_numpy(grads[k].copy())
        topt.step()
        for k in params:
            np.testing.assert_allclose(
                params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-13
            )


def test_optimizer_on_a_module_and_on_a_fastrnn_layer():
    lin = nn.Linear(3, 2, dtype="float64", seed=0)
    w0 = lin.weight.copy()
    opt = nn.SGD(lin, lr=0.5)
    lin(np.ones((1, 3)))
    lin.backward(np.ones((1, 2)))
    opt.step()
    np.testing.assert_allclose(lin.weight, w0 - 0.5 * np.ones((2, 3)))
    opt.zero_grad()
    assert lin.grads == {}
    opt.step()  # no gradients: nothing changes
    np.testing.assert_allclose(lin.weight, w0 - 0.5)

    layer = fastrnn.GRU(2, 3, dtype="float64", seed=0)
    before = layer.state_dict()
    x = np.random.default_rng(0).standard_normal((4, 1, 2))
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    nn.Adam(layer, lr=0.1).step()
    after = layer.state_dict()
    for k in before:  # Adam's first step moves each entry by about lr
        assert np.allclose(np.abs(after[k] - before[k]), 0.1, atol=1e-6), k
    out2, _ = layer(x)
    assert not np.allclose(out2, out)


def test_recurrent_module_repacks_after_a_step():
    m = nn.LSTM(2, 3, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((4, 1, 2))
    m.eval()
    y0, _ = m(x)
    m.train()
    out, _ = m(x)
    m.backward(np.ones_like(out))
    nn.SGD(m, lr=1.0).step()
    m.eval()
    y1, _ = m(x)
    assert not np.allclose(y0, y1)
    ref = nn.LSTM(2, 3, dtype="float64", seed=0)
    ref.load_state_dict(m.state_dict())
    ref.eval()
    np.testing.assert_array_equal(ref(x)[0], y1)


def test_optimizer_state_dict_roundtrip():
    rng = np.random.default_rng(0)
    p1 = {"w": rng.standard_normal(4)}
    p2 = {"w": p1["w"].copy()}
    o1 = nn.Adam(p1, lr=0.1)
    for s in range(3):
        o1.step(_grads_for(s, p1))
    o2 = nn.Adam(p2, lr=0.5)
    for s in range(3):
        o2.step(_grads_for(s, p2))
    p2["w"][...] = p1["w"]
    o2.load_flat_state(o1.flat_state(), o1.state_dict()["param_groups"])
    assert o2.lr == 0.1
    for s in range(3, 6):
        o1.step(_grads_for(s, p1))
        o2.step(_grads_for(s, p2))
    np.testing.assert_array_equal(p1["w"], p2["w"])


def test_optimizer_bad_input():
    with pytest.raises(TypeError, match="params: expected a fastrnn.nn.Module"):
        nn.SGD([np.zeros(3)])
    with pytest.raises(ValueError, match="empty parameter list"):
        nn.SGD({})
    with pytest.raises(ValueError, match="lr: expected a finite number >= 0"):
        nn.Adam({"w": np.zeros(2)}, lr=-1)
    opt = nn.SGD({"w": np.zeros(2)}, lr=0.1)
    with pytest.raises(TypeError, match="grads: required"):
        opt.step()
    with pytest.raises(KeyError, match="grads: no parameter named 'v'"):
        opt.step({"v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads\['w'\]: expected shape \(2,\)"):
        opt.step({"w": np.zeros(3)})
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD({"w": np.zeros(2)}, lr=0.1, nesterov=True)


@pytest.mark.parametrize(
    "max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (0.3, float("inf"))]
)
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tps, grads):
        t.grad = torch.from_numpy(g.copy())
    total = nn.clip_grad_norm_(grads, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    np.testing.assert_allclose(total, ttotal.item(), rtol=1e-12)
    for g, t in zip(grads, tps):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_clipping_a_module_in_place_and_by_value():
    lin = nn.Linear(3, 2, dtype="float64", seed=0)
    lin(np.full((1, 3), 10.0))
    lin.backward(np.full((1, 2), 10.0))
    total = nn.clip_grad_norm_(lin, 1.0)
    assert total > 1.0
    norm = np.sqrt(sum((g**2).sum() for g in lin.grads.values()))
    np.testing.assert_allclose(norm, 1.0, rtol=1e-5)
    nn.clip_grad_value_(lin, 0.1)
    assert max(np.abs(g).max() for g in lin.grads.values()) <= 0.1
    g = [np.array([np.nan, 1.0])]
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.clip_grad_norm_(g, 1.0, error_if_nonfinite=True)
