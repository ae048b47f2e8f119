"""fastrnn.autocast: bfloat16 products with float32 sums, states and outputs.

On the amx_bf16 path every product of a forward rounds its operands to bfloat16 (x and W_ih; h
and W_hh; r*h and W_hn for the reset-before GRU) and sums in float32 on AMX tiles: checked against
a float64 reference that rounds exactly those operands, tightly enough that the float32 path
(which does not round) fails it. Backward's products over all steps are bfloat16 too: gradients
checked against float64 within bfloat16's precision. On every other path autocast is the
bfloat16-weight inference mode (bitwise) and float32 training (bitwise). Plus the API: context
nesting, enabled=False, decorator, per-thread state, Module.compute_dtype, errors.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastrnn
from fastrnn import _C

AMX = "amx_bf16" in _C.backends()["supported"]
needs_amx = pytest.mark.skipif(not AMX, reason="this CPU has no AMX-BF16 tiles")
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "gru_reset_before": 3, "lstm": 4}


def bf16(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest even), as float64."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def autocast_reference(cell, x, h0, c0, w, lengths, reverse):
    """float64 forward whose products take bfloat16-rounded operands (the state is float32 in
    fastrnn, so h is rounded from its float32 value)."""
    w_ih, w_hh, b_ih, b_hh = (
        np.asarray(w[k], np.float64) for k in ("w_ih", "w_hh", "b_ih", "b_hh")
    )
    peep = w.get("peephole")
    T, B, _ = x.shape
    H = w_hh.shape[1]
    Wi, Wh = bf16(w["w_ih"]), bf16(w["w_hh"])
    h = np.asarray(h0, np.float64).copy()
    c = np.asarray(c0, np.float64).copy() if c0 is not None else None
    y = np.zeros((T, B, H))
    for b in range(B):
        hb, cb = h[b].copy(), None if c is None else c[b].copy()
        steps = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
        for t in steps:
            xp = bf16(x[t, b]) @ Wi.T + b_ih
            hr = bf16(hb.astype(np.float32))
            if cell.startswith("rnn"):
                a = xp + hr @ Wh.T + b_hh
                hb = np.tanh(a) if cell == "rnn_tanh" else np.maximum(a, 0)
            elif cell == "gru":
                hp = hr @ Wh.T + b_hh
                r = sigmoid(xp[:H] + hp[:H])
                z = sigmoid(xp[H : 2 * H] + hp[H : 2 * H])
                n = np.tanh(xp[2 * H :] + r * hp[2 * H :])
                hb = (1 - z) * n + z * hb
            elif cell == "gru_reset_before":
                hp = hr @ Wh[: 2 * H].T + b_hh[: 2 * H]
                r = sigmoid(xp[:H] + hp[:H])
                z = sigmoid(xp[H : 2 * H] + hp[H : 2 * H])
                rh = bf16((r * hb).astype(np.float32))
                n = np.tanh(xp[2 * H :] + rh @ Wh[2 * H :].T + b_hh[2 * H :])
                hb = (1 - z) * n + z * hb
            else:
                a = xp + hr @ Wh.T + b_hh
                pi, pf, po = (np.zeros(H),) * 3 if peep is None else np.split(peep, 3)
                i = sigmoid(a[:H] + pi * cb)
                f = sigmoid(a[H : 2 * H] + pf * cb)
                g = np.tanh(a[2 * H : 3 * H])
                cb = f * cb + i * g
                o = sigmoid(a[3 * H :] + po * cb)
                hb = o * np.tanh(cb)
            y[t, b] = hb
        h[b] = hb
        if c is not None:
            c[b] = cb
    return y, h, c


def make_weights(cell, I, H, rng, peephole=False):
    G = GATES[cell]
    w = {
        "w_ih": (rng.standard_normal((G * H, I)) * 1.5 / np.sqrt(I)).astype(np.float32),
        "w_hh": (rng.standard_normal((G * H, H)) * 1.5 / np.sqrt(H)).astype(np.float32),
        "b_ih": (rng.standard_normal(G * H) * 0.2).astype(np.float32),
        "b_hh": (rng.standard_normal(G * H) * 0.2).astype(np.float32),
    }
    if peephole:
        w["peephole"] = (rng.standard_normal(3 * H) * 0.4).astype(np.float32)
    return w


CASES = [  # cell, T, B, I, H, peephole, lengths, reverse
    ("rnn_tanh", 6, 3, 19, 40, False, None, False),
    ("rnn_relu", 5, 17, 33, 16, False, [5, 1, 3, 5, 2, 5, 4, 1, 5, 5, 2, 3, 4, 5, 1, 2, 3], True),
    ("gru", 6, 1, 8, 70, False, None, False),
    ("gru", 4, 33, 65, 37, False, None, True),
    ("gru_reset_before", 6, 5, 31, 45, False, [6, 2, 6, 1, 4], False),
    ("gru_reset_before", 3, 40, 16, 96, False, None, True),
    ("lstm", 7, 2, 50, 33, False, None, False),
    ("lstm", 5, 20, 24, 64, True, [5, 3, 1, 5, 2] * 4, True),
    ("lstm", 3, 64, 32, 130, True, None, False),
    ("lstm", 6, 45, 17, 50, False, [6, 1, 3, 6, 2] * 9, True),
]


@needs_amx
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-B{c[2]}-H{c[4]}" for c in CASES])
def test_amx_forward_matches_the_bfloat16_operand_reference(case):
    cell, T, B, I, H, peephole, lengths, reverse = case
    rng = np.random.default_rng(T * 1000 + B * 10 + H)
    w = make_weights(cell, I, H, rng, peephole)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = (rng.standard_normal((B, H)) * 0.5).astype(np.float32)
    c0 = (rng.standard_normal((B, H)) * 0.5).astype(np.float32) if cell == "lstm" else None
    lens = np.full(B, T) if lengths is None else np.array(lengths)
    W = _C.Weights(cell, **w)
    prev = _C.backends()["active"]
    _C.set_isa("amx_bf16")
    try:
        y, h_n, c_n, _ = W.forward(
            x, h0, c0, None if lengths is None else lens, reverse, False, True
        )
        y32 = W.forward(x, h0, c0, None if lengths is None else lens, reverse, False, False)[0]
    finally:
        _C.set_isa(prev)
    ry, rh, rc = autocast_reference(cell, x, h0, c0, w, lens, reverse)
    scale = max(1.0, np.abs(ry).max())
    # Only the order of float32 sums differs, except where a state's float32 value and the
    # reference's fall on two sides of a bfloat16 rounding boundary (rare: one element in
    # thousands, changing its operand by 2**-9): a tight mean, a looser max.
    err = np.abs(y - ry)
    assert err.mean() <= 2e-6 * scale and err.max() <= 4e-3 * scale
    assert np.abs(h_n - rh).max() <= 4e-3 * scale
    if cell == "lstm":
        assert np.abs(c_n - rc).max() <= 4e-3 * max(1.0, np.abs(rc).max())
    # the test can fail: float32 products (no rounding) are much further off on average
    assert np.abs(y32 - ry).mean() > 20 * err.mean()


def _grads(cell, w, x, h0, c0, lens, autocast, dy):
    W = _C.Weights(cell, **w)
    y, h_n, c_n, ctx = W.forward(x, h0, c0, lens, False, True, autocast)
    dx, dh0, dc0, g = W.backward(ctx, dy)
    return y, dx, dh0, g


@needs_amx
# not rnn_relu: its derivative jumps at 0, and a pre-activation that bfloat16 moves across 0 turns
# a unit's gradient on or off (a different function, not a less precise one)
@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "gru_reset_before", "lstm"])
def test_amx_training_gradients_are_float64_within_bfloat16_precision(cell):
    rng = np.random.default_rng(7)
    T, B, I, H = 6, 19, 40, 48
    w = make_weights(cell, I, H, rng, cell == "lstm")
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = (rng.standard_normal((B, H)) * 0.5).astype(np.float32)
    c0 = (rng.standard_normal((B, H)) * 0.5).astype(np.float32) if cell == "lstm" else None
    lens = rng.integers(1, T + 1, B).astype(np.int64)
    lens[0] = T
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    prev = _C.backends()["active"]
    _C.set_isa("amx_bf16")
    try:
        ya, dxa, dha, ga = _grads(cell, w, x, h0, c0, lens, True, dy)
        y2, dx2, dh2, g2 = _grads(cell, w, x, h0, c0, lens, True, dy)
    finally:
        _C.set_isa(prev)
    w64 = {k: v.astype(np.float64) for k, v in w.items()}
    c064 = None if c0 is None else c0.astype(np.float64)
    y6, dx6, dh6, g6 = _grads(cell, w64, x.astype(np.float64), h0.astype(np.float64), c064, lens,
                              False, dy.astype(np.float64))  # fmt: skip

    def rel(a, b):
        return np.abs(a - b).max() / np.abs(b).max()

    # deterministic, and within bfloat16's precision (8 bits: 2**-8 per operand) of float64
    assert np.array_equal(ya, y2) and np.array_equal(dxa, dx2) and np.array_equal(dha, dh2)
    assert rel(ya, y6) < 2e-2
    assert rel(dxa, dx6) < 3e-2 and rel(dha, dh6) < 3e-2
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
        assert rel(ga[k], g6[k]) < 3e-2, k
        assert np.array_equal(ga[k], g2[k])


@needs_amx
@pytest.mark.parametrize(
    "m,n,k,ta,tb,beta",
    [(1, 1, 1, False, False, 0.0), (5, 7, 3, False, True, 0.0), (33, 65, 70, True, False, 1.0),
     (64, 128, 64, False, True, 1.0), (100, 40, 129, True, True, 0.5), (32, 64, 32, False, False, 1.0)],
)  # fmt: skip
def test_amx_gemm_matches_the_bfloat16_operand_product(m, n, k, ta, tb, beta):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    A, B = bf16(a), bf16(b)
    ref = beta * c.astype(np.float64) + (A.T if ta else A) @ (B.T if tb else B)
    prev = _C.backends()["active"]
    _C.set_isa("amx_bf16")
    try:
        out = c.copy()
        _C.nn_matmul(a, b, ta, tb, out, beta, autocast=True)
    finally:
        _C.set_isa(prev)
    # float32 sums of exact products: at most about k float32 roundings of |A| |B|
    bound = np.abs(beta * c) + np.abs(A.T if ta else A) @ np.abs(B.T if tb else B)
    assert np.all(np.abs(out - ref) <= (k + 2) * np.finfo(np.float32).eps * bound)
    if k >= 8:  # and not the float32 product
        f32 = beta * c.astype(np.float64) + (a.T if ta else a).astype(np.float64) @ (
            b.T if tb else b
        ).astype(np.float64)
        assert np.abs(out - f32).max() > 1e-4


def test_other_paths_autocast_is_bfloat16_inference_and_float32_training(isa):
    if isa == "amx_bf16":
        pytest.skip("the AMX path is checked against its own reference above")
    rng = np.random.default_rng(3)
    w = make_weights("lstm", 24, 40, rng)
    x = rng.standard_normal((5, 3, 24)).astype(np.float32)
    W, Wb = _C.Weights("lstm", **w), _C.Weights("lstm", **w)
    Wb.bf16 = True
    assert np.array_equal(W.forward(x, autocast=True)[0], Wb.forward(x)[0])
    y, _, _, ctx = W.forward(x, training=True, autocast=True)
    y0, _, _, ctx0 = W.forward(x, training=True)
    assert np.array_equal(y, y0)
    dy = np.ones_like(y)
    assert np.array_equal(W.backward(ctx, dy)[0], W.backward(ctx0, dy)[0])
    assert np.array_equal(W.step(x[0], autocast=True)[0], Wb.step(x[0])[0])


def test_float64_ignores_autocast():
    m = fastrnn.GRU(6, 8, dtype="float64").eval()
    x = np.random.default_rng(0).standard_normal((4, 2, 6))
    with fastrnn.autocast("bfloat16"):
        y1 = m(x)[0]
    assert np.array_equal(y1, m(x)[0])


def test_layer_cell_linear_and_functional_follow_the_context():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 16)).astype(np.float32)
    lstm = fastrnn.LSTM(16, 24, num_layers=2, bidirectional=True).eval()
    cell = fastrnn.GRUCell(16, 24).eval()
    lin = fastrnn.nn.Linear(16, 5).eval()
    plain = [lstm(x)[0], cell(x[0]), lin(x)]
    with fastrnn.autocast("bfloat16"):
        assert fastrnn.is_autocast_enabled()
        inside = [lstm(x)[0], cell(x[0]), lin(x)]
        with fastrnn.autocast(enabled=False):
            assert not fastrnn.is_autocast_enabled()
            assert np.array_equal(lstm(x)[0], plain[0])
    assert not fastrnn.is_autocast_enabled()
    for a, b in zip(inside, plain):
        assert a.dtype == np.float32
        assert 0 < np.abs(a - b).max() < 2e-2  # bfloat16 products: close, not equal
    sd = lstm.state_dict()
    args = (
        x,
        None,
        None,
        sd["weight_ih_l0"],
        sd["weight_hh_l0"],
        sd["bias_ih_l0"],
        sd["bias_hh_l0"],
    )
    y32 = fastrnn.lstm_forward(*args)[0]
    with fastrnn.autocast():
        yb = fastrnn.lstm_forward(*args)[0]
    assert 0 < np.abs(yb - y32).max() < 2e-2


def test_compute_dtype_overrides_the_context_and_propagates():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 2, 8)).astype(np.float32)

    class Net(fastrnn.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = fastrnn.GRU(8, 12)
            self.head = fastrnn.nn.Linear(12, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    net = Net().eval()
    y32 = net(x)
    with fastrnn.autocast():
        ybf = net(x)
    net.compute_dtype = "bfloat16"
    assert net.rnn.compute_dtype == "bfloat16" and net.head.compute_dtype == "bfloat16"
    assert np.array_equal(net(x), ybf)
    net.compute_dtype = "float32"  # never, even inside autocast
    with fastrnn.autocast():
        assert np.array_equal(net(x), y32)
    net.compute_dtype = None
    assert np.array_equal(net(x), y32)
    with pytest.raises(ValueError, match="compute_dtype: expected None .* got 'float16'"):
        net.compute_dtype = "float16"


def test_backward_follows_its_forward_not_the_context_at_backward_time():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 4, 10)).astype(np.float32)
    m = fastrnn.LSTM(10, 20)
    lin = fastrnn.nn.Linear(10, 6)
    with fastrnn.autocast():
        out, _ = m(x)
        y = lin(x)
    dx_ac = m.backward(np.ones_like(out))[0]
    dl_ac = lin.backward(np.ones_like(y))
    m.zero_grad()
    lin.zero_grad()
    out, _ = m(x)
    y = lin(x)
    with fastrnn.autocast():  # the forwards were float32: so are the backwards
        dx32 = m.backward(np.ones_like(out))[0]
        dl32 = lin.backward(np.ones_like(y))
    out, _ = m(x)
    y = lin(x)
    assert np.array_equal(dx32, m.backward(np.ones_like(out))[0])
    assert np.array_equal(dl32, lin.backward(np.ones_like(y)))
    if AMX:
        assert not np.array_equal(dx_ac, dx32) and not np.array_equal(dl_ac, dl32)


def test_decorator_and_per_thread_state():
    @fastrnn.autocast("bfloat16")
    def inside():
        return fastrnn.is_autocast_enabled()

    assert inside() and not fastrnn.is_autocast_enabled()
    seen = []
    with fastrnn.autocast():
        t = threading.Thread(target=lambda: seen.append(fastrnn.is_autocast_enabled()))
        t.start()
        t.join()
    assert seen == [False]


@pytest.mark.parametrize("dtype", ["float16", "float32", np.float64, "int8"])
def test_autocast_refuses_other_dtypes(dtype):
    with pytest.raises(ValueError, match="autocast: dtype must be 'bfloat16'"):
        fastrnn.autocast(dtype)
    with pytest.raises(TypeError, match="enabled must be a bool"):
        fastrnn.autocast("bfloat16", enabled="yes")  # type: ignore[arg-type]


def test_torch_bfloat16_dtype_is_accepted():
    torch = pytest.importorskip("torch")
    assert fastrnn.autocast(torch.bfloat16).dtype == "bfloat16"


def test_threads_and_a_forked_child_get_the_same_bits():
    """Tile configuration and packing scratch are per thread; AMX permission survives fork."""
    import os

    rng = np.random.default_rng(5)
    m = fastrnn.GRU(24, 40, num_layers=2).eval()
    x = rng.standard_normal((9, 20, 24)).astype(np.float32)
    with fastrnn.autocast():
        want = m(x)[0]
    got: list = [None] * 4

    def run(i):
        with fastrnn.autocast():
            for _ in range(3):
                got[i] = m(x)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, want) for g in got)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if it reproduces the parent's bits
        ok = False
        try:
            with fastrnn.autocast():
                ok = np.array_equal(m(x)[0], want)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@needs_amx
def test_amx_cell_steps_are_the_sequence_bits_at_any_batch():
    rng = np.random.default_rng(6)
    cell = fastrnn.LSTMCell(20, 36).eval()
    layer = fastrnn.LSTM(20, 36).eval()
    sd = cell.state_dict()
    layer.load_state_dict({f"{k}_l0": v for k, v in sd.items()})
    x = rng.standard_normal((6, 40, 20)).astype(np.float32)
    with fastrnn.autocast():
        want, _ = layer(x)
        h = c = np.zeros((40, 36), np.float32)
        for t in range(6):
            h, c = cell(x[t], (h, c))
            assert np.array_equal(h, want[t])
        # a row alone gives its bits in the batch
        h1, _ = cell(x[0, 7:8], None)
    assert np.array_equal(h1[0], want[0, 7])


def test_a_layer_fed_one_step_at_a_time_under_autocast_is_the_sequence():
    rng = np.random.default_rng(8)
    m = fastrnn.LSTM(12, 20, num_layers=2).eval()
    x = rng.standard_normal((5, 3, 12)).astype(np.float32)
    with fastrnn.autocast():
        want, _ = m(x)
        state = None
        for t in range(5):
            y, state = m(x[t : t + 1], state)
            assert np.array_equal(y[0], want[t])


@needs_amx
def test_backward_after_switching_away_from_amx_runs_float32():
    rng = np.random.default_rng(9)
    w = make_weights("gru", 16, 24, rng)
    x = rng.standard_normal((5, 7, 16)).astype(np.float32)
    dy = rng.standard_normal((5, 7, 24)).astype(np.float32)
    W = _C.Weights("gru", **w)
    prev = _C.backends()["active"]
    _C.set_isa("amx_bf16")
    try:
        _, _, _, ctx = W.forward(x, training=True, autocast=True)
        want = W.backward(ctx, dy)[0]
        _C.set_isa("avx512")  # no tiles there: backward's products run in float32
        _, _, _, ctx = W.forward(x, training=True, autocast=True)
        _C.set_isa("amx_bf16")
        _, _, _, ctx2 = W.forward(x, training=True, autocast=True)
        _C.set_isa("avx512")
        got = W.backward(ctx2, dy)[0]
    finally:
        _C.set_isa(prev)
    assert np.all(np.isfinite(got))
    assert 0 < np.abs(got - want).max() <= 2e-2 * np.abs(want).max()


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return (got.astype(np.float64) - want) / spacing


def test_autocast_gate_math_within_3_ulp_unbiased_and_saturating(isa):
    """AMX autocast's forward computes its gates with one exponential and one division per
    sigmoid/tanh: within 3 ulp, unbiased, exactly +-1 where saturated. Elsewhere the exact ones."""
    rng = np.random.default_rng(10)
    x = np.concatenate([np.linspace(-80, 30, 1_000_001), rng.standard_normal(200_000) * 4])
    x = np.concatenate([x, [0.0, -0.0, 1e-30, -1e-30, 20.0, 50.0, -50.0]]).astype(np.float32)
    x64 = x.astype(np.float64)
    for which, want in ((4, 1 / (1 + np.exp(-x64))), (5, np.tanh(x64))):
        got = _C._math(which, x)
        u = _ulps(got, want)
        bound = 3.0 if isa == "amx_bf16" else 1.0
        assert np.abs(u).max() <= bound, (which, np.abs(u).max())
        assert abs(u.mean()) < 0.01
        rounded = want.astype(np.float32)
        sat = np.abs(rounded) == 1
        assert sat.any() and np.array_equal(got[sat], rounded[sat])
        if isa != "amx_bf16":
            assert np.array_equal(got, _C._math(which - 2, x))
    with pytest.raises(ValueError, match="which: expected 0..5, got 6"):
        _C._math(6, x)
