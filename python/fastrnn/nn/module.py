"""`Module`: the container that composes layers and gives every parameter and gradient by name.

Like torch.nn.Module: attributes that are Modules become children, `register_parameter` adds a
parameter, names are dotted paths ("encoder.weight_ih_l0"), `state_dict` / `load_state_dict` /
`train` / `eval` / `zero_grad` behave as in PyTorch. What differs, because there is no autograd:

- every module has an explicit `backward`, which returns the gradient of its input and adds the
  gradients of its parameters into `grads` (they accumulate until `zero_grad()`, as in torch);
- parameters are plain NumPy arrays that optimizers update in place. Layers that pre-pack their
  weights (the recurrent ones) repack when `parameters_changed()` has been called since, which
  optimizers and `load_state_dict` do; call it yourself after editing a parameter in place.

Also here: `Sequential`, and `.npz` save/load (atomic writes).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .._autocast import compute_dtype_arg
from . import _checks
from ._io import load_npz, save_npz

__all__ = ["IncompatibleKeys", "Module", "Sequential", "parameter_owner", "parameters_changed"]

_counter = itertools.count(1)
_version = 0


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(..., strict=False)` did not load, like torch's return value."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def missing_keys_error(
    owner: str, missing: list[str], unexpected: list[str], expected: list[str] | None = None
) -> KeyError:
    """The one error every strict state-dict load in fastrnn raises for missing or unexpected keys:
    a KeyError naming both lists (torch raises RuntimeError here; fastrnn keeps KeyError, the
    type of a missing key, everywhere)."""
    tail = f"; expected exactly {expected}" if expected is not None else f" for {owner}"
    return KeyError(f"state_dict: missing keys {missing}, unexpected keys {unexpected}{tail}")


# Which Module owns a parameter array, so that `model.parameters()` given to an optimizer or to
# clipping stands for those parameters (their gradients are found here), as in torch. Keyed by
# id(); the weak reference to the array guards against a reused id.
_owners: dict[int, tuple[weakref.ref, weakref.ref, str]] = {}


def _register(module: Module, name: str, arr: np.ndarray) -> None:
    key = id(arr)

    def drop(ref: weakref.ref, key: int = key) -> None:
        entry = _owners.get(key)
        if entry is not None and entry[0] is ref:
            del _owners[key]

    _owners[key] = (weakref.ref(arr, drop), weakref.ref(module), name)


def parameter_owner(arr: Any) -> tuple[Module, str] | None:
    """(module, name) when `arr` is a live parameter array of a Module (one that
    `parameters()` / `named_parameters()` yielded), else None."""
    entry = _owners.get(id(arr))
    if entry is None or entry[0]() is not arr:
        return None
    module = entry[1]()
    if module is None or module._parameters.get(entry[2]) is not arr:
        return None
    return module, entry[2]


def parameters_changed() -> None:
    """Tell layers that cache packed copies of their weights that some parameter changed."""
    global _version
    _version = next(_counter)


def parameters_version() -> int:
    """A number that changes whenever `parameters_changed()` is called."""
    return _version


class Module:
    """Base class of fastrnn.nn layers and models; subclass it to compose your own.

    Subclasses call `super().__init__()` first, create parameters with `register_parameter`
    and children by assignment, and define `forward` and `backward`.
    """

    training: bool
    # attributes that hold compiled objects or per-forward caches: dropped when pickling
    _transient: tuple[str, ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        # the constructor's arguments, kept when JSON can hold them, so that `save` can record
        # how to rebuild the model and `Model.load(path)` works on the class
        try:
            init: Any = json.loads(json.dumps({"args": list(args), "kwargs": kwargs}))
        except (TypeError, ValueError):
            init = None
        object.__setattr__(self, "_init_args", init)
        return self

    def __init__(self) -> None:
        if "_parameters" in self.__dict__:  # set up by __new__ already
            return
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_grads", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # --- attributes ------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._transient:
            if name in state:
                state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name, arr in self._parameters.items():
            _register(self, name, arr)
        self._on_mode_change()

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call; call super().__init__() "
                "first in your __init__"
            )
        modules = self.__dict__["_modules"]
        if isinstance(value, Module):
            params.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif name in params:
            old = params[name]
            new = np.asarray(_checks.to_numpy(value))
            if new.shape != old.shape:
                raise ValueError(
                    f"{name}: expected shape {tuple(old.shape)} for this parameter, got {tuple(new.shape)}"
                )
            # in place, as torch's copy_: optimizers and `parameters()` keep seeing the same array
            old[...] = new.astype(old.dtype, copy=False)
            self._grads.pop(name, None)
            parameters_changed()
        else:
            if name in modules:
                del modules[name]
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if name in d.get("_parameters", {}):
            return d["_parameters"][name]
        if name in d.get("_modules", {}):
            return d["_modules"][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
            self._grads.pop(name, None)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, value: np.ndarray) -> None:
        """Add a parameter (a float array, owned by the module from now on)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name: expected a non-empty string without '.', got {name!r}")
        if name in self._modules or (name in self.__dict__ and name not in self._parameters):
            raise KeyError(f"name: attribute {name!r} already exists")
        arr = np.asarray(value)
        if arr.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {arr.dtype}")
        own = _checks._base.as_canonical(np.array(arr, order="C", copy=True))
        self._parameters[name] = own
        _register(self, name, own)
        self._grads.pop(name, None)
        parameters_changed()

    # --- traversal -------------------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, live array) of every parameter; updating the array updates the model."""
        for name, arr in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), arr
        if recurse:
            for cname, child in self._modules.items():
                yield from child.named_parameters(f"{prefix}.{cname}" if prefix else cname)

    def parameters(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, arr in self.named_parameters(recurse=recurse):
            yield arr

    def num_parameters(self) -> int:
        """The number of scalar parameters."""
        return int(sum(a.size for a in self.parameters()))

    # --- gradients -------------------------------------------------------------------------------

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Accumulated gradients by dotted name (live arrays; parameters without one are absent)."""
        out: dict[str, np.ndarray] = {}
        for mname, m in self.named_modules():
            for name, g in m._grads.items():
                out[f"{mname}.{name}" if mname else name] = g
        return out

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradients (set_to_none=False zero-fills them instead)."""
        for m in self.modules():
            if set_to_none:
                m._grads.clear()
            else:
                for g in m._grads.values():
                    g.fill(0)

    def _accumulate_mm(
        self,
        name: str,
        a: np.ndarray,
        b: np.ndarray,
        trans_a: bool,
        trans_b: bool,
        autocast: bool = False,
    ) -> None:
        """grads[name] += op(a) @ op(b), written in place when the gradient exists."""
        from ._ops import mm, mm_acc

        cur = self._grads.get(name)
        if cur is None:
            g = mm(a, b, trans_a, trans_b, autocast)
            self._grads[name] = g.reshape(self._parameters[name].shape)
        elif not cur.flags.c_contiguous:
            cur += mm(a, b, trans_a, trans_b, autocast).reshape(cur.shape)
        else:
            m = a.shape[1] if trans_a else a.shape[0]
            n = b.shape[0] if trans_b else b.shape[1]
            mm_acc(cur.reshape(m, n), a, b, trans_a, trans_b, autocast)  # cur is C-contiguous

    def _accumulate(self, name: str, g: np.ndarray) -> None:
        """grads[name] += g (the first gradient is stored as given, so pass a fresh array)."""
        cur = self._grads.get(name)
        if cur is None:
            p = self._parameters[name]
            self._grads[name] = np.array(g, dtype=p.dtype, order="C", copy=True).reshape(p.shape)
        else:
            cur += g

    # --- modes -----------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Training mode (the default): forwards keep what backward needs; dropout is on."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
            m._on_mode_change()
        return self

    def eval(self) -> Module:
        """Inference mode: forwards keep nothing for backward; dropout is off."""
        return self.train(False)

    @property
    def compute_dtype(self) -> str | None:
        """The precision of this module's matrix products (float32 modules): None (the default)
        follows ``fastrnn.autocast``, "bfloat16" always computes them in bfloat16 (float32 sums,
        states and outputs), "float32" never does. Setting it sets every submodule's too."""
        return self.__dict__.get("_compute_dtype")

    @compute_dtype.setter
    def compute_dtype(self, value: Any) -> None:
        setting = compute_dtype_arg(value)
        for m in self.modules():
            object.__setattr__(m, "_compute_dtype", setting)

    def _on_mode_change(self) -> None:
        """Hook for modules that keep per-forward caches (cleared when the mode changes)."""

    def clear_caches(self) -> None:
        """Drop what training-mode forwards kept for a backward that will not come."""
        for m in self.modules():
            m._on_mode_change()

    # --- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters by dotted name, in registration order."""
        return {name: arr.copy() for name, arr in self.named_parameters()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy parameters in place (cast to each parameter's dtype); torch tensors are accepted.

        With strict=True the keys must match `state_dict()` exactly (KeyError naming the missing
        and unexpected keys); a wrong shape is a ValueError naming the parameter. Nothing is
        changed unless every check passes. With strict=False unknown keys are ignored and missing
        ones keep their values; both lists are returned, as torch does."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}"
            )
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise missing_keys_error(type(self).__name__, missing, unexpected)
        staged = []
        for name, arr in own.items():
            if name not in state_dict:
                continue
            new = np.asarray(_checks.to_numpy(state_dict[name]))
            if new.dtype == np.bool_ or new.dtype.kind not in "iuf":
                raise TypeError(f"{name}: expected a real-valued array, got dtype {new.dtype}")
            if new.shape != arr.shape:
                raise ValueError(
                    f"{name}: expected shape {tuple(arr.shape)}, got {tuple(new.shape)}"
                )
            staged.append((arr, new))
        for arr, new in staged:
            arr[...] = new
        parameters_changed()
        return IncompatibleKeys(missing, unexpected)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `state_dict()` to an `.npz` file atomically (no partial file on a crash), with
        the class name and constructor arguments, so that `Class.load(path)` can rebuild it."""
        meta: dict[str, Any] = {"class": _class_name(type(self))}
        init = self.__dict__.get("_init_args")
        if init is not None:
            meta["init"] = init
        save_npz(path, self.state_dict(), meta)

    def _load_into(self, path: str | os.PathLike[str], strict: bool = True) -> IncompatibleKeys:
        """`model.load(path)`: load parameters saved by `save` (or any `.npz` of name -> array).

        The archive's declared names and shapes are checked against the model before any array
        is read (with strict=True), so a wrong or hostile file costs no memory."""
        from ._io import npz_names

        expected = {k: v.shape for k, v in self.named_parameters()}
        arrays, _ = load_npz(path, expected, skip_unexpected=not strict)
        res = self.load_state_dict(arrays, strict=strict)
        if strict:
            return res
        return IncompatibleKeys(res.missing_keys, [k for k in npz_names(path) if k not in expected])

    @classmethod
    def _load_new(cls, path: str | os.PathLike[str]) -> Any:
        """`Model.load(path)`: a new model built with the constructor arguments `save` recorded,
        holding the saved parameters."""
        path = os.fspath(path)
        meta = load_npz_meta(path)
        name, init = meta.get("class"), meta.get("init")
        target = _find_class(cls, name) if isinstance(name, str) else None
        if target is None:
            raise ValueError(
                f"path: {path!r} holds a {name if isinstance(name, str) else 'model of unknown class'}"
                f", not a {cls.__name__}; load it with its own class, or build the model and call "
                "model.load(path)"
            )
        if (
            not isinstance(init, dict)
            or not isinstance(init.get("args"), list)
            or not isinstance(init.get("kwargs"), dict)
        ):
            raise ValueError(
                f"path: {path!r} does not record {target.__name__}'s constructor arguments (they "
                "were not JSON values, or the file was written by an older fastrnn); build the "
                f"model as it was and call model.load({path!r})"
            )
        model = target(*init["args"], **init["kwargs"])
        model._load_into(path)
        return model

    load: Any = None  # set below: `Model.load(path)` on the class, `model.load(path)` on a model

    # --- calling ---------------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- printing --------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _find_class(cls: type, name: str) -> type | None:
    """`cls` or the subclass of it whose qualified name is `name` (nothing is imported)."""
    todo = [cls]
    while todo:
        c = todo.pop()
        if _class_name(c) == name:
            return c
        todo.extend(c.__subclasses__())
    return None


def load_npz_meta(path: str) -> dict[str, Any]:
    from ._io import load_meta

    return load_meta(path)


class _ModelOrClassMethod:
    """`load` as PyTorch users reach for it: on the class it builds the saved model
    (`RNNLanguageModel.load(path)`), on a model it loads the parameters into it."""

    def __init__(self, on_model: Callable[..., Any], on_class: Callable[..., Any]) -> None:
        self._on_model, self._on_class = on_model, on_class
        functools.update_wrapper(self, on_model)  # type: ignore[arg-type]

    def __get__(self, obj: Any, owner: type | None = None) -> Callable[..., Any]:
        if obj is None:
            assert owner is not None
            return functools.partial(self._on_class.__func__, owner)  # type: ignore[attr-defined]
        return functools.partial(self._on_model, obj)


Module.load = _ModelOrClassMethod(Module._load_into, Module.__dict__["_load_new"])


class Sequential(Module):
    """Modules applied in order; backward runs their backwards in reverse.

    Each module's forward takes and returns one array, and its backward maps the gradient of its
    output to the gradient of its input. Children are named "0", "1", ... as in torch."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"modules[{i}]: expected a Module, got {type(m).__name__}")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dy: Any) -> Any:
        for m in reversed(list(self._modules.values())):
            dy = m.backward(dy)
        return dy
