"""Attention: finite differences, the same formulas in torch (forward and backward), masks,
the step-wise decoder interface, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import nn

B, TK, DQ, DK, DV, A = 3, 6, 5, 4, 7, 8
LENS = np.array([6, 2, 4])


def _make(kind, dtype="float64"):
    if kind == "additive":
        return nn.AdditiveAttention(DQ, DK, A, dtype=dtype, seed=0)
    if kind == "general":
        return nn.GeneralAttention(DQ, DK, dtype=dtype, seed=0)
    if kind == "general_scaled":
        return nn.GeneralAttention(DQ, DK, scaled=True, dtype=dtype, seed=0)
    return nn.DotAttention(DK, scaled=kind == "scaled_dot", dtype=dtype)


KINDS = ["additive", "general", "general_scaled", "dot", "scaled_dot"]


def _inputs(kind, tq, with_values, masked, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    dq = DK if "dot" in kind else DQ
    q = rng.standard_normal((B, dq) if tq is None else (B, tq, dq)).astype(dtype)
    k = rng.standard_normal((B, TK, DK)).astype(dtype)
    v = rng.standard_normal((B, TK, DV)).astype(dtype) if with_values else None
    mask = nn.lengths_to_mask(LENS, TK) if masked else None
    return q, k, v, mask


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tq", [None, 3])
@pytest.mark.parametrize("with_values", [True, False])
def test_attention_finite_differences(kind, tq, with_values):
    att = _make(kind)
    q, k, v, mask = _inputs(kind, tq, with_values, masked=True)
    rng = np.random.default_rng(1)
    ctx, w = att(q, k, v, mask)
    rc, rw = rng.standard_normal(ctx.shape), rng.standard_normal(w.shape)

    def f():
        c, ww = att(q, k, v, mask)
        return float((c * rc).sum() + (ww * rw).sum())

    att.zero_grad()
    f()
    dq, dk, dv = att.backward(rc, rw)
    wrt = {"q": q, "k": k, **dict(att.named_parameters())}
    got = {"q": dq, "k": dk, **att.grads}
    if with_values:
        wrt["v"], got["v"] = v, dv
    else:
        assert dv is None
    nn.gradcheck(f, wrt, got)


def _torch_reference(torch, kind, att, q, k, v, mask):
    """The same formulas, written directly in torch (autograd gives the reference backward)."""
    P = {n: torch.tensor(p, requires_grad=True) for n, p in att.named_parameters()}
    vals = k if v is None else v
    q3 = q if q.dim() == 3 else q[:, None]
    if kind == "additive":
        z = (q3 @ P["query_weight"].T)[:, :, None] + (k @ P["key_weight"].T + P["bias"])[:, None]
        e = torch.tanh(z) @ P["v"]
    else:
        kp = k if "dot" in kind else k @ P["weight"].T
        e = q3 @ kp.transpose(1, 2)
        if "scaled" in kind:
            e = e / np.sqrt(q3.shape[-1])
    if mask is not None:
        e = e.masked_fill(~torch.from_numpy(mask)[:, None], float("-inf"))
    w = torch.softmax(e, dim=-1)
    c = w @ vals
    if q.dim() == 2:
        c, w = c[:, 0], w[:, 0]
    return c, w, P


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tq", [None, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_matches_torch(kind, tq, dtype):
    torch = pytest.importorskip("torch")
    att = _make(kind, dtype)
    q, k, v, mask = _inputs(kind, tq, True, masked=True, dtype=dtype)
    ctx, w = att(q, k, v, mask)
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    ct, wt, P = _torch_reference(torch, kind, att, qt, kt, vt, mask)
    rng = np.random.default_rng(2)
    rc, rw = (
        rng.standard_normal(ctx.shape).astype(dtype),
        rng.standard_normal(w.shape).astype(dtype),
    )
    ((ct * torch.from_numpy(rc)).sum() + (wt * torch.from_numpy(rw)).sum()).backward()
    dq, dk, dv = att.backward(rc, rw)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ctx, ct.detach().numpy(), **tol)
    np.testing.assert_allclose(w, wt.detach().numpy(), **tol)
    np.testing.assert_allclose(dq, qt.grad.numpy(), **tol)
    np.testing.assert_allclose(dk, kt.grad.numpy(), **tol)
    np.testing.assert_allclose(dv, vt.grad.numpy(), **tol)
    for n, p in P.items():
        np.testing.assert_allclose(att.grads[n], p.grad.numpy(), err_msg=n, **tol)


def test_scaled_dot_matches_torch_sdpa():
    torch = pytest.importorskip("torch")
    att = nn.DotAttention(DK, scaled=True, dtype="float64")
    q, k, v, mask = _inputs("scaled_dot", 3, True, masked=True)
    ctx, _ = att(q, k, v, mask)
    ref = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q),
        torch.from_numpy(k),
        torch.from_numpy(v),
        attn_mask=torch.from_numpy(mask)[:, None],
    )
    np.testing.assert_allclose(ctx, ref.numpy(), rtol=1e-12)


def test_masked_positions_get_exactly_zero_weight():
    att = _make("additive")
    q, k, v, mask = _inputs("additive", None, True, masked=True)
    k[1, 2:] = 1e6  # huge padded keys change nothing
    _, w = att(q, k, v, mask)
    assert np.all(w[~mask] == 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1)
    _, w2 = att(q, k[:, :], v, mask)
    np.testing.assert_array_equal(w, w2)


def test_prepare_attend_steps_equal_separate_forwards():
    """A decoder-style loop (prepare once, attend per step, backward in reverse) gives the sums of
    the single-call gradients."""
    att = _make("additive")
    q, k, v, mask = _inputs("additive", 3, True, masked=True)
    rng = np.random.default_rng(3)
    rc = rng.standard_normal((3, B, DV))
    memory = att.prepare(k, v, mask)
    for t in range(3):
        att.attend(q[:, t], memory)
    dqs = [att.attend_backward(rc[t], memory) for t in reversed(range(3))][::-1]
    dk, dv = att.prepare_backward(memory)
    loop_grads = {n: g.copy() for n, g in att.grads.items()}
    att.zero_grad()
    c, _ = att(q, k, v, mask)
    dq_all, dk_all, dv_all = att.backward(rc.transpose(1, 0, 2))
    np.testing.assert_allclose(np.stack(dqs, 1), dq_all, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dk, dk_all, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dv, dv_all, rtol=1e-12, atol=1e-14)
    for n, g in att.grads.items():
        np.testing.assert_allclose(loop_grads[n], g, rtol=1e-12, atol=1e-14)


def test_attention_bad_input():
    att = _make("additive", "float32")
    q, k, v, mask = _inputs("additive", None, True, masked=True, dtype=np.float32)
    bad = mask.copy()
    bad[2] = False
    with pytest.raises(ValueError, match=r"mask: sequence 2 has no position to attend to"):
        att(q, k, v, bad)
    with pytest.raises(TypeError, match="mask: expected a bool array"):
        att(q, k, v, mask.astype(int))
    with pytest.raises(ValueError, match=r"mask: expected shape \(B, Tk\) = \(3, 6\)"):
        att(q, k, v, mask[:, :4])
    with pytest.raises(ValueError, match=r"query: expected \(B, Dq\) or \(B, Tq, Dq\) with B=3"):
        att(q[:2], k, v, mask)
    with pytest.raises(ValueError, match=r"keys: expected a 3-D array \(B, Tk, Dk=4\)"):
        att(q, k[..., :3], v, mask)
    with pytest.raises(ValueError, match=r"values: expected shape \(B, Tk, Dv\)"):
        att(q, k, v[:, :2], mask)
    with pytest.raises(ValueError, match="equal query and key sizes"):
        nn.make_attention("dot", 4, 5)
    with pytest.raises(RuntimeError, match="no forward"):
        _make("general").backward(np.zeros((B, DK)))
    att(q, k, v, mask)
    with pytest.raises(ValueError, match=r"d_context: expected shape \(3, 7\)"):
        att.backward(np.zeros((3, 6), np.float32))
