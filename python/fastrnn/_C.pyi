# ruff: noqa: N999  (the compiled module is private on purpose: _C)
"""Type stub of the compiled module fastrnn._C (see docs/architecture.md and csrc/fastrnn.h).

One `Weights` is one layer in one direction. Cell names: "rnn_tanh", "rnn_relu", "gru" (PyTorch's
reset-after form), "gru_reset_before", "lstm". Shapes use T steps, B batch, I input, H hidden,
G gates (1, 3, 3, 4). Arrays must be C-contiguous and all of the object's dtype; the Python layer
validates before calling (invalid input raises ValueError for shapes, TypeError for dtypes).
"""

from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias

_Array: TypeAlias = npt.NDArray[np.floating[Any]]

class _Backends(TypedDict):
    # ISA paths in this build: "scalar", "avx2", "avx512", "avx512_bf16", "amx_bf16"
    compiled: list[str]
    supported: list[str]  # those this CPU (and OS) can run
    active: str  # the one in use

class _Grads(TypedDict):
    w_ih: _Array
    w_hh: _Array
    b_ih: _Array | None
    b_hh: _Array | None
    peephole: _Array | None

class Context:
    """What a training forward saved for its backward (opaque)."""

class LengthsPlan:
    """The batch of a forward with lengths, checked once and sorted by decreasing length (stable):
    the layer loop makes one per forward and passes it as `lengths` to every layer and direction
    (CPU and GPU Weights.forward). lengths: integers (B,) each in [1, steps]."""

    def __init__(self, lengths: npt.NDArray[np.integer[Any]], steps: int) -> None: ...
    @property
    def batch(self) -> int: ...
    @property
    def steps(self) -> int: ...
    @property
    def lengths(self) -> npt.NDArray[np.int64]: ...  # (B,) as given
    @property
    def order(self) -> npt.NDArray[np.int64]: ...  # (B,) batch row of each sorted row
    @property
    def active(self) -> npt.NDArray[np.int64]: ...  # (T,) sequences running at each step

class Weights:
    """Copied, pre-packed weights of one layer and direction: w_ih (G*H, I), w_hh (G*H, H),
    b_ih / b_hh (G*H,), peephole (3*H,) in order (i, f, o), LSTM only."""

    @property
    def cell(self) -> str: ...
    @property
    def input_size(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def bf16(self) -> bool: ...
    @bf16.setter
    def bf16(self, on: bool) -> None: ...
    @property
    def i8(self) -> bool: ...
    @i8.setter
    def i8(self, on: bool) -> None: ...
    def __init__(
        self,
        cell: str,
        w_ih: _Array,
        w_hh: _Array,
        b_ih: _Array | None = None,
        b_hh: _Array | None = None,
        peephole: _Array | None = None,
    ) -> None: ...
    def forward(
        self,
        x: _Array,
        h0: _Array | None = None,
        c0: _Array | None = None,
        lengths: npt.NDArray[np.int64] | LengthsPlan | None = None,
        reverse: bool = False,
        training: bool = False,
        autocast: bool = False,
    ) -> tuple[_Array, _Array, _Array | None, Context | None]:
        """x (T, B, I), h0/c0 (B, H), lengths int64 (B,) in [1, T] or their LengthsPlan (made for
        T and B) -> (y (T, B, H), h_n (B, H), c_n (B, H) or None, ctx or None); y is 0 at
        t >= lengths[b].
        autocast: bfloat16 products with float32 sums and state (see fastrnn.autocast)."""
    def backward(
        self,
        ctx: Context,
        dy: _Array | None = None,
        dh_n: _Array | None = None,
        dc_n: _Array | None = None,
    ) -> tuple[_Array, _Array, _Array | None, _Grads]:
        """-> (dx (T, B, I), dh0 (B, H), dc0 (B, H) or None, grads)."""
    def step(
        self,
        x: _Array,
        h: _Array | None = None,
        c: _Array | None = None,
        autocast: bool = False,
    ) -> tuple[_Array, _Array | None]:
        """One streaming step: x (B, I), h/c (B, H) or None (zeros) -> (h1 (B, H), c1 or None)."""

def stack_step(
    weights: list[list[Weights]],
    x: _Array,
    h0: _Array | None = None,
    c0: _Array | None = None,
    batch_first: bool = False,
) -> tuple[_Array, Any]:
    """One eval-mode step of a stacked layer (weights[k][d]): x (1, B, I), (B, 1, I) with
    batch_first, or (1, I); h0/c0 (L*D, B, H) or (L*D, H) -> (y, (h_n, c_n)) for the LSTM, else
    (y, h_n), as the layers' forward returns."""

def backends() -> _Backends: ...
def set_isa(name: str) -> None: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def cache_bytes_per_step(cell: str, batch: int, hidden: int, itemsize: int) -> int:
    """Bytes a training forward keeps per step for backward."""

# Private, for tests and benchmarks: the active ISA's vector math (which: 0 exp, 1 expm1,
# 2 sigmoid, 3 tanh).
def _math(which: int, x: _Array) -> _Array: ...
def nn_matmul(
    a: _Array,
    b: _Array,
    trans_a: bool = False,
    trans_b: bool = False,
    out: _Array | None = None,
    beta: float = 0.0,
    autocast: bool = False,
) -> _Array:
    """C = beta * out + op(a) @ op(b) on fastrnn's GEMM and threads (fastrnn.nn's products)."""

def embedding_backward(dweight: _Array, ids: _Array, dout: _Array, padding_idx: int = -1) -> None:
    """dweight[ids[i]] += dout[i] for every i except padding_idx, in order (fastrnn.nn)."""

# The GPU path's host build (csrc/cuda/runtime_host.cpp), for tests: the API of fastrnn._C_cuda
# (see _C_cuda.pyi) with host memory standing in for device memory; build_status says whether
# this build also made fastrnn._C_cuda ("on: ...") or why not ("off: ...");
# _emulated_device(multiprocessors, shared_per_block, cooperative) sets the device it plans the
# persistent kernels for (an H100 by default) and returns the previous settings.
_cuda_host: Any

def _stream_read(x: _Array, threads: int = 1) -> float:
    """Sum of x read with vector loads on `threads` threads (the benchmarks' bandwidth floor)."""

# Private, for fastrnn.bleu: statistics rows are (hyp length, ref length, matches[order],
# totals[order]); id inputs are flat int64 token arrays with int64 offsets.
def _bleu_text_stats(
    hyps: list[str], refs: list[list[str | None]], tokenize: str, table: Any, order: int
) -> _Array: ...
def _bleu_id_stats(
    hyp_ids: _Array,
    hyp_off: _Array,
    ref_ids: _Array,
    ref_off: _Array,
    present: _Array,
    nrefs: int,
    order: int,
) -> _Array: ...
def _bleu_scores(
    stats: _Array,
    order: int,
    smooth: str,
    smooth_value: float,
    effective_order: bool,
    compensated_sum: bool,
) -> _Array: ...
def _bleu_pairwise_text(
    hyps: list[str],
    refs: list[str],
    tokenize: str,
    table: Any,
    order: int,
    smooth: str,
    smooth_value: float,
    effective_order: bool,
    compensated_sum: bool,
) -> _Array: ...
def _bleu_pairwise_ids(
    hyp_ids: _Array,
    hyp_off: _Array,
    ref_ids: _Array,
    ref_off: _Array,
    order: int,
    smooth: str,
    smooth_value: float,
    effective_order: bool,
    compensated_sum: bool,
) -> _Array: ...
def _bleu_tokenize(lines: list[str], tokenize: str, table: Any = None) -> list[str]: ...

# Private, for fastrnn.bleu's chrF (rows: [hyp, ref, match] per order, char orders first) and
# paired significance tests (spec: the metric and its options, as _significance builds it).
def _chrf_stats(
    hyps: list[str],
    refs: list[list[str | None]],
    char_order: int,
    word_order: int,
    beta: float,
    whitespace: bool,
    eps_smoothing: bool,
) -> _Array: ...
def _chrf_scores(
    stats: _Array, char_order: int, word_order: int, beta: float, eps_smoothing: bool
) -> _Array: ...
def _chrf_pairwise(
    hyps: list[str],
    refs: list[str],
    char_order: int,
    word_order: int,
    beta: float,
    whitespace: bool,
    eps_smoothing: bool,
) -> _Array: ...
def _bootstrap_scores(
    stats: npt.NDArray[Any], idx: npt.NDArray[Any], spec: dict[str, Any]
) -> tuple[_Array, _Array]: ...
def _randomization_scores(
    base: npt.NDArray[Any], systems: npt.NDArray[Any], sel: npt.NDArray[Any], spec: dict[str, Any]
) -> tuple[_Array, _Array]: ...

# ---- fastrnn.embeddings (csrc/bindings/embeddings.cpp) ----------------------------------------
class EmbVocab:
    def __init__(self, words: list[str] = ...) -> None: ...
    def count(self, sentences: list[Any]) -> None: ...
    def count_file(self, path: str) -> None: ...
    def items(self) -> tuple[list[str], _Array, int, int]: ...
    def encode(self, sentences: list[Any], max_len: int) -> tuple[_Array, _Array, int]: ...
    def encode_file(self, path: str, max_len: int) -> tuple[_Array, _Array, int]: ...

def emb_subsample_table(counts: _Array, sample: float) -> _Array: ...
def emb_alias_table(weights: Any) -> tuple[_Array, _Array]: ...
def emb_huffman(counts: _Array) -> tuple[_Array, _Array, _Array]: ...
def emb_w2v_train(
    syn0: _Array,
    syn1: _Array | None,
    syn1neg: _Array | None,
    keep: _Array | None,
    alias_prob: _Array | None,
    alias_idx: _Array | None,
    codes: _Array | None,
    points: _Array | None,
    code_start: _Array | None,
    ids: _Array,
    sent_start: _Array,
    job_sent: _Array,
    job_begin: int,
    job_end: int,
    sg: int,
    hs: int,
    negative: int,
    window: int,
    cbow_mean: int,
    compute_loss: bool,
    alpha0: float,
    alpha1: float,
    words_before: float,
    words_total: float,
    seed: int,
    epoch: int,
    workers: int,
) -> tuple[float, int, int]: ...
def emb_cooccurrence(
    ids: _Array,
    sent_start: _Array,
    vocab_size: int,
    window: int,
    distance_weighting: bool,
    memory_bytes: int,
    tmp_dir: str,
) -> tuple[_Array, _Array, _Array, int]: ...
def emb_glove_epoch(
    w: _Array,
    wc: _Array,
    b: _Array,
    bc: _Array,
    gw: _Array,
    gwc: _Array,
    gb: _Array,
    gbc: _Array,
    rows: _Array,
    cols: _Array,
    vals: _Array,
    x_max: float,
    alpha: float,
    eta: float,
    workers: int,
) -> float: ...
def emb_format_rows(vectors: _Array) -> list[bytes]: ...
def emb_dot(x: _Array, y: _Array) -> float: ...
def emb_isa() -> str: ...

# Private, for fastrnn.models.ngram.KneserNeyLM: per order k = 1..order a dict of "grams" (M, k)
# int32 in lexicographic order, "count", "left" (distinct left extensions), "prefix" and "suffix"
# (rows in the order k-1 table; empty at k = 1), all int64 (M,).
def _ngram_count(
    ids: _Array, offsets: _Array, order: int, vocab_size: int
) -> list[dict[str, _Array]]: ...
