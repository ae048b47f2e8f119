"""Issue 10, Python side: each defect an outside check found, as a test that failed before the fix.

Clipping and optimizers over `model.parameters()`, token ids out of range on every decoding path,
archives checked before they are read, careful atomic saves, checkpoints checked whole before
they are restored, resuming after a change of configuration, and the clear errors of the "poor
errors and quiet acceptance" list.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import stat
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastrnn
from fastrnn import nn
from fastrnn.models import RNNLanguageModel, Trainer, train_language_model
from fastrnn.models.training import CheckpointMismatchError

# --- item 2: clipping and optimizers over model.parameters() -------------------------------------


def _model_with_big_grads(seed: int = 0) -> nn.Module:
    m = nn.Sequential(nn.Linear(4, 8, dtype="float64", seed=seed), nn.Tanh(),
                      nn.Linear(8, 3, dtype="float64", seed=seed + 1))  # fmt: skip
    x = np.random.default_rng(seed).standard_normal((16, 4)) * 30
    y = m(x)
    m.backward(np.ones_like(y) * 20)
    return m


@pytest.mark.parametrize("how", ["parameters", "list", "named", "module"])
def test_clip_grad_norm_over_parameters_clips_the_gradients_not_the_weights(how: str) -> None:
    m = _model_with_big_grads()
    weights = {k: v.copy() for k, v in m.named_parameters()}
    grads = {k: g.copy() for k, g in m.grads.items()}
    want = float(np.sqrt(sum((g**2).sum() for g in grads.values())))
    arg = {
        "parameters": m.parameters(),
        "list": list(m.parameters()),
        "named": dict(m.named_parameters()),
        "module": m,
    }[how]
    norm = nn.clip_grad_norm_(arg, 1.0)
    assert norm == pytest.approx(want) and want > 100
    for k, v in m.named_parameters():
        np.testing.assert_array_equal(v, weights[k])  # the weights are untouched
    after = float(np.sqrt(sum((g**2).sum() for g in m.grads.values())))
    assert after == pytest.approx(1.0, rel=1e-5)
    for k, g in m.grads.items():
        np.testing.assert_allclose(g, grads[k] * (1.0 / (want + 1e-6)), rtol=1e-12)


def test_clip_grad_value_over_parameters_clips_the_gradients_not_the_weights() -> None:
    m = _model_with_big_grads()
    weights = {k: v.copy() for k, v in m.named_parameters()}
    grads = {k: g.copy() for k, g in m.grads.items()}
    nn.clip_grad_value_(m.parameters(), 0.5)
    for k, v in m.named_parameters():
        np.testing.assert_array_equal(v, weights[k])
        np.testing.assert_array_equal(m.grads[k], np.clip(grads[k], -0.5, 0.5))


def test_clip_grad_norm_over_parameters_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    m = _model_with_big_grads(3)
    ts = [torch.tensor(v.copy(), requires_grad=True) for v in m.parameters()]
    for t, g in zip(ts, m.grads.values()):
        t.grad = torch.tensor(g.copy())
    want = torch.nn.utils.clip_grad_norm_(ts, 2.5)
    got = nn.clip_grad_norm_(m.parameters(), 2.5)
    assert got == pytest.approx(float(want), rel=1e-12)
    for t, g in zip(ts, m.grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_optimizer_over_parameters_uses_the_gradients() -> None:
    m = _model_with_big_grads()
    before = {k: v.copy() for k, v in m.named_parameters()}
    grads = {k: g.copy() for k, g in m.grads.items()}
    opt = nn.SGD(m.parameters(), lr=0.01)
    opt.step()
    for k, v in m.named_parameters():
        np.testing.assert_allclose(v, before[k] - 0.01 * grads[k], rtol=1e-12)
    opt.zero_grad()
    assert m.grads == {}


def test_parameters_that_are_not_a_modules_are_refused() -> None:
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"params\[0\] is an array \(2, 2\) that no Module owns"):
        nn.Adam([m.weight.copy()])
    with pytest.raises(TypeError, match="parameter groups"):
        nn.Adam([{"params": list(m.parameters())}])
    with pytest.raises(TypeError, match="grads: required"):
        nn.SGD({"w": np.zeros(2)}).step()


# --- item 4: token ids out of range on every decoding path ------------------------------------------

V = 5


def _step(tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lp = np.log(np.full((tokens.size, V), 1.0 / V))
    return lp, state


ST = np.zeros((1, 2))


@pytest.mark.parametrize(
    "ids,match",
    [
        (np.array([2**64 - 1], np.uint64), "beyond int64"),
        ([2**63], "beyond int64"),
        ([-1], r"in \[0, V\), got -1"),
        ([V], r"outside \[0, V = 5\)"),
        ([2**70], "beyond 64 bits"),
    ],
)
def test_score_sequence_refuses_out_of_range_ids(ids, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        fastrnn.score_sequence(_step, ST, ids, bos=0)


@pytest.mark.parametrize("bos", [2**63, 2**64 - 1, -1, V])
def test_bos_out_of_range_is_a_value_error_on_every_path(bos: int) -> None:
    calls = [
        lambda: fastrnn.beam_search(_step, ST, bos=bos, eos=1, max_len=3, beam_size=2),
        lambda: fastrnn.batch_beam_search(_step, ST, bos=bos, eos=1, max_len=3, beam_size=2),
        lambda: fastrnn.score_sequence(_step, ST, [1], bos=bos),
        lambda: fastrnn.error_analysis(_step, ST, [1], [1], bos=bos),
        lambda: fastrnn.sample(_step, ST, bos=bos, eos=1, max_len=3),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="bos"):
            call()


@pytest.mark.parametrize("eos", [2**63, V])
def test_eos_out_of_range_is_a_value_error(eos: int) -> None:
    with pytest.raises(ValueError, match="eos"):
        fastrnn.beam_search(_step, ST, bos=0, eos=eos, max_len=3, beam_size=2)
    with pytest.raises(ValueError, match="eos"):
        fastrnn.sample(_step, ST, bos=0, eos=eos, max_len=3)


def test_error_analysis_names_reference_and_output() -> None:
    with pytest.raises(ValueError, match=r"^reference: id 7 at position 1"):
        fastrnn.error_analysis(_step, ST, [1, 7], [1], bos=0)
    with pytest.raises(ValueError, match=r"^output: id 9"):
        fastrnn.error_analysis(_step, ST, [1], [9], bos=0)
    with pytest.raises(ValueError, match="^reference: .*beyond int64"):
        fastrnn.error_analysis(_step, ST, np.array([2**64 - 1], np.uint64), [1], bos=0)


def test_import_fastrnn_beam_search_gives_the_module() -> None:
    mod = importlib.import_module("fastrnn.beam_search")
    assert mod is fastrnn.decoding and callable(mod.score_sequence)
    from fastrnn.beam_search import batch_beam_search

    assert batch_beam_search is fastrnn.batch_beam_search
    assert callable(fastrnn.beam_search) and fastrnn.beam_search is fastrnn.decoding.beam_search
    (hyp,) = fastrnn.beam_search(_step, ST, bos=0, eos=1, max_len=2, beam_size=1)
    assert hyp.tokens.size >= 1


# --- item 10: an archive is checked before it is read -----------------------------------------------


def _bomb(path: str, name: str, n: int) -> None:
    """A deflated .npz member that declares n float32 zeros (n * 4 bytes), honestly."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (n,)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(name + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(1 << 20)
            for _ in range(n * 4 // len(chunk)):
                f.write(chunk)


def test_module_load_refuses_a_compressed_bomb_before_expanding_it(tmp_path) -> None:
    path = str(tmp_path / "bomb.npz")
    _bomb(path, "weight", 16 << 20)  # 64 MiB of zeros in about 64 KiB
    assert os.path.getsize(path) < 1 << 20
    m = nn.Linear(3, 2)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"weight has shape \(16777216,\), expected \(2, 3\)"):
            m.load(path, strict=False)
        with pytest.raises(KeyError, match=r"missing keys \['bias'\]"):
            m.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_trainer_resume_refuses_a_bomb_before_expanding_it(tmp_path) -> None:
    path = str(tmp_path / "ckpt.npz")
    _bomb(path, "model.weight", 16 << 20)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("__meta__.npy", _npy_str(json.dumps({"epoch": 0, "step_in_epoch": 0,
                   "global_step": 0, "elapsed": 0.0})))  # fmt: skip
    m = nn.Linear(3, 2)
    t = Trainer(m, nn.SGD(m, lr=0.1), progress="none")
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointMismatchError, match="--no-resume"):
            t.load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_a_member_whose_declared_size_lies_is_refused(tmp_path) -> None:
    path = str(tmp_path / "lie.npz")
    body = _npy_bytes(np.zeros((2, 3), np.float32))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weight.npy", body + bytes(1000))
    with pytest.raises(ValueError, match="declares .* bytes but its header describes"):
        nn.load_npz(path)


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _npy_str(text: str) -> bytes:
    return _npy_bytes(np.array(text))


# --- item 11: atomic save like a careful tool -------------------------------------------------------

_KILLED_WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from fastrnn.nn import atomic_write
def write(f):
    f.write(b"x" * 1000); f.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write({path!r}, write)
"""


def _tmp_files(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def test_a_killed_save_leaves_no_temporary_file_for_ever(tmp_path) -> None:
    target = str(tmp_path / "model.npz")
    root = os.path.join(os.path.dirname(__file__), "..", "python")
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER.format(root=root, path=target)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert p.stdout is not None and p.stdout.readline().strip() == "writing"
        p.send_signal(signal.SIGKILL)
        p.wait()
        # each save removes what earlier killed saves left: one orphan at most, never more
        assert len(_tmp_files(tmp_path)) == 1
    other = tmp_path / "other.npz"
    nn.save_npz(other, {"a": np.zeros(2)})
    assert len(_tmp_files(tmp_path)) == 1  # another target's leftovers are not touched
    nn.save_npz(target, {"a": np.ones(2)})
    assert _tmp_files(tmp_path) == []
    np.testing.assert_array_equal(nn.load_npz(target)[0]["a"], np.ones(2))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_open_would_give(tmp_path, umask: int) -> None:
    old = os.umask(umask)
    try:
        nn.save_npz(tmp_path / "a.npz", {"a": np.zeros(2)})
        with open(tmp_path / "b.bin", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "a.npz").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o666 & ~umask


def test_an_existing_file_keeps_its_mode(tmp_path) -> None:
    path = tmp_path / "a.npz"
    nn.save_npz(path, {"a": np.zeros(2)})
    os.chmod(path, 0o640)
    nn.save_npz(path, {"a": np.ones(2)})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_long_valid_name_saves(tmp_path) -> None:
    name = "m" * 242 + ".npz"  # 246 characters: valid, but not with a long suffix added
    assert len(name) == 246
    nn.save_npz(tmp_path / name, {"a": np.arange(3)})
    np.testing.assert_array_equal(nn.load_npz(tmp_path / name)[0]["a"], np.arange(3))
    assert os.listdir(tmp_path) == [name]


def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path) -> None:
    real = tmp_path / "store" / "model.npz"
    real.parent.mkdir()
    nn.save_npz(real, {"a": np.zeros(2)})
    link = tmp_path / "latest.npz"
    os.symlink(real, link)
    m = nn.Linear(2, 2, seed=0)
    m.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(real)
    np.testing.assert_array_equal(nn.load_npz(real)[0]["weight"], m.weight)


# --- item 12: a checkpoint is checked whole before it is restored ----------------------------------


def _trained(tmp_path, seed: int = 0):
    m = nn.Sequential(nn.Linear(3, 4, dtype="float64", seed=seed))
    opt = nn.Adam(m, lr=0.1)
    t = Trainer(m, opt, checkpoint=tmp_path / "c.npz", progress="none")
    x = np.random.default_rng(0).standard_normal((5, 3))

    def step(_):
        y = m(x)
        m.backward(y)
        return float((y**2).mean()), 1

    t.fit(lambda e: range(3), step, epochs=1)
    return m, opt, t


def test_bad_optimizer_state_leaves_the_model_untouched(tmp_path) -> None:
    _trained(tmp_path)
    arrays, meta = nn.load_npz(tmp_path / "c.npz")
    arrays["optim.state.0.weight.exp_avg"] = np.zeros((4, 3))  # wrong dtype is fine: shape ok
    arrays["optim.state.0.weight.step"] = np.array(-3)  # a negative step count
    nn.save_npz(tmp_path / "bad.npz", arrays, meta)
    m2, opt2, t2 = _trained(tmp_path / "other", seed=5)
    before = {k: v.copy() for k, v in m2.named_parameters()}
    state_before = opt2.state_dict()
    with pytest.raises(ValueError, match="optimizer state does not fit"):
        t2.load_checkpoint(tmp_path / "bad.npz")
    for k, v in m2.named_parameters():
        np.testing.assert_array_equal(v, before[k])
    assert (
        opt2.state_dict()["state"]["0.weight"]["step"] == state_before["state"]["0.weight"]["step"]
    )
    assert t2.global_step == 3


@pytest.mark.parametrize(
    "meta_text,match",
    [
        ("{not json", "corrupt metadata"),
        ("[" * 100000 + "]" * 100000, "corrupt metadata.*nested"),
        ('"a string"', "expected a JSON object"),
        ('{"epoch": -1, "step_in_epoch": 0, "global_step": 0, "elapsed": 0}', "epoch"),
        ('{"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": 5}', "history"),
    ],
)
def test_corrupt_checkpoint_metadata_is_a_clear_value_error(tmp_path, meta_text, match) -> None:
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__meta__.npy", _npy_str(meta_text))
    m = nn.Linear(3, 4)
    t = Trainer(m, nn.SGD(m, lr=0.1), progress="none")
    with pytest.raises(ValueError, match=match):
        t.load_checkpoint(path)


# --- item 14: resuming after a change of configuration; the time limit of this run -------------------


def test_a_changed_configuration_says_what_to_do_and_changes_nothing(tmp_path) -> None:
    ids = np.tile(np.array([1, 2, 3, 4]), 50)
    ckpt = tmp_path / "lm.npz"
    train_language_model(RNNLanguageModel(6, 4, 8, seed=0), ids, epochs=1, batch_size=2,
                         bptt=8, checkpoint=ckpt, progress="none")  # fmt: skip
    bigger = RNNLanguageModel(6, 4, 16, seed=0)  # --hidden changed
    before = {k: v.copy() for k, v in bigger.named_parameters()}
    with pytest.raises(CheckpointMismatchError, match=r"--no-resume") as e:
        train_language_model(bigger, ids, epochs=2, batch_size=2, bptt=8, checkpoint=ckpt,
                             progress="none")  # fmt: skip
    assert "16" in str(e.value) and "8" in str(e.value)
    for k, v in bigger.named_parameters():
        np.testing.assert_array_equal(v, before[k])
    hist = train_language_model(bigger, ids, epochs=1, batch_size=2, bptt=8, checkpoint=ckpt,
                                progress="none", resume=False)  # fmt: skip
    assert hist and hist[-1]["epoch"] == 1


def test_the_time_limit_counts_this_runs_training_only() -> None:
    m = nn.Linear(2, 2)
    t = Trainer(m, nn.SGD(m, lr=0.01), progress="none")
    t.elapsed = 10_000.0  # as after resuming a long run
    x = np.ones((3, 2), np.float32)

    def step(_):
        y = m(x)
        m.backward(np.zeros_like(y))
        return 0.0, 1

    t.fit(lambda e: range(5), step, epochs=1, time_limit=3600)
    assert t.global_step == 5 and t.epoch == 1


# --- poor errors and quiet acceptance --------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: nn.Linear(2, 3), lambda: fastrnn.GRU(2, 3),
                                  lambda: fastrnn.GRUCell(2, 3)])  # fmt: skip
@pytest.mark.parametrize("bad", [[("weight", np.zeros(2))], "weight", 3])
def test_load_state_dict_with_a_non_mapping_names_the_argument(make, bad) -> None:
    m = make()
    for strict in (True, False):
        with pytest.raises(TypeError, match="state_dict: expected a mapping"):
            m.load_state_dict(bad, strict=strict)


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 0.99, 0.5), 0.9, ("a", 0.9)])
def test_adam_betas_must_be_a_pair(betas) -> None:
    with pytest.raises((ValueError, TypeError), match="betas"):
        nn.Adam(nn.Linear(2, 2), betas=betas)


@pytest.mark.parametrize("idx", ["0", 1.5, True, np.float64(1.0)])
def test_embedding_padding_idx_must_be_an_int(idx) -> None:
    with pytest.raises(TypeError, match="padding_idx: expected an int or None"):
        nn.Embedding(5, 3, padding_idx=idx)
    assert nn.Embedding(5, 3, padding_idx=np.int64(-1)).padding_idx == 4


@pytest.mark.parametrize("arg,value", [("max_norm", "1"), ("norm_type", "2"), ("max_norm", True)])
def test_clip_grad_norm_refuses_non_numbers(arg, value) -> None:
    m = _model_with_big_grads()
    kw = {"max_norm": 1.0, arg: value}
    with pytest.raises(TypeError, match=arg):
        nn.clip_grad_norm_(m, **kw)
    with pytest.raises(TypeError, match="clip_value"):
        nn.clip_grad_value_(m, "1")


def test_linear_and_embedding_keep_their_own_copy_of_the_input() -> None:
    lin = nn.Linear(3, 2, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    want_w = None
    for mutate in (False, True):
        lin.zero_grad()
        xi = x.copy()
        y = lin(xi)
        if mutate:
            xi[...] = 100.0  # the caller reuses its buffer before backward
        lin.backward(np.ones_like(y))
        if want_w is None:
            want_w = lin.grads["weight"].copy()
    np.testing.assert_array_equal(lin.grads["weight"], want_w)

    emb = nn.Embedding(6, 2, dtype="float64", seed=0)
    ids = np.array([1, 2, 3], np.int64)
    y = emb(ids)
    ids[...] = 0
    emb.backward(np.ones_like(y))
    g = emb.grads["weight"]
    assert g[0].sum() == 0 and (g[1:4] == 1).all()


def test_a_packed_sequence_or_a_ragged_tuple_points_to_lengths() -> None:
    m = fastrnn.LSTM(2, 3, seed=0)
    x = np.zeros((4, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"lengths=lengths"):
        m((x, np.array([4, 2])))
    with pytest.raises(ValueError, match=r"lengths=lengths"):
        m([[1.0, 2.0], [3.0]])


def test_missing_keys_are_one_error_type_everywhere(tmp_path) -> None:
    lin = nn.Linear(2, 3)
    gru = fastrnn.GRU(2, 3)
    cell = fastrnn.GRUCell(2, 3)
    for m in (lin, gru, cell):
        sd = m.state_dict()
        sd.pop(next(iter(sd)))
        with pytest.raises(KeyError, match="missing keys"):
            m.load_state_dict(sd)
    nn.save_npz(tmp_path / "w.npz", {"weight": lin.weight})
    with pytest.raises(KeyError, match="missing keys"):
        lin.load(tmp_path / "w.npz")
    opt = nn.SGD(lin, lr=0.1)
    with pytest.raises(KeyError, match="unknown parameter"):
        opt.load_state_dict({"state": {"nope": {}}})


def test_charlm_with_another_hidden_size_says_to_use_no_resume(tmp_path, capsys) -> None:
    from fastrnn.examples import charlm

    base = ["--max-chars", "3000", "--epochs", "1", "--embedding", "4", "--ngram", "0",
            "--bptt", "16", "--batch-size", "4", "--sample-len", "5", "--out", str(tmp_path),
            "--progress", "none"]  # fmt: skip
    charlm.main([*base, "--hidden", "8"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        charlm.main([*base, "--hidden", "12", "--epochs", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--no-resume" in err and "Traceback" not in err
    res = charlm.main([*base, "--hidden", "12", "--no-resume"])
    assert res["history"][-1]["epoch"] == 1


def test_non_strict_load_reads_only_known_arrays_and_reports_the_rest(tmp_path) -> None:
    lin = nn.Linear(3, 2, seed=0)
    path = str(tmp_path / "w.npz")
    nn.save_npz(path, {"weight": np.ones((2, 3)), "extra": np.zeros(4)})
    res = lin.load(path, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(lin.weight, np.ones((2, 3)))
