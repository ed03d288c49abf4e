"""transferkit: transfer learning for small labelled datasets.

Library entry points: :class:`TransferClassifier` and :class:`FeatureExtractor` (scikit-learn
estimators), :func:`load_model`, :func:`load_backbone`/:func:`list_backbones`, and the data loaders in
:mod:`transferkit.data`. The command line is ``transferkit --help``.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time the names load on first use
    from .backbones import list_backbones, load_backbone
    from .estimators import (
        DomainAdapter,
        FeatureExtractor,
        MultiTaskClassifier,
        TransferClassifier,
        TransferRegressor,
        load_model,
        save_model,
    )

# The entry points load on first use (PEP 562), so that `import transferkit.cli` and `transferkit --help`
# do not pay for torch and scikit-learn before a command needs them.
_LAZY = {
    "list_backbones": "backbones",
    "load_backbone": "backbones",
    "DomainAdapter": "estimators",
    "FeatureExtractor": "estimators",
    "TransferClassifier": "estimators",
    "TransferRegressor": "estimators",
    "MultiTaskClassifier": "estimators",
    "load_model": "estimators",
    "save_model": "estimators",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "DomainAdapter",
    "FeatureExtractor",
    "TransferClassifier",
    "TransferRegressor",
    "MultiTaskClassifier",
    "__version__",
    "list_backbones",
    "load_backbone",
    "load_model",
    "save_model",
]
