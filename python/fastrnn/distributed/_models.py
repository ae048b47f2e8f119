"""Self-describing model files for the workers: weights, constructor arguments and vocabularies
in one .npz (fastrnn.nn's atomic save_npz with a JSON `meta`), so that a worker can rebuild the
model from the path alone. Loaded models are cached per process (a worker loads each file once).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..models import KneserNeyLM, RNNLanguageModel, Seq2Seq, Vocab
from ..nn._io import load_npz, save_npz

FORMAT = "fastrnn.distributed/1"


def save_seq2seq(
    path: str | os.PathLike[str], model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab
) -> None:
    """Write a Seq2Seq and its vocabularies for `translate`."""
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"model: expected a fastrnn.models.Seq2Seq, got {type(model).__name__}")
    config = {
        "src_vocab_size": model.src_vocab_size,
        "tgt_vocab_size": model.tgt_vocab_size,
        "embedding_dim": model.embedding_dim,
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
        "decoder_hidden_size": model.decoder_hidden_size,
        "cell": model.cell_type,
        "attention": model.attention_type,
        "attention_size": getattr(model.attention, "attention_size", None),
        "dropout": model.dropout,
        "pad_index": model.pad_index,
        "bos_index": model.bos_index,
        "eos_index": model.eos_index,
        "dtype": str(model.dtype),
    }
    _check_vocab("src_vocab", src_vocab, model.src_vocab_size)
    _check_vocab("tgt_vocab", tgt_vocab, model.tgt_vocab_size)
    meta = {"format": FORMAT, "kind": "seq2seq", "config": config,
            "src_vocab": src_vocab.to_dict(), "tgt_vocab": tgt_vocab.to_dict()}  # fmt: skip
    save_npz(path, model.state_dict(), meta)


def save_language_model(
    path: str | os.PathLike[str], model: RNNLanguageModel, vocab: Vocab
) -> None:
    """Write an RNNLanguageModel and its vocabulary for `perplexity`."""
    if not isinstance(model, RNNLanguageModel):
        raise TypeError(
            f"model: expected a fastrnn.models.RNNLanguageModel, got {type(model).__name__}"
        )
    _check_vocab("vocab", vocab, model.vocab_size)
    config = {
        "vocab_size": model.vocab_size,
        "embedding_dim": model.embedding_dim,
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
        "cell": model.cell_type,
        "dropout": model.dropout,
        "dtype": str(model.dtype),
    }
    meta = {"format": FORMAT, "kind": "lm", "config": config, "vocab": vocab.to_dict()}
    save_npz(path, model.state_dict(), meta)


def _check_vocab(name: str, vocab: Any, size: int) -> None:
    if not isinstance(vocab, Vocab):
        raise TypeError(f"{name}: expected a fastrnn.models.Vocab, got {type(vocab).__name__}")
    if len(vocab) != size:
        raise ValueError(f"{name}: has {len(vocab)} tokens, the model's vocabulary {size}")


def load_model(path: str | os.PathLike[str]) -> tuple[str, Any, dict[str, Vocab]]:
    """(kind, model, vocabularies) from a file of `save_seq2seq` / `save_language_model`
    (kind "seq2seq" or "lm") or an ARPA file (kind "ngram", a KneserNeyLM, no vocabulary)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"model: no such file: {path!r}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # not a zip (.npz): an ARPA text file
        return "ngram", KneserNeyLM.from_arpa(path), {}
    arrays, meta = load_npz(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"model: {path!r} was not written by fastrnn.distributed.save_seq2seq or "
                         "save_language_model (no model description inside)")  # fmt: skip
    cfg = dict(meta["config"])
    if meta["kind"] == "seq2seq":
        model: Any = Seq2Seq(**cfg)
        vocabs = {k: Vocab.from_dict(meta[k]) for k in ("src_vocab", "tgt_vocab")}
    elif meta["kind"] == "lm":
        model = RNNLanguageModel(**cfg)
        vocabs = {"vocab": Vocab.from_dict(meta["vocab"])}
    else:
        raise ValueError(f"model: unknown kind {meta['kind']!r} in {path!r}")
    model.load_state_dict(arrays)
    model.eval()
    return meta["kind"], model, vocabs


Loaded = tuple[str, Any, dict[str, Vocab], threading.Lock]
_cache: dict[tuple[str, int, int], Loaded] = {}
_lock = threading.Lock()


def cached_model(path: str) -> Loaded:
    """load_model, once per process and file version (path, size, mtime), with a lock that
    callers hold while using the model (modules keep per-call state; threads take turns)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    with _lock:
        if key not in _cache:
            _cache[key] = (*load_model(path), threading.Lock())
        return _cache[key]
