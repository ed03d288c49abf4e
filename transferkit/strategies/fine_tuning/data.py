"""Fine-tuning's inputs: every item loaded once (images resized as the backbone's preprocessing does,
texts tokenised), collated per batch, and the automatic epoch counts."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ...backbones import Backbone
from ...backbones.base import ImageBackbone
from ...backbones.text import TextEncoderBackbone
from ...data.items import as_items
from .config import FINE_TUNE_EPOCHS_RANGE, FINE_TUNE_STEPS, HEAD_EPOCHS_RANGE, HEAD_STEPS, FineTuneConfig


def stack_batch(batch: list[torch.Tensor]) -> tuple[torch.Tensor]:
    """Collate equally shaped tensors (images, cached features) into one batch tensor."""
    return (torch.stack(batch),)


def prepare_inputs(backbone: Backbone, X: Any) -> tuple[Any, Callable[[list[Any]], tuple]]:
    """Load every item once for training: ``(inputs, collate)``.

    Images become a uint8 tensor ``(N, S, S, 3)`` resized as the backbone's preprocessing does; texts
    become token-id tensors, padded per batch by ``collate``; audio clips stay 16 kHz waveforms, which
    ``collate`` turns into the backbone's inputs (Whisper's log-mel windows, CREPE's frames); the training
    batches add SpecAugment masks through :func:`training_collate`.
    """
    items = as_items(X, backbone.modality)
    if isinstance(backbone, ImageBackbone):
        with ThreadPoolExecutor(max_workers=2) as pool:
            size = backbone.image_size
            arrays = list(pool.map(lambda i: backbone.prepare_item(items.load_sized(i, size)), range(len(items))))
        pixels = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros((0, 1, 1, 3), dtype=torch.uint8)
        return pixels, stack_batch
    if backbone.modality == "audio":  # 16 kHz waveforms; windows / frames are cut per batch, after augmentation
        waves = [torch.from_numpy(np.asarray(items.load(i), dtype=np.float32)) for i in range(len(items))]

        def collate_audio(batch: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
            inputs = backbone.collate([backbone.prepare_item(np.asarray(w, dtype=np.float32)) for w in batch])
            return tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values())  # forward's order

        return waves, collate_audio
    assert isinstance(backbone, TextEncoderBackbone)
    texts = [items.load(i) for i in range(len(items))]
    ids = backbone.tokenizer(texts, truncation=True, max_length=backbone.max_length)["input_ids"]
    pad = int(backbone.tokenizer.pad_token_id or 0)

    def collate_texts(batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(t) for t in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, t in enumerate(batch):
            input_ids[i, : len(t)] = t
            mask[i, : len(t)] = 1
        return input_ids, mask

    return [torch.tensor(t, dtype=torch.long) for t in ids], collate_texts


def training_collate(backbone: Backbone, collate: Callable[[list[Any]], tuple], level: str) -> Callable[[list[Any]], tuple]:
    """The training batches' ``collate``: for a backbone with a log-mel input (Whisper), ``collate`` followed by
    the SpecAugment masks of augmentation ``level``; otherwise ``collate`` itself."""
    if backbone.modality != "audio" or not hasattr(backbone, "mask_log_mel"):
        return collate
    from ...data.spec_augment import make_spec_augment

    masks = make_spec_augment(level)
    if masks is None:
        return collate

    def collate_masked(batch: list[Any]) -> tuple:
        return backbone.mask_log_mel(collate(batch), masks)

    return collate_masked


def subset(inputs: Any, index: np.ndarray) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs[torch.as_tensor(index, dtype=torch.long)]
    return [inputs[i] for i in index]


def auto_epochs(config: FineTuneConfig, n_train: int, batch_size: int) -> tuple[int, int]:
    """``(head_epochs, epochs)``: the given ones, or enough epochs for the stages' step budgets."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    head = (config.head_epochs if config.head_epochs is not None
            else int(np.clip(math.ceil(HEAD_STEPS / per_epoch), *HEAD_EPOCHS_RANGE)))
    full = (config.epochs if config.epochs is not None
            else int(np.clip(math.ceil(FINE_TUNE_STEPS / per_epoch), *FINE_TUNE_EPOCHS_RANGE)))
    return head, full
