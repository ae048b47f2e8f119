"""fastrnn: fused CPU kernels for RNN, GRU and LSTM (forward and backward through time) with
PyTorch-compatible layers on NumPy arrays.

    >>> import numpy as np, fastrnn
    >>> m = fastrnn.LSTM(32, 64, num_layers=2, bidirectional=True)
    >>> out, (h_n, c_n) = m(np.zeros((10, 4, 32), np.float32))
    >>> dx, (dh0, dc0) = m.backward(np.ones_like(out))

Layers and cells live in fastrnn.rnn, the functional forms in fastrnn.functional; the compiled
kernels in the private module fastrnn._C.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# Idle OpenMP workers spin before they sleep; libgomp's default (300,000 pauses, milliseconds of a
# core after every call) starves other processes on a shared machine. fastrnn's own waits between
# steps spin briefly, then yield, then sleep. Set before libgomp loads; a user's value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from . import _C, _checks, nn  # noqa: E402, I001  (nn: the modeling toolkit's building blocks)
from .functional import (
    gru_backward,
    gru_cell,
    gru_forward,
    lstm_backward,
    lstm_cell,
    lstm_forward,
    rnn_backward,
    rnn_cell,
    rnn_forward,
)
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from ._autocast import autocast, is_autocast_enabled  # noqa: E402  (bfloat16 products)
from .quantization import quantize_dynamic  # noqa: E402  (int8 weights for inference)

# isort: split
from . import decoding  # noqa: E402  (beam search, scoring, sampling; see its docstring)

# fastrnn.beam_search is the function; the module's old name still imports it (see decoding.py)
sys.modules[__name__ + ".beam_search"] = decoding
from .decoding import (  # noqa: E402
    Hypothesis,
    batch_beam_search,
    beam_search,
    error_analysis,
    sample,
    score_sequence,
)

__version__ = "0.1.0"

# Subpackages imported when first used, so that `import fastrnn` loads the kernels and layers
# only: fastrnn.models (seq2seq, language models, training), fastrnn.bleu (sacrebleu's BLEU and
# chrF), fastrnn.embeddings (word2vec, GloVe), fastrnn.onnx (needs the onnx package),
# fastrnn.distributed (needs Dask).
_LAZY_SUBMODULES = ("models", "bleu", "embeddings", "onnx", "distributed")


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "models",
    "nn",
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "quantize_dynamic",
    "autocast",
    "is_autocast_enabled",
    "__version__",
    "backends",
    "get_num_threads",
    "gru_backward",
    "gru_cell",
    "gru_forward",
    "lstm_backward",
    "lstm_cell",
    "lstm_forward",
    "rnn_backward",
    "rnn_cell",
    "rnn_forward",
    "set_num_threads",
    "bleu",
    "embeddings",
    "onnx",
    "distributed",
    "decoding",
    "Hypothesis",
    "batch_beam_search",
    "beam_search",
    "error_analysis",
    "sample",
    "score_sequence",
]


def backends() -> dict[str, Any]:
    """The SIMD paths: {"compiled": [...], "supported": [those this CPU runs], "active": name},
    and the GPU path under "cuda": {"compiled", "available", "devices", "reason", "build"}.

    The active path is chosen at import from the CPU's features; the environment variable
    FASTRNN_ISA=scalar|avx2|avx512|avx512_bf16|amx_bf16 forces one. The GPU path (fastrnn._cuda, the optional module
    fastrnn._C_cuda) runs CUDA-array inputs of layers made with device="cuda".
    """
    from . import _cuda

    out = dict(_C.backends())
    out["cuda"] = _cuda.status()
    return out


def set_num_threads(n: int) -> None:
    """Use n threads (1 <= n <= 512) in the kernels; results are bitwise the same for any n.

    In a process forked after fastrnn ran threads (os.fork, multiprocessing's default start
    method on Linux), kernels run on one thread whatever n is: OpenMP's thread pool does not
    survive fork. Use the "spawn" or "forkserver" start method for multi-threaded workers.
    """
    _C.set_num_threads(_checks.num_threads(n))


def get_num_threads() -> int:
    """The number of threads the kernels use (1 in a forked child, see `set_num_threads`)."""
    return int(_C.get_num_threads())
