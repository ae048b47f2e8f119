"""Run every cell once (forward, backward, one streaming step) and save the results.

    python tests/isa_probe.py OUT.npz

Used by test_isa_isolation.py under emulated CPUs (qemu-x86_64 -cpu Nehalem / Haswell) and
natively with FASTRNN_ISA forced, to show that one build runs, and agrees, on any x86-64.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import fastrnn

CELLS = {  # name: (gates, forward, backward, cell step, extra keyword arguments)
    "rnn_tanh": (1, fastrnn.rnn_forward, fastrnn.rnn_backward, fastrnn.rnn_cell, {}),
    "rnn_relu": (1, fastrnn.rnn_forward, fastrnn.rnn_backward, fastrnn.rnn_cell,
                 {"nonlinearity": "relu"}),
    "gru": (3, fastrnn.gru_forward, fastrnn.gru_backward, fastrnn.gru_cell, {}),
    "gru_reset_before": (3, fastrnn.gru_forward, fastrnn.gru_backward, fastrnn.gru_cell,
                         {"reset_after": False}),
    "lstm": (4, fastrnn.lstm_forward, fastrnn.lstm_backward, fastrnn.lstm_cell, {}),
    "lstm_peephole": (4, fastrnn.lstm_forward, fastrnn.lstm_backward, fastrnn.lstm_cell,
                      {"peephole": None}),
}  # fmt: skip


def run(out: dict[str, np.ndarray]) -> None:
    T, B, I, H = 7, 5, 6, 37  # H not a multiple of any vector width
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        for name, (G, fwd, bwd, cell, kw) in CELLS.items():
            kw = dict(kw)
            lstm = name.startswith("lstm")
            if "peephole" in kw:
                kw["peephole"] = rng.standard_normal(3 * H).astype(dtype) * 0.3
            x = rng.standard_normal((T, B, I)).astype(dtype)
            h0 = rng.standard_normal((B, H)).astype(dtype) * 0.5
            w = [rng.standard_normal(s).astype(dtype) * 0.3 for s in ((G * H, I), (G * H, H))]
            b = [rng.standard_normal(G * H).astype(dtype) * 0.1 for _ in range(2)]
            lengths = np.array([7, 3, 7, 1, 5])
            key = f"{name}/{np.dtype(dtype).name}"
            states = (h0, h0 * 0.5) if lstm else (h0,)
            res = fwd(x, *states, *w, *b, lengths=lengths, reverse=True, need_grad=True, **kw)
            *outs, ctx = res
            grads_in = [np.ones_like(o) for o in outs]
            *dstate, grads = bwd(ctx, *grads_in)
            step = cell(x[0], *states, *w, *b, **kw)
            step = step if isinstance(step, tuple) else (step,)
            with fastrnn.autocast("bfloat16"):  # bfloat16 products (float32 only; AMX or not)
                autocast = fwd(x, *states, *w, *b, lengths=lengths, **kw)[0]
            arrays = [*outs, *dstate, *step, autocast] + [grads[k] for k in sorted(grads)]
            for i, a in enumerate(arrays):
                out[f"{key}/{i}"] = a


if __name__ == "__main__":
    results: dict[str, np.ndarray] = {}
    run(results)
    np.savez(sys.argv[1], **results)
    b = fastrnn.backends()
    print(json.dumps({"active": b["active"], "supported": b["supported"]}))
