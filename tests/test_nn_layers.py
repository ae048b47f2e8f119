"""fastrnn.nn layers and the Module container: finite differences (float64), PyTorch, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastrnn import _C, nn


def _loss_and_grads(module, x, r):
    """f() = sum(module(x) * r) and its analytic gradients (input and parameters)."""

    def f():
        return float((module(x) * r).sum())

    module.zero_grad()
    f()
    dx = module.backward(r)
    return f, dx


# --- Linear ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 1, 3)])
def test_linear_finite_differences(bias, shape):
    rng = np.random.default_rng(0)
    lin = nn.Linear(5, 3, bias=bias, dtype="float64", seed=1)
    x = rng.standard_normal(shape + (5,))
    r = rng.standard_normal(shape + (3,))
    f, dx = _loss_and_grads(lin, x, r)
    nn.gradcheck(f, {"x": x, **dict(lin.named_parameters())}, {"x": dx, **lin.grads})


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(6, 4, seed=0)
    t = torch.nn.Linear(6, 4)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((3, 5, 6)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    yt = t(xt)
    r = np.random.default_rng(2).standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.from_numpy(r))
    y = lin(x)
    dx = lin.backward(r)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(lin.grads[name], p.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_linear_init_is_torch_distribution():
    lin = nn.Linear(400, 300, seed=0)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight).max() <= bound
    assert abs(lin.weight.std() - bound / np.sqrt(3)) < 0.01 * bound


def test_linear_bad_input():
    lin = nn.Linear(5, 3)
    with pytest.raises(ValueError, match=r"x: .*last dimension 5.*\(2, 4\)"):
        lin(np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="x: dtype float64 does not match"):
        lin(np.zeros((2, 5)))
    with pytest.raises(RuntimeError, match="no forward"):
        nn.Linear(2, 2).backward(np.zeros((1, 2), np.float32))
    lin(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 3\)"):
        lin.backward(np.zeros((2, 4), np.float32))


def test_gradients_accumulate_until_zero_grad():
    lin = nn.Linear(3, 2, dtype="float64", seed=0)
    x = np.ones((1, 3))
    lin(x)
    lin.backward(np.ones((1, 2)))
    g1 = lin.grads["weight"].copy()
    lin(x)
    lin.backward(np.ones((1, 2)))
    np.testing.assert_allclose(lin.grads["weight"], 2 * g1)
    lin.zero_grad()
    assert lin.grads == {}


# --- Embedding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding_finite_differences(padding_idx):
    rng = np.random.default_rng(0)
    emb = nn.Embedding(7, 3, padding_idx=padding_idx, dtype="float64", seed=0)
    ids = rng.integers(0, 7, (4, 5))
    r = rng.standard_normal((4, 5, 3))

    def f():
        return float((emb(ids) * r).sum())

    emb.zero_grad()
    f()
    assert emb.backward(r) is None
    g = emb.grads["weight"]
    w = emb.weight
    if padding_idx is not None:
        pad = padding_idx % 7
        assert np.all(g[pad] == 0) and np.all(w[pad] == 0)
        keep = np.setdiff1d(np.arange(7), [pad])
        num = nn.numerical_grad(f, w)
        np.testing.assert_allclose(g[keep], num[keep], rtol=1e-6, atol=1e-8)
    else:
        nn.gradcheck(f, {"weight": w}, {"weight": g}, max_entries=None)


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    emb = nn.Embedding(50, 8, padding_idx=3, seed=0)
    t = torch.nn.Embedding(50, 8, padding_idx=3)
    t.load_state_dict({"weight": torch.from_numpy(emb.weight.copy())})
    ids = np.random.default_rng(0).integers(0, 50, (6, 9))
    ids[0, :4] = 3
    r = np.random.default_rng(1).standard_normal((6, 9, 8)).astype(np.float32)
    yt = t(torch.from_numpy(ids))
    yt.backward(torch.from_numpy(r))
    np.testing.assert_array_equal(emb(ids), yt.detach().numpy())
    emb.backward(r)
    np.testing.assert_allclose(emb.grads["weight"], t.weight.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_scatter_add_matches_numpy_reference(dtype):
    """The C++ scatter-add against the slow, obvious NumPy one (np.add.at), bitwise in order."""
    rng = np.random.default_rng(0)
    V, D, N = 300, 17, 5000
    ids = rng.integers(0, V, N)
    dout = rng.standard_normal((N, D)).astype(dtype)
    ref = np.zeros((V, D), dtype)
    np.add.at(ref, ids, dout)
    got = np.zeros((V, D), dtype)
    _C.embedding_backward(got, ids, dout)
    np.testing.assert_array_equal(got, ref)
    ref[ids[0]] -= 0  # padding row skipped
    got2 = np.zeros((V, D), dtype)
    _C.embedding_backward(got2, ids, dout, int(ids[0]))
    assert np.all(got2[ids[0]] == 0)


def test_embedding_scatter_add_rejects_bad_ids_and_converted_outputs():
    g = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"id 4 at position 1 is out of range \[0, 4\)"):
        _C.embedding_backward(g, np.array([0, 4]), np.ones((2, 2), np.float32))
    assert np.all(g == 0)  # nothing written
    with pytest.raises(TypeError):  # a float64 table would be silently converted: refused
        _C.embedding_backward(np.zeros((4, 2)), np.array([0]), np.ones((1, 2), np.float32))


def test_embedding_bad_ids():
    emb = nn.Embedding(10, 4)
    with pytest.raises(
        IndexError, match=r"input: token id 10 at position \(1, 2\) is out of range \[0, 10\)"
    ):
        emb(np.array([[0, 1, 2], [3, 4, 10]]))
    with pytest.raises(IndexError, match="token id -1"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="input: expected integer token ids, got dtype float64"):
        emb(np.array([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(10, 4, padding_idx=10)


# --- Dropout and activations -------------------------------------------------------------------


def test_dropout_training_and_eval():
    d = nn.Dropout(0.25, seed=0)
    x = np.ones((200, 300))
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), y)  # same mask
    d.eval()
    assert d(x) is x
    np.testing.assert_array_equal(d.backward(x), x)
    with pytest.raises(ValueError, match=r"p: expected a number in \[0, 1\)"):
        nn.Dropout(1.0)


@pytest.mark.parametrize("cls", [nn.Tanh, nn.Sigmoid, nn.ReLU])
def test_activations_finite_differences(cls):
    rng = np.random.default_rng(0)
    m = cls()
    x = rng.standard_normal((3, 4)) + 0.01  # away from ReLU's kink
    r = rng.standard_normal((3, 4))
    f, dx = _loss_and_grads(m, x, r)
    nn.gradcheck(f, {"x": x}, {"x": dx})


def test_sigmoid_is_stable():
    y = nn.Sigmoid()(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])


# --- Module container --------------------------------------------------------------------------


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, 8, dtype="float64", seed=0),
            nn.Tanh(),
            nn.Linear(8, 2, dtype="float64", seed=1),
        )
        self.register_parameter("scale", np.ones(2))

    def forward(self, x):
        self._y = self.net(x)
        return self._y * self.scale

    def backward(self, dy):
        self._accumulate("scale", (dy * self._y).reshape(-1, 2).sum(0))
        return self.net.backward(dy * self.scale)


def test_module_names_gradients_and_finite_differences():
    m = _MLP()
    assert list(m.state_dict()) == [
        "scale",
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
    ]
    assert m.num_parameters() == 2 + 32 + 8 + 16 + 2
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    f, dx = _loss_and_grads(m, x, r)
    assert set(m.grads) == set(m.state_dict())
    nn.gradcheck(f, {"x": x, **dict(m.named_parameters())}, {"x": dx, **m.grads})
    assert "(net): Sequential(" in repr(m) and "(0): Linear(in_features=4" in repr(m)


def test_module_state_dict_roundtrip_and_errors(tmp_path):
    a, b = _MLP(), _MLP()
    for p in b.parameters():
        p += 1.0
    path = tmp_path / "m.npz"
    a.save(path)
    live = b.net[0].weight
    b.load(path)
    assert b.net[0].weight is live  # loaded in place: optimizers keep valid references
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(v, w, err_msg=k)
    sd = a.state_dict()
    sd.pop("scale")
    with pytest.raises(KeyError, match=r"missing keys \['scale'\]"):
        b.load_state_dict(sd)
    res = b.load_state_dict({**sd, "extra": np.zeros(1)}, strict=False)
    assert res.missing_keys == ["scale"] and res.unexpected_keys == ["extra"]
    bad = a.state_dict()
    bad["net.0.weight"] = np.zeros((3, 3))
    before = b.state_dict()
    with pytest.raises(ValueError, match=r"net.0.weight: expected shape \(8, 4\), got \(3, 3\)"):
        b.load_state_dict(bad)
    for k, v in before.items():  # nothing was changed by the failed load
        np.testing.assert_array_equal(b.state_dict()[k], v)
    with pytest.raises(FileNotFoundError, match="no such file"):
        b.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        b.load(tmp_path / "junk.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    m = _MLP()
    path = tmp_path / "m.npz"
    m.save(path)
    good = path.read_bytes()

    def boom(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        m.save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_module_attribute_rules():
    class Bad(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()
    m = _MLP()
    with pytest.raises(ValueError, match=r"scale: expected shape \(2,\)"):
        m.scale = np.ones(3)
    m.scale = [2.0, 3.0]
    np.testing.assert_array_equal(m.scale, [2.0, 3.0])
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope  # noqa: B018
    assert m.train() is m and m.net[0].training
    m.eval()
    assert not any(x.training for x in m.modules())
