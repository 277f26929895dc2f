"""User-facing errors.

Anything a user can cause (bad path, unknown dataset, incompatible run, ...) raises
:class:`PixelforgeError` with a one-line message; the CLI prints it and exits non-zero
instead of showing a traceback.
"""


class PixelforgeError(Exception):
    """An error caused by input the user can fix; its message is one line."""


class DataError(PixelforgeError):
    """A dataset could not be found, read or understood."""


class RunError(PixelforgeError):
    """A run directory is missing, incompatible or would be overwritten."""


class TrainingDiverged(PixelforgeError):
    """A loss became NaN or infinite; training stopped without saving the broken state."""


class Interrupted(PixelforgeError):
    """Training stopped on a signal after saving a checkpoint; ``signum`` gives the exit status."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
