"""fastrnn.nn: the building blocks of sequence models in NumPy, each with forward and backward.

    Module, Sequential                       container: parameters and gradients by name,
                                             state_dict, save/load .npz (atomic)
    Linear, Embedding, Dropout, Tanh, ...    layers (Embedding's backward scatter-add in C++)
    RNN, GRU, LSTM                           the fused recurrent layers as Modules
    RNNCell, GRUCell, LSTMCell               one step with backward (decoder loops)
    AdditiveAttention, DotAttention,         Bahdanau and Luong attention with masks
      GeneralAttention
    CrossEntropyLoss, BCEWithLogitsLoss      fused, numerically stable losses
    cross_entropy, ...                       and their functional forms
    SGD, Adam, AdamW                         optimizers (torch.optim semantics)
    clip_grad_norm_, clip_grad_value_        gradient clipping
    gradcheck                                finite-difference checks of a backward

There is no autograd: a model's backward calls its children's backward in reverse order (see
fastrnn.models for complete examples). Gradients accumulate until `zero_grad()`, as in torch.
"""

from __future__ import annotations

from ._io import atomic_write, load_npz, save_npz
from .attention import (
    AdditiveAttention,
    AttentionMemory,
    DotAttention,
    GeneralAttention,
    lengths_to_mask,
    make_attention,
)
from .gradcheck import gradcheck, numerical_grad
from .layers import Dropout, Embedding, Identity, Linear, ReLU, Sigmoid, Tanh
from .losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_with_grad,
    cross_entropy,
    cross_entropy_with_grad,
    log_softmax,
    softmax,
)
from .module import IncompatibleKeys, Module, Sequential, parameters_changed
from .optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm_, clip_grad_value_
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "SGD",
    "Adam",
    "AdamW",
    "AdditiveAttention",
    "AttentionMemory",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "DotAttention",
    "Dropout",
    "Embedding",
    "GRUCell",
    "GeneralAttention",
    "Identity",
    "IncompatibleKeys",
    "LSTMCell",
    "Linear",
    "Module",
    "Optimizer",
    "RNNCell",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "atomic_write",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_with_grad",
    "clip_grad_norm_",
    "clip_grad_value_",
    "cross_entropy",
    "cross_entropy_with_grad",
    "gradcheck",
    "lengths_to_mask",
    "load_npz",
    "log_softmax",
    "make_attention",
    "numerical_grad",
    "parameters_changed",
    "save_npz",
    "softmax",
]
