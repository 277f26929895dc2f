"""The generic training loop and the per-family tasks that plug into it."""

from ..errors import Interrupted, TrainingDiverged  # their home is errors.py; kept here for old imports
from .loop import TrainConfig, Trainer
from .task import SingleNetTask, Task

__all__ = ["Interrupted", "SingleNetTask", "Task", "TrainConfig", "Trainer", "TrainingDiverged"]
