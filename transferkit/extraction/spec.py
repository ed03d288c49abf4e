"""What determines a backbone's features besides its weights and layer: the preprocessing, derived from the
backbone's config, its tokenizer files and the version of the preprocessing code (never from hand-written
descriptions, so that changing any of them changes the embedding cache's key)."""

from __future__ import annotations

import os
from typing import Any

from ..backbones import BackboneConfig
from ..data import items as _items
from ..exceptions import ConfigError

#: test-time augmentation of image features: ``"hflip"`` averages the features of each image and its mirror
TTA_MODES = ("none", "hflip")


def preprocessing_spec(config: BackboneConfig, image_size: int | None,
                       tokenizer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preprocessing ``config``'s backbone applies (part of the cache key).

    Images: input side, resize filter, mean and std from the config. Text: the tokenizer's identity
    (:func:`~transferkit.backbones.text.tokenizer_identity`, given as ``tokenizer``) and the token limit.
    Both carry :data:`transferkit.data.items.PREPROCESSING_VERSION`, the version of the code that decodes,
    resizes and tokenises.
    """
    code = int(_items.PREPROCESSING_VERSION)
    if config.modality == "image":
        return {
            "size": int(image_size or config.input_size or 224),
            "interpolation": config.interpolation,
            "mean": [float(v) for v in (config.mean or (0.0, 0.0, 0.0))],
            "std": [float(v) for v in (config.std or (1.0, 1.0, 1.0))],
            "code_version": code,
        }
    if config.modality == "audio":  # the resampler and window settings change the features: in the key
        from ..data.audio import RESAMPLER, SAMPLE_RATE

        return {"sample_rate": SAMPLE_RATE, "resampler": RESAMPLER, "mono": "channel-mean",
                "pooling": "mean-over-valid-frames", "code_version": code,
                **{k: config.extra[k] for k in ("clip_length", "n_mels", "hop", "max_frames") if k in config.extra}}
    spec: dict[str, Any] = {"tokenizer": tokenizer or {}, "pooling": "mean", "code_version": code}
    if config.family != "word_vectors":  # word vectors average every word: no token limit
        spec["max_length"] = int(config.max_length or 256)
    return spec


def text_tokenizer(config: BackboneConfig, weights_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The tokenizer identity of a text backbone whose files are in ``weights_dir``."""
    from ..backbones.text import tokenizer_identity

    return tokenizer_identity(config, weights_dir)


def check_tta(tta: str, config: BackboneConfig, owner: str = "Extractor") -> str:
    """Validate a ``tta`` mode for ``config`` (flips exist only for images)."""
    if tta not in TTA_MODES:
        from .._registry import did_you_mean

        raise ConfigError(f"{owner}: tta={tta!r} is not allowed{did_you_mean(str(tta), list(TTA_MODES))}; "
                          f"expected one of {', '.join(TTA_MODES)}")
    if tta != "none" and config.modality != "image":
        raise ConfigError(f"{owner}: tta={tta!r} flips images but {config.name!r} is a {config.modality} backbone; "
                          "use tta='none'")
    return tta
