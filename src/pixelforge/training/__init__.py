"""The generic training loop and the per-family tasks that plug into it."""

from .loop import Interrupted, SingleNetTask, TrainConfig, Trainer, TrainingDiverged

__all__ = ["Interrupted", "SingleNetTask", "TrainConfig", "Trainer", "TrainingDiverged"]
