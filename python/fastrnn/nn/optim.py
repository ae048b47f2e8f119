"""Optimizers (SGD with momentum, Adam, AdamW) and gradient clipping, over parameters by name.

One representation of parameters serves optimizers and clipping: the live arrays a Module's
`parameters()` / `named_parameters()` yield (every layer, fastrnn.LSTM included, is a Module).
A parameter array always stands for the parameter: its gradient is the owning module's, found
by identity, and its values are never clipped. An optimizer is built on

- `model.parameters()` (or any iterable of parameter arrays), as in torch; state is keyed
  by position ("0", "1", ...), as torch's `state_dict()` is;
- a `fastrnn.nn.Module`: its named parameters, state keyed by dotted name;
- a mapping name -> array, updated in place; `step()` reads the gradients of arrays that are
  Module parameters, and `step(grads)` takes them for any others.

Update rules, defaults and `state_dict()` contents follow torch.optim exactly (per-parameter step
counts, bias corrections, decoupled weight decay for AdamW), so the same hyperparameters give the
same trajectory as PyTorch. A parameter without a gradient is skipped, as in torch.
Clipping (`clip_grad_norm_`, `clip_grad_value_`) scales gradients in place, like torch.nn.utils:
given `model.parameters()` or a Module it clips their gradients; given gradient arrays (a
module's `grads`, a list of arrays that are not parameters) it clips those.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from . import _checks
from .module import Module, parameter_owner, parameters_changed

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm_", "clip_grad_value_"]


class Optimizer:
    """Base class: subclasses define `_update(name, p, g, state)`, updating p in place."""

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        if isinstance(params, Module):
            self._kind = "module"
        elif isinstance(params, Mapping):
            self._kind = "mapping"
            for k, v in params.items():
                if not isinstance(v, np.ndarray) or v.dtype not in (np.float32, np.float64):
                    raise TypeError(
                        f"params[{k!r}]: expected a float32/float64 ndarray, got {type(v).__name__}"
                    )
        elif isinstance(params, Iterable) and not isinstance(params, (str, bytes, np.ndarray)):
            self._kind = "mapping"
            params = _parameter_list(params)
        else:
            raise TypeError(
                "params: expected model.parameters() (parameter arrays of a fastrnn.nn.Module), "
                f"a Module, or a mapping of name -> ndarray; got {type(params).__name__}"
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
        return dict(self._owner)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the parameters (those of Modules; a mapping's other arrays
        have none: their gradients are passed to `step`)."""
        if self._kind == "module":
            self._owner.zero_grad(set_to_none)
            return
        for p in self._owner.values():
            owner = parameter_owner(p)
            if owner is not None:
                module, name = owner
                if set_to_none:
                    module._grads.pop(name, None)
                elif name in module._grads:
                    module._grads[name].fill(0)

    def _module_grads(self, params: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The gradients of the parameters that belong to Modules, by this optimizer's names."""
        out = {}
        orphans = []
        for key, p in params.items():
            owner = parameter_owner(p)
            if owner is None:
                orphans.append(key)
                continue
            g = owner[0]._grads.get(owner[1])
            if g is not None:
                out[key] = g
        if orphans:
            raise TypeError(
                f"grads: required, since params {orphans[:3]} are not parameters of a Module "
                "(pass step(grads) with their gradients, or build the optimizer on "
                "model.parameters())"
            )
        return out

    def step(self, grads: Mapping[str, Any] | None = None) -> None:
        """One update of every parameter that has a gradient."""
        params = self._named()
        if grads is None:
            if self._kind == "mapping":
                grads = self._module_grads(params)
            else:
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
        """Restore `state_dict()`'s output; everything is checked before anything changes."""
        self._apply_staged(self._stage(state_dict))

    def _stage(self, state_dict: Any) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """(state, param_groups) to apply, checked against this optimizer's parameters."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict: expected a mapping with 'state' and 'param_groups', got "
                f"{type(state_dict).__name__}"
            )
        params = self._named()
        st = state_dict.get("state", {})
        if not isinstance(st, Mapping):
            raise TypeError(f"state_dict['state']: expected a mapping, got {type(st).__name__}")
        state: dict[str, dict[str, Any]] = {}
        for name, s in st.items():
            if name not in params:
                raise KeyError(f"state_dict: optimizer state for unknown parameter {name!r}")
            if not isinstance(s, Mapping):
                raise TypeError(f"state_dict: state of {name!r} must be a mapping")
            state[name] = {}
            for k, v in s.items():
                v = _checks.to_numpy(v)
                if k == "step":
                    step = np.asarray(v)
                    if step.shape != () or step.dtype.kind not in "iuf" or not step >= 0:
                        raise ValueError(f"state_dict: {name}.step must be a count >= 0, got {v!r}")
                    state[name][k] = int(step)
                    continue
                arr = np.asarray(v)
                if arr.dtype.kind not in "iuf" or arr.shape != params[name].shape:
                    raise ValueError(
                        f"state_dict: {name}.{k} has shape {arr.shape} and dtype {arr.dtype}; the "
                        f"parameter {params[name].shape}, a float array"
                    )
                state[name][k] = np.array(arr, dtype=params[name].dtype)
        groups = self.param_groups
        if "param_groups" in state_dict:
            groups = state_dict["param_groups"]
            if (
                not isinstance(groups, (list, tuple))
                or len(groups) != len(self.param_groups)
                or not all(isinstance(g, Mapping) for g in groups)
            ):
                raise ValueError(
                    f"state_dict['param_groups']: expected a list of {len(self.param_groups)} "
                    f"mapping(s), got {groups!r:.200}"
                )
            for g, own in zip(groups, self.param_groups):
                if set(g) != set(own):
                    raise ValueError(
                        f"state_dict['param_groups']: keys {sorted(g)} are not this "
                        f"{type(self).__name__}'s {sorted(own)}"
                    )
                for k, v in g.items():
                    ok = (
                        isinstance(v, bool)
                        if isinstance(own[k], bool)
                        else (_betas(v) is not None if k == "betas" else _is_number(v))
                    )
                    if not ok:
                        raise TypeError(f"state_dict['param_groups']: {k} = {v!r} is not valid")
            groups = [{k: (_betas(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
        return state, [dict(g) for g in groups]

    def _stage_flat_state(
        self, flat: Mapping[str, np.ndarray], param_groups: list[dict[str, Any]] | None = None
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        names = sorted(self._named(), key=len, reverse=True)
        state: dict[str, dict[str, Any]] = {}
        for key, v in flat.items():
            if not key.startswith("state."):
                raise KeyError(f"state: {key!r} is not optimizer state")
            rest = key[len("state.") :]
            name = next((n for n in names if rest.startswith(n + ".")), None)
            if name is None:
                raise KeyError(f"state: {key!r} names no parameter of this optimizer")
            state.setdefault(name, {})[rest[len(name) + 1 :]] = v
        sd: dict[str, Any] = {"state": state}
        if param_groups is not None:
            sd["param_groups"] = param_groups
        return self._stage(sd)

    def _apply_staged(self, staged: tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]) -> None:
        self.state, self.param_groups = staged

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
        """Restore `flat_state()`'s output (and hyperparameters); checked before applied."""
        self._apply_staged(self._stage_flat_state(flat, param_groups))

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
        b1, b2 = _betas(betas)
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


def _betas(betas: Any) -> tuple[float, float]:
    """(beta1, beta2), each a number in [0, 1)."""
    try:
        pair = tuple(betas)
    except TypeError:
        pair = ()
    if len(pair) != 2:
        raise ValueError(
            f"betas: expected a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}"
        )
    out = []
    for i, b in enumerate(pair):
        if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating)):
            raise TypeError(f"betas: betas[{i}] must be a number in [0, 1), got {b!r}")
        if not 0.0 <= float(b) < 1.0:
            raise ValueError(f"betas: betas[{i}] must be in [0, 1), got {b}")
        out.append(float(b))
    return out[0], out[1]


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


def _parameter_list(params: Iterable[Any]) -> dict[str, np.ndarray]:
    """model.parameters() -> {"0": p0, "1": p1, ...}, each a live parameter of a Module."""
    out: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for i, p in enumerate(params):
        if isinstance(p, Mapping):
            raise TypeError(
                f"params[{i}]: parameter groups (dicts) are not supported; give one list of "
                "parameters and set the hyperparameters on the optimizer"
            )
        if parameter_owner(p) is None:
            raise TypeError(
                "params: expected a fastrnn.nn.Module's parameters (model.parameters()), a "
                f"Module, or a mapping name -> array (then step(grads)); params[{i}] is {_what(p)}"
            )
        if id(p) in seen:
            raise ValueError(f"params[{i}]: the same parameter appears twice")
        seen.add(id(p))
        out[str(i)] = p
    return out


def _what(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"an array {x.shape} that no Module owns (a copy, a view or a gradient?)"
    return type(x).__name__


def _grad_arrays(parameters: Any) -> list[np.ndarray]:
    """The gradient arrays that clipping scales in place: a Module's, or those of parameter
    arrays (found through their module), or arrays given as gradients. Never a parameter."""
    if isinstance(parameters, Module):
        items: list[Any] = list(parameters.grads.values())
    else:
        if isinstance(parameters, Mapping):
            items = list(parameters.values())
        elif isinstance(parameters, np.ndarray):
            items = [parameters]
        elif isinstance(parameters, Iterable) and not isinstance(parameters, (str, bytes)):
            items = list(parameters)
        else:
            raise TypeError(
                "parameters: expected model.parameters(), a Module, or gradient arrays (a "
                f"mapping or a list), got {type(parameters).__name__}"
            )
    out: list[np.ndarray] = []
    for i, a in enumerate(items):
        if a is None:
            continue
        owner = parameter_owner(a)
        if owner is not None:  # a parameter stands for its gradient, as in torch
            a = owner[0]._grads.get(owner[1])
            if a is None:
                continue
        elif isinstance(a, Module):
            out.extend(a.grads.values())
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(
                f"parameters[{i}]: expected a parameter or gradient array, got {type(a).__name__}"
            )
        out.append(a)
    return out


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))


def _number(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(x).__name__} {x!r}")
    return float(x)


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: Any = None,
) -> float:
    """Scale gradients in place so that their global norm is at most max_norm; return the norm
    before clipping (torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6) when < 1).

    `parameters`: `model.parameters()` or a Module (their gradients are clipped, never the
    weights), or gradient arrays (a module's `grads`, a list of arrays). `foreach` is accepted
    for torch compatibility and ignored."""
    max_norm = _number("max_norm", max_norm)
    if not max_norm >= 0:  # inf allowed: measure without clipping
        raise ValueError(f"max_norm: expected a number >= 0, got {max_norm}")
    norm_type = _number("norm_type", norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type: expected a number > 0 (or inf), got {norm_type}")
    arrays = _grad_arrays(parameters)
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


def clip_grad_value_(parameters: Any, clip_value: float, foreach: Any = None) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value] in place (torch's clip_grad_value_);
    `parameters` as for `clip_grad_norm_`."""
    _number("clip_value", clip_value)
    c = _checks.nonnegative("clip_value", clip_value)
    for g in _grad_arrays(parameters):
        np.clip(g, -c, c, out=g)
