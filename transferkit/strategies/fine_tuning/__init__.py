"""Fine-tuning: a new head on the frozen base, then the top blocks unfrozen at a lower learning rate.

Stage 1 (``head``) trains dropout + a linear layer on the pooled features of the frozen pretrained base
until the validation loss stops improving. Stage 2 (``fine-tune``) unfreezes the top ``unfreeze`` blocks of
the base (the backbone config's ``blocks``, input → output) and trains them with the head at ``lr_ratio``
times the learning rate (10× lower by default), with a short warm-up. Throughout, the BatchNorm layers of
the base stay in inference mode — their running statistics never move — unless ``train_bn`` is set.

Options: discriminative learning rates (``layer_decay``: block ``d`` below the top trains at
``layer_decay ** d`` times the rate), gradual unfreezing (``gradual``: one more block per epoch, ULMFiT),
and regularisation: dropout before the head, AdamW weight decay on the head, L2-SP (a penalty
``l2sp / 2 · ‖w − w_pretrained‖²`` on the unfrozen pretrained weights: it pulls them toward where they
started, not toward zero), label smoothing, early stopping on a stratified validation split carved from
the training data (the best epoch's weights are kept), and on-the-fly augmentation of training images
(:mod:`transferkit.data.augment`).

After stage 2, ``refit_head`` (on by default) replaces the trained linear layer with the library's
feature-extraction head (:func:`~transferkit.heads.fit_head`: logistic regression, ``C`` by cross-validation,
power normalisation) fitted on the fine-tuned network's features of every training item, unaugmented and
including the validation items: a clean linear probe on the adapted features. On a Fashion-MNIST
development split it added 0.4–4 points, on the benchmarks 0–2 (docs/benchmarks.md).

Modules, one concern each: :mod:`.config` (hyper-parameters, validated once; no torch), :mod:`.model`
(the network and the classification task), :mod:`.data` (inputs, batches, epoch counts),
:mod:`.contrastive` (SetFit-style pre-tuning for text), :mod:`.train` (the stages through the one training
loop, the LR range test), :mod:`.strategy` (the registry entry). Everything runs through
:mod:`transferkit.training`; the result is a copy of the backbone with fine-tuned weights plus the head as
:class:`~transferkit.heads.HeadArrays`, so prediction, caching, saving and ONNX export are shared with
feature extraction.
"""

from __future__ import annotations

from typing import Any

from .config import FineTuneConfig, fine_tune_config, fine_tune_image_size
from .strategy import FineTuning

_LAZY = {"fine_tune": "train", "lr_find": "train", "FineTuneResult": "train"}


def __getattr__(name: str) -> Any:
    # the training code imports torch: it loads on first use, so registering the strategy stays cheap
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FineTuneConfig", "FineTuneResult", "FineTuning", "fine_tune", "fine_tune_config", "fine_tune_image_size",
           "lr_find"]
