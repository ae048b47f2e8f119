"""fastrnn.bleu against sacrebleu, the outside truth: every statistic, bit for bit.

Tables of hand-made cases (13a and intl tokenizer edge cases, empty strings, one word, several and
missing references, every smoothing, lowercasing, n-gram orders), hypothesis-generated corpora of
awkward text, the batched and pairwise sentence scores against sacrebleu loops, the token-id forms
against text BLEU with tokenize="none", the command line against sacrebleu's, and bad input. The
tokenizers' Python references are checked against sacrebleu and their C++ twins against both.
"""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastrnn import bleu
from fastrnn.bleu import _text
from fastrnn.bleu.__main__ import main as cli_main

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics import BLEU  # noqa: E402

TOKENIZERS = ["13a", "intl", "char", "none"]
SMOOTHING = [("exp", None), ("floor", None), ("floor", 0.5), ("add-k", None), ("add-k", 2),
             ("add-k", 0.5), ("none", None)]  # fmt: skip


def sb_tokenize(name: str, line: str) -> list[str]:
    """What sacrebleu's BLEU sees of a line: its tokenizer after rstrip, split on whitespace."""
    return BLEU(tokenize=name).tokenizer(line.rstrip()).split()


def stats(s: Any) -> tuple[Any, ...]:
    return (s.score, s.counts, s.totals, s.precisions, s.bp, s.sys_len, s.ref_len, s.ratio)


def without_version(signature: str) -> str:
    return signature.rsplit("|version:", 1)[0]


def assert_same(ours: bleu.BLEUScore, theirs: Any, metric: Any | None = None) -> None:
    assert stats(ours) == stats(theirs)
    assert [type(c) for c in ours.counts] == [type(c) for c in theirs.counts]
    assert ours.format() == theirs.format()
    if metric is not None:
        sig = metric.get_signature().format()
        assert without_version(ours.signature) == without_version(sig)
        assert ours.format(1, signature=without_version(ours.signature)) == theirs.format(
            1, signature=without_version(sig)
        )


# --- tokenizers ------------------------------------------------------------------------------

LINES_13A = [
    "", " ", "\t\n", "Hello, world.", "3.5 1,000 10-12 -5 5- 1-", "a.b a,b 1.b b.1", "U.S.A.",
    "end.", ".start", ",lead", "x-y 1-2 a-1 --", "a..b...c ,,, .,.,", "1. 22, 3.5. 4,5,", "(1) [2] {3}",
    "'quoted' \"double\" `back`", "$100 50% a/b @user #tag ~^_|", "don't it's. rock'n'roll",
    "&amp;quot; &lt;b&gt; &quot;x&quot; &amp;amp; &unknown;", "<skipped> kept<skipped>", "<skip<skipped>ped>",
    "hy-\nphen line\nbreak", "tab\tsep", "ideo\u3000space nb\xa0sp \u2028ls \x85nel \x1cfs",
    "café. naïve, Zürich-2", "émoji 😀. end", "trailing   \t", "ends with dash -", "digit-\n3",
    "3.14.15 0.5,1.5 1,,2 1..2", "a-\n", "\u00bfQu\u00e9?", "中文，标点。", "x\u0301.",
]  # fmt: skip
LINES_INTL = [
    "", "Hello, world!", "in 2024.", "2024. next", "1,000.5 and 3.14", "«quoted» „German“",
    "¿Qué? ¡Sí!", "€100 5€ $5 £3", "α+β=γ ≤ ∞", "中文，标点。", "日本語「かぎ」", "a—b a–b a-b",
    "x… y...", "🙂 emoji ♥", "10% ©2024 ®", "3.5°C -5°F", "٣٫٥ ١٬٠٠٠", "½ x² ⅓", "e.g. Mr.Smith",
    "tab\tsep\u3000ideo", "'single' \"double\"", "a/b\\c", "C++ #1 @home", "x\u0301.", "end.  ",
]  # fmt: skip
LINES_OTHER = ["", "abc", "a b  c", "日本", "e\u0301", "😀x", " lead", "a\u3000b\xa0c", "tab\tx"]


@pytest.mark.parametrize(
    "name,line",
    [("13a", x) for x in LINES_13A]
    + [("intl", x) for x in LINES_INTL + LINES_13A]
    + [(t, x) for t in ("char", "none") for x in LINES_OTHER + LINES_13A[:12]],
)
def test_tokenizer_matches_sacrebleu(name: str, line: str) -> None:
    expected = sb_tokenize(name, line)
    tok = bleu.get_tokenizer(name)
    assert tok(line.rstrip()).split() == expected  # the Python reference
    assert tok.batch([line])[0].split() == expected  # the C++ tokenizer
    assert tok.signature == name


def test_tokenizer_lookup() -> None:
    assert bleu.TOKENIZERS == ("13a", "intl", "char", "none")
    assert bleu.get_tokenizer("13a") is bleu.get_tokenizer("13a")
    with pytest.raises(
        ValueError, match="tokenize: expected one of '13a', 'intl'.*got 'spm'.*tokenize='none'"
    ):
        bleu.get_tokenizer("spm")
    with pytest.raises(TypeError, match="tokenize: expected a tokenizer name"):
        bleu.get_tokenizer(["13a"])  # type: ignore[arg-type]


def test_intl_table_agrees_with_unicodedata() -> None:
    """The flags (from `regex`, or unicodedata without it) agree with this interpreter's
    unicodedata on every code point both Unicode versions assign the same way."""
    import unicodedata

    from fastrnn.bleu.tokenizers import _unicode

    flags = np.frombuffer(_unicode.category_flags(), np.uint8)
    bit = {"P": _unicode.PUNCT, "S": _unicode.SYMBOL, "N": _unicode.NUMBER}
    rng = np.random.default_rng(0)
    cps = np.concatenate([np.arange(0x3000), rng.integers(0x3000, 0x30000, 3000)])
    disagree = [
        cp
        for cp in cps
        if unicodedata.category(chr(cp)) != "Cn"
        and bit.get(unicodedata.category(chr(cp))[0], 0) != flags[cp]
    ]
    assert len(disagree) <= 0.01 * len(cps)  # only characters recategorized by newer Unicode


# --- corpus BLEU: tables ---------------------------------------------------------------------

CORPORA = {
    "empty-hyp": ([""], [["the cat"]]),
    "empty-ref": (["the cat"], [[""]]),
    "both-empty": ([""], [[""]]),
    "one-word-match": (["cat"], [["cat"]]),
    "one-word-miss": (["cat"], [["dog"]]),
    "perfect": (["the cat sat on the mat ."], [["the cat sat on the mat ."]]),
    "clipping": (["the the the the the the"], [["the cat is on the mat"]]),
    "two-refs": (
        ["the cat sat on the mat", "a dog barked"],
        [
            ["the cat is on the mat", "the dog barked loudly"],
            ["there is a cat on the mat", "a dog barks"],
        ],
    ),
    "closest-ref-tie": (["a b c"], [["a b"], ["a b c d"]]),
    "missing-refs": (["a b c d", "e f g"], [["a b c e", "e f"], [None, "e f g h"]]),
    "short-lines": (["a", "b c", ""], [["a", "b", "c d e f"]]),
    "long-hyp": (["a b c d e f g h i j"], [["a b c"]]),
    "punctuation": (
        ["Hello, world! It's 3.5-4 km (approx.)."],
        [["Hello world! It is 3.5 - 4 km, approx."]],
    ),
    "mixed-case": (["The Cat SAT"], [["the cat sat"]]),
    "unicode": (["Zürich café, naïve — 😀."], [["zürich Café naïve - 😀 ."]]),
    "whitespace": (["  a\tb\u3000c  "], [["a b c"]]),
    "many": (
        [f"w{i % 7} w{i % 3} x{i % 5} y" for i in range(40)],
        [[f"w{i % 7} w{(i + 1) % 3} x{i % 5} y z" for i in range(40)]],
    ),
}

OPTIONS: list[dict[str, Any]] = (
    [{}]
    + [{"smooth_method": m, "smooth_value": v} for m, v in SMOOTHING]
    + [{"tokenize": t} for t in TOKENIZERS]
    + [{"lowercase": True}, {"max_ngram_order": 1}, {"max_ngram_order": 2}, {"max_ngram_order": 6}]
    + [{"effective_order": True}, {"effective_order": True, "smooth_method": "floor"}]
)


@pytest.mark.parametrize("corpus", list(CORPORA), ids=list(CORPORA))
@pytest.mark.parametrize(
    "opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_corpus_bleu_matches_sacrebleu(corpus: str, opts: dict[str, Any]) -> None:
    hyps, refs = CORPORA[corpus]
    metric = BLEU(**opts)
    theirs = metric.corpus_score(hyps, refs)
    assert_same(bleu.corpus_bleu(hyps, refs, **opts), theirs, metric)


@pytest.mark.parametrize("corpus", list(CORPORA), ids=list(CORPORA))
@pytest.mark.parametrize("method,value", SMOOTHING)
def test_sentence_bleu_matches_sacrebleu(corpus: str, method: str, value: float | None) -> None:
    hyps, refs = CORPORA[corpus]
    for i, hyp in enumerate(hyps):
        mine = [s[i] for s in refs]
        theirs = sacrebleu.sentence_bleu(hyp, mine, smooth_method=method, smooth_value=value)
        ours = bleu.sentence_bleu(hyp, mine, smooth_method=method, smooth_value=value)
        assert_same(ours, theirs)
        assert "|eff:yes|" in ours.signature


@pytest.mark.parametrize("corpus", ["two-refs", "many", "missing-refs", "short-lines", "unicode"])
@pytest.mark.parametrize("opts", [{}, {"tokenize": "intl", "lowercase": True},
                                  {"smooth_method": "add-k", "smooth_value": 0.5},
                                  {"effective_order": False, "max_ngram_order": 3}])  # fmt: skip
def test_batch_and_pairwise_match_sacrebleu_loops(corpus: str, opts: dict[str, Any]) -> None:
    hyps, refs = CORPORA[corpus]
    metric = BLEU(**{"effective_order": True, **opts})
    expected = [metric.sentence_score(h, [s[i] for s in refs]).score for i, h in enumerate(hyps)]
    got = bleu.batch_sentence_bleu(hyps, refs, **opts)
    assert got.dtype == np.float64 and got.shape == (len(hyps),)
    assert got.tolist() == expected
    flat = [r for s in refs for r in s if r is not None]
    pair = bleu.pairwise_sentence_bleu(hyps, flat, **opts)
    assert pair.shape == (len(hyps), len(flat))
    assert pair.tolist() == [[metric.sentence_score(h, [r]).score for r in flat] for h in hyps]


def test_signature_and_formats() -> None:
    hyps, refs = CORPORA["two-refs"]
    s = bleu.corpus_bleu(hyps, refs, smooth_method="floor", lowercase=True, tokenize="intl")
    assert s.signature.startswith(
        "nrefs:2|case:lc|eff:no|tok:intl|smooth:floor[0.10]|version:fastrnn-"
    )
    v = bleu.corpus_bleu(*CORPORA["missing-refs"])
    assert v.signature.startswith("nrefs:var|")
    assert bleu.corpus_bleu_ids([[1, 2]], [[[1, 2]]]).signature.startswith(
        "nrefs:1|eff:no|tok:ids|smooth:exp|version:fastrnn-"
    )
    theirs = BLEU(smooth_method="floor", lowercase=True, tokenize="intl")
    theirs.corpus_score(hyps, refs)
    sig = without_version(theirs.get_signature().format())
    assert s.format(width=1, signature=sig) == theirs.corpus_score(hyps, refs).format(
        1, signature=sig
    )
    assert s.format(score_only=True) == f"{s.score:.2f}"
    assert repr(s) == s.format()
    assert '"name": "BLEU"' in s.format(is_json=True, signature=s.signature)
    assert pickle.loads(pickle.dumps(s)) == s


def test_compute_bleu_is_sacrebleus() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        order = int(rng.integers(1, 6))
        total = rng.integers(0, 30, order).tolist()
        correct = [int(rng.integers(0, t + 1)) if rng.random() < 0.8 else 0 for t in total]
        sys_len, ref_len = int(rng.integers(0, 40)), int(rng.integers(0, 40))
        method, value = SMOOTHING[int(rng.integers(len(SMOOTHING)))]
        eff = bool(rng.random() < 0.5)
        args = (list(correct), list(total), sys_len, ref_len, method, value, eff, order)
        assert stats(bleu.compute_bleu(*args)) == stats(BLEU.compute_bleu(*args))


def test_batched_scores_follow_this_interpreters_sum() -> None:
    assert _text.COMPENSATED_SUM == (sum([1.0, 1e100, 1.0, -1e100]) == 2.0)


def test_tokenized_period_warning(caplog: pytest.LogCaptureFixture) -> None:
    hyps = ["a b ."] * 100
    with caplog.at_level(logging.WARNING, logger="fastrnn.bleu"):
        bleu.corpus_bleu(hyps, [hyps], force=True)
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="fastrnn.bleu"):
        bleu.corpus_bleu(hyps, [hyps])
    assert "tokenized period" in caplog.text


# --- corpora generated by hypothesis ---------------------------------------------------------

PIECES = ["the", "cat", "Cat", "a", "1", "3.5", "1,000", "x-y", "10-12", ".", ",", "-", "'s", "&amp;",
          "&quot;", "<skipped>", "(", ")", "!", "?", "é", "Zürich", "€", "😀", "中文", "，", "。", "«", "»",
          "½", "٣", "\t", "\n", "\u3000", "\xa0", " ", "  ", "-\n", "\u0301", "…", "—"]  # fmt: skip
sentences = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


@st.composite
def corpora(draw: Any) -> tuple[list[str], list[list[str | None]]]:
    n = draw(st.integers(1, 5))
    hyps = draw(st.lists(sentences, min_size=n, max_size=n))
    nrefs = draw(st.integers(1, 3))
    refs = [draw(st.lists(sentences | st.none(), min_size=n, max_size=n)) for _ in range(nrefs)]
    for i in range(n):  # every segment keeps a reference
        if all(s[i] is None for s in refs):
            refs[0][i] = draw(sentences)
    return hyps, refs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpora(),
    st.sampled_from(TOKENIZERS),
    st.sampled_from(SMOOTHING),
    st.booleans(),
    st.integers(1, 5),
    st.booleans(),
)
def test_generated_corpora_match_sacrebleu(
    corpus: Any, tok: str, smooth: Any, lowercase: bool, order: int, eff: bool
) -> None:
    hyps, refs = corpus
    opts = dict(tokenize=tok, smooth_method=smooth[0], smooth_value=smooth[1], lowercase=lowercase,
                max_ngram_order=order, effective_order=eff)  # fmt: skip
    metric = BLEU(**opts)
    assert_same(
        bleu.corpus_bleu(hyps, refs, force=True, **opts), metric.corpus_score(hyps, refs), metric
    )
    expected = [metric.sentence_score(h, [s[i] for s in refs if s[i] is not None]).score
                for i, h in enumerate(hyps)]  # fmt: skip
    assert bleu.batch_sentence_bleu(hyps, refs, **opts).tolist() == expected


# --- token ids -------------------------------------------------------------------------------


def as_words(ids: Any) -> str:
    return " ".join(f"t{int(i)}" for i in ids)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), max_size=10), min_size=1, max_size=5),
    st.integers(1, 3),
    st.randoms(use_true_random=False),
    st.sampled_from(SMOOTHING),
)
def test_ids_equal_text_with_tokenize_none(
    hyps: list[list[int]], nrefs: int, rnd: Any, smooth: Any
) -> None:
    refs = [
        [[rnd.randint(0, 6) for _ in range(rnd.randint(0, 10))] for _ in hyps] for _ in range(nrefs)
    ]
    opts = dict(smooth_method=smooth[0], smooth_value=smooth[1])
    text_h = [as_words(h) for h in hyps]
    text_r = [[as_words(r) for r in s] for s in refs]
    ours = bleu.corpus_bleu_ids(hyps, refs, **opts)
    assert stats(ours) == stats(bleu.corpus_bleu(text_h, text_r, tokenize="none", **opts))
    batch = bleu.batch_sentence_bleu_ids(hyps, refs, **opts)
    assert (
        batch.tolist() == bleu.batch_sentence_bleu(text_h, text_r, tokenize="none", **opts).tolist()
    )
    pair = bleu.pairwise_sentence_bleu_ids(hyps, refs[0], **opts)
    assert (
        pair.tolist()
        == bleu.pairwise_sentence_bleu(text_h, text_r[0], tokenize="none", **opts).tolist()
    )
    one = bleu.sentence_bleu_ids(hyps[0], [s[0] for s in refs], **opts)
    assert stats(one) == stats(
        bleu.sentence_bleu(text_h[0], [s[0] for s in text_r], tokenize="none", **opts)
    )


def test_ids_padded_arrays_and_exclude() -> None:
    pad, bos, eos = 0, 1, 2
    hyps = np.array([[1, 5, 6, 7, 2, 0, 0], [1, 8, 9, 2, 0, 0, 0]], np.int32)
    refs = np.array([[[1, 5, 6, 8, 2, 0, 0], [1, 8, 9, 9, 2, 0, 0]]], np.int64)
    ours = bleu.corpus_bleu_ids(hyps, refs, exclude=[pad, bos, eos])
    plain = bleu.corpus_bleu_ids([[5, 6, 7], [8, 9]], [[[5, 6, 8], [8, 9, 9]]])
    assert stats(ours) == stats(plain)
    assert stats(
        bleu.corpus_bleu_ids(list(hyps), [list(refs[0])], exclude=np.array([0, 1, 2]))
    ) == stats(plain)
    assert bleu.sentence_bleu_ids(
        np.array([5, 6]), [np.array([5, 6])], exclude=0
    ).score == pytest.approx(100)
    # the same ids with a large int64 and unsigned dtype
    big = np.array([2**62, 3], np.int64)
    assert bleu.sentence_bleu_ids(big, [big]).score == pytest.approx(100)
    assert bleu.sentence_bleu_ids(np.array([7, 8], np.uint8), [[7, 8]]).score == pytest.approx(100)


# --- command line ----------------------------------------------------------------------------


def run_cli(
    argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = cli_main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_matches_sacrebleu(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    hyps, refs = CORPORA["two-refs"]
    paths = []
    for r, stream in enumerate(refs):
        p = tmp_path / f"ref{r}.txt"
        p.write_text("\n".join(stream) + "\n", encoding="utf-8")
        paths.append(str(p))
    hyp_file = tmp_path / "hyp.txt"
    hyp_file.write_text("\n".join(hyps) + "\n", encoding="utf-8")
    metric = BLEU()
    expected = metric.corpus_score(hyps, refs).format(
        1, signature=without_version(metric.get_signature().format())
    )
    code, out, _ = run_cli([*paths, "-f", "text"], "\n".join(hyps) + "\n", monkeypatch, capsys)
    assert code == 0
    line = out.strip()
    assert line.startswith("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:fastrnn-")
    assert line.split(" = ", 1)[1] == expected.split(" = ", 1)[1]
    code, out2, _ = run_cli([*paths, "-i", str(hyp_file), "-f", "text"], "", monkeypatch, capsys)
    assert (code, out2) == (0, out)
    code, out, _ = run_cli([*paths, "-i", str(hyp_file), "-b", "-w", "3"], "", monkeypatch, capsys)
    assert out.strip() == f"{metric.corpus_score(hyps, refs).score:.3f}"
    code, out, _ = run_cli([*paths, "-sl", "-sh"], "\n".join(hyps) + "\n", monkeypatch, capsys)
    assert len(out.strip().split("\n")) == len(hyps) and out.startswith("BLEU|#:2|c:mixed|e:yes|")
    code, out, _ = run_cli([paths[0], "-f", "json"], "\n".join(hyps) + "\n", monkeypatch, capsys)
    assert '"tok": "13a"' in out
    tabbed = tmp_path / "tabbed.txt"
    tabbed.write_text("\n".join(f"{a}\t{b}" for a, b in zip(*refs)) + "\n", encoding="utf-8")
    code, out3, _ = run_cli(
        [str(tabbed), "-nr", "2", "-f", "text"], "\n".join(hyps) + "\n", monkeypatch, capsys
    )
    assert code == 0 and out3.split(" = ")[1] == line.split(" = ")[1]
    code, _, err = run_cli([paths[0]], "only one line\n", monkeypatch, capsys)
    assert code == 1 and "reference stream 1 has 2" in err
    code, _, err = run_cli([str(tabbed), "-nr", "3"], "a\nb\n", monkeypatch, capsys)
    assert code == 1 and "expected 3 tab-separated references" in err


def test_python_dash_m(tmp_path: Any) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text("the cat sat down\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "fastrnn.bleu", str(ref), "-f", "text"],
        input="the cat sat down\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.startswith("BLEU|nrefs:1|") and " = 100.0 " in out.stdout


# --- bad input -------------------------------------------------------------------------------

H, R = ["a b", "c d"], [["a b", "c e"]]
BAD: list[tuple[str, Callable[[], Any], type, str]] = [
    ("stream-too-short", lambda: bleu.corpus_bleu(H, [["a b"]]), ValueError, r"refs\[0\]: expected 2 references \(as many as hyps\), got 1"),
    ("second-stream-long", lambda: bleu.corpus_bleu(H, [R[0], ["x", "y", "z"]]), ValueError, r"refs\[1\]: expected 2 references"),
    ("empty-hyps", lambda: bleu.corpus_bleu([], [[]]), ValueError, "hyps: the corpus is empty"),
    ("no-streams", lambda: bleu.corpus_bleu(H, []), ValueError, "refs: expected at least one reference stream"),
    ("hyps-str", lambda: bleu.corpus_bleu("a b", R), TypeError, r"hyps: expected a list of str, got str; wrap"),
    ("hyp-int", lambda: bleu.corpus_bleu(["a", 3], [["a", "b"]]), TypeError, r"hyps\[1\]: expected str, got int"),
    ("hyp-none", lambda: bleu.corpus_bleu([None], [["a"]]), TypeError, r"hyps\[0\]: expected str, got NoneType"),
    ("ref-bytes", lambda: bleu.corpus_bleu(H, [["a", b"b"]]), TypeError, r"refs\[0\]\[1\]: expected str or None, got bytes"),
    ("refs-flat", lambda: bleu.corpus_bleu(H, ["a b", "c d"]), TypeError, r"refs\[0\]: expected a list of 2 str.*got str; wrap"),
    ("refs-str", lambda: bleu.corpus_bleu(H, "a b"), TypeError, "refs: expected a list of reference streams"),
    ("all-none", lambda: bleu.corpus_bleu(H, [["a", None], [None, None]]), ValueError, "refs: hypothesis 1 has no reference"),
    ("tokenizer", lambda: bleu.corpus_bleu(H, R, tokenize="14a"), ValueError, r"tokenize: expected one of '13a', 'intl', 'char', 'none', got '14a'"),
    ("tokenizer-zh", lambda: bleu.corpus_bleu(H, R, tokenize="zh"), ValueError, "not built in"),
    ("smooth", lambda: bleu.corpus_bleu(H, R, smooth_method="add-one"), ValueError, r"smooth_method: expected one of 'exp', 'floor', 'add-k', 'none', got 'add-one'"),
    ("smooth-value-neg", lambda: bleu.corpus_bleu(H, R, smooth_method="floor", smooth_value=-1), ValueError, "smooth_value: expected a finite number >= 0"),
    ("smooth-value-nan", lambda: bleu.corpus_bleu(H, R, smooth_value=float("nan")), ValueError, "smooth_value"),
    ("smooth-value-str", lambda: bleu.corpus_bleu(H, R, smooth_value="0.1"), TypeError, "smooth_value: expected a number or None"),
    ("order-0", lambda: bleu.corpus_bleu(H, R, max_ngram_order=0), ValueError, r"max_ngram_order: expected an integer in \[1, 1000\], got 0"),
    ("order-float", lambda: bleu.corpus_bleu(H, R, max_ngram_order=2.0), TypeError, "max_ngram_order: expected a positive integer"),
    ("order-bool", lambda: bleu.corpus_bleu(H, R, max_ngram_order=True), TypeError, "max_ngram_order"),
    ("lowercase-str", lambda: bleu.corpus_bleu(H, R, lowercase="yes"), TypeError, "lowercase: expected True or False"),
    ("eff-int", lambda: bleu.sentence_bleu("a", ["a"], effective_order=1), TypeError, "effective_order: expected True or False"),
    ("sentence-hyp", lambda: bleu.sentence_bleu(["a"], ["a"]), TypeError, "hyp: expected str, got list"),
    ("sentence-refs-str", lambda: bleu.sentence_bleu("a", "a"), TypeError, r"refs: expected a list of reference strings, got str; wrap"),
    ("sentence-no-refs", lambda: bleu.sentence_bleu("a", []), ValueError, "refs: expected at least one reference string"),
    ("sentence-only-none", lambda: bleu.sentence_bleu("a", [None]), ValueError, "refs: expected at least one reference string"),
    ("batch-mismatch", lambda: bleu.batch_sentence_bleu(H, [["x"]]), ValueError, r"refs\[0\]: expected 2 references"),
    ("pairwise-empty", lambda: bleu.pairwise_sentence_bleu(H, []), ValueError, "refs: expected at least one sentence"),
    ("pairwise-int", lambda: bleu.pairwise_sentence_bleu(H, [1]), TypeError, r"refs\[0\]: expected str, got int"),
    ("ids-float", lambda: bleu.corpus_bleu_ids([[1.5, 2]], [[[1, 2]]]), TypeError, r"hyps\[0\]: expected integer token ids, got dtype float64"),
    ("ids-2d-item", lambda: bleu.corpus_bleu_ids([[[1]]], [[[1]]]), ValueError, r"hyps\[0\]: expected a 1-D sequence of token ids"),
    ("ids-str", lambda: bleu.corpus_bleu_ids(["a b"], [["a b"]]), TypeError, r"hyps\[0\]: expected a sequence of token ids, got str"),
    ("ids-mismatch", lambda: bleu.corpus_bleu_ids([[1], [2]], [[[1]]]), ValueError, r"refs\[0\]: expected 2 references"),
    ("ids-empty", lambda: bleu.corpus_bleu_ids([], [[]]), ValueError, "hyps: the corpus is empty"),
    ("ids-exclude", lambda: bleu.corpus_bleu_ids([[1]], [[[1]]], exclude="pad"), TypeError, "exclude: expected token ids"),
    ("ids-sentence-one-array", lambda: bleu.sentence_bleu_ids([1, 2], np.array([1, 2])), TypeError, "wrap a single reference"),
    ("ids-pairwise-empty", lambda: bleu.pairwise_sentence_bleu_ids([[1]], []), ValueError, "refs: expected at least one sentence"),
    ("compute-smooth", lambda: bleu.compute_bleu([1], [1], 1, 1, smooth_method="x"), ValueError, "smooth_method"),
]  # fmt: skip


@pytest.mark.parametrize("call,exc,message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input(call: Callable[[], Any], exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        call()


def test_private_c_functions_do_not_crash() -> None:
    from fastrnn import _C

    with pytest.raises(TypeError, match=r"hyps\[0\]: expected str, got int"):
        _C._bleu_text_stats([1], [["a"]], "13a", None, 4)
    with pytest.raises(ValueError, match="refs: segment 0 has no reference"):
        _C._bleu_text_stats(["a"], [[None]], "13a", None, 4)
    with pytest.raises(ValueError, match=r"refs\[0\]: expected 1 lines"):
        _C._bleu_text_stats(["a"], [["a", "b"]], "13a", None, 4)
    with pytest.raises(ValueError, match="intl tokenizer needs its Unicode table"):
        _C._bleu_text_stats(["a"], [["a"]], "intl", None, 4)
    with pytest.raises(ValueError, match="max_ngram_order"):
        _C._bleu_text_stats(["a"], [["a"]], "13a", None, 0)
    with pytest.raises(ValueError, match="offsets"):
        z = np.zeros(1, np.int64)
        _C._bleu_id_stats(z, np.array([0, 5]), z, np.array([0, 1]), np.ones(1, np.uint8), 1, 4)
    # lone surrogates go through as Python's surrogatepass encodes them
    assert _C._bleu_tokenize(["a\ud800b ."], "13a") == ["a\ud800b ."]
    assert bleu.sentence_bleu("x \udfff y", ["x \udfff y"]).score == pytest.approx(100)
