"""Losses: PyTorch's results for every option, finite differences, stability, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn

CE_CASES = [
    # (input shape, target kind, options)
    ((6, 5), "index", {}),
    ((6, 5), "index", {"reduction": "sum"}),
    ((6, 5), "index", {"reduction": "none"}),
    ((6, 5), "index", {"ignore_index": 2}),
    ((6, 5), "index", {"label_smoothing": 0.1}),
    ((6, 5), "index", {"label_smoothing": 0.2, "ignore_index": 2, "reduction": "none"}),
    ((6, 5), "index", {"weight": True}),
    ((6, 5), "index", {"weight": True, "label_smoothing": 0.3, "ignore_index": 1}),
    ((5,), "index", {}),
    ((3, 5, 4), "index", {"ignore_index": 0, "label_smoothing": 0.1}),
    ((3, 5, 2, 2), "index", {"reduction": "none"}),
    ((6, 5), "prob", {}),
    ((6, 5), "prob", {"label_smoothing": 0.1, "weight": True}),
    ((6, 5), "prob", {"reduction": "none"}),
    ((3, 5, 4), "prob", {"reduction": "sum"}),
]


def _case(shape, kind, opts, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    C = shape[0] if len(shape) == 1 else shape[1]
    if kind == "index":
        tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
        t = rng.integers(0, C, tshape)
    else:
        t = rng.random(shape).astype(dtype)
        t /= t.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    opts = dict(opts)
    if opts.get("weight") is True:
        opts["weight"] = rng.random(C).astype(dtype) + 0.5
    return x, t, opts


@pytest.mark.parametrize("shape,kind,opts", CE_CASES)
def test_cross_entropy_matches_torch(shape, kind, opts):
    torch = pytest.importorskip("torch")
    x, t, opts = _case(shape, kind, opts, np.float64)
    loss, grad = nn.cross_entropy_with_grad(x, t, **opts)
    topts = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
    xt = torch.from_numpy(x).requires_grad_()
    lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(t), **topts)
    lt.sum().backward()
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,kind,opts", CE_CASES[:9])
def test_cross_entropy_finite_differences(shape, kind, opts):
    x, t, opts = _case(shape, kind, opts, np.float64)
    _, grad = nn.cross_entropy_with_grad(x, t, **opts)
    nn.gradcheck(
        lambda: float(np.sum(nn.cross_entropy(x, t, **opts))),
        {"x": x},
        {"x": grad},
        max_entries=None,
    )


def test_cross_entropy_float32_and_module():
    torch = pytest.importorskip("torch")
    x, t, _ = _case((8, 7), "index", {}, np.float32)
    crit = nn.CrossEntropyLoss(ignore_index=3, label_smoothing=0.05)
    loss = crit(x, t)
    d = crit.backward(2.0)
    xt = torch.from_numpy(x).requires_grad_()
    lt = torch.nn.CrossEntropyLoss(ignore_index=3, label_smoothing=0.05)(xt, torch.from_numpy(t))
    (2 * lt).backward()
    assert d.dtype == np.float32
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-5)
    np.testing.assert_allclose(d, xt.grad.numpy(), rtol=1e-5, atol=1e-7)
    crit_none = nn.CrossEntropyLoss(reduction="none")
    per = crit_none(x, t)
    g = np.arange(8, dtype=np.float32)
    expect = nn.cross_entropy_with_grad(x, t, reduction="none")[1] * g[:, None]
    np.testing.assert_allclose(crit_none.backward(g), expect, rtol=1e-6)
    assert per.shape == (8,)


def test_cross_entropy_is_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-3e38, 3e38, 0.0]], np.float32)
    loss, grad = nn.cross_entropy_with_grad(x, np.array([1, 1]), reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, [1e4, 0.0])
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])  # softmax - onehot


def test_cross_entropy_all_ignored_is_nan_like_torch():
    loss = nn.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]))
    assert np.isnan(loss)


def test_cross_entropy_bad_input():
    x = np.zeros((4, 3))
    with pytest.raises(
        IndexError, match=r"target: class index 3 at position 2 is out of bounds for 3 classes"
    ):
        nn.cross_entropy(x, np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"target: expected shape \(4,\)"):
        nn.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="input: expected float32 or float64"):
        nn.cross_entropy(np.zeros((4, 3), int), np.zeros(4, int))
    with pytest.raises(ValueError, match="reduction: expected one of"):
        nn.cross_entropy(x, np.zeros(4, int), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing: expected a number in \[0, 1\]"):
        nn.cross_entropy(x, np.zeros(4, int), label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="no forward"):
        nn.CrossEntropyLoss().backward()


BCE_CASES = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": True},
    {"pos_weight": True},
    {"pos_weight": True, "weight": True, "reduction": "none"},
]


@pytest.mark.parametrize("opts", BCE_CASES)
def test_bce_with_logits_matches_torch_and_finite_differences(opts):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = 4 * rng.standard_normal((5, 3))
    y = rng.random((5, 3))
    o = dict(opts)
    if o.get("weight") is True:
        o["weight"] = rng.random((5, 1)) + 0.5
    if o.get("pos_weight") is True:
        o["pos_weight"] = rng.random(3) + 0.5
    loss, grad = nn.binary_cross_entropy_with_logits_with_grad(x, y, **o)
    xt = torch.from_numpy(x).requires_grad_()
    to = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in o.items()}
    lt = torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.from_numpy(y), **to)
    lt.sum().backward()
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    nn.gradcheck(
        lambda: float(np.sum(nn.binary_cross_entropy_with_logits(x, y, **o))), {"x": x}, {"x": grad}
    )


def test_bce_with_logits_is_stable_and_module():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32)
    y = np.array([1, 1, 0, 0, 0], np.float32)
    crit = nn.BCEWithLogitsLoss(reduction="none")
    loss = crit(x, y)
    g = crit.backward(np.ones(5, np.float32))
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(loss, [1e4, 50.0, np.log(2), 50.0, 1e4], rtol=1e-6)
    np.testing.assert_allclose(g, [-1.0, -1.0, 0.5, 1.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match=r"target: expected the input's shape \(5,\)"):
        crit(x, y[:3])


def test_softmax_helpers():
    x = np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(nn.softmax(x), [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(nn.log_softmax(x), np.log([[0.5, 0.5], [0.25, 0.75]]))
