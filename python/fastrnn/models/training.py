"""`Trainer`: the training loop shared by the models and demos.

It owns what every loop repeats: zero the gradients, run the model's step (forward + backward),
refuse a non-finite loss or gradient (FloatingPointError; the optimizer step is skipped, so the
parameters stay finite), clip, update, show progress, evaluate, stop early or at a time limit,
and write checkpoints that a later run resumes from.

Progress is a tqdm bar (loss, tokens/s) when tqdm is installed and the output is a terminal,
plain lines otherwise. Checkpoints are one `.npz` (model parameters, optimizer state, loop
position and history as JSON) written atomically: an interrupted save leaves the previous
checkpoint intact. Ctrl-C saves a checkpoint and returns.

Resuming replays the data order: `batches(epoch)` must yield the same batches for the same epoch
(seed your shuffling with the epoch), and the batches of the interrupted epoch that were already
trained on are skipped. A checkpoint is checked whole before anything is restored (the model's
constructor arguments, every array's name and shape from the archive's headers, the optimizer
state and hyperparameters, the loop state): a checkpoint of another configuration raises
`CheckpointMismatchError` naming what differs, and the model and optimizer stay as they were.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from .. import nn
from ..nn import _checks
from ..nn._io import load_meta, load_npz, save_npz

__all__ = ["CheckpointMismatchError", "Trainer", "exit_on_checkpoint_mismatch"]


class CheckpointMismatchError(KeyError, ValueError):
    """A checkpoint that does not belong to this model or optimizer (another configuration).

    Nothing was restored. Start fresh with `fit(..., resume=False)` (the examples:
    `--no-resume`), or rebuild the model as the checkpoint's run did. A KeyError (the type of
    fastrnn's missing-key errors) and a ValueError."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _fmt(metrics: dict[str, Any]) -> str:
    parts = []
    for k, v in metrics.items():
        if isinstance(v, float):
            parts.append(f"{k} {v:.4g}")
        else:
            parts.append(f"{k} {v}")
    return "  ".join(parts)


@contextlib.contextmanager
def exit_on_checkpoint_mismatch(prog: str) -> Iterator[None]:
    """For command-line programs: a checkpoint of another configuration ends the program with
    its one-line message (which names --no-resume) and exit status 2, not a traceback."""
    try:
        yield
    except CheckpointMismatchError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _without_seed(init: Any) -> Any:
    """Constructor arguments less `seed` (resuming overwrites what the seed initialized)."""
    if isinstance(init, dict) and isinstance(init.get("kwargs"), dict):
        return {**init, "kwargs": {k: v for k, v in init["kwargs"].items() if k != "seed"}}
    return init


def _describe_init(init: Any) -> str:
    if not isinstance(init, dict):
        return repr(init)
    parts = [repr(a) for a in init.get("args", [])]
    parts += [f"{k}={v!r}" for k, v in dict(init.get("kwargs", {})).items()]
    return "(" + ", ".join(parts) + ")"


def _loop_state(path: str, meta: dict[str, Any]) -> tuple[int, int, int, float, list[Any]]:
    """(epoch, step_in_epoch, global_step, elapsed, history), checked."""
    out: list[Any] = []
    for key in ("epoch", "step_in_epoch", "global_step"):
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(
                f"path: {path!r} has corrupt metadata ({key}: expected an integer >= 0, got {v!r})"
            )
        out.append(v)
    elapsed = meta.get("elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not elapsed >= 0:
        raise ValueError(f"path: {path!r} has corrupt metadata (elapsed: {elapsed!r})")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ValueError(
            f"path: {path!r} has corrupt metadata (history: expected a list of objects)"
        )
    return out[0], out[1], out[2], float(elapsed), list(history)


class Trainer:
    """Runs epochs of `train_step` over `batches`, with checks, clipping, progress, checkpoints.

    Parameters
    ----------
    model : fastrnn.nn.Module
    optimizer : fastrnn.nn.Optimizer
    clip_grad_norm : float or None
        Scale the gradients to this global L2 norm at most (None: no clipping).
    clip_grad_value : float or None
        Clamp each gradient entry to [-v, v].
    checkpoint : path or None
        Where checkpoints go (and come from when resuming).
    checkpoint_every : int or None
        Also save every this many steps (always at each epoch's end and when stopping).
    progress : {"auto", "tqdm", "plain", "none"}
        "auto": tqdm on a terminal when installed, plain lines otherwise.
    log_every : float
        Seconds between plain progress lines.
    out : text stream for progress and logs (default sys.stderr for bars, sys.stdout for lines)
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: nn.Optimizer,
        *,
        clip_grad_norm: float | None = None,
        clip_grad_value: float | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        progress: str = "auto",
        log_every: float = 10.0,
        out: TextIO | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.clip_grad_norm = (
            None if clip_grad_norm is None else _checks.positive("clip_grad_norm", clip_grad_norm)
        )
        self.clip_grad_value = (
            None
            if clip_grad_value is None
            else _checks.positive("clip_grad_value", clip_grad_value)
        )
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.checkpoint_every = checkpoint_every
        self.progress = _checks.choice("progress", progress, ("auto", "tqdm", "plain", "none"))
        self.log_every = float(log_every)
        self.out = out
        self.epoch = 0  # epochs completed
        self.step_in_epoch = 0  # batches of the current epoch already trained on
        self.global_step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed runs
        self.run_elapsed = 0.0  # training seconds of this fit() call (what time_limit counts)
        self.history: list[dict[str, Any]] = []
        self._updating = False

    # --- checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write model, optimizer and loop state to `path` (default: the trainer's checkpoint)."""
        path = os.fspath(path) if path is not None else self.checkpoint
        if path is None:
            raise ValueError("path: no checkpoint path given to the Trainer or to save_checkpoint")
        arrays = {"model." + k: v for k, v in self.model.state_dict().items()}
        arrays.update({"optim." + k: v for k, v in self.optimizer.flat_state().items()})
        groups = [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
            for g in self.optimizer.param_groups
        ]
        meta = {
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "elapsed": self.elapsed, "history": self.history, "param_groups": groups,
            "model": type(self.model).__name__,
            "model_init": self.model.__dict__.get("_init_args"),
        }  # fmt: skip
        save_npz(path, arrays, meta)
        return path

    def load_checkpoint(self, path: str | os.PathLike[str] | None = None) -> None:
        """Restore model, optimizer and loop position from a checkpoint.

        Everything is checked first (array names and shapes from the archive's headers, before
        any array is read; the model's constructor arguments when both runs recorded them; the
        optimizer's state and hyperparameters; the loop state), then applied: on any error the
        model, optimizer and trainer are unchanged. A checkpoint of another configuration raises
        CheckpointMismatchError."""
        path = os.fspath(path) if path is not None else self.checkpoint
        if path is None:
            raise ValueError("path: no checkpoint path given")
        hint = (
            "; nothing was restored. To start fresh, delete it or pass resume=False (the "
            "examples: --no-resume)"
        )
        meta = load_meta(path)
        if "epoch" not in meta:
            raise ValueError(f"path: {path!r} is not a Trainer checkpoint (no loop state)")
        loop = _loop_state(path, meta)
        name = type(self.model).__name__
        if meta.get("model", name) != name:
            raise CheckpointMismatchError(
                f"checkpoint {path!r} holds a {meta.get('model')!r}, not a {name!r}{hint}"
            )
        saved_init = _without_seed(meta.get("model_init"))
        init = _without_seed(self.model.__dict__.get("_init_args"))
        if saved_init is not None and init is not None and saved_init != init:
            raise CheckpointMismatchError(
                f"checkpoint {path!r} was written for a {name} built with "
                f"{_describe_init(saved_init)}; this one is built with {_describe_init(init)}"
                f"{hint}"
            )
        model_shapes = {k: tuple(v.shape) for k, v in self.model.named_parameters()}
        param_shapes = {k: tuple(v.shape) for k, v in self.optimizer._named().items()}
        names = sorted(param_shapes, key=len, reverse=True)

        def expected(key: str) -> tuple[int, ...] | None:
            if key.startswith("model."):
                return model_shapes.get(key[len("model.") :])
            if key.startswith("optim.state."):
                rest = key[len("optim.state.") :]
                pname = next((n for n in names if rest.startswith(n + ".")), None)
                if pname is None:
                    return None
                return () if rest[len(pname) + 1 :] == "step" else param_shapes[pname]
            return None

        try:
            arrays, _ = load_npz(path, expected)
        except (KeyError, ValueError) as e:
            msg = e.args[0] if e.args else str(e)
            if "does not match" in msg or "has shape" in msg:
                raise CheckpointMismatchError(
                    f"checkpoint {path!r} does not fit this model and optimizer: {msg}{hint}"
                ) from None
            raise
        model = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
        optim = {k[len("optim.") :]: v for k, v in arrays.items() if k.startswith("optim.")}
        missing = [k for k in model_shapes if k not in model]
        if missing:
            raise CheckpointMismatchError(
                f"checkpoint {path!r} lacks the model parameters {missing}{hint}"
            )
        groups = meta.get("param_groups")
        if groups is not None:
            if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
                raise ValueError(f"path: {path!r} has corrupt metadata (param_groups)")
            groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
        try:
            staged = self.optimizer._stage_flat_state(optim, groups or None)
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointMismatchError(
                f"checkpoint {path!r}: optimizer state does not fit: {e}{hint}"
            ) from None
        self.model.load_state_dict(model)  # checks everything before it changes anything
        self.optimizer._apply_staged(staged)
        self.epoch, self.step_in_epoch, self.global_step, self.elapsed, self.history = loop

    # --- the loop ----------------------------------------------------------------------------------

    def _bar(self, total: int | None, desc: str) -> Any:
        mode = self.progress
        if mode in ("auto", "tqdm"):
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped]
            except ImportError:
                if mode == "tqdm":
                    raise ImportError(
                        "progress: 'tqdm' was asked for but tqdm is not installed"
                    ) from None
                return None
            stream = self.out or sys.stderr
            if mode == "tqdm" or stream.isatty():
                return tqdm(total=total, desc=desc, file=stream, leave=True, dynamic_ncols=True)
        return None

    def _print(self, msg: str) -> None:
        if self.progress == "none":
            return
        print(msg, file=self.out or sys.stdout, flush=True)

    def fit(
        self,
        batches: Callable[[int], Iterable[Any]],
        train_step: Callable[[Any], tuple[float, int]],
        epochs: int,
        *,
        evaluate: Callable[[], dict[str, Any]] | None = None,
        eval_every: int | None = None,
        stop: Callable[[dict[str, Any]], bool] | None = None,
        time_limit: float | None = None,
        steps_per_epoch: int | None = None,
        resume: bool = True,
        on_epoch_start: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Train for `epochs` epochs (counted from the start, across resumed runs).

        Parameters
        ----------
        batches : epoch -> iterable of batches (the same for the same epoch, for resuming)
        train_step : batch -> (mean loss, count)
            Runs forward and backward (adding gradients); the trainer zeroes gradients before it
            and updates after. `count` weights the running average (e.g. target tokens).
        epochs : int
        evaluate : () -> metrics dict, run at each epoch's end and every `eval_every` steps
        stop : metrics -> bool; True ends training after that evaluation (e.g. accuracy reached)
        time_limit : seconds of training in this call (a resumed run gets the whole limit again)
            after which training stops
        steps_per_epoch : for the progress bar's total
        resume : load `checkpoint` first if it exists
        on_epoch_start : called with the epoch number before its first batch (also when resuming
            inside it), e.g. to reset a carried recurrent state

        Returns
        -------
        list of dict
            The history: one metrics dict per evaluation, with "epoch", "step", "train_loss",
            "elapsed".
        """
        epochs = _checks.positive_int("epochs", epochs)
        if resume and self.checkpoint and os.path.exists(self.checkpoint):
            self.load_checkpoint()
            self._print(
                f"resumed from {self.checkpoint}: epoch {self.epoch + 1}, step {self.step_in_epoch}, "
                f"{self.elapsed:.0f}s trained"
            )
        self.model.train()
        self.run_elapsed = 0.0
        stopped = False
        try:
            while self.epoch < epochs and not stopped:
                stopped = self._run_epoch(
                    batches,
                    train_step,
                    evaluate,
                    eval_every,
                    stop,
                    time_limit,
                    steps_per_epoch,
                    on_epoch_start,
                )
        except KeyboardInterrupt:
            if self.checkpoint and self._updating:
                self._print(
                    f"interrupted during a parameter update; {self.checkpoint} keeps the last "
                    "complete checkpoint (run again to resume from it)"
                )
            elif self.checkpoint:
                self.save_checkpoint()
                self._print(
                    f"interrupted; checkpoint saved to {self.checkpoint} (run again to resume)"
                )
            else:
                self._print("interrupted")
            self._updating = False
            self.model.clear_caches()
            return self.history
        if self.checkpoint:
            self.save_checkpoint()
        return self.history

    def _run_epoch(
        self,
        batches: Callable[[int], Iterable[Any]],
        train_step: Callable[[Any], tuple[float, int]],
        evaluate: Callable[[], dict[str, Any]] | None,
        eval_every: int | None,
        stop: Callable[[dict[str, Any]], bool] | None,
        time_limit: float | None,
        steps_per_epoch: int | None,
        on_epoch_start: Callable[[int], None] | None,
    ) -> bool:
        e = self.epoch
        skip = self.step_in_epoch
        if on_epoch_start is not None:
            on_epoch_start(e)
        bar = self._bar(steps_per_epoch, f"epoch {e + 1}")
        if bar is not None and skip:
            bar.update(skip)
        loss_sum, count_sum, tokens = 0.0, 0, 0
        t_last = t_start = time.perf_counter()
        steps_here = 0
        stopped = False
        try:
            for i, batch in enumerate(batches(e)):
                if i < skip:
                    continue
                t0 = time.perf_counter()
                self.optimizer.zero_grad()
                loss, count = train_step(batch)
                where = f"at epoch {e + 1}, step {i + 1}"
                _checks.finite_loss(float(loss), where)
                if self.clip_grad_value is not None:
                    nn.clip_grad_value_(self.model, self.clip_grad_value)
                try:
                    nn.clip_grad_norm_(
                        self.model, self.clip_grad_norm or math.inf, error_if_nonfinite=True
                    )
                except RuntimeError:
                    norm = nn.clip_grad_norm_(self.model, math.inf)  # measure only
                    raise FloatingPointError(
                        f"gradient norm is {norm} {where} (loss {loss:.4g}); stopped before the optimizer "
                        "step, so the parameters are unchanged. Lower the learning rate or clip gradients"
                    ) from None
                self._updating = True  # a Ctrl-C now would leave half-updated parameters
                self.optimizer.step()
                self._updating = False
                dt = time.perf_counter() - t0
                self.elapsed += dt
                self.run_elapsed += dt
                self.global_step += 1
                self.step_in_epoch = i + 1
                steps_here += 1
                loss_sum += float(loss) * count
                count_sum += count
                tokens += count
                now = time.perf_counter()
                avg = loss_sum / max(count_sum, 1)
                speed = tokens / max(now - t_start, 1e-9)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{avg:.4f}", tok_s=f"{speed:.0f}", refresh=False)
                elif now - t_last >= self.log_every:
                    total = f"/{steps_per_epoch}" if steps_per_epoch else ""
                    self._print(
                        f"epoch {e + 1} step {i + 1}{total}  loss {avg:.4f}  {steps_here / (now - t_start):.1f} steps/s  "
                        f"{speed:.0f} tok/s  {self.elapsed:.0f}s"
                    )
                    t_last = now
                if (
                    self.checkpoint
                    and self.checkpoint_every
                    and self.global_step % self.checkpoint_every == 0
                ):
                    self.save_checkpoint()
                over = time_limit is not None and self.run_elapsed >= time_limit
                evaluated = False
                if evaluate is not None and eval_every and self.global_step % eval_every == 0:
                    evaluated = True
                    if self._evaluate(evaluate, avg, stop):
                        stopped = True
                        break
                    loss_sum, count_sum = 0.0, 0
                if over:
                    self._print(
                        f"time limit of {time_limit:.0f}s reached at epoch {e + 1}, step {i + 1}"
                    )
                    if evaluate is not None and not evaluated:
                        self._evaluate(evaluate, avg, None)
                    stopped = True
                    break
        finally:
            if bar is not None:
                bar.close()
        if not stopped:
            self.epoch += 1
            self.step_in_epoch = 0
            if evaluate is not None:
                stopped = self._evaluate(
                    evaluate, loss_sum / max(count_sum, 1), stop, epoch_end=True
                )
            else:
                self.history.append(
                    {
                        "epoch": e + 1,
                        "step": self.global_step,
                        "train_loss": loss_sum / max(count_sum, 1),
                        "elapsed": self.elapsed,
                    }
                )
                self._print(
                    f"epoch {e + 1} done  train_loss {loss_sum / max(count_sum, 1):.4f}  {self.elapsed:.0f}s"
                )
            if self.checkpoint:
                self.save_checkpoint()
        return stopped

    def _evaluate(
        self,
        evaluate: Callable[[], dict[str, Any]],
        train_loss: float,
        stop: Callable[[dict[str, Any]], bool] | None,
        epoch_end: bool = False,
    ) -> bool:
        self.model.eval()
        try:
            metrics = dict(evaluate())
        finally:
            self.model.train()
        rec = {"epoch": self.epoch if epoch_end else self.epoch + 1, "step": self.global_step,
               "train_loss": float(train_loss), **metrics, "elapsed": round(self.elapsed, 2)}  # fmt: skip
        self.history.append(rec)
        self._print(("epoch end  " if epoch_end else "") + _fmt(rec))
        return bool(stop(metrics)) if stop is not None else False
