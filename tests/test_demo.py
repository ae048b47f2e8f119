"""python -m fastrnn.demo: a few plain lines (no raw dicts, no CUDA error text), a passing check."""

from __future__ import annotations

import fastrnn
from fastrnn import demo


def test_demo_prints_a_few_clean_lines(monkeypatch, capsys):
    monkeypatch.setattr(demo, "T", 5)
    monkeypatch.setattr(demo, "B", 2)
    monkeypatch.setattr(demo, "I", 8)
    monkeypatch.setattr(demo, "H", 8)
    monkeypatch.setattr(demo, "REPEAT", 1)
    assert demo.main() == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    amx = fastrnn.backends()["active"] == "amx_bf16"  # adds the autocast lines
    assert len(lines) <= (12 if amx else 9)
    assert lines[0] == f"fastrnn {fastrnn.__version__}"
    assert fastrnn.backends()["active"] in lines[1]
    assert "{" not in out and "driver" not in out.lower()
    assert ", ok" in out
    verdict = next(i for i, line in enumerate(lines) if "faster" in line or "slower" in line)
    assert "ms" in lines[verdict - 1]
    if amx:
        assert "fastrnn.autocast" in lines[verdict + 1]
        assert "ms" in lines[verdict + 2] and "max |error|" in lines[verdict + 2]
    else:
        assert verdict == len(lines) - 1


def test_demo_reference_is_the_layer():
    import numpy as np

    m = fastrnn.LSTM(3, 4, seed=1).eval()
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    out, _ = m(x.astype(np.float32))
    np.testing.assert_allclose(demo.numpy_lstm(x, m.state_dict()), out, atol=1e-5)
