"""bfloat16 and float16 storage on the GPU path (csrc/cuda/half.h): float32 sums, gate math and
state; inputs, outputs, weights and gradients in 16 bits.

What the host build (fastrnn._C._cuda_host, the GPU path's driver and kernels run on the CPU)
checks here:

1. The conversions: a table of rounding cases (ties to even, NaN, Inf, float16 overflow and
   subnormals), every 16-bit value round-tripped, random values against NumPy's float16 cast, our
   NumPy twin (fastrnn._lowp) and, when installed, ml_dtypes and torch; float64 rounded directly
   (no double rounding).
2. One layer and direction, every cell and option (lengths, reverse, bias, peepholes, both GRU
   forms), forward and all gradients: the 16-bit run is bitwise the float32 run on the same
   (already rounded) inputs and weights, rounded once - which is what "float32 accumulation,
   float32 state, only outputs rounded" means. And its error against the float64 reference is at
   most K_OUT times the error of rounding the float64 result itself to the storage type.
3. Layers (stacked, bidirectional, batch-first, unbatched, lengths, dropout) with
   dtype="bfloat16"/"float16" on the host build, against the float64 CPU layer with the same
   rounded parameters: error at most K_LAYER times the rounding error of the float64 result (the
   16-bit layer also rounds what one layer or direction hands the next).
4. The Python API: dtypes on the CPU path and mixed dtypes are clear errors naming the argument.

GPU tests (skipped without a usable GPU): the same bitwise-up-to-one-ulp relation on the device,
and torch CUDA modules in the same dtype.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import pytest
from test_cuda import (
    CELLS,
    LAYER_CONFIGS,
    LAYERS,
    TORCH_LAYERS,
    layer_case,
    needs_gpu,
    run_backend,
    run_layer,
    split_cell,
    torch_cuda,
)
from test_kernels import OPTIONS, flatten, make_problem, run_reference

import fastrnn
from fastrnn import _C, _cuda, _lowp

HOST = _C._cuda_host
STORAGE = ("bfloat16", "float16")
K_OUT = 2.0  # one layer/direction vs float64: x the output-rounding error alone
# Layers vs float64: x the output rounding. Stacked layers and two directions also round what
# they hand on (layer k's y, the dy / dx between layers, dx summed over two directions), and that
# error is then summed over T*B rows in the next layer's weight and bias gradients: the largest
# ratio seen over the configurations here is 5.2 (bfloat16, 2-layer RNN, layer 0's bias gradient).
K_LAYER = 8.0

try:
    from fastrnn import _C_cuda  # type: ignore[attr-defined]
except ImportError:
    _C_cuda = None


def f32(x: Any) -> np.ndarray:
    return np.asarray(x, np.float32)


def bits_of(values: Any, storage: str) -> np.ndarray:
    """C++ rounding (half.h) through the host build: float values -> 16-bit patterns."""
    return HOST.to_device(np.asarray(values), dtype=storage).numpy("uint16")


def widen_bits(bits: np.ndarray, storage: str) -> np.ndarray:
    """16-bit patterns -> float32, in NumPy (independent of half.h)."""
    bits = np.asarray(bits, np.uint16)
    if storage == "float16":
        return bits.view(np.float16).astype(np.float32)
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ============================================================================================
# 1. Conversions


def h(x: float) -> float:  # a float32 value as a Python float
    return float(np.float32(x))


BF16_CASES = [  # (float32 input, expected float32 value of the bfloat16 result)
    (1.0, 1.0),
    (1.0 + 2**-8, 1.0),  # tie, even neighbour below
    (1.0 + 3 * 2**-8, 1.0 + 2**-6),  # tie, even neighbour above
    (1.0 + 2**-8 + 2**-20, 1.0 + 2**-7),  # just above the tie
    (1.0 + 2**-8 - 2**-20, 1.0),  # just below
    (-(1.0 + 3 * 2**-8), -(1.0 + 2**-6)),
    (3.3895313892515355e38, 3.3895313892515355e38),  # the largest bfloat16
    (h(3.4028234663852886e38), np.inf),  # float32 max rounds past it
    (np.inf, np.inf),
    (-np.inf, -np.inf),
    (-0.0, -0.0),
    (1e-40, 2.0**-133),  # a float32 subnormal (0x000116c2): rounded, not flushed
]
F16_CASES = [
    (1.0, 1.0),
    (1.0 + 2**-11, 1.0),  # tie, even below
    (1.0 + 3 * 2**-11, 1.0 + 2**-9),  # tie, even above
    (65504.0, 65504.0),  # the largest float16
    (65519.0, 65504.0),
    (65520.0, np.inf),  # tie with 65536: even neighbour, out of range
    (1e6, np.inf),
    (-1e6, -np.inf),
    (2**-24, 2**-24),  # smallest subnormal
    (2**-25, 0.0),  # tie with 0: even
    (h(2**-25 * 1.0001), 2**-24),
    (3 * 2**-25, 2**-23),  # 1.5 units: tie, even neighbour 2
    (2**-14 - 2**-26, 2**-14),  # the largest subnormal rounds up into the normals
    (-(2**-24), -(2**-24)),
    (-0.0, -0.0),
    (np.inf, np.inf),
]


@pytest.mark.parametrize(
    "storage,cases", [("bfloat16", BF16_CASES), ("float16", F16_CASES)], ids=STORAGE
)
def test_rounding_cases(storage: str, cases: list) -> None:
    x = f32([c[0] for c in cases])
    want = f32([c[1] for c in cases])
    got = widen_bits(bits_of(x, storage), storage)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0 and -Inf kept
    np.testing.assert_array_equal(_lowp.round_to(x, storage), want)
    dev = HOST.to_device(x, dtype=storage)
    np.testing.assert_array_equal(dev.numpy("float32"), want)  # C++ widening agrees


@pytest.mark.parametrize("storage", STORAGE)
def test_nan_stays_a_quiet_nan_with_its_sign(storage: str) -> None:
    x = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF812345], np.uint32).view(np.float32)
    b = bits_of(x, storage)
    back = widen_bits(b, storage)
    assert np.isnan(back).all()
    np.testing.assert_array_equal(np.signbit(back), [False, True, False, True])
    quiet = 0x0040 if storage == "bfloat16" else 0x0200
    assert (b & quiet).all()
    np.testing.assert_array_equal(np.isnan(_lowp.round_to(x, storage)), True)


@pytest.mark.parametrize("storage", STORAGE)
def test_every_16bit_value_round_trips(storage: str) -> None:
    allbits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    values = widen_bits(allbits, storage)
    nan = np.isnan(values)
    b = bits_of(values, storage)
    np.testing.assert_array_equal(b[~nan], allbits[~nan])
    assert np.isnan(widen_bits(b[nan], storage)).all()
    dev = HOST.to_device(values, dtype=storage).numpy("float32")  # C++ widening of every value
    np.testing.assert_array_equal(dev[~nan], values[~nan])
    assert np.isnan(dev[nan]).all()


def random_floats(n: int, seed: int) -> np.ndarray:
    """float32 values over the whole exponent range, plus many near 16-bit ties."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    near = (rng.integers(0, 1 << 16, n // 2, dtype=np.uint64).astype(np.uint32) << 16) | (
        0x8000 + rng.integers(-2, 3, n // 2).astype(np.int64)
    ).astype(np.uint32)
    mid = rng.standard_normal(n // 2).astype(np.float32).view(np.uint32)
    mid = (mid & ~np.uint32(0x1FFF)) | np.uint32(0x1000)  # float16 ties in the normal range
    x = np.concatenate([raw, near, mid]).view(np.float32)
    return x[~np.isnan(x)]


@pytest.mark.parametrize("storage", STORAGE)
def test_random_values_agree_with_independent_roundings(storage: str) -> None:
    x = random_floats(200_000, seed=1)
    got = widen_bits(bits_of(x, storage), storage)
    np.testing.assert_array_equal(got, _lowp.round_to(x, storage))
    if storage == "float16":
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(got, x.astype(np.float16).astype(np.float32))
        return
    try:
        import ml_dtypes  # type: ignore[import-not-found,import-untyped]
    except ImportError:
        ml_dtypes = None
    if ml_dtypes is not None:
        np.testing.assert_array_equal(got, x.astype(ml_dtypes.bfloat16).astype(np.float32))
    torch = pytest.importorskip("torch")
    want = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("storage", STORAGE)
def test_float64_rounds_directly(storage: str) -> None:
    """A float64 just above a 16-bit tie must round up; through float32 it would land on the tie
    and round to even (down)."""
    ulp = 2**-7 if storage == "bfloat16" else 2**-10
    x = np.array([1 + ulp / 2 + 2**-40, -(1 + ulp / 2 + 2**-40), 1 + ulp / 2, 3 + 2**-45])
    want = f32([1 + ulp, -(1 + ulp), 1.0, 3.0])
    np.testing.assert_array_equal(widen_bits(bits_of(x, storage), storage), want)
    np.testing.assert_array_equal(_lowp.round_to(x, storage), want)
    rng = np.random.default_rng(2)
    r = rng.standard_normal(100_000) * np.exp2(rng.integers(-20, 20, 100_000))
    got = widen_bits(bits_of(r, storage), storage)
    np.testing.assert_array_equal(got, _lowp.round_to(r, storage))
    if storage == "float16":  # NumPy rounds float64 to float16 directly
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(got, r.astype(np.float16).astype(np.float32))


# ============================================================================================
# 2. One layer and direction on the host build


def round_problem(p: dict[str, Any], storage: str) -> dict[str, Any]:
    """p's float arrays rounded to the storage type, as float32."""
    return {
        k: (_lowp.round_to(v, storage) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
        for k, v in p.items()
    }


def run_storage(b: Any, cell: str, p: dict[str, Any], reverse: bool, storage: str) -> dict:
    """run_backend with every array, the weights and the outputs in the storage type; results
    widened to float32."""
    w = b.Weights(cell, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["peephole"], 0, storage)
    assert str(w.dtype) == storage
    T, B, I = p["x"].shape
    H = p["w_hh"].shape[1]
    lstm = cell == "lstm"
    dev = lambda a: None if a is None else b.to_device(f32(a), dtype=storage)  # noqa: E731
    y, hn = b.zeros((T, B, H), storage), b.zeros((B, H), storage)
    cn = b.zeros((B, H), storage) if lstm else None
    ctx = w.forward(dev(p["x"]), dev(p["h0"]), dev(p["c0"]), p["lengths"], reverse, True, y, hn, cn)
    dx, dh0 = b.zeros((T, B, I), storage), b.zeros((B, H), storage)
    dc0 = b.zeros((B, H), storage) if lstm else None
    g = w.backward(ctx, dev(p["dy"]), dev(p["dh_n"]), dev(p["dc_n"]), dx, False, dh0, dc0)
    for v in g.values():
        assert v is None or str(v.dtype) == storage  # 16-bit weights get 16-bit gradients
    host = lambda a: None if a is None else a.numpy("float32")  # noqa: E731
    return flatten(host(y), host(hn), host(cn), host(dx), host(dh0), host(dc0),
                   {k: host(v) for k, v in g.items()})  # fmt: skip


def rounding_bound(got: dict, want64: dict, storage: str, k: float, what: str) -> None:
    """max|got - want64| <= k * max|round(want64) - want64| per array: the error is a multiple
    of what rounding the exact result to the storage type costs by itself."""
    for name, want in want64.items():
        if want is None:
            assert got[name] is None, name
            continue
        e_round = float(np.abs(_lowp.round_to(want, storage) - want).max(initial=0.0))
        err = float(np.abs(got[name].astype(np.float64) - want).max(initial=0.0))
        floor = 1e-6 * max(1.0, float(np.abs(want).max(initial=0.0)))  # float32 sums alone
        assert err <= k * e_round + floor, (
            f"{what}{name}: max error {err:.3g} > {k} x rounding {e_round:.3g} (+{floor:.1g})"
        )


SHAPES_LOWP = [(6, 3, 5, 7), (5, 20, 17, 33), (3, 2, 4, 70)]


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("shape", SHAPES_LOWP, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize(
    "opts", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "plain"
)
@pytest.mark.parametrize("cell", CELLS)
def test_host_storage_is_the_float32_run_rounded_once(
    cell: str, opts: dict, shape: tuple, storage: str
) -> None:
    cell, peephole = split_cell(cell)
    p = make_problem(
        cell, *shape, lengths=opts["lengths"], bias=opts["bias"], peephole=peephole,
        seed=hash((cell, shape)) % 1000, dtype=np.float32,
    )  # fmt: skip
    p = round_problem(p, storage)
    got = run_storage(HOST, cell, p, opts["reverse"], storage)
    want32 = run_backend(HOST, cell, p, opts["reverse"])
    for name, w in want32.items():
        if w is None:
            assert got[name] is None, name
            continue
        np.testing.assert_array_equal(got[name], _lowp.round_to(w, storage), err_msg=name)
    p64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
           for k, v in p.items()}  # fmt: skip
    rounding_bound(got, run_reference(cell, p64, opts["reverse"]), storage, K_OUT, f"{cell}: ")


def test_host_storage_context_is_tied_to_its_dtype() -> None:
    p = round_problem(make_problem("gru", 3, 2, 4, 5, lengths=False, bias=True, peephole=False,
                                   seed=0, dtype=np.float32), "bfloat16")  # fmt: skip
    wb = HOST.Weights("gru", p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, 0, "bfloat16")
    wf = HOST.Weights("gru", p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, 0, "float16")
    y, hn = HOST.zeros((3, 2, 5), "bfloat16"), HOST.zeros((2, 5), "bfloat16")
    x = HOST.to_device(p["x"], dtype="bfloat16")
    ctx = wb.forward(x, None, None, None, False, True, y, hn)
    dx, dh0 = HOST.zeros((3, 2, 4), "float16"), HOST.zeros((2, 5), "float16")
    with pytest.raises(ValueError, match="ctx"):
        wf.backward(ctx, None, None, None, dx, False, dh0)


def test_host_storage_argument_errors() -> None:
    w = HOST.Weights("lstm", np.zeros((8, 3)), np.zeros((8, 2)), None, None, None, 0, "bfloat16")
    assert w.dtype == "bfloat16"
    x = HOST.zeros((4, 2, 3), "bfloat16")
    y, hn, cn = (HOST.zeros(s, "bfloat16") for s in ((4, 2, 2), (2, 2), (2, 2)))
    with pytest.raises(TypeError, match="x: expected dtype bfloat16, got float16"):
        w.forward(HOST.zeros((4, 2, 3), "float16"), None, None, None, False, False, y, hn, cn)
    with pytest.raises(TypeError, match="h0: expected dtype bfloat16, got float32"):
        w.forward(x, HOST.zeros((2, 2), "float32"), None, None, False, False, y, hn, cn)
    with pytest.raises(TypeError, match="y: expected dtype bfloat16, got float32"):
        w.forward(x, None, None, None, False, False, HOST.zeros((4, 2, 2), "float32"), hn, cn)
    with pytest.raises(TypeError, match="dtype: converts only to bfloat16 or float16"):
        HOST.to_device(np.zeros(3, np.float32), dtype="float64")
    with pytest.raises(TypeError, match="numpy: a bfloat16 array converts"):
        x.numpy("float64")
    with pytest.raises(TypeError, match="w_ih: expected a float array"):
        HOST.Weights("gru", np.zeros((6, 3), np.int32), np.zeros((6, 2)), dtype="float16")


def test_16bit_device_arrays_dlpack_pickle_and_dropout(monkeypatch: pytest.MonkeyPatch) -> None:
    v = f32([1.5, -2.25, 3e-3, 65504.0])
    a16 = HOST.to_device(v, dtype="float16")
    assert a16.dtype == np.float16
    np.testing.assert_array_equal(a16.numpy(), v.astype(np.float16))
    np.testing.assert_array_equal(np.from_dlpack(a16), v.astype(np.float16))
    ab = HOST.to_device(v, dtype="bfloat16")
    assert ab.dtype == "bfloat16" and "bfloat16" in repr(ab)
    for arr in (a16, ab):
        back = pickle.loads(pickle.dumps(arr))
        assert str(back.dtype) == str(arr.dtype)
        np.testing.assert_array_equal(back.numpy("uint16"), arr.numpy("uint16"))
    strided = HOST.to_device(np.arange(12, dtype=np.float32).reshape(3, 4), dtype="bfloat16")
    col = strided.view(1, (3,), (4,))  # a strided view: contiguous copies move the bits
    np.testing.assert_array_equal(col.numpy("float32"), [1, 5, 9])
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # as if not installed
    with pytest.raises(TypeError, match="NumPy has no bfloat16"):
        ab.numpy()
    monkeypatch.undo()
    x = HOST.to_device(np.full(1000, 1.7, np.float32), dtype="bfloat16")
    y = HOST.dropout(x, 0.5, 3).numpy("float32")
    assert str(HOST.dropout(x, 0.5, 3).dtype) == "bfloat16"
    kept = _lowp.round_to(_lowp.round_to(1.7, "bfloat16") * np.float32(2.0), "bfloat16")
    assert set(np.unique(y)) == {0.0, float(kept)}
    torch = pytest.importorskip("torch")
    t = torch.from_dlpack(ab)  # DLPack code 4 (bfloat16), 16 bits
    assert t.dtype == torch.bfloat16
    np.testing.assert_array_equal(t.float().numpy(), ab.numpy("float32"))
    tb = torch.tensor([0.5, -1.25, 7.0], dtype=torch.bfloat16)
    imported = HOST.as_device_array(tb)
    assert imported.dtype == "bfloat16"
    np.testing.assert_array_equal(imported.numpy("float32"), [0.5, -1.25, 7.0])


# ============================================================================================
# 3. Layers on the host build


@pytest.fixture
def host_backend(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(_cuda, "_backend", HOST)
    return HOST


def run_layer_storage(m: Any, d: dict, storage: str) -> dict[str, np.ndarray | None]:
    """Forward + backward of a 16-bit layer on host-build device arrays; results as float32."""

    def to_host(v: Any) -> np.ndarray:
        assert str(v.dtype) == storage  # 16-bit in, 16-bit out and 16-bit gradients
        return v.numpy("float32")

    return run_layer(m, d, lambda a: HOST.to_device(f32(a), dtype=storage), to_host)


def run_layer_f64(m: Any, d: dict) -> dict[str, np.ndarray | None]:
    return run_layer(m, d, lambda a: np.asarray(a, np.float64))


def storage_layer_case(cell: str, cfg: dict[str, Any], storage: str) -> tuple[Any, dict]:
    """test_cuda's layer case as a 16-bit layer on the device, with its data rounded."""
    _, d = layer_case(cell, cfg, "float32", None)  # the data (float32; the module is unused)
    cls, kw = LAYERS[cell]
    m = cls(5, 7, num_layers=cfg.get("L", 1), bidirectional=bool(cfg.get("bidir")),
            batch_first=cfg.get("batch_first", False), bias=cfg.get("bias", True),
            dtype=storage, seed=0, device="cuda", **kw)  # fmt: skip
    d = {k: v if v is None or k == "lengths" else _lowp.round_to(v, storage) for k, v in d.items()}
    return m, d


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("cfg", LAYER_CONFIGS, ids=[c["id"] for c in LAYER_CONFIGS])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_layers_on_the_host_build_within_a_multiple_of_the_rounding(
    host_backend: Any, cell: str, cfg: dict[str, Any], storage: str
) -> None:
    m, d = storage_layer_case(cell, cfg, storage)
    assert str(m.dtype) == storage and m.inference_dtype == storage
    cls, kw = LAYERS[cell]
    m64 = cls(5, 7, num_layers=m.num_layers, bidirectional=m.bidirectional,
              batch_first=m.batch_first, bias=m.bias, dtype="float64", **kw)  # fmt: skip
    m64.load_state_dict(m.state_dict())  # the rounded parameters, exactly
    got = run_layer_storage(m, d, storage)
    want = run_layer_f64(m64, d)
    rounding_bound(got, want, storage, K_LAYER, f"{cell}/{cfg['id']}: ")


def test_layer_dropout_on_the_host_build(host_backend: Any) -> None:
    m = fastrnn.GRU(3, 4, num_layers=2, dropout=0.5, dtype="bfloat16", seed=0, device="cuda")
    x = HOST.to_device(np.random.default_rng(0).standard_normal((5, 2, 3)), dtype="bfloat16")
    out, _ = m(x)
    dx, _ = m.backward(HOST.to_device(np.ones((5, 2, 4), np.float32), dtype="bfloat16"))
    assert str(out.dtype) == "bfloat16" and str(dx.dtype) == "bfloat16"
    assert np.isfinite(dx.numpy("float32")).all() and np.abs(dx.numpy("float32")).max() > 0


# ============================================================================================
# 4. The Python API


@pytest.mark.parametrize("spec", ["bfloat16", "float16", np.float16, "half"])
def test_16bit_dtypes_on_the_cpu_path_point_to_inference_dtype(spec: Any) -> None:
    for make in (
        lambda: fastrnn.LSTM(3, 4, dtype=spec),
        lambda: fastrnn.GRUCell(3, 4, dtype=spec),
    ):
        with pytest.raises(
            ValueError, match=r"dtype: .* GPU path only.*inference_dtype='bfloat16'"
        ):
            make()


def test_16bit_dtype_spellings_of_torch() -> None:
    torch = pytest.importorskip("torch")
    assert _lowp.storage_name(torch.bfloat16) == "bfloat16"
    assert _lowp.storage_name(torch.float16) == "float16"
    assert _lowp.storage_name(torch.float32) is None
    with pytest.raises(ValueError, match="GPU path only"):
        fastrnn.GRU(3, 4, dtype=torch.bfloat16)


def test_16bit_layer_api_on_the_host_build(host_backend: Any) -> None:
    m = fastrnn.LSTM(5, 7, dtype="bfloat16", device="cuda", seed=0)
    assert m.dtype == "bfloat16" and "dtype='bfloat16'" in repr(m)
    assert fastrnn.GRU(3, 4, dtype="float16", device="cuda").dtype == np.float16
    sd = m.state_dict()
    for v in sd.values():  # float32 holding bfloat16 values
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, _lowp.round_to(v, "bfloat16"))
    m.load_state_dict({k: v + np.float32(1e-3) for k, v in sd.items()})  # rounded on load
    for v in m.state_dict().values():
        np.testing.assert_array_equal(v, _lowp.round_to(v, "bfloat16"))
    with pytest.raises(ValueError, match="inference_dtype"):
        m.inference_dtype = "float32"
    m.inference_dtype = "bfloat16"  # what it is already
    with pytest.raises(ValueError, match="GPU path only"):
        m.to("cpu")
    x = np.zeros((3, 2, 5), np.float32)
    with pytest.raises(TypeError, match="x: this LSTM stores bfloat16 and runs on CUDA arrays"):
        m(x)
    dev = lambda a, dt="bfloat16": HOST.to_device(a, dtype=dt)  # noqa: E731
    xb = dev(x)
    with pytest.raises(TypeError, match="h0: expected dtype bfloat16, got float32"):
        m(xb, (HOST.to_device(np.zeros((1, 2, 7), np.float32)), None))
    with pytest.raises(TypeError, match="x: expected dtype bfloat16, got float16"):
        m(dev(x, "float16"))
    out, (h_n, c_n) = m(xb)
    assert str(out.dtype) == "bfloat16" and str(c_n.dtype) == "bfloat16"
    with pytest.raises(TypeError, match="d_out: expected dtype bfloat16, got float32"):
        m.backward(HOST.to_device(np.zeros((3, 2, 7), np.float32)))
    m.backward(dev(np.ones((3, 2, 7), np.float32)))
    assert all(str(g.dtype) == "bfloat16" for g in m.grads.values())  # torch: bf16 grads
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.dtype == "bfloat16"
    out2, _ = m2(xb)
    np.testing.assert_array_equal(out2.numpy("uint16"), out.numpy("uint16"))


def test_load_state_dict_from_torch_bfloat16(host_backend: Any) -> None:
    torch = pytest.importorskip("torch")
    tm = torch.nn.GRU(3, 4).to(torch.bfloat16)
    m = fastrnn.GRU(3, 4, dtype="bfloat16", device="cuda")
    m.load_state_dict(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.float().numpy())


# ============================================================================================
# GPU (skipped where no CUDA device is usable)


@needs_gpu
@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v))
@pytest.mark.parametrize("cell", CELLS)
def test_gpu_storage_is_the_float32_run_rounded_once(cell: str, opts: dict, storage: str) -> None:
    """On the device the 16-bit and float32 kernels are compiled separately, so the compiler may
    contract a*b+c differently: equal to the rounded float32 run within one storage ulp."""
    cell, peephole = split_cell(cell)
    p = make_problem(cell, 9, 11, 40, 100, lengths=opts["lengths"], bias=opts["bias"],
                     peephole=peephole, seed=7, dtype=np.float32)  # fmt: skip
    p = round_problem(p, storage)
    got = run_storage(_C_cuda, cell, p, opts["reverse"], storage)
    want = run_backend(_C_cuda, cell, p, opts["reverse"])
    eps = 2**-7 if storage == "bfloat16" else 2**-10
    for name, w in want.items():
        if w is None:
            continue
        r = _lowp.round_to(w, storage)
        tol = eps * np.maximum(np.abs(r), 2.0**-14)  # one ulp of the rounded value
        assert (np.abs(got[name] - r) <= tol).all(), name
    p64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
           for k, v in p.items()}  # fmt: skip
    rounding_bound(got, run_reference(cell, p64, opts["reverse"]), storage, K_OUT + 1, "GPU: ")


@needs_gpu
def test_gpu_16bit_interop() -> None:
    torch = torch_cuda()
    d = _C_cuda.to_device(f32([1.5, 2.5, -3.0]), 0, "float16")
    assert d.__cuda_array_interface__["typestr"] == "<f2"
    b = _C_cuda.to_device(f32([1.5, 2.5, -3.0]), 0, "bfloat16")
    assert b.__cuda_array_interface__["typestr"] == "<V2"  # as torch and ml_dtypes spell it
    t = torch.from_dlpack(b)
    assert t.dtype == torch.bfloat16 and t.data_ptr() == b.ptr
    tb = torch.tensor([0.5, 1.0], dtype=torch.bfloat16, device="cuda")
    a = _C_cuda.as_device_array(tb)
    assert a.dtype == "bfloat16" and a.ptr == tb.data_ptr()
    th = torch.tensor([0.5, 1.0], dtype=torch.float16, device="cuda")[::2]  # CAI, strided
    assert _C_cuda.as_device_array(th).dtype == np.float16


LOWP_TORCH_CONFIGS = [
    {"id": "basic", "h0": True},
    {"id": "2layers-bidir-lengths", "L": 2, "bidir": True, "lengths": True, "h0": True},
    {"id": "wide", "T": 20, "B": 64, "I": 96, "H": 256, "lengths": True},
]


@needs_gpu
@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("cfg", LOWP_TORCH_CONFIGS, ids=[c["id"] for c in LOWP_TORCH_CONFIGS])
@pytest.mark.parametrize("cell", list(TORCH_LAYERS))
def test_gpu_layers_match_torch_cuda_in_16_bits(cell: str, cfg: dict, storage: str) -> None:
    """fastrnn and torch.nn in the same 16-bit dtype, each against torch in float32 on the same
    (rounded) parameters and inputs: our error is at most 3x torch's own, or twice the cost of
    rounding the float32 result, whichever is larger."""
    torch = torch_cuda()
    fast_cls, torch_name, kw = TORCH_LAYERS[cell]
    T, B, I, H = cfg.get("T", 6), cfg.get("B", 4), cfg.get("I", 5), cfg.get("H", 7)
    L, D = cfg.get("L", 1), 2 if cfg.get("bidir") else 1
    tdt = getattr(torch, storage)
    torch.manual_seed(0)
    t16 = getattr(torch.nn, torch_name)(I, H, num_layers=L, bidirectional=D == 2, **kw)
    t16 = t16.to("cuda", tdt)
    t32 = getattr(torch.nn, torch_name)(I, H, num_layers=L, bidirectional=D == 2, **kw)
    t32 = t32.to("cuda", torch.float32)
    t32.load_state_dict({k: v.float() for k, v in t16.state_dict().items()})
    fm = fast_cls(I, H, num_layers=L, bidirectional=D == 2, dtype=storage, device="cuda", **kw)
    fm.load_state_dict(t16.state_dict())
    g = torch.Generator().manual_seed(1)
    rnd = lambda *s: torch.randn(*s, generator=g).to("cuda", tdt)  # noqa: E731
    x, d_out = rnd(T, B, I), rnd(T, B, D * H)
    h0 = rnd(L * D, B, H) if cfg.get("h0") else None
    lstm = cell == "lstm"
    c0 = rnd(L * D, B, H) if cfg.get("h0") and lstm else None
    lengths = None
    if cfg.get("lengths"):
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
    dh = rnd(L * D, B, H)
    dc = rnd(L * D, B, H) if lstm else None

    def run_torch(tm: Any, dt: Any) -> dict[str, Any]:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        tm.zero_grad(set_to_none=True)
        xt = x.to(dt).requires_grad_()
        st = None if h0 is None else h0.to(dt).requires_grad_()
        ct = None if c0 is None else c0.to(dt).requires_grad_()
        inp = xt if lengths is None else pack_padded_sequence(xt, lengths, enforce_sorted=False)
        out, hn = tm(inp, None if st is None else ((st, ct) if lstm else st))
        if lengths is not None:
            out, _ = pad_packed_sequence(out, total_length=T)
        hn, cn = hn if lstm else (hn, None)
        loss = (out * d_out.to(dt)).float().sum() + (hn * dh.to(dt)).float().sum()
        if lstm:
            loss = loss + (cn * dc.to(dt)).float().sum()
        loss.backward()
        r = {"out": out, "h_n": hn, "dx": xt.grad}
        if st is not None:
            r["dh0"] = st.grad
        r.update({"d" + k: p.grad for k, p in tm.named_parameters()})
        return {k: v.detach().double().cpu().numpy() for k, v in r.items()}

    ref32 = run_torch(t32, torch.float32)
    try:
        tor16 = run_torch(t16, tdt)
    except RuntimeError as e:  # a torch / cuDNN build without this dtype for this module
        pytest.skip(f"torch CUDA cannot run {torch_name} in {storage}: {e}")
    lens = None if lengths is None else lengths.numpy()
    if lstm:
        out_f, (hn_f, _) = fm(x, None if h0 is None else (h0, c0), lengths=lens)
        dx_f, (dh0_f, _) = fm.backward(d_out, (dh, dc))
    else:
        out_f, hn_f = fm(x, h0, lengths=lens)
        dx_f, dh0_f = fm.backward(d_out, dh)
    assert out_f.dtype == tdt
    ours = {"out": out_f, "h_n": hn_f, "dx": dx_f, "dh0": dh0_f}
    ours.update({"d" + k: v for k, v in fm.grads.items()})
    for k, want in ref32.items():
        got = ours[k].detach().double().cpu().numpy()
        e_ours = float(np.abs(got - want).max())
        e_torch = float(np.abs(tor16[k] - want).max())
        e_round = float(np.abs(_lowp.round_to(want, storage) - want).max())
        assert e_ours <= max(3 * e_torch, 2 * e_round) + 1e-6, (k, e_ours, e_torch, e_round)


@pytest.mark.parametrize("storage", ["bfloat16", "float16"])
def test_16bit_storage_runs_the_standard_path_not_the_persistent_kernel(storage: str) -> None:
    """The persistent kernels keep float32/float64 weights on chip: with 16-bit storage 'auto'
    is the per-step path (bitwise), and asking for the persistent kernel is a clear error."""
    p = round_problem(make_problem("gru", 4, 2, 3, 5, lengths=True, bias=True, peephole=False,
                                   seed=1, dtype=np.float32), storage)  # fmt: skip
    w = HOST.Weights("gru", p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, 0, storage)
    x = HOST.to_device(p["x"], dtype=storage)
    outs = {}
    for mode in ("auto", "off"):
        y, hn = HOST.zeros((4, 2, 5), storage), HOST.zeros((2, 5), storage)
        w.forward(x, None, None, p["lengths"], False, False, y, hn, None, persistent=mode)
        outs[mode] = y.numpy("uint16")
    np.testing.assert_array_equal(outs["auto"], outs["off"])
    y, hn = HOST.zeros((4, 2, 5), storage), HOST.zeros((2, 5), storage)
    with pytest.raises(ValueError, match="float32 and float64 layers only"):
        w.forward(x, None, None, p["lengths"], False, False, y, hn, None, persistent="on")
