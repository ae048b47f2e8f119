"""PyTorch-compatible recurrent layers (RNN, GRU, LSTM) and one-step cells on NumPy arrays.

Layers and cells are `fastrnn.nn.Module`s (one class per concept: fastrnn.LSTM is
fastrnn.nn.LSTM, fastrnn.LSTMCell is fastrnn.nn.LSTMCell). A layer is a stack of `_C.Weights`
objects, one per layer and direction, each running a whole sequence in one fused call; this
file only validates (through _checks.py), stacks layers, joins directions, applies dropout
between layers and routes gradients back. It does no arithmetic on the recurrence itself.

Dimension letters: T steps, B batch, I input, H hidden, G gates, L layers, D directions.
Shapes follow torch.nn.RNN/GRU/LSTM: x (T, B, I) or (B, T, I) with batch_first, or unbatched
(T, I); states (L*D, B, H), never batch-first, or (L*D, H) for unbatched input.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from . import _C, _autocast, _checks, _cuda, _lowp
from ._layer_loop import layer_loop, layer_loop_backward
from ._weights import cell_names, init_params, layer_names
from .nn.module import (
    IncompatibleKeys,
    Module,
    missing_keys_error,
    parameters_changed,
    parameters_version,
)

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "IncompatibleKeys"]


class _Precision:
    """`dtype` and `inference_dtype`, shared by layers and cells."""

    _dtype: np.dtype
    _bf16 = False  # inference reads bfloat16 copies of the weights (see inference_dtype)
    _i8 = False  # inference reads int8 copies of the weights; no training (see inference_dtype)
    # GPU-path layers only: "bfloat16" / "float16" device storage, with float32 host parameters
    # holding values exact in that type (see fastrnn._lowp); None otherwise
    _storage: str | None = None

    def _invalidate(self) -> None:
        raise NotImplementedError

    @property
    def dtype(self) -> Any:
        """The dtype of every parameter, input, state and output: float32 or float64, or on the
        GPU path float16 or the string "bfloat16" (NumPy has no bfloat16 dtype)."""
        if self._storage == "bfloat16":
            return "bfloat16"
        if self._storage is not None:
            return np.dtype(self._storage)
        return self._dtype

    @property
    def inference_dtype(self) -> str:
        """How the weights are stored for inference: the layer's dtype, "bfloat16" or "int8".

        With "bfloat16" (float32 modules only, opt-in) eval-mode forwards and cell steps read
        bfloat16 copies of W_ih and W_hh in the step-by-step products, which halves the bytes a
        small-batch step streams; sums, states and outputs stay float32 (error vs float32 about
        1e-3 relative over 100 steps). Training forwards and backward always use the full weights.

        With "int8" (float32 modules only; what `fastrnn.quantize_dynamic` sets on its copy)
        forwards and steps read W_ih and W_hh quantized per output row (symmetric: scale =
        max|row| / 127, q = round(w / scale)), widened to float32 in the products, whose sums are
        then multiplied by the row's scale: a quarter of float32's weight bytes. Sums, states and
        outputs stay float32. The module then runs inference only: a training-mode forward or a
        backward raises RuntimeError (set the dtype back, or train the float32 original).
        """
        if self._storage is not None:
            return self._storage
        if self._i8:
            return "int8"
        return "bfloat16" if self._bf16 else str(self._dtype)

    @inference_dtype.setter
    def inference_dtype(self, value: str) -> None:
        if self._storage is not None:
            if _lowp.storage_name(value) != self._storage:
                raise ValueError(
                    f"inference_dtype: a {self._storage} module always computes with its "
                    f"{self._storage} weights; expected {self._storage!r}, got {value!r}"
                )
            return
        reduced = ("bfloat16", "int8")
        try:
            name = value if isinstance(value, str) and value in reduced else str(np.dtype(value))
        except TypeError:
            name = repr(value)
        if name in reduced:
            if self._dtype != np.float32:
                raise ValueError(
                    f"inference_dtype: {name!r} needs a float32 module, this one is {self._dtype}"
                )
        elif name != str(self._dtype):
            raise ValueError(
                f"inference_dtype: expected '{self._dtype}', 'bfloat16' or 'int8', got {value!r}"
            )
        bf16, i8 = name == "bfloat16", name == "int8"
        if bf16 != self._bf16 or i8 != self._i8:
            self._bf16, self._i8 = bf16, i8
            self._invalidate()

    def _inference_only(self, what: str) -> None:
        """Raises for a training forward or a backward on an int8 (quantized) module."""
        if self._i8:
            raise RuntimeError(
                f"{type(self).__name__}.{what}: this module has int8 weights "
                "(fastrnn.quantize_dynamic, inference_dtype='int8') and runs inference only: call "
                ".eval() for inference, or train the float32 model and quantize it again"
            )


def _staged_state(
    owner: Any, state_dict: Any, strict: bool, current: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Every new parameter of `owner`, checked and cast (nothing is applied here)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}"
        )
    missing = [k for k in owner._expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in owner._expected]
    if strict:
        if missing or unexpected:
            raise missing_keys_error(
                type(owner).__name__, missing, unexpected, list(owner._expected)
            )
        new = _checks.load_state_dict(state_dict, owner._expected, owner._dtype)
    else:
        given = {k: state_dict[k] for k in owner._expected if k in state_dict}
        expected = {k: owner._expected[k] for k in given}
        new = {**current, **_checks.load_state_dict(given, expected, owner._dtype)}
    if owner._storage is not None:  # what torch's copy into a bfloat16 parameter does
        new = _lowp.round_params(new, owner._storage)
    return new, missing, unexpected


class _Cache(NamedTuple):
    weights: list[list[Any]]  # [L][D] _C.Weights used by the forward
    ctxs: list[list[Any]]  # [L][D] opaque _C contexts
    masks: list[np.ndarray | None]  # [L] dropout mask applied to layer k's output (T, B, D*H)
    steps: int
    batch: int
    batched: bool


class _RNNBase(_Precision, Module):
    """Shared implementation of RNN, GRU and LSTM; see those classes.

    A layer is a `fastrnn.nn.Module` (fastrnn.LSTM is fastrnn.nn.LSTM): `parameters()`,
    `named_parameters()`, weights as attributes (`m.weight_ih_l0`, live arrays), gradients that
    accumulate in `grads` until `zero_grad()`, `train()` / `eval()`, `state_dict()`, optimizers
    and clipping over `m.parameters()`, as in torch. The packed kernel weights are rebuilt on the
    first forward after `parameters_changed()` (optimizers and `load_state_dict` call it)."""

    _is_lstm = False
    _transient = ("_weights", "_cache", "_cuda_weights")

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
        peephole: bool = False,
        device: Any = None,
    ) -> None:
        Module.__init__(self)
        self._cuda_device = _cuda.parse_device(device)  # None: CPU; else the CUDA ordinal
        self._cuda_weights: Any = None
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        self.dropout = _checks.dropout_arg(dropout)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                f"dropout={self.dropout} applies between layers only, so it does nothing with "
                "num_layers=1",
                stacklevel=3,
            )
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self._dtype, self._storage = _checks.layer_dtype_arg(dtype, self._cuda_device is not None)
        self._cell = cell
        self._num_dirs = 2 if self.bidirectional else 1
        self._names = layer_names(
            cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional,
            self.bias, peephole,
        )  # fmt: skip
        self._expected = {
            name: shape
            for per_dir in self._names
            for keys in per_dir
            for name, shape in keys.values()
        }
        self._rng = np.random.default_rng(seed)
        params = init_params(self._expected, self.hidden_size, self._rng, self._dtype)
        if self._storage is not None:
            params = _lowp.round_params(params, self._storage)
        for name, arr in params.items():
            self.register_parameter(name, arr)
        self._weights: list[list[Any]] | None = None
        self._weights_version = parameters_version()
        self._cache: _Cache | None = None
        self._last_forward_eval = False

    # --- parameters ------------------------------------------------------------------------------

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_dtype"] = _checks.canonical_dtype(state["_dtype"])
        state["_parameters"] = {k: _checks.as_canonical(v) for k, v in state["_parameters"].items()}
        state["_weights_version"] = -1
        super().__setstate__(state)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy parameters in, in place (cast to the layer's dtype); torch tensors are accepted.

        With `strict=True` (the default) the keys must be exactly those of `state_dict()`: a
        missing or unexpected key is a KeyError and a wrong shape a ValueError, naming them, and
        nothing changes. With `strict=False` only the known keys given are loaded and the others
        are reported back, as torch does.
        """
        return _load_parameters(self, state_dict, strict)

    def _add_grads(self, grads: Mapping[str, Any]) -> None:
        """Accumulate one backward's gradients (fresh arrays) into `grads`, as torch does."""
        for name in self._expected:
            g = grads[name]
            cur = self._grads.get(name)
            if cur is None:
                self._grads[name] = g
                continue
            try:
                cur += g
            except TypeError:  # a bare fastrnn DeviceArray has no arithmetic
                raise TypeError(
                    f"{type(self).__name__}.backward: gradients held as {type(cur).__name__} "
                    "cannot accumulate; call zero_grad() before each backward, or pass torch "
                    "or CuPy arrays"
                ) from None

    @property
    def device(self) -> str:
        """Where device-array inputs run: "cpu" or "cuda:N" (NumPy inputs always run on the CPU)."""
        return _cuda.device_name(getattr(self, "_cuda_device", None))

    def to(self, device: Any) -> _RNNBase:
        """Run CUDA-array inputs on `device` ("cuda", "cuda:N") or nowhere ("cpu"); returns self.
        The weights are copied to the device once, on its first forward there."""
        index = _cuda.parse_device(device)
        if index is None and self._storage is not None:
            raise _checks.cpu_storage_error(self._storage)
        self._cuda_device = index
        self._invalidate()
        return self

    def _invalidate(self) -> None:
        self._weights = None
        self._cuda_weights = None
        self._cache = None  # a backward must differentiate the weights it ran with
        self._last_forward_eval = False

    def _check_version(self) -> None:
        """Drop the packed weights when some parameter changed since they were built."""
        v = parameters_version()
        if v != self._weights_version:
            self._weights = None
            self._cuda_weights = None
            self._weights_version = v

    def _c_weights(self) -> list[list[Any]]:
        self._check_version()
        if self._weights is None:
            p = self._parameters
            self._weights = [
                [
                    _C.Weights(self._cell, **{key: p[name] for key, (name, _) in keys.items()})
                    for keys in per_dir
                ]
                for per_dir in self._names
            ]
            if self._bf16 or self._i8:
                for per_dir in self._weights:
                    for w in per_dir:
                        w.bf16, w.i8 = self._bf16, self._i8
        return self._weights

    def __repr__(self) -> str:
        args = [str(self.input_size), str(self.hidden_size)]
        for name, default in (
            ("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
            ("bidirectional", False),
        ):  # fmt: skip
            if getattr(self, name) != default:
                args.append(f"{name}={getattr(self, name)}")
        args.extend(self._extra_repr())
        if self._storage is not None or self._dtype != np.float32:
            args.append(f"dtype='{self._storage or self._dtype}'")
        return f"{type(self).__name__}({', '.join(args)})"

    def _extra_repr(self) -> list[str]:
        return []

    # --- forward -------------------------------------------------------------------------------

    def _stream_step(self, x: np.ndarray, hx: Any) -> Any:
        """An eval-mode forward of one step (T = 1) of NumPy arrays in one `_C.stack_step` call
        (every layer and direction), returning what `forward` returns: the path of a layer fed
        one step at a time in a real-time loop, where `_run`'s Python per layer and direction
        cost as much as the step itself. Returns None where it does not apply or where `_C`
        rejects an argument: `forward` then runs `_run`, which validates everything and raises
        fastrnn's message (or runs the general path, which gives the same result)."""
        nd = x.ndim
        if nd == 3:
            if x.shape[1 if self.batch_first else 0] != 1:
                return None
        elif nd != 2 or x.shape[0] != 1:
            return None
        # bfloat16 inference or autocast: a stream must equal the whole sequence (see one_step
        # in `_run`)
        if self._bf16 or self._storage is not None or _autocast.active(self):
            return None
        h0 = c0 = None
        if not self._is_lstm:
            h0 = hx
        elif hx is not None:
            if type(hx) is not tuple or len(hx) != 2:
                return None
            h0, c0 = hx
        weights = self._weights
        if weights is None or self._weights_version != parameters_version():
            weights = self._c_weights()
        try:
            out = _C.stack_step(weights, x, h0, c0, self.batch_first)
        except (TypeError, ValueError):
            return None
        if self._cache is not None or not self._last_forward_eval:
            vars(self).update(_cache=None, _last_forward_eval=True)  # plain attributes
        return out

    def _run(
        self, x: Any, h0: Any, c0: Any, lengths: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Returns out, h_n, c_n in the caller's layout (batch-first / unbatched as given)."""
        if self.training:
            self._inference_only("forward")
        if type(x) is not np.ndarray and _cuda.is_device_array(x):
            if self._i8:
                raise TypeError(
                    f"x: int8 inference runs on the CPU only; this {type(self).__name__} has int8 "
                    f"weights and got a {type(x).__name__} on a CUDA device"
                )
            self._check_version()
            return _cuda.layer_forward(self, x, h0, c0, lengths)  # type: ignore[no-any-return]
        if self._storage is not None:
            raise TypeError(
                f"x: this {type(self).__name__} stores {self._storage} and runs on CUDA arrays "
                f"only (got {type(x).__name__}); the CPU path has no {self._storage} storage: "
                "use a float32 module there, with inference_dtype='bfloat16' for bfloat16 weights"
            )
        H, D, L, dtype = self.hidden_size, self._num_dirs, self.num_layers, self._dtype
        x, lengths = _packed_input(x, lengths, self.batch_first)
        xs, batched = _checks.layer_input(x, self.input_size, self.batch_first, dtype)
        T, B = xs.shape[0], xs.shape[1]
        lens = _checks.lengths_arg(lengths, B, T, batched)
        if h0 is not None:
            h0 = _checks.state("h0", h0, L * D, B, H, dtype, batched).reshape(L * D, B, H)
        if c0 is not None:
            c0 = _checks.state("c0", c0, L * D, B, H, dtype, batched).reshape(L * D, B, H)
        weights = self._c_weights()
        training = self.training
        h_n = np.empty((L * D, B, H), dtype)
        c_n = np.empty((L * D, B, H), dtype) if self._is_lstm else None
        # One step in eval mode (a layer fed step by step) runs the streaming step kernel: bitwise
        # the sequence kernel's step without its set-up or thread team. Not in bfloat16
        # inference: there the step reads bfloat16 W_ih, while a sequence projects its input in
        # float32, and a stream must equal the whole sequence (int8 projects through the step's
        # products: bitwise the same).
        # autocast: bfloat16 products (fastrnn.autocast / compute_dtype), float32 layers only; a
        # sequence projects its input in bfloat16 then, so a step of it takes the sequence path
        bf16 = dtype == np.float32 and _autocast.active(self)
        one_step = T == 1 and not training and not self._bf16 and not bf16

        def direction(
            k: int, d: int, inp: np.ndarray, last: bool, plan: Any
        ) -> tuple[np.ndarray, Any]:
            j = k * D + d
            h0_j, c0_j = None if h0 is None else h0[j], None if c0 is None else c0[j]
            if one_step:
                hn, cn = weights[k][d].step(inp[0], h0_j, c0_j)
                y, ctx = hn[None], None
            else:
                y, hn, cn, ctx = weights[k][d].forward(
                    inp, h0_j, c0_j, plan, d == 1, training, bf16
                )
            h_n[j] = hn
            if c_n is not None:
                c_n[j] = cn
            return y, ctx

        def dropout(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # Inverted dropout: scale at training time so eval needs nothing.
            keep = self._rng.random(out.shape, dtype=dtype) >= self.dropout
            mask = keep * dtype.type(1.0 / (1.0 - self.dropout))
            return out * mask, mask

        inp, ctxs, masks = layer_loop(
            L, D, xs, None if one_step else lens, direction,  # one step: every length is 1
            lambda ys, last: ys[0] if D == 1 else np.concatenate(ys, axis=2),
            dropout if training and self.dropout > 0 else None,
        )  # fmt: skip
        cache = _Cache(weights, ctxs, masks, T, B, batched) if training else None
        vars(self).update(_cache=cache, _last_forward_eval=not training)  # plain attributes
        out = inp
        if not batched:
            return out[:, 0, :], h_n[:, 0, :], None if c_n is None else c_n[:, 0, :]
        if self.batch_first:
            out = np.ascontiguousarray(out.transpose(1, 0, 2))
        return out, h_n, c_n

    # --- backward ------------------------------------------------------------------------------

    def _run_backward(
        self, d_out: Any, dh_n: Any, dc_n: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        self._inference_only("backward")
        cache = self._cache
        if cache is None:
            raise _checks.no_cache(type(self).__name__, self._last_forward_eval)
        if isinstance(cache, _cuda.CudaCache):
            return _cuda.layer_backward(self, cache, d_out, dh_n, dc_n)  # type: ignore[no-any-return]
        H, D, L, dtype = self.hidden_size, self._num_dirs, self.num_layers, self._dtype
        T, B, batched = cache.steps, cache.batch, cache.batched
        dy = None
        if d_out is not None:
            shape: tuple[int, ...]
            if not batched:
                shape, letters = (T, D * H), "(T, D*H)"
            elif self.batch_first:
                shape, letters = (B, T, D * H), "(B, T, D*H)"
            else:
                shape, letters = (T, B, D * H), "(T, B, D*H)"
            dy = _checks.grad_output("d_out", d_out, shape, letters, dtype)
            if not batched:
                dy = dy.reshape(T, 1, D * H)
            elif self.batch_first:
                dy = np.ascontiguousarray(dy.transpose(1, 0, 2))
        if dh_n is not None:
            name = "dh_n" if self._is_lstm else "d_h_n"
            dh_n = _checks.state(name, dh_n, L * D, B, H, dtype, batched).reshape(L * D, B, H)
        if dc_n is not None:
            dc_n = _checks.state("dc_n", dc_n, L * D, B, H, dtype, batched).reshape(L * D, B, H)
        dh0 = np.empty((L * D, B, H), dtype)
        dc0 = np.empty((L * D, B, H), dtype) if self._is_lstm else None
        grads: dict[str, np.ndarray] = {}

        def direction(k: int, d: int, dy_d: Any, dx: Any) -> np.ndarray:
            j = k * D + d
            dh_j, dc_j = None if dh_n is None else dh_n[j], None if dc_n is None else dc_n[j]
            dx_d, dh0_d, dc0_d, g = cache.weights[k][d].backward(cache.ctxs[k][d], dy_d, dh_j, dc_j)
            dh0[j] = dh0_d
            if dc0 is not None:
                dc0[j] = dc0_d
            for key, (name, _) in self._names[k][d].items():
                grads[name] = g[key]
            return dx_d if dx is None else dx + dx_d

        def split(dy: Any) -> list[Any]:
            if dy is None or D == 1:
                return [dy] * D
            return [np.ascontiguousarray(dy[:, :, :H]), np.ascontiguousarray(dy[:, :, H:])]

        dy = layer_loop_backward(L, D, dy, cache.masks, direction, split, lambda dy, m: dy * m)
        self._add_grads(grads)
        assert dy is not None
        if not batched:
            return dy[:, 0, :], dh0[:, 0, :], None if dc0 is None else dc0[:, 0, :]
        if self.batch_first:
            dy = np.ascontiguousarray(dy.transpose(1, 0, 2))
        return dy, dh0, dc0


def _load_parameters(module: Any, state_dict: Mapping[str, Any], strict: bool) -> IncompatibleKeys:
    """A layer's or cell's load_state_dict: check everything, then copy in place."""
    new, missing, unexpected = _staged_state(module, state_dict, strict, module._parameters)
    for k in module._expected:
        module._parameters[k][...] = new[k]
    parameters_changed()
    module._invalidate()
    return IncompatibleKeys(missing, unexpected)


def _packed_input(x: Any, lengths: Any, batch_first: bool) -> tuple[Any, Any]:
    """A torch PackedSequence (what pack_padded_sequence / pack_sequence return) -> the padded
    array (T, B, I) (or (B, T, I) with batch_first) and its lengths, in the original batch order.
    Any other tuple or list is refused with a pointer to `lengths=`."""
    if isinstance(x, np.ndarray) or not isinstance(x, (tuple, list)):
        return x, lengths
    if not (hasattr(x, "batch_sizes") and hasattr(x, "data")):
        try:
            return np.asarray(_checks.to_numpy(x)), lengths
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"x: could not convert the {type(x).__name__} to an array ({str(e).split(chr(10))[0]}); "
                "for sequences of different lengths pass the padded array (T, B, I) and their "
                "lengths: m(x, lengths=lengths)"
            ) from None
    if lengths is not None:
        raise TypeError("lengths: a PackedSequence carries its lengths; pass only one of them")
    packed: Any = x
    data = np.asarray(_checks.to_numpy(packed.data))
    sizes = np.asarray(_checks.to_numpy(packed.batch_sizes)).astype(np.int64)
    if data.ndim != 2 or sizes.ndim != 1 or sizes.size == 0 or int(sizes.sum()) != data.shape[0]:
        raise ValueError(
            f"x: a PackedSequence whose data {data.shape} does not match its batch_sizes "
            f"(sum {int(sizes.sum())})"
        )
    T, B = sizes.size, int(sizes[0])
    padded = np.zeros((T, B) + data.shape[1:], data.dtype)
    start = 0
    for t, bt in enumerate(sizes):  # step t holds the first bt sequences (sorted by length)
        padded[t, :bt] = data[start : start + bt]
        start += bt
    lens = (sizes[None, :] > np.arange(B)[:, None]).sum(axis=1)
    unsorted = getattr(packed, "unsorted_indices", None)
    if unsorted is not None:  # back to the caller's order, as pad_packed_sequence does
        order = np.asarray(_checks.to_numpy(unsorted)).astype(np.int64)
        padded, lens = padded[:, order], lens[order]
    if batch_first:
        padded = np.ascontiguousarray(padded.transpose(1, 0, 2))
    return padded, lens


def _one_of(hx: Any, h0: Any, name: str = "hx") -> Any:
    if h0 is not None:
        if hx is not None:
            raise TypeError(f"{name} and h0 are the same argument; pass only one of them")
        return h0
    return hx


_LAYER_DOC = """
    Parameters
    ----------
    input_size : int
        I, features per step of the input.
    hidden_size : int
        H, features of the hidden state.
    num_layers : int
        L, stacked layers; layer k > 0 reads layer k-1's output (D*H features).
    bias : bool
        With False there are no bias_ih / bias_hh parameters.
    batch_first : bool
        x and out are (B, T, .) instead of (T, B, .); states stay (L*D, B, H), as in torch.
    dropout : float
        Inverted dropout on each layer's output except the last, in training mode only, drawn
        from the layer's generator; backward uses the same mask.
    bidirectional : bool
        D = 2: a reverse direction per layer; out concatenates (forward, reverse) features.
    dtype : {"float32", "float64", "bfloat16", "float16"}
        The dtype of parameters, inputs and outputs; inputs of another dtype are a TypeError.
        "bfloat16" and "float16" need device="cuda": inputs, outputs, states and gradients are
        device arrays of that type (a torch bfloat16 tensor in, bfloat16 out and bfloat16 grads,
        as torch does), the weights are rounded to it once, and every sum, the gate math and
        the state carried between steps are float32; only what is written out is rounded. The
        host parameters (`state_dict()`) are float32 arrays holding the rounded values. On the
        CPU, dtype="float32" with inference_dtype="bfloat16" is the bfloat16-weights mode.
    seed : int, SeedSequence or None
        Seeds the numpy Generator used for initialization and dropout masks.
    device : "cpu" (default), "cuda" or "cuda:N"
        Where CUDA-array inputs (CuPy, torch CUDA tensors) run, without copies, through
        fastrnn._C_cuda; outputs and gradients come back as the same kind of array. NumPy inputs
        always run on the CPU. Dropout masks on the GPU come from a counter-based hash, not from
        the numpy Generator, so they differ from the CPU path's.
"""


class _HiddenStateRNN(_RNNBase):
    """forward/backward of the cells whose only state is h (RNN and GRU)."""

    def forward(
        self, x: Any, hx: Any = None, lengths: Any = None, *, h0: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the whole sequence.

        Parameters
        ----------
        x : ndarray (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I)
        hx : ndarray (L*D, B, H), or (L*D, H) for unbatched input, or None for zeros
            Also accepted under the name `h0`.
        lengths : B integers in [1, T], or None for all T
            Like a packed sequence: sequence b runs steps 0..lengths[b]-1 only; the reverse
            direction starts at its own last step.

        Returns
        -------
        out : ndarray (T, B, D*H), or (B, T, D*H) with batch_first, or (T, D*H)
            The last layer's output; 0 at steps past a sequence's length.
        h_n : ndarray (L*D, B, H), or (L*D, H)
            Each layer/direction's state after each sequence's own last step.
        """
        if type(x) is np.ndarray and lengths is None and h0 is None and not self.training:
            out = self._stream_step(x, hx)  # one step in eval mode: see _stream_step
            if out is not None:
                return out  # type: ignore[no-any-return]
        out, h_n, _ = self._run(x, _one_of(hx, h0), None, lengths)
        return out, h_n

    __call__ = forward

    def backward(self, d_out: Any = None, d_h_n: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of the last (training-mode) forward; also fills `grads`.

        Parameters
        ----------
        d_out : ndarray shaped like out, or None for zeros
            Entries at steps past a sequence's length are ignored.
        d_h_n : ndarray shaped like h_n, or None for zeros

        Returns
        -------
        dx : ndarray shaped like x
        dh0 : ndarray (L*D, B, H), or (L*D, H) for unbatched input
        """
        dx, dh0, _ = self._run_backward(d_out, d_h_n, None)
        return dx, dh0


class RNN(_HiddenStateRNN):
    __doc__ = (
        """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); torch.nn.RNN compatible.
    """
        + _LAYER_DOC
        + """    nonlinearity : {"tanh", "relu"}

    Parameters are initialized ~ U(-1/sqrt(H), 1/sqrt(H)) as in torch; `load_state_dict` takes a
    torch.nn.RNN's state_dict as is. See `forward` and `backward` for the call contract.
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
        device: Any = None,
    ) -> None:
        Module.__init__(self)
        self.nonlinearity = _checks.nonlinearity_arg(nonlinearity)
        super().__init__(
            "rnn_" + self.nonlinearity, input_size, hidden_size, num_layers, bias, batch_first,
            dropout, bidirectional, dtype, seed, device=device,
        )  # fmt: skip

    def _extra_repr(self) -> list[str]:
        return [] if self.nonlinearity == "tanh" else [f"nonlinearity='{self.nonlinearity}'"]


class GRU(_HiddenStateRNN):
    __doc__ = (
        """Gated recurrent unit; torch.nn.GRU compatible (gate order r, z, n).

    PyTorch's (and cuDNN's) reset-after form n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) by
    default; `reset_after=False` gives the original formulation
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) (Keras reset_after=False, ONNX's default),
    which has the same parameters but no torch counterpart.
    """
        + _LAYER_DOC
        + """    reset_after : bool
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
        reset_after: bool = True,
        device: Any = None,
    ) -> None:
        Module.__init__(self)
        self.reset_after = bool(reset_after)
        super().__init__(
            "gru" if self.reset_after else "gru_reset_before", input_size, hidden_size,
            num_layers, bias, batch_first, dropout, bidirectional, dtype, seed, device=device,
        )  # fmt: skip

    def _extra_repr(self) -> list[str]:
        return [] if self.reset_after else ["reset_after=False"]


class LSTM(_RNNBase):
    __doc__ = (
        """Long short-term memory; torch.nn.LSTM compatible (gate order i, f, g, o).

    `peephole=True` adds ONNX-style peephole weights peephole_l{k}[_reverse] (3*H,) in order
    (i, f, o): i and f see c_{t-1}, o sees c_t. torch has no peepholes, so such a state_dict has
    these extra keys. Projections (proj_size != 0) are not supported.
    """
        + _LAYER_DOC
        + """    proj_size : int
        Must be 0.
    peephole : bool
    """
    )

    _is_lstm = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
        peephole: bool = False,
        device: Any = None,
    ) -> None:
        Module.__init__(self)
        _checks.proj_size_arg(proj_size)
        self.proj_size = 0
        self.peephole = bool(peephole)
        super().__init__(
            "lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, dtype, seed, self.peephole, device=device,
        )  # fmt: skip

    def _extra_repr(self) -> list[str]:
        return ["peephole=True"] if self.peephole else []

    def forward(
        self, x: Any, hx: Any = None, lengths: Any = None, *, h0: Any = None, c0: Any = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Run the whole sequence.

        Parameters
        ----------
        x : ndarray (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I)
        hx : tuple (h0, c0) of ndarrays (L*D, B, H) (or (L*D, H) for unbatched input), or None
            Either element may be None for zeros. Also accepted as keywords h0=, c0=.
        lengths : B integers in [1, T], or None for all T
            Like a packed sequence: sequence b runs steps 0..lengths[b]-1 only; the reverse
            direction starts at its own last step.

        Returns
        -------
        out : ndarray (T, B, D*H), or (B, T, D*H) with batch_first, or (T, D*H)
            The last layer's output h_t; 0 at steps past a sequence's length.
        (h_n, c_n) : ndarrays (L*D, B, H), or (L*D, H)
            States after each sequence's own last step.
        """
        if h0 is not None or c0 is not None:
            if hx is not None:
                raise TypeError(
                    "pass the initial states either as hx=(h0, c0) or as h0=, c0=, not both"
                )
            hx = h0 if isinstance(h0, tuple) and c0 is None else (h0, c0)
        elif type(x) is np.ndarray and lengths is None and not self.training:
            fast = self._stream_step(x, hx)  # one step in eval mode: see _stream_step
            if fast is not None:
                return fast  # type: ignore[no-any-return]
        h, c = _checks.lstm_state(hx)
        out, h_n, c_n = self._run(x, h, c, lengths)
        assert c_n is not None
        return out, (h_n, c_n)

    __call__ = forward

    def backward(
        self, d_out: Any = None, d_h_n: Any = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Gradients of the last (training-mode) forward; also fills `grads`.

        Parameters
        ----------
        d_out : ndarray shaped like out, or None for zeros
            Entries at steps past a sequence's length are ignored.
        d_h_n : tuple (dh_n, dc_n) shaped like (h_n, c_n), or None; either element may be None

        Returns
        -------
        dx : ndarray shaped like x
        (dh0, dc0) : ndarrays (L*D, B, H), or (L*D, H) for unbatched input
        """
        dh, dc = _checks.lstm_state(d_h_n, "d_h_n")
        dx, dh0, dc0 = self._run_backward(d_out, dh, dc)
        assert dc0 is not None
        return dx, (dh0, dc0)


# --- one-step cells ------------------------------------------------------------------------------


class _CellBase(_Precision, Module):
    """Shared implementation of the one-step cells; see RNNCell, GRUCell, LSTMCell.

    One class per cell (fastrnn.LSTMCell is fastrnn.nn.LSTMCell), a Module as in torch. In eval
    mode a call is one `_C.Weights.step` and keeps nothing (streaming inference: call `.eval()`,
    as a torch user runs inference under no_grad). In training mode (the default, as in torch)
    each call also records what its backward needs on the cell's tape, and each `backward` pops
    the most recent step, so a decoder loop is differentiated by the same loop run in reverse;
    the outputs are the same numbers in both modes. The tape keeps at most `tape_limit` steps
    (the oldest are dropped, with a warning) so that a training-mode loop that never calls
    backward cannot exhaust memory; `clear_caches()` or `eval()` drops it.
    """

    _transient = ("_w", "_tape")
    tape_limit = 1 << 14

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        bias: bool,
        dtype: Any,
        seed: int | np.random.SeedSequence | None,
        peephole: bool = False,
    ) -> None:
        Module.__init__(self)
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self._dtype = _checks.dtype_arg(dtype)
        self._cell = cell
        self._names = cell_names(cell, self.input_size, self.hidden_size, self.bias, peephole)
        self._expected = {name: shape for name, shape in self._names.values()}
        params = init_params(
            self._expected, self.hidden_size, np.random.default_rng(seed), self._dtype
        )
        for name, arr in params.items():
            self.register_parameter(name, arr)
        self._w: Any = None
        self._w_version = -1
        self._tape: list[tuple[Any, ...]] = []
        self._dropped = 0

    # --- parameters ------------------------------------------------------------------------------

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_dtype"] = _checks.canonical_dtype(state["_dtype"])
        state["_parameters"] = {k: _checks.as_canonical(v) for k, v in state["_parameters"].items()}
        state["_w_version"] = -1
        state["_tape"] = []
        super().__setstate__(state)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy parameters in, in place (cast to the cell's dtype); torch tensors are accepted.
        Keys and shapes as for the layers' `load_state_dict`; nothing changes on an error."""
        return _load_parameters(self, state_dict, strict)

    def _invalidate(self) -> None:
        self._w = None

    def _on_mode_change(self) -> None:
        self._tape = []
        self._dropped = 0

    def _weights(self) -> Any:
        """The packed weights, rebuilt after any parameter changed."""
        v = parameters_version()
        w = self._w
        if w is None or v != self._w_version:
            w = _C.Weights(
                self._cell,
                **{key: self._parameters[name] for key, (name, _) in self._names.items()},
            )
            w.bf16, w.i8 = self._bf16, self._i8
            self._w, self._w_version = w, v
        return w

    def __repr__(self) -> str:
        extra = "" if self.bias else ", bias=False"
        if "peephole" in self._parameters:
            extra += ", peephole=True"
        if self._dtype != np.float32:
            extra += f", dtype='{self._dtype}'"
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra})"

    def _checked(
        self, x: Any, states: tuple[tuple[str, Any], ...]
    ) -> tuple[np.ndarray, list, bool]:
        xb, batched = _checks.step_input(x, self.input_size, self._dtype, "the cell's dtype")
        B, H = xb.shape[0], self.hidden_size
        out = []
        for name, s in states:
            if s is None:
                out.append(np.zeros((B, H), self._dtype))
            else:
                out.append(
                    _checks.step_state(name, s, B, H, self._dtype, batched, "the cell's dtype")
                )
        return xb, out, batched

    # --- training-mode steps and their backward --------------------------------------------------

    def _train_step(
        self, w: Any, xb: np.ndarray, h: np.ndarray, c: np.ndarray | None, batched: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One recorded step: (h1, c1) as the caller's layout; the tape gets what backward needs."""
        self._inference_only("__call__")
        if _autocast.active(self) and self._dtype == np.float32:  # bfloat16 products (AMX: and
            # backward's; elsewhere training stays float32, see fastrnn.autocast)
            _, h1, c1, ctx = w.forward(xb[None], h, c, None, False, True, True)
            entry: tuple[Any, ...] = (w, ctx, batched)
        elif w.bf16:  # outputs from the bfloat16 weights; backward recomputes with the full ones
            h1, c1 = w.step(xb, h, c)
            entry = (
                w,
                None,
                batched,
                xb.copy(),
                h.copy(),
                None if c is None else c.copy(),
            )
        else:
            _, h1, c1, ctx = w.forward(xb[None], h, c, None, False, True)
            entry = (w, ctx, batched)
        if len(self._tape) >= self.tape_limit:
            del self._tape[0]
            if not self._dropped:
                warnings.warn(
                    f"{type(self).__name__}: {self.tape_limit} training-mode steps recorded "
                    "without a backward; the oldest are dropped. Call .eval() for inference "
                    "(as under torch.no_grad()), or backward sooner",
                    stacklevel=3,
                )
            self._dropped += 1
        self._tape.append(entry)
        if not batched:
            return h1[0], None if c1 is None else c1[0]
        return h1, c1

    def _step_backward(
        self, dh1: Any, dc1: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        self._inference_only("backward")
        name = type(self).__name__
        if not self._tape:
            if self._dropped:
                raise RuntimeError(
                    f"{name}.backward: this step's record was dropped ({self.tape_limit} steps "
                    "at most are kept); call backward sooner, or use the whole-sequence layer"
                )
            raise _checks.no_cache(name, not self.training)
        entry = self._tape.pop()
        w, ctx, batched = entry[:3]
        H, dtype = self.hidden_size, self._dtype
        dh = None if dh1 is None else _checks.float_array("dh", dh1, dtype, "the cell's dtype")
        dc = None if dc1 is None else _checks.float_array("dc", dc1, dtype, "the cell's dtype")
        if not batched:
            dh = None if dh is None else dh.reshape(1, H)
            dc = None if dc is None else dc.reshape(1, H)
        dh = None if dh is None else _checks.contiguous(dh)
        dc = None if dc is None else _checks.contiguous(dc)
        try:
            if ctx is None:  # recorded from the bfloat16 step: recompute with the full weights
                xb, h, c = entry[3:]
                ctx = w.forward(xb[None], h, c, None, False, True)[3]
            dx, dh0, dc0, g = w.backward(ctx, None, dh, dc)
        except ValueError as e:
            self._tape.append(entry)  # leave the tape as it was
            raise ValueError(f"{name}.backward: {e}") from None
        for key, (pname, _) in self._names.items():
            if g.get(key) is not None:
                self._accumulate(pname, g[key])
        dx = dx[0]
        if not batched:
            return dx[0], dh0[0], None if dc0 is None else dc0[0]
        return dx, dh0, dc0


_CELL_DOC = """
    Parameters
    ----------
    input_size : int
    hidden_size : int
    bias : bool
    dtype : {"float32", "float64"}
    seed : int, SeedSequence or None
        Seeds initialization ~ U(-1/sqrt(H), 1/sqrt(H)), as in torch.

    Calling it runs one step: x (B, I) or unbatched (I,). In training mode (the default, as in
    torch) the step is also recorded for `backward`; call `.eval()` for streaming inference.
"""


class _HiddenStateCell(_CellBase):
    """The step of the cells whose only state is h (RNNCell and GRUCell)."""

    def __call__(self, x: Any, hx: Any = None) -> np.ndarray:
        """h1 (B, H) (or (H,)) from x (B, I) (or (I,)) and hx (B, H) (or (H,); None: zeros)."""
        w = self._weights()
        if not self.training:
            # Fast path (this call is timed in microseconds): _C checks shapes and dtypes itself,
            # so a batched ndarray goes straight in; anything _C rejects is checked again below
            # for fastrnn's own message.
            bf16 = _autocast.active(self)
            if type(x) is np.ndarray and x.ndim == 2:
                try:
                    return w.step(x, hx, None, bf16)[0]
                except (TypeError, ValueError):
                    pass
            xb, (h,), batched = self._checked(x, (("hx", hx),))
            h1 = w.step(xb, h, None, bf16)[0]
            return h1 if batched else h1[0]
        xb, (h,), batched = self._checked(x, (("hx", hx),))
        return self._train_step(w, xb, h, None, batched)[0]

    forward = __call__

    def backward(self, dh1: Any) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of the most recent training-mode step (popped): dh1 -> (dx, dh); adds the
        parameter gradients into `grads`."""
        dx, dh, _ = self._step_backward(dh1, None)
        return dx, dh


class RNNCell(_HiddenStateCell):
    __doc__ = (
        """One Elman RNN step for streaming; torch.nn.RNNCell compatible (same state_dict keys).
    """
        + _CELL_DOC
        + """    nonlinearity : {"tanh", "relu"}
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        Module.__init__(self)
        self.nonlinearity = _checks.nonlinearity_arg(nonlinearity)
        super().__init__("rnn_" + self.nonlinearity, input_size, hidden_size, bias, dtype, seed)


class GRUCell(_HiddenStateCell):
    __doc__ = (
        """One GRU step for streaming; torch.nn.GRUCell compatible (gate order r, z, n).

    `reset_after=False` gives the original (reset-before) formulation; see `GRU`.
    """
        + _CELL_DOC
        + """    reset_after : bool
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset_after: bool = True,
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        Module.__init__(self)
        self.reset_after = bool(reset_after)
        super().__init__(
            "gru" if self.reset_after else "gru_reset_before", input_size, hidden_size,
            bias, dtype, seed,
        )  # fmt: skip


class LSTMCell(_CellBase):
    __doc__ = (
        """One LSTM step for streaming; torch.nn.LSTMCell compatible (gate order i, f, g, o).

    `peephole=True` adds a `peephole` parameter (3*H,) in order (i, f, o), also the attribute
    `cell.peephole`; see `LSTM`.
    """
        + _CELL_DOC
        + """    peephole : bool
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        peephole: bool = False,
        dtype: Any = "float32",
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        # the attribute `peephole` is the parameter (as every parameter is an attribute)
        super().__init__("lstm", input_size, hidden_size, bias, dtype, seed, bool(peephole))

    def __call__(self, x: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(h1, c1) (B, H) (or (H,)) from x (B, I) (or (I,)) and hx = (h, c) or None (zeros)."""
        w = self._weights()
        if not self.training:
            bf16 = _autocast.active(self)
            if type(x) is np.ndarray and x.ndim == 2:  # fast path, as in _HiddenStateCell
                try:
                    if hx is None:
                        return w.step(x, None, None, bf16)  # type: ignore[no-any-return]
                    if type(hx) is tuple and len(hx) == 2:
                        return w.step(x, hx[0], hx[1], bf16)  # type: ignore[no-any-return]
                except (TypeError, ValueError):
                    pass
            h, c = _checks.lstm_state(hx)
            xb, (h, c), batched = self._checked(x, (("h", h), ("c", c)))
            h1, c1 = w.step(xb, h, c, bf16)
            return (h1, c1) if batched else (h1[0], c1[0])
        h, c = _checks.lstm_state(hx)
        xb, (h, c), batched = self._checked(x, (("h", h), ("c", c)))
        h1, c1 = self._train_step(w, xb, h, c, batched)
        assert c1 is not None
        return h1, c1

    forward = __call__

    def backward(
        self, dh1: Any, dc1: Any = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Gradients of the most recent training-mode step (popped): (dh1, dc1) ->
        (dx, (dh, dc)); adds the parameter gradients into `grads`."""
        dx, dh, dc = self._step_backward(dh1, dc1)
        assert dc is not None
        return dx, (dh, dc)
