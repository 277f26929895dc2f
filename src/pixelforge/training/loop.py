"""One training loop for every model family.

A family supplies a *task* (see :class:`Task`): its modules and optimizers, and a
``step(images, labels) -> dict`` that performs one optimisation step and returns scalar
metrics. The loop owns everything else: batching and shuffling (reproducible per epoch,
sharded across ranks; random crops of folder photos, :class:`~pixelforge.data.CropData`, are
seeded by seed, epoch, batch and rank), the budget (epochs, steps, wall-clock minutes), the progress bar,
metrics.jsonl and TensorBoard, periodic and final checkpoints, exact resume (step, data
position, RNG state), NaN/inf detection, and SIGINT/SIGTERM handling.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import dryrun
from ..errors import Interrupted, PixelforgeError, RunError, TrainingDiverged
from ..family import flag
from ..runs import Run
from ..runtime import Runtime
from .task import Task

if TYPE_CHECKING:
    from ..data import CropData, ImageData

log = logging.getLogger("pixelforge.training")


@dataclass
class TrainConfig:
    # total epochs for the run (counted across resumes)
    epochs: int | None = flag(None, help="total epochs for the run", check="positive", group="budget")
    # Wall-clock budget for this invocation; a time-based LR schedule spans the run's training time
    # (what earlier invocations trained plus this budget), so an interrupted run resumes on its schedule.
    minutes: float | None = flag(None, help="wall-clock minutes for this invocation", check="positive", group="budget")
    # total optimisation steps for the run
    max_steps: int | None = flag(None, help="total optimisation steps for the run", check="positive", group="budget")
    batch_size: int = flag(64, help="images per micro-batch and process", check="positive", group="budget")
    checkpoint_minutes: float = flag(5.0, help="checkpoint interval", check="positive", group="budget")
    log_every: int = 20
    # steps between evaluations (tasks with an ``evaluate`` method)
    eval_every: int | None = flag(
        None, help="track FID/KID every N steps; keep the best checkpoint", check="positive", group="evaluation")
    # under torchrun: batch-norm statistics over the global batch (CUDA)
    sync_bn: bool = flag(
        False, help="under torchrun on CUDA: batch-norm statistics over the global batch", group="budget")
    # micro-batches of batch_size per optimisation step (one all-reduce per step)
    grad_accum: int = flag(
        1, help="micro-batches per optimisation step (gradient accumulation)", check="positive", group="budget")
    keep_checkpoints: int = 2

    def validate(self) -> None:
        if self.batch_size < 1:
            raise PixelforgeError(f"batch size must be at least 1, not {self.batch_size}")
        if self.batch_size > 65536:
            raise PixelforgeError(f"batch size {self.batch_size} is absurdly large; use at most 65536")
        if self.epochs is not None and self.epochs < 1:
            raise PixelforgeError(f"epochs must be at least 1, not {self.epochs}")
        if self.minutes is not None and not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise PixelforgeError(f"minutes must be a positive number, not {self.minutes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise PixelforgeError(f"max steps must be at least 1, not {self.max_steps}")
        if self.grad_accum < 1:
            raise PixelforgeError(f"grad-accum must be at least 1, not {self.grad_accum}")
        if self.eval_every is not None and self.eval_every < 1:
            raise PixelforgeError(f"eval-every must be at least 1 step, not {self.eval_every}")


class Trainer:
    def __init__(self, task: Task, data: "ImageData | CropData", run: Run, cfg: TrainConfig, runtime: Runtime,
                 seed: int = 0, progress: bool = True):
        cfg.validate()
        self.task, self.data, self.run, self.cfg, self.rt = task, data, run, cfg, runtime
        self.seed = seed
        self.progress = progress and runtime.is_main
        self.rank_batch = cfg.batch_size * cfg.grad_accum  # images one rank takes per step
        task.configure(cfg.grad_accum, cfg.eval_every)
        per_step = self.rank_batch * runtime.world_size
        if len(data) < per_step:
            raise PixelforgeError(f"dataset {data.name} has {len(data)} images, fewer than one batch of {per_step}; "
                                  "lower --batch-size")
        self.steps_per_epoch = len(data) // per_step
        self.step = 0
        self.epoch = 0  # completed epochs
        self.batch_in_epoch = 0
        self._trained_before = 0.0  # seconds of training before this fit (the checkpoint's, on resume)
        self._clock: _Clock | None = None  # the running fit's
        self._signal: int | None = None
        self._tb = None

    # -- state ------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers().items()},
            "task": self.task.extra_state(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "world_size": self.rt.world_size,
            "images_per_step": self.rank_batch * self.rt.world_size,
            "trained_seconds": self._clock.trained_seconds() if self._clock else self._trained_before,
        }

    def save(self) -> None:
        if self.rt.is_main:
            mods = {k: _unwrap(m).state_dict() for k, m in self.task.modules().items()}
            self.run.save_checkpoint(self.step, mods, self._state(), keep=self.cfg.keep_checkpoints)
        self.rt.barrier()

    def restore(self) -> None:
        ckpt = self.run.require_checkpoint()
        state = self.run.load_state(ckpt)
        for name, module in self.task.modules().items():
            try:
                _unwrap(module).load_state_dict(self.run.load_weights(name, ckpt))
            except RuntimeError as e:
                raise RunError(f"checkpoint {ckpt} does not fit this model ({name}): "
                               f"{str(e).splitlines()[0]}") from None
        for name, opt in self.task.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.task.load_extra_state(state.get("task", {}))
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self._trained_before = float(state.get("trained_seconds", 0.0))
        images_per_step = self.rank_batch * self.rt.world_size
        if state.get("images_per_step", images_per_step) != images_per_step:
            # Another world size (or batch) cuts the epoch into other steps: continue in the same
            # epoch after as many images as were seen, rounded down to a whole step.
            seen = self.batch_in_epoch * state["images_per_step"]
            self.batch_in_epoch = min(seen // images_per_step, self.steps_per_epoch)
        if self.rt.distributed or state.get("world_size", 1) != 1:
            # The checkpoint holds rank 0's RNG stream only: give every rank its own fresh stream.
            torch.manual_seed(self.seed * 7919 + self.rt.rank * 104729 + self.step)
        else:
            torch.set_rng_state(state["rng_torch"])
            if state.get("rng_cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng_cuda"])
        if self.rt.is_main:
            self.run.truncate_metrics(self.step)

    # -- data -------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.data), generator=g)
        per_rank = self.steps_per_epoch * self.rank_batch
        return perm[self.rt.rank::self.rt.world_size][:per_rank]

    def _batch(self, order: torch.Tensor, b: int):
        idx = order[b * self.rank_batch:(b + 1) * self.rank_batch]
        # The key seeds random crops (CropData): the same at the same point of a resumed run.
        images, labels = self.data.take(idx, (self.seed, self.epoch, b, self.rt.rank))
        images = self.rt.tensor(images.to(torch.float32).div_(127.5).sub_(1.0))
        return images, (labels.to(self.rt.device) if labels is not None else None)

    # -- budget -----------------------------------------------------------------------
    def _total_steps(self) -> int | None:
        limits = []
        if self.cfg.epochs is not None:
            limits.append(self.cfg.epochs * self.steps_per_epoch)
        if self.cfg.max_steps is not None:
            limits.append(self.cfg.max_steps)
        return min(limits) if limits else None

    def _fraction_done(self, total: int | None, clock: "_Clock") -> float:
        """The larger of the step and the wall-clock share of the budget (for LR schedules)."""
        by_steps = self.step / total if total else 0.0
        return min(1.0, max(by_steps, clock.time_fraction()))

    def _on_signal(self, signum, frame):
        self._signal = signum

    # -- the loop ---------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        """Train until the budget is spent or a signal arrives; checkpoints as it goes and at the end."""
        if resume:
            self.restore()
        total, eval_every = self._plan()
        old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._open_tensorboard()
        clock = self._clock = _Clock(self.cfg.minutes, self._trained_before)
        bar = self._progress_bar(total, clock.start)
        try:
            reason = self._train(total, eval_every, clock, bar)
            self._finish(clock)
        finally:
            self._trained_before, self._clock = clock.trained_seconds(), None
            if bar is not None:
                bar.close()
            if self._tb is not None:
                self._tb.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        if self._signal is not None:
            raise Interrupted(f"{reason}: checkpoint saved at step {self.step} in {self.run.path}; "
                              f"continue with --resume {self.run.path}", self._signal)
        return {"step": self.step, "epoch": self.epoch, "reason": reason, "last": clock.last,
                "seconds": time.monotonic() - clock.start}

    def _plan(self) -> tuple[int | None, int | None]:
        """The step to stop at (None: only the clock bounds the run) and the evaluation interval."""
        total = self._total_steps()
        eval_every = self.cfg.eval_every
        if dryrun.active():  # a few steps of this invocation, and an evaluation at the end if asked for
            total = min(total or math.inf, self.step + dryrun.LIMITS["steps"])
            eval_every = eval_every and min(eval_every, max(total, 1))
        if total is None and self.cfg.minutes is None:
            raise PixelforgeError("give a budget: --epochs, --max-steps or --minutes")
        return total, eval_every

    def _train(self, total: int | None, eval_every: int | None, clock: "_Clock", bar) -> str:
        """Epoch after epoch until the budget; returns why training stopped."""
        while total is None or self.step < total:
            self._train_epoch(total, eval_every, clock, bar)
            if self.batch_in_epoch >= self.steps_per_epoch:
                self._end_epoch(clock, last=total is not None and self.step >= total)
            if self._signal is not None:
                return f"stopped by {signal.Signals(self._signal).name}"
            if self.rt.any_true(clock.out_of_time())[0]:
                return f"time budget of {self.cfg.minutes:g} min reached"
        return "budget reached"

    def _train_epoch(self, total: int | None, eval_every: int | None, clock: "_Clock", bar) -> None:
        """The rest of the current epoch, or less when the budget or a signal ends it."""
        order = self._epoch_order(self.epoch)
        while self.batch_in_epoch < self.steps_per_epoch:
            stop = self._train_step(order, total, clock)
            self._show(total, clock, bar)
            if eval_every and self.step % eval_every == 0:
                self._evaluate()
                clock.checkpointed()
            if stop or (total and self.step >= total):
                return
            if clock.checkpoint_due(self.cfg.checkpoint_minutes):
                self.save()
                clock.checkpointed()

    def _train_step(self, order: torch.Tensor, total: int | None, clock: "_Clock") -> bool:
        """One optimisation step; True when this rank's clock or a signal says stop."""
        images, labels = self._batch(order, self.batch_in_epoch)
        self.task.set_progress(self._fraction_done(total, clock))
        metrics = self.task.step(images, labels)
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        # Under torchrun every rank must take these decisions at the same step, or the others wait
        # forever; both flags travel in one all-reduce.
        diverged, stop = self.rt.any_true(bool(bad), self._signal is not None or clock.out_of_time())
        if diverged:
            self._diverged(bad, metrics)
        self.step += 1
        self.batch_in_epoch += 1
        clock.count(images.shape[0] * self.rt.world_size, metrics)
        if self.step % self.cfg.log_every == 0:
            self._log({**metrics, "images_per_s": clock.throughput()})
        return stop

    def _show(self, total: int | None, clock: "_Clock", bar) -> None:
        if bar is None:
            return
        if self.step % self.cfg.log_every == 0:
            shown = {**clock.last, "img/s": clock.last_throughput}
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        # Steps, or seconds when only --minutes bounds the run; tqdm rate-limits redraws.
        done = self.step if total is not None else min(int(time.monotonic() - clock.start), bar.total)
        if done > bar.n:
            bar.update(done - bar.n)

    def _end_epoch(self, clock: "_Clock", last: bool) -> None:
        """The next epoch, after the epoch's checkpoint, curve and the task's per-epoch work
        (sample grids, validation). Done after the first and the last epoch, and between them
        after every epoch whose number is a multiple of ceil(the task's ``epoch_work_steps`` /
        steps per epoch): every epoch unless epochs are short."""
        self.epoch += 1
        self.batch_in_epoch = 0
        every = -(-self.task.epoch_work_steps // self.steps_per_epoch)
        if not (last or self.epoch == 1 or self.epoch % every == 0):
            return
        if self.rt.is_main:
            self.task.on_epoch_end(self.run, self.epoch, self.step)
        self.save()
        self._plot()
        clock.checkpointed()

    def _finish(self, clock: "_Clock") -> None:
        if clock.last and self.step % self.cfg.log_every:
            # The final step, so that short runs have metrics and a curve too.
            self._log({**clock.last, "images_per_s": clock.throughput()})
        self.save()
        if self.rt.is_main:
            self.task.on_train_end(self.run, self.step)
        self._plot()
        # Ranks leave together: one that exits while rank 0 still writes its samples tears its
        # gloo connections down under a live peer, which can abort it after the work is done.
        self.rt.barrier()

    # -- helpers ----------------------------------------------------------------------
    def _evaluate(self) -> None:
        """Run the task's evaluation; checkpoint, and keep the checkpoint if it is the best so far."""
        result = self.task.evaluate_checkpoint() if self.rt.is_main else {}
        self.save()  # every rank: saving ends in a barrier
        if not self.rt.is_main:
            return
        self._log({k: v for k, v in result.items() if not isinstance(v, str)})  # numbers; "split" names them
        key, mode = self.task.best_metric
        best = self.run.best_checkpoint()
        kept = json.loads((best / "best.json").read_text()) if best else {}
        # A best kept on another split (an older run's test FID) is not comparable: replace it.
        previous = kept.get(key) if kept.get("split") == result.get("split") else None
        value = result[key]
        if previous is None or (value < previous if mode == "min" else value > previous):
            self.run.mark_best(self.run.latest_checkpoint(), {"step": self.step, **result})

    def _diverged(self, bad: list[str], metrics: dict) -> None:
        ckpt = self.run.latest_checkpoint()
        where = f"the last good checkpoint is {ckpt.name}" if ckpt else "no checkpoint was written yet"
        vals = ", ".join(f"{k}={metrics[k]}" for k in bad)
        raise TrainingDiverged(f"training diverged at step {self.step + 1} ({vals}); stopped without saving: "
                               f"{where}; try a lower learning rate or another --loss")

    def _log(self, metrics: dict) -> None:
        if not self.rt.is_main:
            return
        record = {"step": self.step, "epoch": self.epoch, **{k: round(float(v), 6) for k, v in metrics.items()}}
        self.run.log_metrics(record)
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, v, self.step)

    def _plot(self) -> None:
        if not self.rt.is_main:
            return
        from ..images import plot_curves

        plot_curves(self.run.read_metrics(), list(self.task.loss_keys), self.run.path / "loss.png",
                    title=self.run.path.name)

    def _open_tensorboard(self) -> None:
        if not self.rt.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self._tb = SummaryWriter(str(self.run.path / "tb"))

    def _progress_bar(self, total: int | None, start: float):
        if not self.progress:
            return None
        if total is not None:
            return tqdm(total=total, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        secs = int(self.cfg.minutes * 60)
        return tqdm(total=secs, desc=f"train ({self.cfg.minutes:g} min)", unit="s", dynamic_ncols=True,
                    bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}s [{elapsed}<{remaining}{postfix}]")


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if hasattr(m, "module") and isinstance(m.module, nn.Module) else m


class _Clock:
    """The wall-clock side of one ``fit``: deadline, checkpoint interval, throughput window, and the
    seconds the run trained before it (``trained_before``, from the checkpoint)."""

    def __init__(self, minutes: float | None, trained_before: float = 0.0):
        self.start = time.monotonic()
        self.trained_before = trained_before
        self.deadline = self.start + minutes * 60 if minutes else None
        self.last_checkpoint = self.start
        self.window_start, self.window_images = self.start, 0
        self.last: dict = {}
        self.last_throughput = 0.0

    def trained_seconds(self) -> float:
        return self.trained_before + time.monotonic() - self.start

    def time_fraction(self) -> float:
        """The share of the run's training time (earlier invocations + this budget) spent; 0 without a budget."""
        if self.deadline is None:
            return 0.0
        return self.trained_seconds() / (self.trained_before + self.deadline - self.start)

    def out_of_time(self) -> bool:
        return bool(self.deadline and time.monotonic() >= self.deadline)

    def count(self, images: int, metrics: dict) -> None:
        self.window_images += images
        self.last = metrics

    def throughput(self) -> float:
        """Images per second since the last call (or the start); starts a new window."""
        now = time.monotonic()
        self.last_throughput = self.window_images / max(now - self.window_start, 1e-9)
        self.window_start, self.window_images = now, 0
        return self.last_throughput

    def checkpoint_due(self, interval_minutes: float) -> bool:
        return time.monotonic() - self.last_checkpoint >= interval_minutes * 60

    def checkpointed(self) -> None:
        self.last_checkpoint = time.monotonic()
