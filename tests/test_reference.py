"""Checks for the NumPy reference in tests/reference.py.

- backward agrees with central finite differences of forward (float64) for every output.
- lengths and reverse mean what csrc/fastrnn.h says (see docs/architecture.md): a batch with
  lengths gives the same result as running each sequence alone, and reverse gives the same result as flipping it.
- step is forward with one step, and float32 stays float32.
- When torch can be imported, forward and backward match torch.nn.RNN/GRU/LSTM to 1e-10.
  torch has no reset-before GRU and no peepholes, so those two are checked by finite
  differences only.

This file does not test the compiled module. Its tests compare against this reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import reference as ref

T, B, I, H = 5, 3, 2, 4  # all different, so a transposed matrix fails loudly
MIXED_LENGTHS = (2, 5, 1)  # unsorted, includes 1 and T

# (cell, peephole): every cell the reference knows, lstm with and without peepholes.
CELL_CONFIGS = [
    pytest.param("rnn_tanh", False, id="rnn_tanh"),
    pytest.param("rnn_relu", False, id="rnn_relu"),
    pytest.param("gru", False, id="gru"),
    pytest.param("gru_reset_before", False, id="gru_reset_before"),
    pytest.param("lstm", False, id="lstm"),
    pytest.param("lstm", True, id="lstm+peephole"),
]
# (lengths, reverse)
LAYOUTS = [
    pytest.param(None, False, id="full"),
    pytest.param(None, True, id="full-reverse"),
    pytest.param(MIXED_LENGTHS, False, id="lengths"),
    pytest.param(MIXED_LENGTHS, True, id="lengths-reverse"),
]
BIASES = [pytest.param(True, id="bias"), pytest.param(False, id="nobias")]
REVERSES = [pytest.param(False, id="forward"), pytest.param(True, id="reverse")]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
# (cell, peephole) with no torch counterpart
NOT_IN_TORCH = [
    pytest.param("gru_reset_before", False, id="gru_reset_before"),
    pytest.param("lstm", True, id="lstm+peephole"),
]

# forward's array arguments; backward's results are named after them in the tests
INPUTS = ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "peephole"]


def make_problem(
    cell: str,
    *,
    bias: bool = True,
    peephole: bool = False,
    lengths: tuple[int, ...] | None = None,
    reverse: bool = False,
    steps: int = T,
    seed: int = 0,
    dtype: type = np.float64,
) -> dict[str, Any]:
    """Random keyword arguments for ref.forward, with a random h0 (and c0 for lstm)."""
    rng = np.random.default_rng(seed)
    G = ref.GATES[cell]

    def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(dtype)

    return {
        "x": rand(steps, B, I),
        "h0": rand(B, H, scale=0.5),
        "c0": rand(B, H) if cell == "lstm" else None,
        "w_ih": rand(G * H, I, scale=0.6),
        "w_hh": rand(G * H, H, scale=0.4),
        "b_ih": rand(G * H, scale=0.3) if bias else None,
        "b_hh": rand(G * H, scale=0.3) if bias else None,
        "peephole": rand(3 * H, scale=0.5) if peephole else None,
        "lengths": None if lengths is None else np.array(lengths, np.int64),
        "reverse": reverse,
    }


def loss_weights(cell: str, steps: int = T, seed: int = 1) -> tuple[np.ndarray, ...]:
    """Gy [T, B, H], Gh [B, H], Gc [B, H] or None for L = sum(y*Gy) + sum(h_n*Gh) + sum(c_n*Gc)."""
    rng = np.random.default_rng(seed)
    Gc = rng.standard_normal((B, H)) if cell == "lstm" else None
    return rng.standard_normal((steps, B, H)), rng.standard_normal((B, H)), Gc


def loss(cell: str, args: dict[str, Any], Gy: np.ndarray, Gh: np.ndarray, Gc: Any) -> float:
    y, h_n, c_n, _ = ref.forward(cell, **args)
    total = np.sum(y * Gy) + np.sum(h_n * Gh)
    if c_n is not None:
        total += np.sum(c_n * Gc)
    return float(total)


def numeric_gradient(cell: str, args: dict[str, Any], name: str, G: tuple, eps: float = 1e-6):
    """Central differences of the loss with respect to args[name], one element at a time."""
    a = args[name]
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        orig = a[idx]
        a[idx] = orig + eps
        plus = loss(cell, args, *G)
        a[idx] = orig - eps
        minus = loss(cell, args, *G)
        a[idx] = orig
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def analytic_gradients(cell: str, args: dict[str, Any], G: tuple) -> dict[str, Any]:
    """Backward's results, named after forward's arguments."""
    _, _, _, cache = ref.forward(cell, **args)
    dx, dh0, dc0, grads = ref.backward(cell, cache, *G)
    return {"x": dx, "h0": dh0, "c0": dc0, **grads}


def valid_mask(lengths: np.ndarray | None, steps: int = T) -> np.ndarray:
    """[T, B] True where t < lengths[b]."""
    if lengths is None:
        return np.ones((steps, B), bool)
    return np.arange(steps)[:, None] < np.asarray(lengths)[None, :]


# ----------------------------------------------------------------------------------------
# finite differences


@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("lengths, reverse", LAYOUTS)
@pytest.mark.parametrize("cell, peephole", CELL_CONFIGS)
def test_backward_matches_finite_differences(cell, peephole, lengths, reverse, bias):
    args = make_problem(cell, bias=bias, peephole=peephole, lengths=lengths, reverse=reverse)
    G = loss_weights(cell)
    analytic = analytic_gradients(cell, args, G)

    for name in INPUTS:
        if args[name] is None:
            assert analytic[name] is None, f"{name}: absent in forward, so backward gives None"
            continue
        assert analytic[name].shape == args[name].shape, name
        assert analytic[name].dtype == np.float64, name
        numeric = numeric_gradient(cell, args, name, G)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    # Not a vacuous check: every array the loss sees has a gradient that is not all zero.
    assert all(np.abs(analytic[n]).max() > 1e-3 for n in INPUTS if args[n] is not None)


# ----------------------------------------------------------------------------------------
# lengths and reverse


@pytest.mark.parametrize("reverse", REVERSES)
@pytest.mark.parametrize("cell, peephole", CELL_CONFIGS)
def test_padded_dy_is_ignored(cell, peephole, reverse):
    args = make_problem(cell, peephole=peephole, lengths=MIXED_LENGTHS, reverse=reverse)
    Gy, Gh, Gc = loss_weights(cell)
    valid = valid_mask(args["lengths"])[:, :, None]  # [T, B, 1]
    assert not valid.all(), "the problem must have padding for this test to mean anything"
    _, _, _, cache = ref.forward(cell, **args)

    def run(dy):
        dx, dh0, dc0, grads = ref.backward(cell, cache, dy, Gh, Gc)
        return {"x": dx, "h0": dh0, "c0": dc0, **grads}

    clean = run(np.where(valid, Gy, 0))
    noisy = run(np.where(valid, Gy, 1e3 * np.random.default_rng(7).standard_normal(Gy.shape)))
    for name in INPUTS:
        if clean[name] is not None:
            np.testing.assert_array_equal(clean[name], noisy[name], err_msg=name)
    np.testing.assert_array_equal(clean["x"][~valid[:, :, 0]], 0)

    # The converse, so the test above can fail: a dy entry inside a length does count.
    t, b = 0, 0
    assert valid[t, b, 0]
    moved = Gy.copy()
    moved[t, b] += 1.0
    assert not np.array_equal(run(np.where(valid, moved, 0))["x"], clean["x"])


@pytest.mark.parametrize("reverse", REVERSES)
@pytest.mark.parametrize("cell, peephole", CELL_CONFIGS)
def test_lengths_and_reverse_match_each_sequence_alone(cell, peephole, reverse):
    """Sequence b of a padded batch = sequence b alone, cut to its length (and flipped)."""
    args = make_problem(cell, peephole=peephole, lengths=MIXED_LENGTHS, reverse=reverse)
    y, h_n, c_n, _ = ref.forward(cell, **args)
    assert y.shape == (T, B, H)
    np.testing.assert_array_equal(y[~valid_mask(args["lengths"])], 0)

    for b, length in enumerate(MIXED_LENGTHS):
        x_b = args["x"][:length, b : b + 1]  # [len, 1, I]
        if reverse:
            x_b = x_b[::-1]
        alone = dict(args, x=x_b, h0=args["h0"][b : b + 1], lengths=None, reverse=False)
        if cell == "lstm":
            alone["c0"] = args["c0"][b : b + 1]
        y_b, h_b, c_b, _ = ref.forward(cell, **alone)
        if reverse:
            y_b = y_b[::-1]
        np.testing.assert_allclose(y[:length, b], y_b[:, 0], rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(h_n[b], h_b[0], rtol=1e-14, atol=1e-14)
        if cell == "lstm":
            np.testing.assert_allclose(c_n[b], c_b[0], rtol=1e-14, atol=1e-14)
        # h_n is the output of the sequence's last step: t = len-1 forward, t = 0 reversed.
        np.testing.assert_array_equal(h_n[b], y[0 if reverse else length - 1, b])


# ----------------------------------------------------------------------------------------
# step and dtypes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("cell, peephole", CELL_CONFIGS)
def test_step_equals_forward_with_one_step(cell, peephole, bias, dtype):
    args = make_problem(cell, bias=bias, peephole=peephole, steps=1, dtype=dtype)
    y, h_n, c_n, _ = ref.forward(cell, **args)
    weights = {k: args[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "peephole")}
    h1, c1 = ref.step(cell, args["x"][0], args["h0"], args["c0"], **weights)

    assert h1.dtype == dtype and h1.shape == (B, H)
    np.testing.assert_array_equal(h1, y[0])
    np.testing.assert_array_equal(h1, h_n)
    if cell == "lstm":
        assert c1.dtype == dtype
        np.testing.assert_array_equal(c1, c_n)
    else:
        assert c1 is None and c_n is None
    # The step moved the state, so equality above is not zeros against zeros.
    assert np.abs(h1 - args["h0"]).max() > 1e-2


def _spec_step(cell: str, x, h, c, w_ih, w_hh, b_ih, b_hh, peephole):
    """The cells without a torch counterpart, written again from the spec."""

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    def gate(w, k):  # rows of gate k in a [G*H, ...] weight or [G*H] bias
        return w[k * H : (k + 1) * H]

    if cell == "gru_reset_before":  # gates (r, z, n)
        r = sigmoid(x @ gate(w_ih, 0).T + gate(b_ih, 0) + h @ gate(w_hh, 0).T + gate(b_hh, 0))
        z = sigmoid(x @ gate(w_ih, 1).T + gate(b_ih, 1) + h @ gate(w_hh, 1).T + gate(b_hh, 1))
        n = np.tanh(x @ gate(w_ih, 2).T + gate(b_ih, 2) + (r * h) @ gate(w_hh, 2).T + gate(b_hh, 2))
        return (1 - z) * n + z * h, None
    # lstm: gates (i, f, g, o), peephole (i, f, o); i and f see c, o sees the new c.
    p_i, p_f, p_o = peephole[:H], peephole[H : 2 * H], peephole[2 * H :]

    def pre(k):
        return x @ gate(w_ih, k).T + gate(b_ih, k) + h @ gate(w_hh, k).T + gate(b_hh, k)

    i = sigmoid(pre(0) + p_i * c)
    f = sigmoid(pre(1) + p_f * c)
    c1 = f * c + i * np.tanh(pre(2))
    o = sigmoid(pre(3) + p_o * c1)
    return o * np.tanh(c1), c1


@pytest.mark.parametrize("cell, peephole", NOT_IN_TORCH)
def test_step_matches_spec_formulas(cell, peephole):
    args = make_problem(cell, peephole=peephole, steps=1)
    weights = {k: args[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "peephole")}
    h1, c1 = ref.step(cell, args["x"][0], args["h0"], args["c0"], **weights)
    want_h1, want_c1 = _spec_step(cell, args["x"][0], args["h0"], args["c0"], **weights)
    np.testing.assert_allclose(h1, want_h1, rtol=1e-13, atol=1e-14)
    if cell == "lstm":
        np.testing.assert_allclose(c1, want_c1, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("lengths, reverse", LAYOUTS)
@pytest.mark.parametrize("cell, peephole", CELL_CONFIGS)
def test_float32_stays_float32_and_agrees_with_float64(cell, peephole, lengths, reverse):
    kw = {"peephole": peephole, "lengths": lengths, "reverse": reverse}
    args32 = make_problem(cell, dtype=np.float32, **kw)
    args64 = make_problem(cell, dtype=np.float64, **kw)
    G = loss_weights(cell)
    G32 = tuple(None if g is None else g.astype(np.float32) for g in G)

    y32, h32, c32, cache32 = ref.forward(cell, **args32)
    y64, h64, c64, _ = ref.forward(cell, **args64)
    grads32 = analytic_gradients(cell, args32, G32)
    grads64 = analytic_gradients(cell, args64, G)

    for got, want in [(y32, y64), (h32, h64), (c32, c64)] + [
        (grads32[n], grads64[n]) for n in INPUTS
    ]:
        if want is None:
            assert got is None
            continue
        assert got.dtype == np.float32
        # args64 is not args32 widened (it is drawn in float64), so allow float32 rounding
        # of the inputs too.
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------
# torch


TORCH_CELLS = [
    pytest.param("rnn_tanh", id="rnn_tanh"),
    pytest.param("rnn_relu", id="rnn_relu"),
    pytest.param("gru", id="gru"),
    pytest.param("lstm", id="lstm"),
]


def torch_forward_backward(cell: str, args: dict[str, Any], G: tuple) -> dict[str, Any]:
    """torch's y, h_n, c_n and gradients of the same loss, as NumPy arrays."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    bias = args["b_ih"] is not None
    if cell.startswith("rnn"):
        module = torch.nn.RNN(I, H, nonlinearity=cell[len("rnn_") :], bias=bias)
    elif cell == "gru":
        module = torch.nn.GRU(I, H, bias=bias)
    else:
        module = torch.nn.LSTM(I, H, bias=bias)
    module = module.double()
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            if args[name] is not None:
                torch_name = name.replace("w_", "weight_").replace("b_", "bias_") + "_l0"
                getattr(module, torch_name).copy_(torch.from_numpy(args[name]))

    x = torch.tensor(args["x"], requires_grad=True)
    h0 = torch.tensor(args["h0"][None], requires_grad=True)  # [1, B, H]
    c0 = torch.tensor(args["c0"][None], requires_grad=True) if cell == "lstm" else None
    hx = (h0, c0) if cell == "lstm" else h0
    steps = x.shape[0]
    lengths = torch.full((B,), steps) if args["lengths"] is None else torch.tensor(args["lengths"])

    # Reverse: flip each sequence within its length. The flip is its own inverse, so the
    # same index also flips torch's output back.
    t = torch.arange(steps)[:, None]  # [T, 1]
    flip = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # [T, B]
    index = flip if args["reverse"] else t.expand(steps, B)
    batch = torch.arange(B)[None, :]
    x_in = x[index, batch]  # [T, B, I]

    if args["lengths"] is None:
        out, state = module(x_in, hx)
    else:
        packed = pack_padded_sequence(x_in, lengths, enforce_sorted=False)
        out_packed, state = module(packed, hx)
        out, _ = pad_packed_sequence(out_packed, total_length=steps)
    y = out[index, batch]
    h_n, c_n = (state[0][0], state[1][0]) if cell == "lstm" else (state[0], None)

    Gy, Gh, Gc = (None if g is None else torch.from_numpy(g) for g in G)
    total = (y * Gy).sum() + (h_n * Gh).sum()
    if c_n is not None:
        total = total + (c_n * Gc).sum()
    total.backward()

    def np_or_none(tensor):
        return None if tensor is None else tensor.detach().numpy()

    grads = {
        "y": np_or_none(y),
        "h_n": np_or_none(h_n),
        "c_n": np_or_none(c_n),
        "x": np_or_none(x.grad),
        "h0": np_or_none(h0.grad)[0],
        "c0": None if c0 is None else np_or_none(c0.grad)[0],
        "w_ih": np_or_none(module.weight_ih_l0.grad),
        "w_hh": np_or_none(module.weight_hh_l0.grad),
        "b_ih": np_or_none(module.bias_ih_l0.grad) if bias else None,
        "b_hh": np_or_none(module.bias_hh_l0.grad) if bias else None,
        "peephole": None,
    }
    return grads


@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("lengths, reverse", LAYOUTS)
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_matches_torch(cell, lengths, reverse, bias):
    args = make_problem(cell, bias=bias, lengths=lengths, reverse=reverse)
    G = loss_weights(cell)
    want = torch_forward_backward(cell, args, G)

    y, h_n, c_n, cache = ref.forward(cell, **args)
    dx, dh0, dc0, grads = ref.backward(cell, cache, *G)
    got = {"y": y, "h_n": h_n, "c_n": c_n, "x": dx, "h0": dh0, "c0": dc0, **grads}

    assert got.keys() == want.keys()
    for name in got:
        if want[name] is None:
            assert got[name] is None, name
            continue
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-10, err_msg=name)
