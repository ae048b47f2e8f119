"""The lengths plan (csrc/lengths_plan.h, fastrnn._C.LengthsPlan): the batch of a forward with
lengths, checked once and sorted by decreasing length, made once per forward by the layer loop
(python/fastrnn/_layer_loop.py) and shared by every layer and direction, CPU and GPU.

Its sort and step counts are checked against NumPy's stable argsort and a count written here; a
plan and the raw lengths it was made from must give bitwise the same results through the CPU
kernels and the GPU path's host build (persistent kernel and per-step path), training included.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import reference as ref
from test_cuda import HOST, run_backend, run_cpu_kernels, split_cell
from test_kernels import make_problem

import fastrnn
from fastrnn import _C, _layer_loop


@pytest.mark.parametrize(
    "lengths, T",
    [([3, 5, 5, 1, 3], 5), ([1], 1), ([2, 2, 2], 4), ([1, 7, 3, 7, 2, 1], 9)],
)
def test_plan_sorts_stably_and_counts_the_running_rows(lengths: list[int], T: int) -> None:
    lens = np.array(lengths, np.int64)
    p = _C.LengthsPlan(lens, T)
    assert (p.batch, p.steps) == (len(lengths), T)
    np.testing.assert_array_equal(p.lengths, lens)
    np.testing.assert_array_equal(p.order, np.argsort(-lens, kind="stable"))
    want_active = [sum(1 for n in lengths if n > s) for s in range(T)]
    np.testing.assert_array_equal(p.active, want_active)
    # the running rows are a prefix of the sorted rows at every step
    sorted_lens = lens[p.order]
    for s in range(T):
        assert (sorted_lens[: p.active[s]] > s).all() and (sorted_lens[p.active[s] :] <= s).all()


def test_plan_takes_any_integer_dtype() -> None:
    p = _C.LengthsPlan(np.array([2, 3], np.uint8), 3)
    np.testing.assert_array_equal(p.order, [1, 0])
    assert p.lengths.dtype == np.int64


@pytest.mark.parametrize(
    "lengths, T, error, message",
    [
        (np.array([2, 0]), 3, ValueError, r"lengths: every length must be in \[1, T=3\], got 0"),
        (np.array([4, 1]), 3, ValueError, r"lengths: every length must be in \[1, T=3\], got 4"),
        (np.array([1.0, 2.0]), 3, TypeError, "lengths: expected integers, got dtype float64"),
        ([1, 2], 3, TypeError, "lengths: expected a numpy.ndarray of integers, got list"),
        (np.ones((2, 1), np.int64), 3, ValueError, r"expected a 1-D array .* got shape \(2, 1\)"),
        (np.zeros(0, np.int64), 3, ValueError, r"B >= 1 integers, got shape \(0,\)"),
        (np.array([1]), 0, ValueError, "steps: expected T >= 1, got 0"),
    ],
)
def test_plan_refuses_bad_lengths(lengths: Any, T: int, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _C.LengthsPlan(lengths, T)


def problem(cell: str, dtype: Any = np.float64, B: int = 5) -> tuple[str, dict[str, Any]]:
    name, peep = split_cell(cell)
    p = make_problem(name, 6, B, 4, 7, lengths=True, bias=True, peephole=peep, seed=3, dtype=dtype)
    return name, p


def same_bits(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert set(a) == set(b)
    for k in a:
        if a[k] is None:
            assert b[k] is None, k
        else:
            assert a[k].tobytes() == b[k].tobytes(), f"{k} differs"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", ref.CELLS + ("lstm_peephole",))
def test_cpu_plan_gives_the_bits_of_raw_lengths(cell: str, reverse: bool, dtype: Any) -> None:
    name, p = problem(cell, dtype)
    raw = run_cpu_kernels(name, p, reverse)
    planned = run_cpu_kernels(
        name, dict(p, lengths=_C.LengthsPlan(p["lengths"], p["x"].shape[0])), reverse
    )
    same_bits(raw, planned)


@pytest.mark.parametrize("persistent", ["off", "on"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", ref.CELLS + ("lstm_peephole",))
def test_gpu_host_plan_gives_the_bits_of_raw_lengths(
    cell: str, reverse: bool, persistent: str
) -> None:
    name, p = problem(cell)
    raw = run_backend(HOST, name, p, reverse, persistent=persistent)
    plan = _C.LengthsPlan(p["lengths"], p["x"].shape[0])
    planned = run_backend(HOST, name, dict(p, lengths=plan), reverse, persistent=persistent)
    same_bits(raw, planned)


def test_a_plan_for_another_shape_is_refused() -> None:
    name, p = problem("gru", B=5)
    plan = _C.LengthsPlan(np.array([1, 2, 3, 4]), 6)  # B=4, x has B=5
    msg = r"lengths: expected a plan for T=6 steps and B=5 sequences .* got one for T=6, B=4"
    with pytest.raises(ValueError, match=msg):
        run_cpu_kernels(name, dict(p, lengths=plan), False)
    with pytest.raises(ValueError, match=msg):
        run_backend(HOST, name, dict(p, lengths=plan), False)
    plan = _C.LengthsPlan(np.array([1, 2, 3, 4, 5]), 7)  # T=7, x has T=6
    with pytest.raises(ValueError, match="got one for T=7, B=5"):
        run_cpu_kernels(name, dict(p, lengths=plan), False)


@pytest.mark.parametrize("training", [False, True])
def test_the_layer_loop_makes_one_plan_per_forward(
    monkeypatch: pytest.MonkeyPatch, training: bool
) -> None:
    made: list[Any] = []

    def counting_plan(lengths: Any, steps: int) -> Any:
        made.append(_C.LengthsPlan(lengths, steps))
        return made[-1]

    monkeypatch.setattr(_layer_loop, "_C", SimpleNamespace(LengthsPlan=counting_plan))
    m = fastrnn.LSTM(3, 4, num_layers=3, bidirectional=True, seed=0)
    m.train(training)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    lengths = np.array([5, 3])
    y = m(x, lengths=lengths)[0]
    assert len(made) == 1
    np.testing.assert_array_equal(made[0].lengths, lengths)
    assert (y[3:, 1] == 0).all()  # sequence 1 stops after 3 steps in every layer
    m(x)
    assert len(made) == 1  # no lengths, no plan
