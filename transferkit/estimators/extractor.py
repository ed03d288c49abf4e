""":class:`FeatureExtractor`: a frozen pretrained backbone as a scikit-learn transformer."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..exceptions import ConfigError
from ._base import BackboneParams, check_fitted

if TYPE_CHECKING:
    from ..extraction import Extractor


class FeatureExtractor(BackboneParams, TransformerMixin, BaseEstimator):
    """Frozen pretrained backbone as a scikit-learn transformer: items → ``(N, D)`` embeddings.

    Args:
        backbone: registered backbone name (see ``transferkit backbones``).
        layer: feature layer (``"last"`` or a name from the backbone's ``layers``).
        image_size: square input side for image backbones (default: the backbone's own).
        weights: local weights file/directory instead of the registered weights.
        pretrained: ``False`` for a random-initialised copy (a negative control).
        batch_size, engine: see :class:`transferkit.extraction.Extractor`.
        cache, cache_dir: use the on-disk embedding cache (default location: ``$TRANSFERKIT_CACHE_DIR``).
        random_state: seed of the random-init control.
        progress: show a progress bar.
        tta: ``"hflip"`` averages each image's embedding with its mirror image's (twice the extraction
            time; not for data where left/right carries the class, such as digits or text in images).
        precision: ``"fp32"`` or ``"int8"``: ONNX Runtime runs an int8 quantization of the backbone, about
            1.5–2.5× faster on CPUs, with embeddings close to but not equal to fp32's. For images ``fit(X, y)``
            calibrates it on up to 256 of the items ``X`` (stratified by ``y``); text needs no calibration.
    """

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        layer: str | None = "last",
        *,
        image_size: int | None = None,
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        batch_size: int | None = None,
        engine: str = "auto",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        random_state: int | None = 0,
        progress: bool = True,
        tta: str = "none",
        precision: str = "fp32",
    ) -> None:
        self.backbone = backbone
        self.layer = layer
        self.image_size = image_size
        self.weights = weights
        self.pretrained = pretrained
        self.batch_size = batch_size
        self.engine = engine
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.progress = progress
        self.tta = tta
        self.precision = precision

    def _extractor(self) -> Extractor:
        extractor = self._context().extractor()
        calibration = getattr(self, "calibration_", None)
        if calibration is not None:
            extractor.calibration_set = calibration
        return extractor

    def fit(self, X: Any = None, y: Any = None) -> FeatureExtractor:
        """Check the parameters; with ``precision="int8"`` on images, calibrate the quantization on ``X``."""
        config = self._validate_common()
        self.__dict__.pop("calibration_", None)
        extractor = self._extractor()
        if self.precision == "int8" and config.modality == "image":
            if X is None:
                raise ConfigError("FeatureExtractor(precision='int8') calibrates on the training items; "
                                  "call fit(X, y) with them")
            extractor.calibrate(X, y)
            self.calibration_ = extractor.calibration_set
        self.backbone_ = extractor.config.name
        self.layer_ = extractor.layer
        self.n_features_out_ = extractor.feature_dim
        self.identity_ = extractor.identity()
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_fitted(self, "n_features_out_")
        return self._extractor().extract(X)

    def write_embeddings(self, X: Any, out: str | os.PathLike[str], y: Any = None, *,
                         ids: Any = None, chunk_size: int | None = None) -> dict[str, Any]:
        """Write the embeddings of ``X`` (and labels ``y``) to ``out`` (``.parquet`` or ``.npy``) in chunks,
        resumably; see :func:`transferkit.extraction.writer.write_embeddings`. Returns the summary."""
        from ..extraction.engine import SHARD_SIZE
        from ..extraction.writer import write_embeddings

        if not hasattr(self, "n_features_out_"):
            self.fit()
        return write_embeddings(self._extractor(), X, out, labels=None if y is None else list(y), ids=ids,
                                chunk_size=chunk_size or SHARD_SIZE, show_progress=self.progress)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_fitted(self, "n_features_out_")
        prefix = f"{self.backbone_}_{self.layer_}".replace(".", "_")
        return np.asarray([f"{prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
