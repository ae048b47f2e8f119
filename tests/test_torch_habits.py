"""Issue 14 §1: a PyTorch user's habits work as in torch.

One class per concept (fastrnn.LSTM is fastrnn.nn.LSTM), parameters()/named_parameters(),
zero_grad(), train()/eval(), state_dict(), weights as attributes, `Model.load(path)` on the class,
optimizers and clipping over `model.parameters()`, and torch's PackedSequence as input. The
training loop below is written as in torch and follows torch's trajectory step by step.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import nn
from fastrnn.models import RNNLanguageModel


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_one_class_per_recurrent_layer(name: str) -> None:
    cls = getattr(fastrnn, name)
    assert cls is getattr(nn, name) and cls is getattr(fastrnn.rnn, name)
    m = cls(3, 4, num_layers=2, bidirectional=True, seed=0)
    assert isinstance(m, nn.Module)
    names = [k for k, _ in m.named_parameters()]
    assert names == list(m.state_dict())
    assert len(list(m.parameters())) == len(names)
    assert m.weight_ih_l0 is dict(m.named_parameters())["weight_ih_l0"]
    assert m.weight_hh_l1_reverse.shape == m.state_dict()["weight_hh_l1_reverse"].shape


def test_weights_as_attributes_change_the_output() -> None:
    m = fastrnn.GRU(2, 3, seed=0)
    x = np.ones((4, 1, 2), np.float32)
    out0 = m(x)[0]
    m.weight_ih_l0 = np.zeros_like(m.weight_ih_l0)
    assert not m.weight_ih_l0.any()
    out1 = m(x)[0]
    assert not np.allclose(out0, out1)
    m2 = fastrnn.GRU(2, 3, seed=0)
    m2.load_state_dict({**m2.state_dict(), "weight_ih_l0": np.zeros((9, 2))})
    np.testing.assert_array_equal(m2(x)[0], out1)


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_state_dict_names_are_torchs_and_load_both_ways(name: str) -> None:
    torch = pytest.importorskip("torch")
    t = getattr(torch.nn, name)(3, 4, num_layers=2, bidirectional=True)
    m = getattr(fastrnn, name)(3, 4, num_layers=2, bidirectional=True)
    assert list(m.state_dict()) == list(t.state_dict())
    assert [k for k, _ in m.named_parameters()] == [k for k, _ in t.named_parameters()]
    m.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    with torch.no_grad():
        want = t(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(m.eval()(x)[0], want, rtol=1e-5, atol=1e-6)
    assert m.training is False and m.train().training is True


class Net(nn.Module):
    """LSTM + linear head, written as a torch user would (plus the explicit backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = fastrnn.LSTM(3, 5, dtype="float64")
        self.head = nn.Linear(5, 2, dtype="float64")

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, _ = self.lstm(x)
        return self.head(out[-1])

    def backward(self, dy: np.ndarray) -> None:
        d_last = self.head.backward(dy)
        d_out = np.zeros((self._steps, *d_last.shape))
        d_out[-1] = d_last
        self.lstm.backward(d_out)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._steps = x.shape[0]
        return self.forward(x)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "AdamW"])
def test_a_torch_style_training_loop_follows_torch(opt_name: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((6, 4, 3)) for _ in range(5)]
    ys = [rng.standard_normal((4, 2)) for _ in range(5)]

    model = Net()
    tl, th = torch.nn.LSTM(3, 5).double(), torch.nn.Linear(5, 2).double()
    model.lstm.load_state_dict(tl.state_dict())
    model.head.load_state_dict(th.state_dict())
    kw = {"lr": 0.05} if opt_name == "SGD" else {"lr": 0.01}
    opt = getattr(nn, opt_name)(model.parameters(), **kw)
    tparams = list(tl.parameters()) + list(th.parameters())
    topt = getattr(torch.optim, opt_name)(tparams, **kw)

    model.train()
    for x, y in zip(xs, ys):
        # fastrnn, as in torch (the loss gradient is written out: there is no autograd)
        opt.zero_grad()
        pred = model(x)
        loss = float(((pred - y) ** 2).mean())
        model.backward(2 * (pred - y) / pred.size)
        norm = nn.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        # torch
        topt.zero_grad()
        tpred = th(tl(torch.from_numpy(x))[0][-1])
        tloss = ((tpred - torch.from_numpy(y)) ** 2).mean()
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, 0.5)
        topt.step()
        assert loss == pytest.approx(float(tloss.detach()), rel=1e-9)
        assert norm == pytest.approx(float(tnorm), rel=1e-9)
    for (k, p), tp in zip(model.named_parameters(), tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    assert list(opt.state_dict()["state"]) == [str(i) for i in range(len(tparams))]


def test_zero_grad_and_accumulation_as_in_torch() -> None:
    m = fastrnn.RNN(2, 3, dtype="float64", seed=0)
    x = np.ones((3, 1, 2))
    out, _ = m(x)
    m.backward(np.ones_like(out))
    g1 = {k: g.copy() for k, g in m.grads.items()}
    out, _ = m(x)
    m.backward(np.ones_like(out))
    for k, g in m.grads.items():
        np.testing.assert_allclose(g, 2 * g1[k])
    m.zero_grad()
    assert m.grads == {}


def test_model_load_works_on_the_class(tmp_path) -> None:
    m = RNNLanguageModel(11, 4, 6, cell="gru", seed=3)
    m.save(tmp_path / "lm.npz")
    m2 = RNNLanguageModel.load(tmp_path / "lm.npz")
    assert isinstance(m2, RNNLanguageModel) and m2.cell_type == "gru" and m2.hidden_size == 6
    for (k, a), (_, b) in zip(m.named_parameters(), m2.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    lstm = fastrnn.LSTM(3, 4, num_layers=2, seed=1)
    lstm.save(tmp_path / "lstm.npz")
    again = nn.Module.load(tmp_path / "lstm.npz")  # a base class finds the saved subclass
    assert type(again) is fastrnn.LSTM and again.num_layers == 2
    m3 = RNNLanguageModel(11, 4, 6, cell="gru", seed=9)
    m3.load(tmp_path / "lm.npz")  # on a model: loads into it, as before
    np.testing.assert_array_equal(m3.out.weight, m.out.weight)
    with pytest.raises(ValueError, match="holds a .*LSTM, not a RNNLanguageModel"):
        RNNLanguageModel.load(tmp_path / "lstm.npz")
    nn.save_npz(tmp_path / "bare.npz", m.state_dict())
    with pytest.raises(ValueError, match="not a RNNLanguageModel|constructor arguments"):
        RNNLanguageModel.load(tmp_path / "bare.npz")


def test_torch_packed_sequence_input() -> None:
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    t = torch.nn.GRU(3, 4, batch_first=True)
    m = fastrnn.GRU(3, 4, batch_first=True)
    m.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    lengths = np.array([2, 5, 3])
    packed = pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                  batch_first=True, enforce_sorted=False)  # fmt: skip
    out, h_n = m(packed)
    with torch.no_grad():
        tout, th = t(packed)
    want, _ = pad_packed_sequence(tout, batch_first=True, total_length=5)
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n, th.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out, m(x, lengths=lengths)[0])
    with pytest.raises(TypeError, match="PackedSequence carries its lengths"):
        m(packed, lengths=lengths)


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
def test_one_class_per_cell(name: str) -> None:
    cls = getattr(fastrnn, name)
    assert cls is getattr(nn, name) and issubclass(cls, nn.Module)
    c = cls(3, 4, seed=0)
    assert [k for k, _ in c.named_parameters()] == list(c.state_dict())
    assert c.weight_ih.shape[1] == 3 and c.training
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    first = lambda r: r[0] if isinstance(r, tuple) else r  # noqa: E731
    train_out = first(c(x))
    assert len(c._tape) == 1
    eval_out = first(c.eval()(x))
    assert c._tape == []
    np.testing.assert_array_equal(train_out, eval_out)  # the same numbers in both modes


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cell_loop_backward_matches_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    t = getattr(torch.nn, name)(3, 4).double()
    c = getattr(fastrnn, name)(3, 4, dtype="float64")
    c.load_state_dict(t.state_dict())
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((5, 2, 3))
    lstm = name == "LSTMCell"
    s, ts = None, None
    outs = []
    for x in xs:  # a decoder loop, forward
        s = c(x, s)
        ts = t(torch.from_numpy(x), ts)
        outs.append(ts[0] if lstm else ts)
    sum(o.sum() for o in outs).backward()
    dh = np.ones((2, 4))
    dstate: tuple | np.ndarray | None = None
    for _ in xs:  # and the same loop in reverse
        if lstm:
            carry = (np.zeros((2, 4)), np.zeros((2, 4))) if dstate is None else dstate
            _, dstate = c.backward(dh + carry[0], carry[1])
        else:
            _, dstate = c.backward(dh + (0 if dstate is None else dstate))
    for k, p in t.named_parameters():
        np.testing.assert_allclose(c.grads[k], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


def test_cell_bfloat16_training_step_has_a_backward() -> None:
    c = fastrnn.GRUCell(8, 16, seed=0)
    c.inference_dtype = "bfloat16"
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    h = c(x)
    dx, dh = c.backward(np.ones_like(h))
    assert dx.shape == (2, 8) and np.isfinite(dx).all() and set(c.grads) == set(c.state_dict())


def test_cell_tape_is_bounded() -> None:
    c = fastrnn.RNNCell(2, 3, seed=0)
    c.tape_limit = 4
    x = np.ones((1, 2), np.float32)
    with pytest.warns(UserWarning, match=r"Call \.eval\(\) for inference"):
        for _ in range(10):
            c(x)
    assert len(c._tape) == 4
    for _ in range(4):
        c.backward(np.ones((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="record was dropped"):
        c.backward(np.ones((1, 3), np.float32))
