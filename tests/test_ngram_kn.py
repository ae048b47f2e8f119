"""KneserNeyLM against NLTK's KneserNeyInterpolated, a readable dict-based reference of
interpolated modified Kneser-Ney written from Chen & Goodman's formulas, an independent ARPA
backoff scorer, and bad input."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastrnn import _C
from fastrnn.models.ngram import KneserNeyLM


def real_sentences() -> list[list[str]]:
    """English sentences of Python's own documentation (pydoc_data ships with CPython)."""
    import pydoc_data.topics as topics

    text = " ".join(topics.topics[k] for k in sorted(topics.topics))
    parts = re.split(r"(?<=[.!?])\s+", text)
    return [s.split() for s in parts if 3 <= len(s.split()) <= 25]


SENTS = real_sentences()


# ------------------------------------------------------------------ C++ counting vs Counter
def test_counting_matches_counter():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 5, size=int(n)).tolist() for n in rng.integers(0, 12, size=40)]
    ids = np.asarray([t for s in seqs for t in s], np.int64)
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    order = 4
    tables = _C._ngram_count(ids, offsets, order, 5)
    for k, t in enumerate(tables, start=1):
        counts = Counter(tuple(s[i : i + k]) for s in seqs for i in range(len(s) - k + 1))
        left = Counter(g[1:] for g in Counter(
            tuple(s[i : i + k + 1]) for s in seqs for i in range(len(s) - k)))  # fmt: skip
        grams = [tuple(r) for r in t["grams"].tolist()]
        assert grams == sorted(counts)
        assert t["count"].tolist() == [counts[g] for g in grams]
        assert t["left"].tolist() == [left[g] if k < order else 0 for g in grams]
        if k >= 2:
            low = [tuple(r) for r in tables[k - 2]["grams"].tolist()]
            assert [low[i] for i in t["prefix"]] == [g[:-1] for g in grams]
            assert [low[i] for i in t["suffix"]] == [g[1:] for g in grams]


def _counter_tables(seqs, order):
    out = []
    for k in range(1, order + 1):
        counts = Counter(tuple(s[i : i + k]) for s in seqs for i in range(len(s) - k + 1))
        longer = {tuple(s[i : i + k + 1]) for s in seqs for i in range(len(s) - k)}
        left = Counter(g[1:] for g in longer)
        out.append({g: (c, left[g] if k < order else 0) for g, c in counts.items()})
    return out


@settings(max_examples=60, deadline=None)
@given(
    seqs=st.lists(st.lists(st.integers(0, 6), max_size=15), min_size=1, max_size=12),
    order=st.integers(1, 5),
)
def test_counting_fuzz(seqs, order):
    ids = np.asarray([t for s in seqs for t in s], np.int64)
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    tables = _C._ngram_count(ids, offsets, order, 7)
    for t, want in zip(tables, _counter_tables(seqs, order)):
        grams = [tuple(r) for r in t["grams"].tolist()]
        assert grams == sorted(want)
        assert list(zip(t["count"].tolist(), t["left"].tolist())) == [want[g] for g in grams]


@pytest.mark.parametrize(
    "ids, offsets, order, V, match",
    [
        ([0, 1], [0, 2], 0, 2, "order"),
        ([0, 1], [0, 2], 2, 0, "vocab_size"),
        ([0, 2], [0, 2], 2, 2, r"ids\[1\]"),
        ([0, -1], [0, 2], 2, 2, r"ids\[1\]"),
        ([0, 1], [0, 1], 2, 2, "offsets"),
        ([0, 1, 1], [0, 2, 1, 3], 2, 2, "offsets: decrease"),
    ],
)
def test_counting_bad_input(ids, offsets, order, V, match):
    with pytest.raises(ValueError, match=match):
        _C._ngram_count(np.asarray(ids, np.int64), np.asarray(offsets, np.int64), order, V)


# ------------------------------------------------------------------ NLTK
nltk = pytest.importorskip("nltk")


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("discount", [0.1, 0.6])
def test_matches_nltk(order, discount):
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    train = SENTS[:300]
    ref = KneserNeyInterpolated(order, discount=discount)
    ref.fit(*padded_everygram_pipeline(order, train))
    ours = KneserNeyLM(order, discount, convention="nltk").fit(train)
    seen = {w for s in train for w in s}
    held_out = [s for s in SENTS[300:] if all(w in seen for w in s)][:6]
    test = held_out + train[::60]  # NLTK gives unseen words probability 0 (perplexity inf)
    assert len(held_out) >= 3
    grams = [g for s in test for g in ngrams(pad_both_ends(s, n=order), order)]
    assert ours.perplexity(test) == pytest.approx(ref.perplexity(grams), rel=1e-12)
    for g in grams[:: max(1, len(grams) // 60)]:
        want = ref.logscore(g[-1], g[:-1]) / math.log2(10)
        assert ours.logprob(g[-1], g[:-1]) == pytest.approx(want, rel=1e-12, abs=1e-13)


def test_nltk_unseen_word_has_probability_zero():
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    ref = KneserNeyInterpolated(2, discount=0.1)
    ref.fit(*padded_everygram_pipeline(2, SENTS[:50]))
    ours = KneserNeyLM(2, 0.1, convention="nltk").fit(SENTS[:50])
    assert ref.score("zzzunseen", ["the"]) == 0.0 == ours.prob("zzzunseen", ["the"])


# ------------------------------------------------------------------ reference (Chen & Goodman)
class ReferenceKN:
    """Interpolated modified Kneser-Ney as the formulas read, with dicts: KenLM's boundaries
    (one <s>, one </s>, n-grams starting with <s> keep plain counts, <s> never predicted),
    unigrams interpolated with the uniform distribution over the vocabulary minus <s>."""

    def __init__(self, order, sentences, discount=None):
        self.n = order
        padded = [["<s>", *s, "</s>"] for s in sentences]
        self.vocab = sorted({w for s in padded for w in s} | {"<unk>"})
        count = [Counter() for _ in range(order + 1)]
        for s in padded:
            for k in range(1, order + 1):
                for i in range(len(s) - k + 1):
                    count[k][tuple(s[i : i + k])] += 1
        self.a = [Counter() for _ in range(order + 1)]
        for k in range(1, order + 1):
            for g, c in count[k].items():
                if g[-1] == "<s>":
                    continue
                if k == order or g[0] == "<s>":
                    self.a[k][g] = c
                else:
                    self.a[k][g] = sum(1 for h in count[k + 1] if h[1:] == g)
                    if self.a[k][g] == 0:
                        del self.a[k][g]
        self.D = []
        for k in range(order + 1):
            if discount is not None or k == 0:
                self.D.append((discount,) * 3)
                continue
            nr = Counter(self.a[k].values())
            y = nr[1] / (nr[1] + 2 * nr[2])
            self.D.append((1 - 2 * y * nr[2] / nr[1], 2 - 3 * y * nr[3] / nr[2],
                           3 - 4 * y * nr[4] / nr[3]))  # fmt: skip
        self.follow = [defaultdict(dict) for _ in range(order + 1)]
        for k in range(1, order + 1):
            for g, a in self.a[k].items():
                self.follow[k][g[:-1]][g[-1]] = a

    def disc(self, k, a):
        return 0.0 if a == 0 else self.D[k][min(a, 3) - 1]

    def prob(self, w, ctx):
        ctx = tuple(ctx)[-(self.n - 1) :] if self.n > 1 else ()
        return self._p(w, ctx)

    def _p(self, w, ctx):
        k = len(ctx) + 1
        lower = (1.0 / (len(self.vocab) - 1)) if k == 1 else self._p(w, ctx[1:])
        fol = self.follow[k].get(ctx)
        if not fol:
            return lower
        total = sum(fol.values())
        gamma = sum(self.disc(k, a) for a in fol.values()) / total
        a = fol.get(w, 0)
        p = max(a - self.disc(k, a), 0) / total + gamma * lower
        return 0.0 if w == "<s>" else p


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("discount", [None, 0.75])
def test_matches_reference_formulas(order, discount):
    train = SENTS[:250]
    ref = ReferenceKN(order, train, discount)
    ours = KneserNeyLM(order, discount).fit(train)
    if discount is None:
        for k in range(1, order + 1):
            assert ours.discounts[k - 1] == pytest.approx(ref.D[k], rel=1e-14)
    rng = np.random.default_rng(order)
    for s in [SENTS[i] for i in rng.choice(len(SENTS), 8, replace=False)]:
        padded = ["<s>", *s, "</s>"]
        for i in range(1, len(padded)):
            ctx = padded[max(0, i - order + 1) : i]
            w = padded[i] if padded[i] in ref.vocab else "<unk>"
            assert ours.prob(padded[i], ctx) == pytest.approx(ref.prob(w, ctx), rel=1e-12)


@pytest.mark.parametrize("order", [1, 3, 5])
@pytest.mark.parametrize("discount", [None, 0.4])
def test_distributions_sum_to_one(order, discount):
    lm = KneserNeyLM(order, discount).fit(SENTS[:600])
    contexts = [(), ("<s>",), ("<s>", "The"), ("of", "the"), ("is", "a", "new"), ("zzz", "the")]
    for ctx in contexts:
        assert sum(lm.prob(w, ctx) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)
    assert lm.prob("<s>", ("the",)) == 0.0
    assert 0 < lm.prob("zzz-never-seen", ("the",)) == lm.prob("<unk>", ("the",))


def test_score_perplexity_consistent():
    lm = KneserNeyLM(3).fit(SENTS[:500])
    test = SENTS[500:540]
    per = lm.scores(test)
    assert per[3] == lm.score(test[3])
    manual = 0.0
    for s in test[:5]:
        padded = ["<s>", *s, "</s>"]
        manual_s = sum(lm.logprob(padded[i], padded[:i]) for i in range(1, len(padded)))
        assert lm.score(s) == pytest.approx(manual_s, rel=1e-12)
        manual += manual_s
    n_tok = sum(len(s) + 1 for s in test)
    assert lm.perplexity(test) == pytest.approx(10 ** (-per.sum() / n_tok), rel=1e-12)
    no_eos = sum(len(s) for s in test)
    assert lm.perplexity(test, eos=False) == pytest.approx(
        10 ** (-lm.scores(test, eos=False).sum() / no_eos), rel=1e-12
    )


def test_tokens_of_any_hashable_kind():
    chars = [list("abracadabra"), list("cadabra")]
    ids = [[ord(c) for c in s] for s in chars]
    arrays = [np.array(s, np.int64) for s in ids]
    a = KneserNeyLM(3, 0.5).fit(chars)
    b = KneserNeyLM(3, 0.5).fit(ids)
    c = KneserNeyLM(3, 0.5).fit(arrays)
    assert a.perplexity(chars) == b.perplexity(ids) == c.perplexity(arrays) == c.perplexity(ids)


# ------------------------------------------------------------------ ARPA
def score_arpa(path, sentences, pad):
    """A plain ARPA backoff scorer: log10 P of each padded sentence, from a dict of n-grams."""
    probs, bows, order = {}, {}, 0
    with open(path, encoding="utf-8") as f:
        section = 0
        for line in f:
            line = line.strip()
            m = re.match(r"\\(\d+)-grams:", line)
            if m:
                section = int(m.group(1))
                order = max(order, section)
            elif line == "\\end\\":
                section = 0
            elif section and line:
                parts = line.split()
                g = tuple(parts[1 : section + 1])
                probs[g] = float(parts[0])
                if len(parts) == section + 2:
                    bows[g] = float(parts[-1])

    def logp(w, ctx):
        if (*ctx, w) in probs:
            return probs[(*ctx, w)]
        return bows.get(ctx, 0.0) + logp(w, ctx[1:])

    out = []
    for s in sentences:
        padded = ["<s>"] * pad + [w if (w,) in probs else "<unk>" for w in s] + ["</s>"] * pad
        out.append(sum(
            logp(padded[i], tuple(padded[max(0, i - order + 1) : i]))
            for i in range(pad, len(padded))))  # fmt: skip
    return np.array(out)


@pytest.mark.parametrize(
    "order, discount, convention",
    [
        (1, None, "kenlm"),
        (3, None, "kenlm"),
        (5, 0.8, "kenlm"),
        (3, 0.1, "nltk"),
        (4, 0.3, "nltk"),
    ],  # fmt: skip
)
def test_arpa_round_trip(tmp_path, order, discount, convention):
    train = SENTS[:400]
    lm = KneserNeyLM(order, discount, convention=convention).fit(train)
    if convention == "nltk":  # probability 0 for unseen words: keep to seen ones
        seen = {w for s in train for w in s}
        test = [s for s in SENTS[400:] if all(w in seen for w in s)][:10] + train[:10]
    else:
        test = SENTS[400:460]
    path = tmp_path / "lm.arpa"
    lm.to_arpa(path)
    back = KneserNeyLM.from_arpa(path)
    assert (back.order, back.convention) == (order, convention)
    np.testing.assert_array_equal(back.scores(test), lm.scores(test))
    assert back.perplexity(test) == lm.perplexity(test)
    pad = order - 1 if convention == "nltk" else 1
    np.testing.assert_allclose(score_arpa(path, test, pad), lm.scores(test), rtol=1e-12)
    # the file itself is a valid backoff model: each context's distribution sums to 1
    if convention == "kenlm":
        for ctx in [(), ("<s>",), ("of", "the")][:order]:
            assert sum(back.prob(w, ctx) for w in back.vocab) == pytest.approx(1.0, abs=1e-12)


def test_arpa_written_format(tmp_path):
    lm = KneserNeyLM(2, 0.5).fit([["a", "b"], ["b", "a", "b"]])
    lm.to_arpa(tmp_path / "x.arpa")
    text = (tmp_path / "x.arpa").read_text()
    assert "\\data\\\nngram 1=5\nngram 2=" in text
    assert re.search(r"^-99\.0\t<s>\t-?[0-9.]+$", text, re.M)  # <s>: never predicted, has a bow
    assert text.rstrip().endswith("\\end\\")


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"order": 0}, ValueError, "order: expected an int >= 1"),
        ({"order": "3"}, ValueError, "order"),
        ({"order": True}, ValueError, "order"),
        ({"order": 3, "discount": 0.0}, ValueError, "discount"),
        ({"order": 3, "discount": 1.5}, ValueError, "discount"),
        ({"order": 3, "convention": "srilm"}, ValueError, "convention"),
        ({"order": 1, "discount": 0.1, "convention": "nltk"}, ValueError, "order"),
        ({"order": 3, "convention": "nltk"}, ValueError, "discount"),
        ({"order": 3, "bos": "x", "eos": "x"}, ValueError, "bos, eos, unk"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        KneserNeyLM(**kwargs)


def test_bad_corpus():
    with pytest.raises(ValueError, match="sentences: the corpus is empty"):
        KneserNeyLM(3, 0.5).fit([])
    with pytest.raises(ValueError, match="no tokens"):
        KneserNeyLM(3, 0.5).fit([[], []])
    with pytest.raises(TypeError, match=r"sentences\[1\].*split"):
        KneserNeyLM(3, 0.5).fit([["a"], "b c"])
    with pytest.raises(TypeError, match="sentences: expected a list"):
        KneserNeyLM(3, 0.5).fit("a b c")
    with pytest.raises(ValueError, match=r"sentences\[0\]: contains the boundary token '<s>'"):
        KneserNeyLM(3, 0.5).fit([["a", "<s>", "b"]])
    lm = KneserNeyLM(3).fit(SENTS[:300])
    with pytest.raises(ValueError, match="counts-of-counts.*discount=0.75"):
        lm.fit([["a", "b", "c"]])  # too few n-grams to estimate three discounts
    with pytest.raises(RuntimeError, match="fit"):  # a failed fit leaves no stale model
        lm.prob("a", ["b"])
    with pytest.raises(TypeError, match=r"sentences\[0\]"):
        KneserNeyLM(2, 0.5).fit([np.zeros((2, 2))])
    with pytest.raises(RuntimeError, match="fit"):
        KneserNeyLM(3).perplexity([["a"]])
    lm = KneserNeyLM(2, 0.5).fit([["a", "b"]])
    with pytest.raises(ValueError, match="no sentences"):
        lm.perplexity([])
    with pytest.raises(TypeError, match="context"):
        lm.prob("a", "b")


def test_to_arpa_refuses_whitespace_tokens(tmp_path):
    lm = KneserNeyLM(2, 0.5).fit([list("a b")])
    with pytest.raises(ValueError, match="whitespace"):
        lm.to_arpa(tmp_path / "x.arpa")


GOOD = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-0.5\t<s>\t-0.2
-0.4\ta\t-0.1
-0.6\t</s>
-1.0\t<unk>

\\2-grams:
-0.1\t<s> a
-0.2\ta </s>

\\end\\
"""


@pytest.mark.parametrize(
    "text, match",
    [
        ("hello\n", r"no \\data\\"),
        (GOOD.replace("ngram 2=2", "ngram 2=3"), "announces 3 2-grams"),
        (GOOD.replace("ngram 2=2", "ngram 3=2"), "expected 'ngram 2="),
        (GOOD.replace("\\end\\\n", ""), "end"),
        (GOOD.replace("-0.4\ta", "x\ta"), "not a number"),
        (GOOD.replace("-0.4\ta", "0.4\ta"), "log10 p <= 0"),
        (GOOD.replace("-0.1\t<s> a", "-0.1\t<s> b"), "'b', which has no unigram"),
        (GOOD.replace("-0.1\t<s> a", "-0.1\t<s>"), "needs log10 p, 2 words"),
        (GOOD.replace("\\2-grams:", "\\3-grams:"), r"expected '\\2-grams:'"),
        (GOOD.replace("-0.2\ta </s>", "-0.1\t<s> a"), "appears twice"),
    ],
)
def test_malformed_arpa(tmp_path, text, match):
    p = tmp_path / "bad.arpa"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        KneserNeyLM.from_arpa(p)


def test_arpa_missing_prefix_and_file(tmp_path):
    text = GOOD.replace("ngram 2=2", "ngram 2=2\nngram 3=1").replace(
        "\\end\\", "\\3-grams:\n-0.3\ta a </s>\n\n\\end\\"
    )
    p = tmp_path / "bad.arpa"
    p.write_text(text)
    with pytest.raises(ValueError, match="'a a </s>' has no 2-gram entry"):
        KneserNeyLM.from_arpa(p)
    with pytest.raises(ValueError, match="cannot read"):
        KneserNeyLM.from_arpa(tmp_path / "missing.arpa")


def test_foreign_arpa_scores_by_hand(tmp_path):
    p = tmp_path / "good.arpa"
    p.write_text(GOOD)
    lm = KneserNeyLM.from_arpa(p)
    assert lm.convention == "kenlm" and lm.order == 2
    # a </s> after <s>: no bigram "<s> </s>": bow(<s>) + p(</s>) = -0.2 + -0.6
    assert lm.score([]) == pytest.approx(-0.8)
    # <s> a </s>: -0.1 + -0.2
    assert lm.score(["a"]) == pytest.approx(-0.3)
    # <s> zz </s>: -0.2 + p(<unk>); then </s> after <unk> (no bow): -0.6
    assert lm.score(["zz"]) == pytest.approx(-0.2 - 1.0 - 0.6)


def test_charlm_baseline_is_kneser_ney(tmp_path, capsys):
    from fastrnn.examples import charlm
    from fastrnn.models import Vocab

    res = charlm.main(["--epochs", "1", "--max-chars", "6000", "--hidden", "16", "--embedding", "8",
                       "--batch-size", "4", "--bptt", "16", "--ngram", "3", "--sample-len", "20",
                       "--threads", "1", "--out", str(tmp_path), "--progress", "none",
                       "--no-resume"])  # fmt: skip
    train, valid, _ = charlm.split(charlm.load_texts()[0], 0)
    train, valid = train[:6000], valid[:4096]
    vocab = Vocab.build(train, level="char", min_freq=3)
    kn = KneserNeyLM(3).fit([vocab.encode(train).tolist()])
    assert res["ngram_val_ppl"] == kn.perplexity([vocab.encode(valid).tolist()], eos=False)
    assert res["lstm_beats_ngram"] is False  # one tiny epoch: and the example says so
    assert "does NOT beat the 3-gram Kneser-Ney baseline" in capsys.readouterr().out


@settings(max_examples=40, deadline=None)
@given(
    corpus=st.lists(st.lists(st.sampled_from("abcde"), max_size=8), min_size=1, max_size=8),
    order=st.integers(1, 4),
    discount=st.floats(0.05, 1.0),
    ctx=st.lists(st.sampled_from(["a", "b", "c", "z", "<s>"]), max_size=3),
)
def test_random_corpora_normalized_and_round_trip(tmp_path_factory, corpus, order, discount, ctx):
    assume(any(corpus))
    lm = KneserNeyLM(order, discount).fit(corpus)
    assert sum(lm.prob(w, ctx) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)
    path = tmp_path_factory.mktemp("arpa") / "lm.arpa"
    lm.to_arpa(path)
    back = KneserNeyLM.from_arpa(path)
    np.testing.assert_array_equal(back.scores(corpus), lm.scores(corpus))
    np.testing.assert_allclose(score_arpa(path, corpus, 1), lm.scores(corpus), rtol=1e-12)
