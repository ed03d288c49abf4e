"""What determines a backbone's features besides its weights: the preprocessing, derived from the config."""

from __future__ import annotations

from typing import Any

from ..backbones import BackboneConfig


def preprocessing_spec(config: BackboneConfig, image_size: int | None) -> dict[str, Any]:
    """The preprocessing a backbone applies, derived from its config (part of the cache key)."""
    if config.modality == "image":
        return {
            "size": int(image_size or config.input_size or 224),
            "resize": "shorter-side+center-crop (torchvision rounding)",
            "interpolation": config.interpolation,
            "mean": list(config.mean or (0.0, 0.0, 0.0)),
            "std": list(config.std or (1.0, 1.0, 1.0)),
            "jpeg": "dct-scaled decode",  # large JPEG files decode at a reduced scale (read_image's min_size)
            "orientation": "exif",  # image files are turned upright as their EXIF tag says (read_image)
        }
    if config.family == "word_vectors":
        return {"tokenizer": "lowercase-words", "pooling": "mean"}
    return {"tokenizer": "bundled", "max_length": int(config.max_length or 256), "pooling": "mean"}


