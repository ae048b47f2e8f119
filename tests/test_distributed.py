"""fastrnn.distributed on a 2-worker Dask LocalCluster (threads, in this process): every result
identical to the single-machine computation, whatever the shard size, and bad input refused.

References: fastrnn.bleu.corpus_bleu on the whole corpus (itself identical to sacrebleu, see
test_bleu.py) and sacrebleu directly; Seq2Seq.beam_decode one sentence at a time; a
language model's step-by-step log-probabilities; KneserNeyLM.perplexity on the whole corpus.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

from fastrnn import bleu  # noqa: E402
from fastrnn import distributed as fd  # noqa: E402
from fastrnn.distributed.__main__ import main as cli  # noqa: E402
from fastrnn.models import KneserNeyLM, RNNLanguageModel, Seq2Seq, Vocab  # noqa: E402

TIMEOUT = 60.0


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:  # fmt: skip
        with Client(cluster, set_as_default=False, timeout=30) as c:
            c.wait_for_workers(2, timeout=30)
            yield c


def corpus(n: int = 230, seed: int = 0) -> tuple[list[str], list[list[str | None]]]:
    """Hypotheses and two reference streams (with gaps) built from real English sentences."""
    import pydoc_data.topics as topics

    text = " ".join(topics.topics[k] for k in sorted(topics.topics))
    sents = [" ".join(s.split()) for s in text.split(". ") if 4 < len(s.split()) < 30][: 3 * n]
    rng = np.random.default_rng(seed)
    hyps, r1, r2 = [], [], []
    for i in range(n):
        words = sents[i].split()
        drop = rng.integers(0, len(words))
        hyps.append(" ".join(words[:drop] + words[drop + 1 :]))
        r1.append(sents[i])
        r2.append(None if i % 7 == 3 else sents[i].lower())
    return hyps, [r1, r2]


def fields(s: bleu.BLEUScore) -> dict:
    return {k: getattr(s, k) for k in ("score", "counts", "totals", "precisions", "bp", "sys_len",
                                       "ref_len", "signature")}  # fmt: skip


# ------------------------------------------------------------------ BLEU
@pytest.mark.parametrize("shard_size", [1, 17, 10_000])
@pytest.mark.parametrize("opts", [{}, {"lowercase": True, "tokenize": "intl"},
                                  {"smooth_method": "floor", "smooth_value": 0.2}])  # fmt: skip
def test_bleu_lists(client, shard_size, opts):
    hyps, refs = corpus()
    want = bleu.corpus_bleu(hyps, refs, **opts)
    got = fd.corpus_bleu(hyps, refs, client, shard_size=shard_size, timeout=TIMEOUT, **opts)
    assert type(got) is type(want) and fields(got) == fields(want)
    assert fd.corpus_bleu(hyps, refs, None, shard_size=shard_size, **opts).score == want.score


def test_bleu_matches_sacrebleu(client):
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps, refs = corpus(seed=1)
    ref0 = [refs[0]]
    want = sacrebleu.metrics.BLEU().corpus_score(hyps, ref0)
    got = fd.corpus_bleu(hyps, ref0, client, shard_size=33, timeout=TIMEOUT)
    assert (got.score, got.counts, got.totals) == (want.score, want.counts, want.totals)


def write_shards(
    folder: Path, name: str, lines: list[str], cuts: list[int], last_nl=True
) -> list[Path]:
    """Write lines into several files, split at `cuts`, with CRLF and trailing blanks on some."""
    paths, bounds = [], [0, *cuts, len(lines)]
    for j in range(len(bounds) - 1):
        p = folder / f"{name}.{j:03d}"
        chunk = lines[bounds[j] : bounds[j + 1]]
        body = "".join(line + ("\r\n" if i % 5 == 0 else "  \n") for i, line in enumerate(chunk))
        if j == len(bounds) - 2 and not last_nl:
            body = body.rstrip("\n")
        p.write_bytes(body.encode("utf-8"))
        paths.append(p)
    return paths


def test_bleu_sharded_files(client, tmp_path):
    hyps, refs = corpus(seed=2)
    ref = refs[0]
    hyps[5] = "naïve café — ünïcödé"  # multi-byte UTF-8 across shard boundaries
    hp = write_shards(tmp_path, "hyp", hyps, [50, 51, 170], last_nl=False)
    rp = write_shards(tmp_path, "ref", ref, [100])
    whole = tmp_path / "ref.all"
    whole.write_text("\n".join(ref) + "\n", encoding="utf-8")
    want = bleu.corpus_bleu(hyps, [ref])
    for shard_size in (7, 64, 1000):
        got = fd.corpus_bleu(hp, [rp], client, shard_size=shard_size, timeout=TIMEOUT)
        assert fields(got) == fields(want)
    assert fields(fd.corpus_bleu(hp, [str(whole)], client, timeout=TIMEOUT)) == fields(want)
    # the CLI prints what python -m fastrnn.bleu prints
    from fastrnn.bleu.__main__ import main as bleu_cli

    (tmp_path / "hyp.all").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    import contextlib
    import io

    for extra in ([], ["-f", "text"], ["-m", "chrf"], ["-m", "chrf", "-cw", "2", "-f", "text"]):
        outs = []
        for run in (lambda e=extra: bleu_cli([str(whole), "-i", str(tmp_path / "hyp.all"), *e]),
                    lambda e=extra: cli(["bleu", "-i", ",".join(map(str, hp)), ",".join(map(str, rp)),
                                 "--scheduler", client.scheduler.address, "--shard-size", "40",
                                 *e])):  # fmt: skip
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                assert run() == 0
            outs.append(buf.getvalue())
        assert outs[0] == outs[1] and ("nrefs:1" in outs[0])


@pytest.mark.parametrize("shard_size", [1, 29, 10_000])
@pytest.mark.parametrize("opts", [{}, {"word_order": 2}, {"lowercase": True, "whitespace": True}])
def test_chrf(client, shard_size, opts):
    hyps, refs = corpus(seed=3)
    want = bleu.corpus_chrf(hyps, refs, **opts)
    got = fd.corpus_chrf(hyps, refs, client, shard_size=shard_size, timeout=TIMEOUT, **opts)
    assert type(got) is type(want) and got.__dict__ == want.__dict__
    sacrebleu = pytest.importorskip("sacrebleu")
    ref = sacrebleu.metrics.CHRF(**opts).corpus_score(hyps, [refs[0]])
    assert fd.corpus_chrf(hyps, [refs[0]], client, shard_size=shard_size, **opts).score == ref.score


@pytest.mark.parametrize("test", ["paired_bootstrap", "paired_randomization"])
@pytest.mark.parametrize("metric, opts", [("bleu", {}), ("chrf", {"word_order": 2}),
                                          ("bleu", {"tokenize": "intl", "lowercase": True})])  # fmt: skip
def test_significance(client, tmp_path, test, metric, opts):
    hyps, refs = corpus(seed=4)
    rng = np.random.default_rng(9)
    other = [h if rng.random() < 0.7 else " ".join(h.split()[::-1]) for h in hyps]
    third = [r for r in refs[0]]
    systems = {"baseline": hyps, "other": other, "oracle": third}
    want = getattr(bleu, test)(systems, refs, n_samples=300, seed=7, metric=metric, **opts)
    paths = {k: write_shards(tmp_path, k, v, [40, 150]) for k, v in systems.items()}
    ref_paths = [write_shards(tmp_path, f"ref{i}", [r or "" for r in s], [90]) for i, s in
                 enumerate(refs[:1])]  # fmt: skip
    for shard_size, sy, rf in ((11, systems, refs), (1000, systems, refs), (37, paths, ref_paths)):
        if rf is ref_paths:  # files hold one stream without gaps: compare with the same
            want_here = getattr(bleu, test)(systems, [refs[0]], n_samples=300, seed=7,
                                            metric=metric, **opts)  # fmt: skip
        else:
            want_here = want
        got = getattr(fd, test)(sy, rf, client, n_samples=300, seed=7, metric=metric,
                                shard_size=shard_size, timeout=TIMEOUT, **opts)  # fmt: skip
        assert dict(got) == dict(want_here)
        assert (got.name, got.signature) == (want_here.name, want_here.signature)


def test_significance_bad_input(client):
    hyps, refs = corpus(20)
    with pytest.raises(TypeError, match="systems: expected a dict"):
        fd.paired_bootstrap({"only": hyps}, refs, client)
    with pytest.raises(ValueError, match=r"expected 19 references \(as many as systems\['b'\]"):
        fd.paired_bootstrap({"a": hyps, "b": hyps[:-1]}, refs, client)
    with pytest.raises(TypeError, match="char_order: not an option"):
        fd.paired_randomization({"a": hyps, "b": hyps}, refs, client, char_order=3)
    with pytest.raises(ValueError, match="metric"):
        fd.paired_randomization({"a": hyps, "b": hyps}, refs, client, metric="ter")
    with pytest.raises(ValueError, match="n_samples"):
        fd.paired_bootstrap({"a": hyps, "b": hyps}, refs, client, n_samples=0)


def test_bleu_bad_input(client, tmp_path):
    hyps, refs = corpus(40)
    with pytest.raises(ValueError, match=r"refs\[0\]: expected 40 references"):
        fd.corpus_bleu(hyps, [refs[0][:-1]], client)
    with pytest.raises(ValueError, match="hyps: the corpus is empty"):
        fd.corpus_bleu([], [[]], client)
    with pytest.raises(TypeError, match="refs: expected a non-empty list"):
        fd.corpus_bleu(hyps, [], client)
    with pytest.raises(ValueError, match="shard_size"):
        fd.corpus_bleu(hyps, refs, client, shard_size=0)
    with pytest.raises(ValueError, match="tokenize"):
        fd.corpus_bleu(hyps, refs, client, tokenize="moses")
    with pytest.raises(ValueError, match="cannot read"):
        fd.corpus_bleu(tmp_path / "missing.txt", [refs[0]], client)
    with pytest.raises(ValueError, match="is compressed"):
        fd.corpus_bleu(tmp_path / "hyp.txt.gz", [refs[0]], client)
    with pytest.raises(TypeError, match="client"):
        fd.corpus_bleu(hyps, refs, client="tcp://nowhere")
    with pytest.raises(ValueError, match="timeout"):
        fd.corpus_bleu(hyps, refs, client, timeout=0)
    bad = list(refs[0])
    bad[3] = 7  # raised on a worker, re-raised here
    with pytest.raises(TypeError, match="expected str"):
        fd.corpus_bleu(hyps, [bad], client, shard_size=10)
    with pytest.raises(ValueError, match="has no reference"):
        fd.corpus_bleu(hyps, [[None] * 40], client, shard_size=10)


# ------------------------------------------------------------------ translation
@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    src_vocab = Vocab(list("abcdefghij "), level="char")
    tgt_vocab = Vocab(list("0123456789"), level="char")
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), 16, 16, seed=3,
                    bos_index=tgt_vocab.bos_index, eos_index=tgt_vocab.eos_index,
                    pad_index=tgt_vocab.pad_index)  # fmt: skip
    path = tmp_path_factory.mktemp("models") / "s2s.npz"
    fd.save_seq2seq(path, model, src_vocab, tgt_vocab)
    rng = np.random.default_rng(4)
    lines = ["".join(rng.choice(list("abcdefghij "), size=int(n))) for n in rng.integers(1, 14, 45)]
    lines[7] = ""  # an empty source line translates to ""
    return path, model, src_vocab, tgt_vocab, lines


def test_translate_in_order_and_identical(client, translator, tmp_path):
    path, model, src_vocab, tgt_vocab, lines = translator
    want = []
    for line in lines:  # one sentence at a time, with the model in memory
        if not line.strip():
            want.append("")
            continue
        src, lens = src_vocab.encode_batch([line])
        best = model.beam_decode(src, lens, beam_size=3, max_len=12)[0][0]
        want.append(tgt_vocab.decode(best.tokens))
    assert len(set(want)) > 10  # the model is random but its outputs differ
    out = tmp_path / "out.txt"
    got = fd.translate(path, lines, client, out=out, beam_size=3, max_len=12, batch_size=4,
                       shard_size=6, timeout=TIMEOUT)  # fmt: skip
    assert got == want
    assert out.read_text(encoding="utf-8").split("\n")[:-1] == want
    assert fd.translate(path, lines, None, beam_size=3, max_len=12, batch_size=45) == want
    src_file = tmp_path / "src.txt"
    src_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cli_out = tmp_path / "cli.txt"
    assert cli(["translate", "--model", str(path), "-i", str(src_file), "-o", str(cli_out),
                "--beam-size", "3", "--max-len", "12", "--shard-size", "10",
                "--scheduler", client.scheduler.address]) == 0  # fmt: skip
    assert cli_out.read_text(encoding="utf-8").split("\n")[:-1] == want


def test_translate_bad_input(client, translator, tmp_path):
    path, model, src_vocab, tgt_vocab, lines = translator
    with pytest.raises(ValueError, match="model: no such file"):
        fd.translate(tmp_path / "nope.npz", lines, client)
    with pytest.raises(ValueError, match="beam_size"):
        fd.translate(path, lines, client, beam_size=0)
    with pytest.raises(TypeError, match="model: expected the path"):
        fd.translate(model, lines, client)
    with pytest.raises(TypeError, match="model: expected a fastrnn.models.Seq2Seq"):
        fd.save_seq2seq(tmp_path / "x.npz", "model", src_vocab, tgt_vocab)
    with pytest.raises(ValueError, match="tgt_vocab: has"):
        fd.save_seq2seq(tmp_path / "x.npz", model, src_vocab, src_vocab)
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not written by fastrnn.distributed"):
        fd.translate(tmp_path / "plain.npz", lines, client, timeout=TIMEOUT)


# ------------------------------------------------------------------ perplexity
@pytest.fixture(scope="module")
def texts():
    hyps, refs = corpus(120, seed=5)
    return refs[0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_neural_perplexity(client, texts, tmp_path, cell):
    vocab = Vocab.build("\n".join(texts), level="char", min_freq=2)
    model = RNNLanguageModel(len(vocab), 12, 24, 2, cell, seed=6)
    path = tmp_path / "lm.npz"
    fd.save_language_model(path, model, vocab)
    local = fd.perplexity(path, texts, None, batch_size=64)
    for shard_size, batch_size in ((7, 3), (50, 32)):
        got = fd.perplexity(path, texts, client, shard_size=shard_size, batch_size=batch_size,
                            timeout=TIMEOUT)  # fmt: skip
        assert got == local
    # reference: the model's step protocol, token by token, one line at a time
    total, count = 0.0, 0
    for line in texts:
        ids = vocab.encode(line, add_bos=True, add_eos=True)
        state = model.initial_step_state(1)
        for a, b in zip(ids[:-1], ids[1:]):
            lp, state = model.step(np.array([a]), state)
            total -= float(lp[0, b])
            count += 1
    assert local.tokens == count and local.lines == len(texts)
    assert local.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)
    assert local.nll == pytest.approx(total, rel=1e-5)


def test_ngram_perplexity(client, texts, tmp_path):
    train = [s.split() for s in corpus(400, seed=7)[1][0]]
    lm = KneserNeyLM(3).fit(train)
    arpa = tmp_path / "lm.arpa"
    lm.to_arpa(arpa)
    want = lm.perplexity([t.split() for t in texts])
    for shard_size in (1, 13, 500):
        got = fd.perplexity(arpa, texts, client, shard_size=shard_size, timeout=TIMEOUT)
        assert got.perplexity == want
        assert got.tokens == sum(len(t.split()) + 1 for t in texts)
    f = tmp_path / "texts.txt"
    f.write_text("\n".join(texts) + "\n", encoding="utf-8")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli(["perplexity", "--model", str(arpa), "-i", str(f), "--shard-size", "25",
                    "--scheduler", client.scheduler.address]) == 0  # fmt: skip
    assert json.loads(buf.getvalue())["perplexity"] == want


def test_perplexity_bad_input(client, texts, translator, tmp_path):
    path = translator[0]
    with pytest.raises(ValueError, match="holds a seq2seq model"):
        fd.perplexity(path, texts, client, timeout=TIMEOUT)
    with pytest.raises(ValueError, match="batch_size"):
        fd.perplexity(path, texts, client, batch_size=0)
    with pytest.raises(ValueError, match="texts: the corpus is empty"):
        fd.perplexity(path, [], client)
    bad = tmp_path / "bad.arpa"
    bad.write_text("not an arpa file\n")
    with pytest.raises(ValueError, match="no \\\\data\\\\"):
        fd.perplexity(bad, texts, client, timeout=TIMEOUT)


def test_cli_errors_are_reported(tmp_path, capsys, client):
    code = cli(["bleu", "-i", str(tmp_path / "missing"), str(tmp_path / "missing"),
                "--scheduler", client.scheduler.address])  # fmt: skip
    assert code == 2 and "cannot read" in capsys.readouterr().err


def test_cli_starts_a_local_cluster(tmp_path, capsys):
    hyps, refs = corpus(30, seed=8)
    (tmp_path / "h.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("\n".join(refs[0]) + "\n", encoding="utf-8")
    assert cli(["bleu", "-i", str(tmp_path / "h.txt"), str(tmp_path / "r.txt"), "--workers", "1",
                "--shard-size", "10", "--timeout", "120"]) == 0  # fmt: skip
    want = bleu.corpus_bleu(hyps, [refs[0]])
    assert capsys.readouterr().out.strip() == want.format(1, False, want.signature, is_json=True)


# --- word-vector files ---------------------------------------------------------------------------


def test_evaluate_vectors_identical_to_one_machine(client, tmp_path):
    datapath = pytest.importorskip("gensim.test.utils").datapath
    from fastrnn.embeddings import KeyedVectors, Word2Vec

    sents = [line.split() for line in open(datapath("lee_background.cor"))][:150]
    files = []
    for seed, binary in ((1, True), (2, True), (3, True)):
        m = Word2Vec(sents, vector_size=16, min_count=2, epochs=1, workers=1, seed=seed)
        path = str(tmp_path / f"v{seed}.bin")
        m.wv.save_word2vec_format(path, binary=binary)
        files.append(path)
    analogies = datapath("questions-words.txt")
    pairs = [datapath("wordsim353.tsv"), datapath("simlex999.txt")]
    got = fd.evaluate_vectors(files, client, analogies=analogies, pairs=pairs, binary=True)
    here = fd.evaluate_vectors(files, None, analogies=analogies, pairs=pairs, binary=True)
    assert [g["path"] for g in got] == files
    assert got == here
    for path, g in zip(files, got):
        kv = KeyedVectors.load_word2vec_format(path, binary=True)
        acc, sections = kv.evaluate_word_analogies(analogies)
        assert g["analogy_accuracy"] == acc and g["words"] == len(kv.index_to_key)
        assert [s[0] for s in g["analogy_sections"]] == [s["section"] for s in sections]
        for p in pairs:
            assert g["pairs"][p] == kv.evaluate_word_pairs(p)


def test_evaluate_vectors_bad_input(client, tmp_path):
    with pytest.raises(ValueError, match="paths: no vector files"):
        fd.evaluate_vectors([], client)
    with pytest.raises(TypeError, match="wrap it in a list"):
        fd.evaluate_vectors(str(tmp_path / "v.bin"), client)
    with pytest.raises(ValueError, match="is not a file"):
        fd.evaluate_vectors([str(tmp_path / "missing.bin")], client)
