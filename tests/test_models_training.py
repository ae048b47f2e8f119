"""Trainer: resumable checkpoints (bitwise the same as an uninterrupted run), NaN stops, time
limits, early stopping, progress output, atomic writes."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from fastrnn import nn
from fastrnn.models import RNNLanguageModel, Trainer, train_language_model


def _setup(tmp_path=None, every=None, dtype="float64"):
    model = nn.Sequential(
        nn.Linear(3, 8, dtype=dtype, seed=0), nn.Tanh(), nn.Linear(8, 1, dtype=dtype, seed=1)
    )
    opt = nn.Adam(model, lr=0.05)
    ckpt = None if tmp_path is None else tmp_path / "run.npz"
    trainer = Trainer(
        model, opt, clip_grad_norm=1.0, checkpoint=ckpt, checkpoint_every=every, progress="none"
    )
    w = np.array([[0.5], [-1.0], [2.0]])

    def batches(epoch):
        r = np.random.default_rng(epoch)
        for _ in range(5):
            x = r.standard_normal((16, 3))
            yield x.astype(dtype), (np.tanh(x @ w)).astype(dtype)

    def step(batch):
        x, y = batch
        out = model(x)
        diff = out - y
        model.backward(2 * diff / diff.size)
        return float((diff**2).mean()), len(x)

    return model, trainer, batches, step


def test_resume_after_interruption_is_bitwise_identical(tmp_path):
    ref_model, ref, batches, step = _setup()
    ref.fit(batches, step, epochs=3)

    model, trainer, batches, step = _setup(tmp_path, every=2)
    calls = [0]

    def interrupted_step(batch):
        calls[0] += 1
        if calls[0] == 8:  # in epoch 2, after 2 checkpoints
            raise KeyboardInterrupt
        return step(batch)

    trainer.fit(batches, interrupted_step, epochs=3)
    assert trainer.global_step == 7
    model2, trainer2, batches2, step2 = _setup(tmp_path, every=2)
    trainer2.fit(batches2, step2, epochs=3)
    assert trainer2.global_step == 15 and trainer2.epoch == 3
    for (k, a), (_, b) in zip(ref_model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert [h["epoch"] for h in trainer2.history] == [1, 2, 3]


def test_nan_loss_stops_with_a_clear_message_and_leaves_parameters_untouched(tmp_path):
    model, trainer, batches, step = _setup(tmp_path)
    trainer.fit(batches, step, epochs=1)
    saved = model.state_dict()
    on_disk = (tmp_path / "run.npz").read_bytes()

    def bad_step(batch):
        loss, n = step(batch)
        return float("nan"), n

    with pytest.raises(
        FloatingPointError,
        match=r"loss is nan at epoch 2, step 1; stopped before the optimizer step",
    ):
        trainer.fit(batches, bad_step, epochs=2)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, saved[k])
    assert (tmp_path / "run.npz").read_bytes() == on_disk

    def inf_grad_step(batch):
        loss, n = step(batch)
        model[0]._grads["weight"][0, 0] = np.inf
        return loss, n

    with pytest.raises(FloatingPointError, match="gradient norm is inf"):
        trainer.fit(batches, inf_grad_step, epochs=2, resume=False)
    assert all(np.all(np.isfinite(v)) for v in model.state_dict().values())


def test_time_limit_early_stop_and_plain_progress():
    model, trainer, batches, step = _setup()
    trainer.log_every = 0.0
    trainer.progress = "plain"
    buf = io.StringIO()
    trainer.out = buf
    hist = trainer.fit(batches, step, epochs=50, evaluate=lambda: {"acc": 1.0}, eval_every=3,
                       stop=lambda m: m["acc"] >= 1.0)  # fmt: skip
    assert trainer.global_step == 3 and len(hist) == 1 and hist[0]["acc"] == 1.0
    out = buf.getvalue()
    assert "epoch 1 step 1/" not in out and "epoch 1 step 1  loss" in out and "tok/s" in out
    model, trainer, batches, step = _setup()
    trainer.fit(batches, step, epochs=50, time_limit=0.0)
    assert trainer.global_step == 1


def test_tqdm_progress_when_installed():
    pytest.importorskip("tqdm")
    model, trainer, batches, step = _setup()
    trainer.progress = "tqdm"
    buf = io.StringIO()
    trainer.out = buf
    trainer.fit(batches, step, epochs=1, steps_per_epoch=5)
    assert "epoch 1" in buf.getvalue() and "5/5" in buf.getvalue()


def test_checkpoint_errors(tmp_path):
    model, trainer, batches, step = _setup()
    with pytest.raises(ValueError, match="path: no checkpoint path"):
        trainer.save_checkpoint()
    model.save(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="is not a Trainer checkpoint"):
        trainer.load_checkpoint(tmp_path / "weights.npz")
    other = nn.Sequential(nn.Linear(3, 2, dtype="float64"))
    trainer.save_checkpoint(tmp_path / "c.npz")
    t2 = Trainer(other, nn.SGD(other, lr=0.1), progress="none")
    with pytest.raises(KeyError, match="missing keys"):
        t2.load_checkpoint(tmp_path / "c.npz")
    assert sorted(os.listdir(tmp_path)) == ["c.npz", "weights.npz"]


def test_train_language_model_runs_and_resumes(tmp_path):
    ids = np.tile(np.array([4, 5, 6, 7, 5, 4]), 100)
    m = RNNLanguageModel(8, 8, 16, seed=0)
    hist = train_language_model(m, ids, ids[:120], epochs=2, batch_size=4, bptt=10, lr=0.02,
                                checkpoint=tmp_path / "lm.npz", progress="none")  # fmt: skip
    assert [h["epoch"] for h in hist] == [1, 2] and hist[1]["val_ppl"] < hist[0]["val_ppl"]
    m2 = RNNLanguageModel(8, 8, 16, seed=1)
    hist2 = train_language_model(m2, ids, ids[:120], epochs=3, batch_size=4, bptt=10, lr=0.02,
                                 checkpoint=tmp_path / "lm.npz", progress="none")  # fmt: skip
    assert [h["epoch"] for h in hist2] == [1, 2, 3]
    np.testing.assert_array_equal(hist2[1]["val_ppl"], hist[1]["val_ppl"])  # history restored


def test_interrupt_during_an_update_keeps_the_last_complete_checkpoint(tmp_path, capsys):
    model, trainer, batches, step = _setup(tmp_path, every=1)
    trainer.progress = "plain"
    real = trainer.optimizer.step
    calls = [0]

    def flaky_step(grads=None):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        real(grads)

    trainer.optimizer.step = flaky_step
    trainer.fit(batches, step, epochs=1)
    assert "keeps the last complete checkpoint" in capsys.readouterr().out
    t2 = _setup(tmp_path)[1]
    t2.load_checkpoint()
    assert t2.global_step == 2
