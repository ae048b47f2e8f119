"""Smoke tests of the demos with tiny budgets (their full runs are in the README/bench notes)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from fastrnn.examples import charlm, dates


def test_date_formats_are_unambiguous_and_cover_the_vocabulary():
    rng = np.random.default_rng(0)
    ds = dates.random_dates(30000, rng)
    texts = dates.render(ds, rng)
    seen: dict[str, dt.date] = {}
    for t, d in zip(texts, ds):
        assert seen.setdefault(t, d) == d, f"{t!r} reads as {seen[t]} and {d}"
    src_vocab, tgt_vocab = dates.make_vocabs()
    for t in texts[:2000]:
        assert src_vocab.unk_index not in src_vocab.encode(t), t
    assert {"3 May 1979", "12.09.21"} <= {
        f(dt.date(1979, 5, 3), np.random.default_rng(1)) for f in dates.FORMATS
    } | {f(dt.date(2021, 9, 12), np.random.default_rng(1)) for f in dates.FORMATS}
    assert len(tgt_vocab) == 15


def test_dates_demo_smoke(tmp_path, capsys):
    res = dates.main(["--time-limit", "3", "--test-size", "40", "--threads", "1", "--out", str(tmp_path),
                      "--progress", "none", "--batch-size", "32"])  # fmt: skip
    assert 0.0 <= res["accuracy"] <= 1.0 and res["steps"] >= 1
    out = capsys.readouterr().out
    assert "exact match on 40 held-out dates (greedy)" in out
    assert (tmp_path / "dates.ckpt.npz").exists()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "skipping the attention heatmap" in out
    else:
        assert (tmp_path / "attention.png").exists()


def test_charlm_demo_smoke(tmp_path, capsys):
    res = charlm.main(["--epochs", "1", "--max-chars", "6000", "--hidden", "16", "--embedding", "8",
                       "--batch-size", "4", "--bptt", "16", "--ngram", "3", "--sample-len", "20",
                       "--threads", "1", "--out", str(tmp_path), "--progress", "none"])  # fmt: skip
    assert np.isfinite(res["test_ppl"]) and res["ngram_test_ppl"] > 1
    assert "val_ppl" in res["history"][-1]
    out = capsys.readouterr().out
    assert "test perplexity" in out and "--- temperature 0.5 ---" in out


def test_charlm_text_source_is_offline():
    docs, source = charlm.load_texts()
    assert sum(map(len, docs)) > 100_000
    assert "fortunes" in source or "pydoc_data" in source
    with pytest.raises(SystemExit):
        charlm.main(["--cell", "transformer"])


def test_charlm_falls_back_to_python_docs_without_fortunes(monkeypatch):
    monkeypatch.setattr(charlm, "FORTUNE_DIRS", ("/nonexistent/fortunes",))
    docs, source = charlm.load_texts()
    assert "pydoc_data" in source and sum(map(len, docs)) > 100_000
