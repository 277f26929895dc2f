"""The contract between a family's training task and the one training loop.

A task owns its networks and optimizers and performs one optimisation step on a batch
(``step(images, labels) -> {metric: value}``); the :class:`~pixelforge.training.Trainer`
does everything else. What a task can do beyond that is declared here, not probed:

- ``accumulates``: ``step`` splits its batch into ``grad_accum`` micro-batches (--grad-accum).
  A task that does not is refused any ``grad_accum`` above 1, the same way for every family.
- ``best_metric``: ``(key, "min" | "max")`` of :meth:`Task.evaluate_checkpoint`, which
  --eval-every logs and uses to keep the best checkpoint; None: no such evaluation. The
  evaluation measures on the validation split and says so (``"split": "val"``), which
  ``--best`` requires of the checkpoint it loads.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import PixelforgeError
from ..runs import Run


class Task:
    loss_keys: tuple[str, ...] = ()
    accumulates: bool = True
    best_metric: tuple[str, str] | None = None
    grad_accum: int = 1
    evaluator: Callable[["Task"], dict] | None = None  # --eval-every's measurement, given to the constructor
    # Epochs shorter than this many steps (data of a few hundred images) share their end-of-epoch
    # work (checkpoint, curve, sample grid, validation), which would otherwise take most of the time.
    epoch_work_steps: int = 16

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        raise NotImplementedError

    def set_progress(self, fraction: float) -> None:
        """The share of the budget used so far, for learning-rate schedules."""

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        pass

    def on_train_end(self, run: Run, step: int) -> None:
        pass

    @classmethod
    def check_grad_accum(cls, grad_accum: int | None) -> None:
        if (grad_accum or 1) > 1 and not cls.accumulates:
            raise PixelforgeError("this model family trains on whole batches: use a larger --batch-size, "
                                  "not --grad-accum")

    @classmethod
    def check_eval_every(cls, eval_every: int | None) -> None:
        if eval_every and cls.best_metric is None:
            raise PixelforgeError("this model family has no evaluation for --eval-every")

    def configure(self, grad_accum: int, eval_every: int | None) -> None:
        """Called by the trainer with the run's settings before the first step."""
        self.check_grad_accum(grad_accum)
        self.check_eval_every(eval_every)
        if eval_every and self.evaluator is None:
            raise PixelforgeError("--eval-every needs an evaluator: the train function sets one up")
        self.grad_accum = grad_accum

    def evaluate_checkpoint(self) -> dict:
        """--eval-every's measurement of the current weights; holds ``best_metric[0]`` and ``split``."""
        return self.evaluator(self)


class SingleNetTask(Task):
    """A family that trains one network with one optimizer, saved under ``name``: subclasses set
    ``net`` and ``opt`` and write ``step``."""

    name: str
    net: nn.Module
    opt: torch.optim.Optimizer
    progress: float = 0.0

    def modules(self) -> dict[str, nn.Module]:
        return {self.name: self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {self.name: self.opt}

    def set_progress(self, fraction: float) -> None:
        self.progress = fraction
