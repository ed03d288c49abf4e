"""transferkit: transfer learning for small labelled datasets.

Library entry points: :class:`TransferClassifier` and :class:`FeatureExtractor` (scikit-learn
estimators), :func:`load_model`, :func:`load_backbone`/:func:`list_backbones`, and the data loaders in
:mod:`transferkit.data`. The command line is ``transferkit --help``.
"""

__version__ = "0.1.0"

from .backbones import list_backbones, load_backbone  # noqa: E402
from .estimators import FeatureExtractor, TransferClassifier  # noqa: E402
from .io import load_model, save_model  # noqa: E402

__all__ = [
    "FeatureExtractor",
    "TransferClassifier",
    "__version__",
    "list_backbones",
    "load_backbone",
    "load_model",
    "save_model",
]
