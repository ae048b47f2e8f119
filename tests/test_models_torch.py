"""Whole models against their PyTorch twins (bench/train.py): same weights -> same loss and the
same gradient for every parameter."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fastrnn.models import RNNLanguageModel, Seq2Seq
from fastrnn.nn import cross_entropy_with_grad

torch = pytest.importorskip("torch")

_spec = importlib.util.spec_from_file_location(
    "bench_train", Path(__file__).resolve().parents[1] / "bench" / "train.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _compare_grads(fr_grads, twin):
    for name, p in twin.named_parameters():
        np.testing.assert_allclose(
            fr_grads[name], p.grad.numpy(), rtol=2e-3, atol=2e-5, err_msg=name
        )


def test_seq2seq_matches_torch_twin():
    m = Seq2Seq(11, 9, embedding_dim=6, hidden_size=8, decoder_hidden_size=10, num_layers=2, seed=0)
    twin = bench.torch_seq2seq(m)
    rng = np.random.default_rng(0)
    src = rng.integers(0, 11, (5, 7))
    lens = np.array([7, 3, 5, 1, 6])
    tgt = rng.integers(4, 9, (5, 6))
    tgt[:, 0] = m.bos_index
    tgt[1, 4:] = m.pad_index
    loss, _ = m.loss(src, tgt, lens)
    logits = twin(torch.from_numpy(src), torch.from_numpy(lens), torch.from_numpy(tgt[:, :-1]))
    tl = torch.nn.functional.cross_entropy(logits.reshape(-1, 9), torch.from_numpy(tgt[:, 1:]).reshape(-1),
                                           ignore_index=m.pad_index)  # fmt: skip
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-5)
    _compare_grads(m.grads, twin)


def test_language_model_matches_torch_twin_over_two_chunks():
    m = RNNLanguageModel(13, 5, 7, num_layers=1, seed=0)
    twin = bench.torch_lm(m)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 13, (3, 9))
    _, _, state = m.loss(x[:, :4], x[:, 1:5], None, backward=False)  # first chunk: state only
    loss, _, _ = m.loss(x[:, 4:8], x[:, 5:9], state)
    with torch.no_grad():
        _, ts = twin(torch.from_numpy(x[:, :4]), None)
    logits, _ = twin(torch.from_numpy(x[:, 4:8]), tuple(s.detach() for s in ts))
    tl = torch.nn.functional.cross_entropy(
        logits.reshape(-1, 13), torch.from_numpy(x[:, 5:9]).reshape(-1)
    )
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-5)
    _compare_grads(m.grads, twin)
    ref, _ = cross_entropy_with_grad(logits.detach().numpy().reshape(-1, 13), x[:, 5:9].reshape(-1))
    np.testing.assert_allclose(ref, loss, rtol=1e-5)
