"""Data layer: item sources, datasets and loaders, the embedding cache."""

from .audio import AudioArrays, AudioPaths, read_audio
from .cache import EmbeddingCache
from .datasets import (
    BUILTIN,
    Dataset,
    check_labels,
    list_images,
    load_csv,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_fashion_mnist_sample,
    load_image_folder,
    load_mnist5k,
)
from .items import ImageArray, ImagePaths, ItemSource, Texts, as_items, read_image

__all__ = [
    "AudioArrays",
    "AudioPaths",
    "read_audio",
    "BUILTIN",
    "Dataset",
    "EmbeddingCache",
    "ImageArray",
    "ImagePaths",
    "ItemSource",
    "Texts",
    "as_items",
    "check_labels",
    "list_images",
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_fashion_mnist_sample",
    "load_image_folder",
    "load_mnist5k",
    "read_image",
]
