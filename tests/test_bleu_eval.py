"""chrF / chrF++, paired significance tests and the command line against sacrebleu 2.x.

sacrebleu is the outside truth, run here as the reference: chrF scores and signatures on tables of
awkward text and hypothesis-generated corpora; the batched and pairwise forms against loops of
sacrebleu's sentence scores; the resampling kernels against sacrebleu's own float32 NumPy
arithmetic (with sums past 2**24, where float32 rounding shows); paired bootstrap and approximate
randomization against sacrebleu's PairedTest; the command line's JSON against sacrebleu's command
line; and WMT-style multi-system test sets built from text on this machine (Python's pydoc
topics), with systems made by perturbing the references deterministically. Also the BLEU
regressions of issue 10 (token-id range and shape errors, the command line's behaviour on closed
pipes, bad files, bad options and large input).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastrnn import _C, bleu
from fastrnn.bleu.__main__ import main as cli_main

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics import BLEU, CHRF  # noqa: E402
from sacrebleu.significance import PairedTest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")}


def without_version(signature: str) -> str:
    return signature.rsplit("|version:", 1)[0]


# --- chrF ------------------------------------------------------------------------------------

LINES = [
    "", " ", "a", "ab", "The cat sat on the mat.", "the cat sat on a mat", "(hi) there!", "end .",
    "Zürich, café — naïve…", "日本語のテキスト。", "emoji 😀 here!", "a\u3000b\xa0c\td", "  lead and trail  ",
    "x", ".", "!!", "\"quoted\"", "don't stop", "1,000.5 km/h", "e\u0301 combining", "A B C D E F G",
    "aaaaaaaa", "ab ab ab ab", "\ud800 lone", "MiXeD CaSe",
]  # fmt: skip
OPTIONS = [
    {}, {"word_order": 2}, {"word_order": 1}, {"eps_smoothing": True}, {"word_order": 2, "eps_smoothing": True},
    {"lowercase": True}, {"whitespace": True}, {"whitespace": True, "word_order": 2}, {"char_order": 3},
    {"beta": 1}, {"beta": 3, "word_order": 2}, {"char_order": 1, "word_order": 3},
]  # fmt: skip


def chrf_pairs() -> list[tuple[str, list[str]]]:
    rng = random.Random(3)
    return [(h, [rng.choice(LINES) for _ in range(rng.randint(1, 3))]) for h in LINES]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_chrf_matches_sacrebleu(opts: dict[str, Any]) -> None:
    metric = CHRF(**opts)
    pairs = chrf_pairs()
    for hyp, refs in pairs:
        ours, theirs = bleu.sentence_chrf(hyp, refs, **opts), metric.sentence_score(hyp, refs)
        assert ours.score == theirs.score and ours.name == theirs.name, (hyp, refs)
    hyps = [h for h, _ in pairs]
    streams = [[r[k] if k < len(r) else None for _, r in pairs] for k in range(3)]
    ours = bleu.corpus_chrf(hyps, streams, **opts)
    theirs = metric.corpus_score(hyps, streams)
    sig = metric.get_signature().format()
    assert ours.score == theirs.score
    assert without_version(ours.signature) == without_version(sig)
    assert ours.format(1, signature=sig) == theirs.format(1, signature=sig)
    assert ours.format(2, signature=sig, is_json=True) == theirs.format(
        2, signature=sig, is_json=True
    )
    assert ours.format(score_only=True) == theirs.format(score_only=True)
    expected = [metric.sentence_score(h, [s[i] for s in streams if s[i] is not None]).score
                for i, h in enumerate(hyps)]  # fmt: skip
    assert bleu.batch_sentence_chrf(hyps, streams, **opts).tolist() == expected
    stats = bleu.chrf_statistics(hyps, streams, **opts)
    assert stats.tolist() == metric._extract_corpus_statistics(hyps, streams)
    names = ("char_order", "word_order", "beta", "eps_smoothing")
    pure = bleu.compute_chrf(stats.sum(0).tolist(), **{k: v for k, v in opts.items() if k in names})
    assert pure.score == theirs.score


def test_pairwise_chrf_matches_sentence_scores() -> None:
    hyps, refs = LINES[:12], LINES[8:20]
    for opts in OPTIONS[:6]:
        metric = CHRF(**opts)
        got = bleu.pairwise_sentence_chrf(hyps, refs, **opts)
        assert got.shape == (len(hyps), len(refs))
        expected = [[metric.sentence_score(h, [r]).score for r in refs] for h in hyps]
        assert got.tolist() == expected


PIECES = ["the", "cat", "Cat", "a", "1", ".", ",", "-", "(", ")", "!", "é", "Zürich", "😀", "中文",
          "。", "\t", "\u3000", "\xa0", " ", "  ", "\u0301", "…", "ab", "ba", "aa"]  # fmt: skip
sentences = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(sentences, st.lists(sentences, min_size=1, max_size=3)), min_size=1, max_size=5
    ),
    st.integers(1, 7),
    st.integers(0, 3),
    st.sampled_from([1, 2, 3]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_generated_chrf_matches_sacrebleu(
    pairs: Any, char_order: int, word_order: int, beta: int, lc: bool, ws: bool, eps: bool
) -> None:
    opts = dict(char_order=char_order, word_order=word_order, beta=beta, lowercase=lc,
                whitespace=ws, eps_smoothing=eps)  # fmt: skip
    metric = CHRF(**opts)
    hyps = [h for h, _ in pairs]
    width = max(len(r) for _, r in pairs)
    streams = [[r[k] if k < len(r) else None for _, r in pairs] for k in range(width)]
    assert bleu.corpus_chrf(hyps, streams, **opts).score == metric.corpus_score(hyps, streams).score
    expected = [metric.sentence_score(h, r).score for h, r in pairs]
    assert bleu.batch_sentence_chrf(hyps, streams, **opts).tolist() == expected


BAD_CHRF = [
    (lambda: bleu.corpus_chrf(["a"], [["a"]], char_order=0), ValueError, r"char_order: expected an integer in \[1, 1000\], got 0"),
    (lambda: bleu.corpus_chrf(["a"], [["a"]], word_order=-1), ValueError, "word_order"),
    (lambda: bleu.corpus_chrf(["a"], [["a"]], word_order=2.0), TypeError, "word_order: expected an integer"),
    (lambda: bleu.corpus_chrf(["a"], [["a"]], beta="2"), TypeError, "beta: expected a number"),
    (lambda: bleu.corpus_chrf(["a"], [["a"]], beta=-1), ValueError, "beta: expected a finite number >= 0"),
    (lambda: bleu.corpus_chrf(["a"], [["a"]], whitespace=1), TypeError, "whitespace: expected True or False"),
    (lambda: bleu.corpus_chrf(["a", "b"], [["a"]]), ValueError, r"refs\[0\]: expected 2 references"),
    (lambda: bleu.sentence_chrf("a", "a"), TypeError, "wrap a single one"),
    (lambda: bleu.pairwise_sentence_chrf(["a"], []), ValueError, "refs: expected at least one sentence"),
    (lambda: bleu.compute_chrf([1, 2], char_order=6), ValueError, r"stats: expected 18 values"),
    (lambda: _C._chrf_stats(["a"], [[None]], 6, 0, 2.0, False, False), ValueError, "segment 0 has no reference"),
    (lambda: _C._chrf_scores(np.zeros((1, 5), np.int64), 6, 0, 2.0, False), ValueError, "stats: expected shape"),
]  # fmt: skip


@pytest.mark.parametrize("call,exc,message", BAD_CHRF)
def test_chrf_bad_input(call: Any, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        call()


# --- resampling kernels against sacrebleu's float32 arithmetic --------------------------------


def random_bleu_rows(rng: np.random.Generator, n: int, scale: int) -> np.ndarray:
    total = rng.integers(0, scale, (n, 4))
    correct = (total * rng.random((n, 4))).astype(np.int64)
    correct[rng.random((n, 4)) < 0.3] = 0
    sys_len = total[:, 0]
    ref_len = (sys_len + rng.integers(-scale // 4, scale // 4 + 1, n)).clip(0)
    return np.concatenate([sys_len[:, None], ref_len[:, None], correct, total], 1)


def random_chrf_rows(rng: np.random.Generator, n: int, order: int, scale: int) -> np.ndarray:
    h, r = rng.integers(0, scale, (n, order)), rng.integers(0, scale, (n, order))
    m = (np.minimum(h, r) * rng.random((n, order))).astype(np.int64)
    h[rng.random((n, order)) < 0.1] = 0
    r[rng.random((n, order)) < 0.1] = 0
    return np.stack([h, r, m], 2).reshape(n, 3 * order)


KERNEL_CASES = [
    ("bleu", {}), ("bleu", {"smooth_method": "floor"}), ("bleu", {"smooth_method": "floor", "smooth_value": 0.3}),
    ("bleu", {"smooth_method": "add-k"}), ("bleu", {"smooth_method": "add-k", "smooth_value": 0.37}),
    ("bleu", {"smooth_method": "none"}), ("bleu", {"effective_order": True}),
    ("chrf", {}), ("chrf", {"word_order": 2}), ("chrf", {"eps_smoothing": True}),
    ("chrf", {"word_order": 2, "eps_smoothing": True, "beta": 3}), ("chrf", {"char_order": 2, "beta": 1}),
]  # fmt: skip


@pytest.mark.parametrize("scale", [3, 100, 200000])
@pytest.mark.parametrize("metric,opts", KERNEL_CASES)
def test_bootstrap_kernel_matches_sacrebleu_float32(metric: str, opts: dict, scale: int) -> None:
    """Scores of resampled float32 sums, bit for bit and with sacrebleu's number types; at
    scale 200000 the sums pass 2**24, so the order of float32 additions matters too."""
    from fastrnn.bleu._significance import _metric

    rng = np.random.default_rng(scale)
    n = 400
    ours = _metric(metric, opts)
    theirs = BLEU(**opts) if metric == "bleu" else CHRF(**opts)
    order = opts.get("char_order", 6) + opts.get("word_order", 0)
    rows = [random_bleu_rows(rng, n, scale) if metric == "bleu" else random_chrf_rows(rng, n, order, scale)
            for _ in range(3)]  # fmt: skip
    table = np.ascontiguousarray(np.stack(rows, 1), dtype=np.float32)
    idx = rng.choice(n, size=(30, n), replace=True)
    got, is_f32 = _C._bootstrap_scores(table, idx, ours.spec)
    if scale == 200000:
        assert table[:, 0, 0].sum() > 2**24  # float32 sums are rounded here
    for q in range(3):
        stats = np.array(rows[q], dtype="float32")
        expected = [theirs._compute_score_from_stats(s.sum(0)).score for s in stats[idx]]
        assert got[q].tolist() == [float(e) for e in expected]
        assert is_f32[q].tolist() == [int(isinstance(e, np.float32)) for e in expected]


@pytest.mark.parametrize("scale", [30, 2**28])  # int32 and int64 accumulation
@pytest.mark.parametrize("n", [1, 50, 53])  # whole and partial blocks of 4 segments
def test_randomization_kernel_sums_exactly(scale: int, n: int) -> None:
    from fastrnn.bleu._significance import _metric

    rng = np.random.default_rng(n)
    base = random_bleu_rows(rng, n, scale)
    others = [random_bleu_rows(rng, n, scale) for _ in range(2)]
    sel = rng.integers(2, size=(20, n), dtype=bool)
    m = _metric("bleu", {})
    table = np.ascontiguousarray(np.stack(others, 1))
    a, b = _C._randomization_scores(base, table, sel.view(np.uint8), m.spec)
    metric = BLEU()
    for q, sys1 in enumerate(others):
        shuf_a, shuf_b = sel @ base + ~sel @ sys1, ~sel @ base + sel @ sys1
        assert a[q].tolist() == [metric._compute_score_from_stats(x).score for x in shuf_a]
        assert b[q].tolist() == [metric._compute_score_from_stats(x).score for x in shuf_b]


def test_randomization_kernel_errors() -> None:
    from fastrnn.bleu._significance import _metric

    rng = np.random.default_rng(0)
    base, sys1 = random_bleu_rows(rng, 50, 30), random_bleu_rows(rng, 50, 30)
    sel = rng.integers(2, size=(20, 50), dtype=bool)
    m = _metric("bleu", {})
    with pytest.raises(ValueError, match="idx: segment index out of range"):
        _C._bootstrap_scores(np.zeros((2, 1, 10), np.float32), np.array([[0, 2]]), m.spec)
    with pytest.raises(ValueError, match="sel: expected shape"):
        _C._randomization_scores(base, sys1[:, None, :].copy(), sel[:, :3].view(np.uint8), m.spec)


# --- paired tests against sacrebleu's PairedTest ---------------------------------------------


def sacrebleu_paired(systems: dict, refs: list, test: str, n: int, metric: Any) -> tuple[str, Any]:
    sigs, scores = PairedTest(
        list(systems.items()), {"m": metric}, None, test_type=test, n_samples=n
    )()
    key = next(k for k in scores if k != "System")  # the metric's name: "BLEU", "chrF2++", ...
    return sigs[key].format(), (key, scores[key])


def assert_same_results(ours: bleu.PairedResults, signature: str, named: tuple) -> None:
    name, theirs = named
    assert ours.name == name
    assert without_version(ours.signature) == without_version(signature)
    assert len(ours) == len(theirs)
    for r, t in zip(ours.values(), theirs):
        for k in ("score", "p_value", "mean", "ci"):
            expected = getattr(t, k)
            assert getattr(r, k) == (None if expected is None else float(expected)), k


def toy_systems(n: int = 120, k: int = 4, seed: int = 0) -> tuple[dict, list]:
    rng = random.Random(seed)
    words = "the a cat dog sat on mat big small red house runs quickly , . ! ( ) ü ß".split()
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 15))) for _ in range(n)]
    systems = {}
    for s in range(k):
        systems[f"sys{s}"] = [
            " ".join(w if rng.random() > 0.1 * (s + 1) else rng.choice(words) for w in r.split())
            for r in refs
        ]
    return systems, [refs]


PAIRED_CASES = [
    ("bleu", {}), ("bleu", {"smooth_method": "floor", "lowercase": True}), ("bleu", {"tokenize": "intl"}),
    ("chrf", {}), ("chrf", {"word_order": 2}), ("chrf", {"eps_smoothing": True, "whitespace": True}),
]  # fmt: skip


@pytest.mark.parametrize("metric,opts", PAIRED_CASES)
@pytest.mark.parametrize("test", ["bs", "ar"])
def test_paired_tests_match_sacrebleu(test: str, metric: str, opts: dict) -> None:
    systems, refs = toy_systems()
    n = 200 if test == "bs" else 300
    fn = bleu.paired_bootstrap if test == "bs" else bleu.paired_randomization
    ours = fn(systems, refs, n_samples=n, metric=metric, **opts)
    sb_metric = BLEU(references=refs, **opts) if metric == "bleu" else CHRF(references=refs, **opts)
    signature, theirs = sacrebleu_paired(systems, refs, test, n, sb_metric)
    assert_same_results(ours, signature, theirs)
    assert list(ours) == list(systems)
    assert ours[next(iter(systems))].p_value is None
    if test == "ar":
        assert all(r.mean is None and r.ci is None for r in ours.values())


def test_paired_seed_and_determinism(monkeypatch: pytest.MonkeyPatch) -> None:
    systems, refs = toy_systems(60, 3, seed=1)
    monkeypatch.setenv("SACREBLEU_SEED", "7")
    signature, theirs = sacrebleu_paired(systems, refs, "bs", 100, BLEU(references=refs))
    ours = bleu.paired_bootstrap(systems, refs, n_samples=100, seed=7)
    assert_same_results(ours, signature, theirs)
    assert "seed:7" in ours.signature and "bs:100" in ours.signature
    again = bleu.paired_bootstrap(systems, refs, n_samples=100, seed=7)
    assert [vars(r) for r in again.values()] == [vars(r) for r in ours.values()]
    other = bleu.paired_bootstrap(systems, refs, n_samples=100, seed=8)
    assert [r.mean for r in other.values()] != [r.mean for r in ours.values()]
    fresh = bleu.paired_randomization(systems, refs, n_samples=50, seed=None)
    assert "seed:none" in fresh.signature


def test_paired_tests_from_sharded_statistics() -> None:
    """Statistics counted shard by shard and concatenated give the text forms' results."""
    systems, refs = toy_systems(90, 3, seed=2)
    for metric, stats_of, opts in (
        ("bleu", bleu.bleu_statistics, {"lowercase": True}),
        ("chrf", bleu.chrf_statistics, {"word_order": 2}),
    ):
        shards = [slice(0, 30), slice(30, 75), slice(75, 90)]
        stats = {
            name: np.concatenate([stats_of(h[s], [refs[0][s]], **opts) for s in shards])
            for name, h in systems.items()
        }
        for text_form, stats_form, n in (
            (bleu.paired_bootstrap, bleu.paired_bootstrap_from_stats, 120),
            (bleu.paired_randomization, bleu.paired_randomization_from_stats, 150),
        ):
            want = text_form(systems, refs, n_samples=n, metric=metric, **opts)
            got = stats_form(stats, n_samples=n, metric=metric, **opts)
            assert [vars(r) for r in got.values()] == [vars(r) for r in want.values()]
            assert got.signature == want.signature and got.name == want.name
    bad = {"a": np.zeros((3, 10), np.int64), "b": np.zeros((3, 9), np.int64)}
    with pytest.raises(
        ValueError, match=r"stats\['b'\]: expected integer statistics of shape \(N, 10\)"
    ):
        bleu.paired_bootstrap_from_stats(bad)
    with pytest.raises(ValueError, match="negative"):
        bleu.paired_bootstrap_from_stats({"a": -np.ones((3, 10), int), "b": np.ones((3, 10), int)})


BAD_PAIRED = [
    (lambda: bleu.paired_bootstrap({"a": ["x"]}, [["x"]]), ValueError, "a baseline and at least one system"),
    (lambda: bleu.paired_bootstrap({"a": ["x"], "b": ["x", "y"]}, [["x"]]), ValueError, r"systems\['b'\]: expected 1 hypotheses"),
    (lambda: bleu.paired_bootstrap([["x"], ["y"]], [["x"]]), TypeError, "systems: expected a dict"),
    (lambda: bleu.paired_bootstrap({"a": ["x"], "b": ["y"]}, [["x"]], n_samples=0), ValueError, "n_samples: expected a positive integer"),
    (lambda: bleu.paired_bootstrap({"a": ["x"], "b": ["y"]}, [["x"]], seed=-1), ValueError, "seed: expected a non-negative integer"),
    (lambda: bleu.paired_bootstrap({"a": ["x"], "b": ["y"]}, [["x"]], metric="ter"), ValueError, "metric: expected one of 'bleu', 'chrf'"),
    (lambda: bleu.paired_randomization({"a": ["x"], "b": ["y"]}, [["x"]], metric="chrf", tokenize="13a"), TypeError, "tokenize: not an option of metric='chrf'"),
    (lambda: bleu.paired_randomization({"a": ["x"], "b": [1]}, [["x"]]), TypeError, r"systems\['b'\]\[0\]: expected str"),
]  # fmt: skip


@pytest.mark.parametrize("call,exc,message", BAD_PAIRED)
def test_paired_bad_input(call: Any, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        call()


# --- WMT-style test sets built from text on this machine -------------------------------------


def pydoc_sentences(limit: int) -> list[str]:
    from pydoc_data.topics import topics

    out: list[str] = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            text = " ".join(para.split())
            for sent in re.split(r"(?<=[.!?])\s+", text):
                if 20 <= len(sent) <= 240 and not sent.startswith(("*", ">>>", "|")):
                    out.append(sent)
    rng = random.Random(2026)
    rng.shuffle(out)
    return out[:limit]


def perturb(line: str, rate: float, rng: random.Random, vocab: list[str]) -> str:
    """A deterministic 'system output': word drops, substitutions, swaps, case and punctuation."""
    words = line.split()
    out: list[str] = []
    for w in words:
        u = rng.random()
        if u < rate * 0.3:
            continue
        if u < rate * 0.6:
            w = rng.choice(vocab)
        elif u < rate * 0.7:
            w = w.lower() if w[:1].isupper() else w.capitalize()
        elif u < rate * 0.8:
            w = w.strip(".,;:!?()")
        out.append(w)
    for i in range(len(out) - 1):
        if rng.random() < rate * 0.2:
            out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


@pytest.fixture(scope="module")
def wmt_like() -> tuple[dict[str, list[str]], list[list[str]]]:
    refs = pydoc_sentences(300)
    if len(refs) < 300:
        pytest.skip("pydoc_data.topics holds too little text here")
    rng = random.Random(7)
    vocab = sorted({w for line in refs for w in line.split()})
    ref_b = [
        perturb(line, 0.15, rng, vocab) for line in refs
    ]  # a second, paraphrase-like reference
    systems = {f"sys{k}": [perturb(line, rate, rng, vocab) for line in refs]
               for k, rate in enumerate([0.1, 0.12, 0.25, 0.4, 0.6])}  # fmt: skip
    return systems, [refs, ref_b]


@pytest.mark.parametrize(
    "opts", [{}, {"word_order": 2}, {"lowercase": True, "eps_smoothing": True}]
)
def test_real_data_chrf(wmt_like: Any, opts: dict) -> None:
    systems, refs = wmt_like
    metric = CHRF(**opts)
    for name, hyps in systems.items():
        streams = refs if name != "sys1" else refs[:1]
        rows = metric._extract_corpus_statistics(hyps, streams)  # sacrebleu's segment statistics
        ours = bleu.corpus_chrf(hyps, streams, **opts)
        assert ours.score == metric._aggregate_and_compute(rows).score
        assert without_version(ours.signature) == without_version(metric.get_signature().format())
        sentence = [metric._compute_f_score(r) for r in rows]  # sacrebleu's sentence scores
        assert bleu.batch_sentence_chrf(hyps, streams, **opts).tolist() == sentence
    assert bleu.corpus_chrf(hyps, refs, **opts).score == metric.corpus_score(hyps, refs).score


@pytest.mark.parametrize(
    "test,metric,opts",
    [("bs", "bleu", {}), ("bs", "chrf", {}), ("bs", "chrf", {"word_order": 2}), ("ar", "bleu", {}),
     ("ar", "chrf", {"word_order": 2})],
)  # fmt: skip
def test_real_data_significance(wmt_like: Any, test: str, metric: str, opts: dict) -> None:
    systems, refs = wmt_like
    n = 300
    fn = bleu.paired_bootstrap if test == "bs" else bleu.paired_randomization
    ours = fn(systems, refs, n_samples=n, metric=metric, **opts)
    sb_metric = BLEU(references=refs, **opts) if metric == "bleu" else CHRF(references=refs, **opts)
    signature, theirs = sacrebleu_paired(systems, refs, test, n, sb_metric)
    assert_same_results(ours, signature, theirs)
    # the test tells systems apart: the noisiest differs from the baseline significantly
    assert ours["sys4"].p_value < 0.05


SACREBLEU_CLI = shutil.which("sacrebleu")


@pytest.mark.skipif(SACREBLEU_CLI is None, reason="sacrebleu's command line is not installed")
@pytest.mark.parametrize(
    "args",
    [[], ["-m", "bleu", "chrf"], ["-m", "chrf", "-cw", "2", "-b"], ["-m", "bleu", "chrf", "-f", "text"],
     ["MULTI", "-m", "bleu", "chrf"], ["MULTI", "--paired-bs", "--paired-bs-n", "150"],
     ["MULTI", "--paired-ar", "--paired-ar-n", "200", "-m", "chrf", "--chrf-word-order", "2"],
     ["-nr", "2"], ["-m", "chrf", "-sl", "-cw", "2"], ["-m", "bleu", "chrf", "-ci", "-cin", "300"],
     ["-m", "bleu", "chrf", "-ci", "-cin", "200", "-f", "text"]],
)  # fmt: skip
def test_cli_json_matches_sacrebleu(wmt_like: Any, tmp_path: Any, args: list[str]) -> None:
    systems, refs = wmt_like
    names = []
    for name, hyps in list(systems.items())[:4]:
        (tmp_path / name).write_text("\n".join(hyps) + "\n", encoding="utf-8")
        names.append(name)
    (tmp_path / "ref.txt").write_text("\n".join(refs[0]) + "\n", encoding="utf-8")
    (tmp_path / "ref2.txt").write_text("\n".join(refs[1]) + "\n", encoding="utf-8")
    both = [f"{a}\t{b or '.'}" for a, b in zip(*refs)]  # a trailing tab would be stripped
    (tmp_path / "both.txt").write_text("\n".join(both) + "\n", encoding="utf-8")
    if args[:1] == ["MULTI"]:
        cmd = ["ref.txt", "ref2.txt", "-i", *names, *args[1:]]
    elif args[:1] == ["-nr"]:
        cmd = ["both.txt", "-i", names[2], *args]
    else:
        cmd = ["ref.txt", "-i", names[1], *args]

    def run(prog: list[str]) -> str:
        env = {k: v for k, v in ENV.items() if not k.startswith("SACREBLEU")}
        out = subprocess.run(prog + cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.replace("version:2.6.0", "V").replace('"2.6.0"', '"V"')

    theirs = run([SACREBLEU_CLI, "-q"])
    ours = run([sys.executable, "-m", "fastrnn.bleu"])
    ours = re.sub(r"version:fastrnn-[^|\"\s]+", "V", ours).replace(
        f'"fastrnn-{bleu_version()}"', '"V"'
    )
    if ("-f" in args and "text" in args) or "-sl" in args:
        assert ours == theirs.replace("\x1b", "")  # single-system text lines carry no colour
    else:
        assert json.loads(ours) == json.loads(theirs)
        assert ours == theirs  # byte for byte: same keys, order, indentation and numbers


def bleu_version() -> str:
    import fastrnn

    return fastrnn.__version__


def test_cli_stdin_columns_and_text_table(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    systems, refs = toy_systems(40, 3, seed=4)
    systems = {k: [h or "." for h in v] for k, v in systems.items()}  # no empty last column
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(refs[0]) + "\n", encoding="utf-8")
    stdin = "\n".join("\t".join(cols) for cols in zip(*systems.values())) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    assert cli_main([str(ref), "--paired-bs", "--paired-bs-n", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["system"] for o in out] == ["Baseline", "System 1", "System 2"]
    expected = bleu.paired_bootstrap(systems, refs, n_samples=100)
    assert [o["BLEU"] for o in out] == [vars(r) for r in expected.values()]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    assert (
        cli_main([str(ref), "-m", "bleu", "chrf", "-f", "text", "--paired-ar", "-parn", "50"]) == 0
    )
    text = capsys.readouterr().out
    assert "Baseline" in text and "chrF2" in text and "(p = " in text and "ar:50" in text


# --- issue 10: BLEU over token ids -------------------------------------------------------------

BAD_IDS = [
    (lambda: bleu.corpus_bleu_ids(np.array([[2**64 - 1, 5]], np.uint64), [np.array([[-1, 5]])], max_ngram_order=2), r"hyps: token ids must be in the int64 range .*got 18446744073709551615"),
    (lambda: bleu.corpus_bleu_ids([[2**64 - 1, 5]], [[[-1, 5]]]), r"hyps\[0\]: token ids must be in the int64 range"),
    (lambda: bleu.corpus_bleu_ids([[1, 5]], [[[-(2**63) - 1, 5]]]), r"refs\[0\]\[0\]: token ids must be in the int64 range"),
    (lambda: bleu.sentence_bleu_ids(np.array([2**63], np.uint64), [[5]]), "token ids must be in the int64 range"),
    (lambda: bleu.corpus_bleu_ids(np.array([[1]]), np.array([[[2**64 - 1]]], np.uint64)), r"refs\[0\]: token ids must be in the int64 range"),
    (lambda: bleu.corpus_bleu_ids([[1, [2, 3]]], [[[1, 2]]]), r"hyps\[0\]: expected a flat sequence of token ids \(ints\), got nested"),
    (lambda: bleu.sentence_bleu_ids([1, [2]], [[1, 2]]), r"hyps\[0\]: expected a flat sequence"),
    (lambda: bleu.pairwise_sentence_bleu_ids([[1, 2]], [[1, [2]]]), r"refs\[0\]: expected a flat sequence"),
    (lambda: bleu.corpus_bleu_ids([[1, 2]], [[[1, 2]]], exclude=[[1], [2, 3]]), "exclude: expected a flat sequence"),
]  # fmt: skip


@pytest.mark.parametrize("call,message", BAD_IDS)
def test_ids_out_of_range_or_ragged_are_clear_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
    assert "inhomogeneous" not in message


def test_ids_at_the_int64_edges_still_score() -> None:
    top = np.array([[2**63 - 1, 5]], np.uint64)
    assert bleu.corpus_bleu_ids(
        top, [top.astype(np.int64)], max_ngram_order=2
    ).score == pytest.approx(100)
    low = [[-(2**63), 5]]
    assert bleu.corpus_bleu_ids(low, [low], max_ngram_order=2).score == pytest.approx(100)


def test_private_id_stats_checks_nrefs_without_overflow() -> None:
    z = np.zeros(0, np.int64)
    with pytest.raises(ValueError, match="one entry per stream and hypothesis"):
        _C._bleu_id_stats(
            z, np.zeros(5, np.int64), z, np.zeros(1, np.int64), np.ones(0, np.uint8), 2**62, 4
        )


# --- issue 10: the command line ----------------------------------------------------------------


def run_module(args: list[str], stdin: bytes = b"", **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastrnn.bleu", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        **kw,
    )


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, pattern: str) -> None:
    err = p.stderr.decode()
    assert p.returncode == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert re.search(pattern, lines[-1]), err
    if code != 2:  # usage errors (2) come after argparse's usage lines
        assert len(lines) == 1, err


def test_cli_closed_pipe_is_quiet(tmp_path: Any) -> None:
    lines = [f"sentence number {i} of a long output" for i in range(20000)]
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(lines) + "\n")
    for _ in range(2):
        p = subprocess.Popen(
            [sys.executable, "-m", "fastrnn.bleu", str(ref), "-sl", "-f", "text", "-i", str(ref)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
        )  # fmt: skip
        assert p.stdout is not None and p.stderr is not None
        p.stdout.read(100)  # like `| head -c 100`: read a little, then go away
        p.stdout.close()
        err = p.stderr.read().decode()
        code = p.wait()
        assert err == "", err
        assert code in (-signal.SIGPIPE, 128 + signal.SIGPIPE), code


def test_cli_closed_pipe_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text("a b c\n")

    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise io.UnsupportedOperation

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a b c\n")))
    monkeypatch.setattr(sys, "stdout", Closed())
    assert cli_main([str(ref)]) == 128 + signal.SIGPIPE


def test_cli_bad_files_and_options(tmp_path: Any) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text("the cat\n")
    truncated = tmp_path / "cut.txt.gz"
    truncated.write_bytes(gzip.compress(b"the cat sat on the mat\n" * 1000)[:60])
    not_gzip = tmp_path / "plain.txt.gz"
    not_gzip.write_bytes(b"this is not gzip data\n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("un café au lait\n".encode("latin-1"))
    assert_one_line_error(
        run_module([str(ref), "-i", str(truncated)]), 1, r"cut.txt.gz: corrupt or truncated gzip"
    )
    assert_one_line_error(
        run_module([str(not_gzip)], b"x\n"), 1, r"plain.txt.gz: corrupt or truncated gzip"
    )
    assert_one_line_error(
        run_module([str(ref), "-e", "bogus"], b"x\n"), 2, r"unknown encoding: 'bogus'"
    )
    assert_one_line_error(
        run_module([str(latin)], b"x\n"), 1, r"latin.txt: not valid utf-8 .*see -e"
    )
    assert_one_line_error(
        run_module([str(tmp_path / "missing.txt")], b"x\n"), 1, r"missing.txt: No such file"
    )
    assert_one_line_error(
        run_module([str(ref), "-nr", "0"]), 2, r"-nr/--num-refs: expected a positive integer"
    )
    assert_one_line_error(
        run_module([str(ref), "--paired-bs"], b"x\n"), 1, r"give the baseline and the systems"
    )
    assert_one_line_error(
        run_module([str(ref), "-ci"], b"x\tx\n"), 1, r"-ci: for one system at corpus level"
    )
    assert_one_line_error(
        run_module([str(ref), "-m", "chrf", "-cw", "-1"], b"x\n"), 1, r"word_order"
    )
    good = run_module(
        [str(latin), "-e", "latin-1", "-f", "text"], "un café au lait\n".encode("latin-1")
    )
    assert good.returncode == 0 and " = 100.0 " in good.stdout.decode()


def test_cli_huge_num_refs_fails_before_allocating(tmp_path: Any) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text("a\tb\nc\td\n")
    code = textwrap.dedent(f"""
        import resource, sys
        from fastrnn.bleu.__main__ import main
        sys.stdin = open({str(ref)!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        code = main([{str(ref)!r}, "-nr", "100000000"])
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(code, grown)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    status, grown_kib = p.stdout.split()
    assert status == "1" and "expected 100000000 tab-separated references, found 2" in p.stderr
    assert int(grown_kib) < 50 * 1024  # main allocated 100M lists (5.9 GiB) first


MEMORY = textwrap.dedent("""
    import random, resource, sys
    from fastrnn import bleu
    rng = random.Random(0)
    words = [f"w{i}x" for i in range(50000)]
    hyp = " ".join(rng.choice(words) for _ in range(500000))
    ref = " ".join(rng.choice(words) for _ in range(500000))
    score = getattr(bleu, sys.argv[1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    score([hyp], [[ref]])
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(grown * 1024 / len(hyp))
""")


@pytest.mark.parametrize("metric", ["corpus_bleu", "corpus_chrf"])
def test_memory_is_proportional_to_the_line(metric: str) -> None:
    """A 4 MB line: main needed 114x its size for BLEU and 574x for chrF (sacrebleu: ~78x)."""
    p = subprocess.run(
        [sys.executable, "-c", MEMORY, metric], capture_output=True, text=True, env=ENV
    )
    assert p.returncode == 0, p.stderr
    assert float(p.stdout) < 60, p.stdout


def test_cli_out_of_memory_is_one_line(tmp_path: Any) -> None:
    pytest.importorskip("resource")
    big = tmp_path / "big.txt"
    rng = random.Random(1)
    big.write_text(" ".join(f"w{rng.randrange(10**6)}" for _ in range(1_500_000)) + "\n")
    code = textwrap.dedent(f"""
        import resource, sys
        from fastrnn.bleu.__main__ import main
        import fastrnn.bleu
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + 150 * 2**20, hard))
        sys.exit(main([{str(big)!r}, "-i", {str(big)!r}]))
    """)
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc to size the memory limit")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV)
    assert_one_line_error(p, 1, r"error: out of memory")
