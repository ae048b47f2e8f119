"""Optimizers (SGD with momentum, Adam, AdamW) and gradient clipping, over parameters by name.

An optimizer is built on what holds the parameters:

- a `fastrnn.nn.Module`: its live arrays are updated in place and its `grads` are read;
- any object with `state_dict()`, `load_state_dict()` and `grads` (fastrnn.RNN/GRU/LSTM): the
  updated copies are loaded back after each step;
- a mapping name -> array (updated in place); then `step(grads)` must be given the gradients.

Update rules, defaults and `state_dict()` contents follow torch.optim exactly (per-parameter step
counts, bias corrections, decoupled weight decay for AdamW), so the same hyperparameters give the
same trajectory as PyTorch. A parameter without a gradient is skipped, as in torch.
Clipping (`clip_grad_norm_`, `clip_grad_value_`) works in place on a module's `grads` or on a
mapping or list of arrays, like torch.nn.utils.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from . import _checks
from .module import Module, parameters_changed

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm_", "clip_grad_value_"]


class Optimizer:
    """Base class: subclasses define `_update(name, p, g, state)`, updating p in place."""

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        if isinstance(params, Module):
            self._kind = "module"
        elif all(hasattr(params, a) for a in ("state_dict", "load_state_dict", "grads")):
            self._kind = "layer"
        elif isinstance(params, Mapping):
            self._kind = "mapping"
            for k, v in params.items():
                if not isinstance(v, np.ndarray) or v.dtype not in (np.float32, np.float64):
                    raise TypeError(
                        f"params[{k!r}]: expected a float32/float64 ndarray, got {type(v).__name__}"
                    )
        else:
            raise TypeError(
                "params: expected a fastrnn.nn.Module, a layer with state_dict()/grads "
                f"(fastrnn.LSTM, ...), or a mapping of name -> ndarray; got {type(params).__name__}"
            )
        self._owner = params
        names = list(self._named().keys())
        if not names:
            raise ValueError("params: optimizer got an empty parameter list")
        self.param_groups: list[dict[str, Any]] = [dict(defaults)]
        self.state: dict[str, dict[str, Any]] = {}

    @property
    def lr(self) -> float:
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = _checks.nonnegative("lr", value)

    def _named(self) -> dict[str, np.ndarray]:
        if self._kind == "module":
            return dict(self._owner.named_parameters())
        if self._kind == "layer":
            return self._owner.state_dict()
        return dict(self._owner)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the owner's gradients (a no-op for a mapping, whose grads are passed to step)."""
        if self._kind == "module":
            self._owner.zero_grad(set_to_none)

    def step(self, grads: Mapping[str, Any] | None = None) -> None:
        """One update of every parameter that has a gradient."""
        params = self._named()
        if grads is None:
            if self._kind == "mapping":
                raise TypeError(
                    "grads: required when the optimizer was built on a mapping of arrays"
                )
            grads = self._owner.grads
        unknown = [k for k in grads if k not in params]
        if unknown:
            raise KeyError(
                f"grads: no parameter named {unknown[0]!r}; parameters are {list(params)}"
            )
        group = self.param_groups[0]
        for name, p in params.items():
            g = grads.get(name)
            if g is None:
                continue
            g = np.asarray(_checks.to_numpy(g))
            if g.shape != p.shape:
                raise ValueError(f"grads[{name!r}]: expected shape {p.shape}, got {g.shape}")
            self._update(
                name, p, g.astype(p.dtype, copy=False), self.state.setdefault(name, {}), group
            )
        if self._kind == "layer":
            self._owner.load_state_dict(params)
        parameters_changed()

    def _update(
        self, name: str, p: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """{"state": {param name: {"step": int, buffers...}}, "param_groups": [hyperparameters]}
        (copies), as torch's but keyed by parameter name."""
        return {
            "state": {
                n: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for n, s in self.state.items()
            },
            "param_groups": [dict(g) for g in self.param_groups],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        params = self._named()
        st = state_dict.get("state", {})
        for name, s in st.items():
            if name not in params:
                raise KeyError(f"state_dict: optimizer state for unknown parameter {name!r}")
            for k, v in s.items():
                if isinstance(v, np.ndarray) and v.shape != params[name].shape:
                    raise ValueError(
                        f"state_dict: {name}.{k} has shape {v.shape}, the parameter {params[name].shape}"
                    )
        self.state = {
            n: {
                k: (
                    np.array(v, dtype=params[n].dtype)
                    if isinstance(v, np.ndarray) and v.ndim
                    else v
                )
                for k, v in s.items()
            }
            for n, s in st.items()
        }
        if "param_groups" in state_dict:
            self.param_groups = [dict(g) for g in state_dict["param_groups"]]

    def flat_state(self) -> dict[str, np.ndarray]:
        """The state as flat name -> array pairs for an `.npz` ("state.<param>.<key>")."""
        out = {}
        for n, s in self.state.items():
            for k, v in s.items():
                out[f"state.{n}.{k}"] = np.asarray(v)
        return out

    def load_flat_state(
        self, flat: Mapping[str, np.ndarray], param_groups: list[dict[str, Any]] | None = None
    ) -> None:
        names = sorted(self._named(), key=len, reverse=True)
        state: dict[str, dict[str, Any]] = {}
        for key, v in flat.items():
            if not key.startswith("state."):
                continue
            rest = key[len("state.") :]
            name = next((n for n in names if rest.startswith(n + ".")), None)
            if name is None:
                raise KeyError(f"state: {key!r} names no parameter of this optimizer")
            k = rest[len(name) + 1 :]
            state.setdefault(name, {})[k] = int(v) if k == "step" else np.asarray(v)
        sd: dict[str, Any] = {"state": state}
        if param_groups is not None:
            sd["param_groups"] = param_groups
        self.load_state_dict(sd)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.param_groups[0].items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    """torch.optim.SGD: g += weight_decay * p; with momentum, b = momentum * b + (1 - dampening) * g
    (b = g at the first step) and g = b, or g + momentum * b with nesterov; p -= lr * g."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        lr = _checks.nonnegative("lr", lr)
        momentum = _checks.nonnegative("momentum", momentum)
        weight_decay = _checks.nonnegative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: requires momentum > 0 and dampening = 0")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=float(dampening),
                weight_decay=weight_decay,
                nesterov=bool(nesterov),
            ),
        )

    def _update(self, name, p, g, state, group):
        wd, mom = group["weight_decay"], group["momentum"]
        if wd:
            g = g + wd * p
        if mom:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= mom
                buf += (1 - group["dampening"]) * g
            g = g + mom * buf if group["nesterov"] else buf
        p -= p.dtype.type(group["lr"]) * g


class Adam(Optimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient; amsgrad optional)."""

    _decoupled = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        lr = _checks.nonnegative("lr", lr)
        b1, b2 = (float(b) for b in betas)
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas: betas[{i}] must be in [0, 1), got {b}")
        super().__init__(
            params,
            dict(lr=lr, betas=(b1, b2), eps=_checks.nonnegative("eps", eps),
                 weight_decay=_checks.nonnegative("weight_decay", weight_decay), amsgrad=bool(amsgrad)),
        )  # fmt: skip

    def _update(self, name, p, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd:
            if self._decoupled:
                p *= p.dtype.type(1 - lr * wd)
            else:
                g = g + wd * p
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = np.sqrt(v) / math.sqrt(bc2) + eps
        p -= p.dtype.type(lr / bc1) * (m / denom)


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay p *= 1 - lr * weight_decay."""

    _decoupled = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# --- clipping --------------------------------------------------------------------------------------


def _grad_arrays(grads: Any) -> list[np.ndarray]:
    if isinstance(grads, Module) or (hasattr(grads, "grads") and not isinstance(grads, Mapping)):
        grads = grads.grads
    if isinstance(grads, Mapping):
        grads = list(grads.values())
    elif isinstance(grads, np.ndarray):
        grads = [grads]
    elif isinstance(grads, Iterable):
        grads = list(grads)
    else:
        raise TypeError(
            f"grads: expected a Module, a mapping or a list of arrays, got {type(grads).__name__}"
        )
    out = [g for g in grads if g is not None]
    for i, g in enumerate(out):
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{i}]: expected an ndarray, got {type(g).__name__}")
    return out


def clip_grad_norm_(
    grads: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale gradients in place so that their global norm is at most max_norm; return the norm
    before clipping (torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6) when < 1).

    `grads`: a Module (its `grads`), a layer with `.grads`, a mapping or a list of arrays."""
    max_norm = float(max_norm)
    if not max_norm >= 0:  # inf allowed: measure without clipping
        raise ValueError(f"max_norm: expected a number >= 0, got {max_norm}")
    norm_type = float(norm_type)
    arrays = _grad_arrays(grads)
    if not arrays:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in arrays)
    else:
        total = float(
            sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in arrays)
        ) ** (1.0 / norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients is non-finite, so it cannot be "
                "clipped. To disable this error and scale the gradients by the non-finite norm "
                "anyway, set `error_if_nonfinite=False`"
            )
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in arrays:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value_(grads: Any, clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value] in place (torch's clip_grad_value_)."""
    c = _checks.nonnegative("clip_value", clip_value)
    for g in _grad_arrays(grads):
        np.clip(g, -c, c, out=g)
