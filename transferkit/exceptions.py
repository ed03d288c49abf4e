"""The errors transferkit raises.

Every error a user can cause derives from :class:`TransferKitError` and also from the builtin (or
scikit-learn) error a Python user would expect, so ``except ValueError`` keeps working. The message is
one line that names the bad value, what was expected and how to fix it; the CLI prints it as is and
exits with code 2.
"""

from __future__ import annotations

from typing import Any


class TransferKitError(Exception):
    """Base class of every error transferkit raises on purpose."""


class ConfigError(TransferKitError, ValueError):
    """A parameter has a value that is not allowed (wrong choice, out of range, wrong type)."""


class UnknownNameError(TransferKitError, KeyError):
    """A name (backbone, head, layer, dataset) is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(TransferKitError, ValueError):
    """A name was registered twice."""


class DataError(TransferKitError, ValueError):
    """The data is unusable: empty folder, one class, missing column, NaN, mismatched lengths."""


class ImageReadError(DataError):
    """An image file cannot be decoded."""


class AudioReadError(DataError):
    """An audio file cannot be decoded, or its clip cannot be used (empty, silent, too long)."""


class WeightsError(TransferKitError, RuntimeError):
    """Pretrained weights cannot be found, installed, verified or loaded."""


class OfflineError(WeightsError):
    """The weights would have to come from the network and the network is unreachable."""


class OutputError(TransferKitError, OSError):
    """An output (model folder, predictions CSV, report, ONNX file) cannot be written where asked: the
    path is a folder where a file is wanted (or the reverse), lies under a file, or the disk is full. The
    previous output at that path is left intact."""


class CacheError(TransferKitError, RuntimeError):
    """The embedding cache cannot be used."""


class ModelFileError(TransferKitError, ValueError):
    """A saved model directory is missing, incomplete or from an incompatible version."""


def _not_fitted_error() -> type:
    from sklearn.exceptions import NotFittedError as SkNotFittedError

    class NotFittedError(TransferKitError, SkNotFittedError):
        """``predict``/``transform`` was called before ``fit``."""

    NotFittedError.__module__, NotFittedError.__qualname__ = __name__, "NotFittedError"
    return NotFittedError


def __getattr__(name: str) -> Any:
    # NotFittedError subclasses scikit-learn's (so sklearn's checks recognise it); it is built on first use so
    # that importing the exceptions (as the command line does at start-up) does not import scikit-learn
    if name == "NotFittedError":
        cls = _not_fitted_error()
        globals()["NotFittedError"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CacheError",
    "ConfigError",
    "DataError",
    "DuplicateNameError",
    "ImageReadError",
    "AudioReadError",
    "ModelFileError",
    "NotFittedError",  # noqa: F822 - defined on first use by __getattr__
    "OfflineError",
    "TransferKitError",
    "UnknownNameError",
    "WeightsError",
]
