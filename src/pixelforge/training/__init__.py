"""The generic training loop and the per-family tasks that plug into it."""

from ..errors import Interrupted, TrainingDiverged  # their home is errors.py; kept here for old imports
from .loop import SingleNetTask, TrainConfig, Trainer

__all__ = ["Interrupted", "SingleNetTask", "TrainConfig", "Trainer", "TrainingDiverged"]
