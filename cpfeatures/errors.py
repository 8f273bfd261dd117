"""Exceptions raised by cpfeatures.

Every error caused by bad input is a :class:`CpfeaturesError` whose message is
one line naming the offending file (when there is one) and the problem, so the
CLI can print it as is and a plate run can record it in the store's error table.
"""

from __future__ import annotations

import os


class CpfeaturesError(Exception):
    """Base class for every error cpfeatures raises on bad input.

    Parameters
    ----------
    message : str
        What is wrong, in one line.
    path : str or os.PathLike, optional
        The file or folder the problem is in; prefixed to the message.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(str(message).split())  # keep it on one line
        text = self.problem if self.path is None else f"{self.path}: {self.problem}"
        super().__init__(text)


class PlateError(CpfeaturesError):
    """A plate directory or its index cannot be read."""


class ImageError(CpfeaturesError):
    """An image file is missing, unreadable, or has the wrong shape or dtype."""


class ConfigError(CpfeaturesError):
    """A settings file or value is invalid."""


class InputError(CpfeaturesError, ValueError):
    """An array given to a processing function is invalid (NaN, wrong shape, ...)."""


class DegenerateResultWarning(UserWarning):
    """A result was computed but rests on too little: a normalization reference of one well,
    features with no spread, a null distribution of NaNs. The message says which and why."""
