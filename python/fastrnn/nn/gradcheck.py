"""Finite-difference checks of hand-written backward passes (torch.autograd.gradcheck's role).

Use float64: central differences with eps ~ 1e-6 then agree with a correct gradient to ~1e-8
relative, while float32 would drown the check in rounding.

    >>> lin = Linear(3, 2, dtype="float64"); x = np.random.randn(4, 3); r = np.random.randn(4, 2)
    >>> def loss(): return float((lin(x) * r).sum())
    >>> lin.zero_grad(); loss(); dx = lin.backward(r)
    >>> gradcheck(loss, {"x": x, **dict(lin.named_parameters())}, {"x": dx, **lin.grads})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .module import parameters_changed

__all__ = ["gradcheck", "numerical_grad"]


def numerical_grad(
    f: Callable[[], float], x: np.ndarray, eps: float = 1e-6, indices: np.ndarray | None = None
) -> np.ndarray:
    """Central differences of the scalar f() with respect to the entries of `x` (perturbed in
    place and restored). With `indices` (flat positions), only those entries are computed; the
    others are returned as NaN."""
    g = np.full(x.shape, np.nan)
    flat = x.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous to be perturbed in place"
    idx = np.arange(x.size) if indices is None else indices
    gf = g.reshape(-1)
    for i in idx:
        old = flat[i]
        flat[i] = old + eps
        parameters_changed()
        fp = f()
        flat[i] = old - eps
        parameters_changed()
        fm = f()
        flat[i] = old
        parameters_changed()
        gf[i] = (fp - fm) / (2 * eps)
    return g


def gradcheck(
    f: Callable[[], float],
    wrt: Mapping[str, np.ndarray],
    analytic: Mapping[str, np.ndarray | None],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    max_entries: int | None = 30,
    seed: int = 0,
) -> None:
    """Assert that analytic[name] matches finite differences of f() for every array in `wrt`.

    At most `max_entries` random entries per array are checked (None: all). A missing analytic
    gradient counts as zero. Raises AssertionError naming the array and the worst entry."""
    rng = np.random.default_rng(seed)
    for name, x in wrt.items():
        if x.dtype != np.float64:
            raise TypeError(f"wrt[{name!r}]: use float64 for finite differences, got {x.dtype}")
        n = x.size
        idx = None
        if max_entries is not None and n > max_entries:
            idx = np.sort(rng.choice(n, max_entries, replace=False))
        num = numerical_grad(f, x, eps, idx)
        a = analytic.get(name)
        a = np.zeros(x.shape) if a is None else np.asarray(a, dtype=np.float64)
        if a.shape != x.shape:
            raise AssertionError(
                f"{name}: analytic gradient has shape {a.shape}, the array {x.shape}"
            )
        sel = np.arange(n) if idx is None else idx
        an, nu = a.reshape(-1)[sel], num.reshape(-1)[sel]
        err = np.abs(an - nu)
        tol = atol + rtol * np.maximum(np.abs(an), np.abs(nu))
        if np.any(err > tol):
            j = int(np.argmax(err - tol))
            pos = np.unravel_index(int(sel[j]), x.shape)
            raise AssertionError(
                f"{name}{list(map(int, pos))}: analytic {an[j]:.10g} vs numerical {nu[j]:.10g} "
                f"(|diff| {err[j]:.3g} > tol {tol[j]:.3g}); {int(np.sum(err > tol))} of {len(sel)} "
                "checked entries differ"
            )
