"""The package's surface: `import fastrnn` stays light and shows only public names."""

from __future__ import annotations

import subprocess
import sys

import fastrnn


def test_import_is_light():
    code = (
        "import sys, fastrnn\n"
        "lazy = ('fastrnn.models', 'fastrnn.bleu', 'fastrnn.embeddings', 'fastrnn.onnx')\n"
        "print(sorted(m for m in lazy if m in sys.modules))\n"
        "fastrnn.models, fastrnn.bleu, fastrnn.embeddings\n"
        "print(sorted(m for m in lazy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == [
        "[]",
        "['fastrnn.bleu', 'fastrnn.embeddings', 'fastrnn.models']",
    ]


def test_dir_shows_only_public_names():
    names = dir(fastrnn)
    assert names == sorted(fastrnn.__all__)
    assert not {"os", "sys", "Any", "annotations", "importlib"} & set(names)
    for name in fastrnn.__all__:
        assert getattr(fastrnn, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    try:
        fastrnn.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")
