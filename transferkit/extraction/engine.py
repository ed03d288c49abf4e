"""The :class:`Extractor`: hash the items, serve what the embedding cache holds, run the backbone (ONNX
Runtime or eager PyTorch) on the rest in shards, with decoding and resizing in worker threads."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_write_json, onnx_dir, progress, sha256_bytes, sha256_file
from ..backbones import BackboneConfig, get_config, load_backbone
from ..backbones.inputs import Backbone
from ..backbones.weights import resolve_weights
from ..data.cache import EmbeddingCache
from ..data.items import ItemSource, as_items
from ..exceptions import ConfigError, TransferKitError
from . import quantize as q
from .onnx_graph import ONNX_TOLERANCE, export_feature_onnx, make_session, probe_inputs
from .quantize import PRECISIONS, calibration_indices, openvino_runner, quantize_graph
from .spec import check_tta, preprocessing_spec, text_tokenizer

log = logging.getLogger(__name__)

ENGINES = ("auto", "onnx", "torch")
SHARD_SIZE = 1024


Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


class Extractor:
    """Extract features of one backbone layer, with caching.

    Args:
        backbone: registry name or config, or a loaded :class:`Backbone` (e.g. a fine-tuned copy) whose
            ``weights_id`` and image size then key the cache.
        layer: feature layer name (``None``/``"last"`` → the config's default).
        weights: local weights file/dir overriding the registered source.
        pretrained: ``False`` for a seeded random-init control.
        image_size: square input side for images.
        batch_size: items per forward pass (default 32 for images, 64 for text).
        engine: ``"auto"``, ``"onnx"`` or ``"torch"``.
        cache: an :class:`EmbeddingCache`, ``None`` for the default one, ``False`` to disable.
        show_progress: show a progress bar on stderr.
        tta: ``"hflip"`` averages each image's features with those of its mirror image (twice the
            extraction time; for images whose class does not depend on left/right); ``"none"`` by default.
        precision: ``"fp32"`` (default) or ``"int8"``: ONNX Runtime runs an int8 quantization of the fp32
            graph (:mod:`~transferkit.extraction.quantize`); about 2× faster, features slightly different.
        calibration: for int8 image graphs, the items whose activations calibrate the quantization (a few
            hundred of the user's training items, see :meth:`calibrate`); by default the first items
            extracted. They are part of the cache key. Or the ranges an earlier calibration found
            (:meth:`calibration_ranges`, a dict), which quantize the graph identically without the items.
        int8_engine: ``"auto"`` (OpenVINO where installed), ``"openvino"`` or ``"onnxruntime"``: what runs
            an int8 image graph; part of the cache key (their features differ).
    """

    def __init__(
        self,
        backbone: str | BackboneConfig | Backbone,
        layer: str | None = None,
        *,
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        image_size: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        engine: str = "auto",
        cache: EmbeddingCache | None | bool = None,
        show_progress: bool = True,
        num_workers: int = 2,
        tta: str = "none",
        precision: str = "fp32",
        calibration: Any = None,
        int8_engine: str = "auto",
    ) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
        given = backbone if isinstance(backbone, Backbone) else None  # e.g. a fine-tuned network
        if given is not None:
            backbone, image_size = given.config, getattr(given, "image_size", image_size)
        self.config = backbone if isinstance(backbone, BackboneConfig) else get_config(backbone)
        self.layer = self.config.resolve_layer(layer)
        self.tta = check_tta(tta, self.config)
        self.weights = weights
        self.pretrained = pretrained
        self.image_size = image_size
        self.seed = seed
        self.batch_size = int(batch_size or (32 if self.config.modality == "image" else 64))
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be at least 1")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
        if precision == "int8" and engine == "torch":
            raise ConfigError("precision='int8' runs on ONNX Runtime; use engine='auto' or 'onnx', not 'torch'")
        self.engine = engine
        self.precision = precision
        image_int8 = precision == "int8" and self.config.modality == "image"
        self.int8_engine = q.resolve_int8_engine(int8_engine) if image_int8 else int8_engine
        #: the items calibrating int8 quantization and the indices of those used (see :meth:`calibrate`)
        self.calibration_set: tuple[ItemSource, np.ndarray] | None = None
        #: the activation ranges to quantize with, when given instead of items (see :meth:`use_ranges`)
        self.ranges: q.Ranges | None = None
        if isinstance(calibration, dict):
            self.use_ranges(calibration)
        elif calibration is not None:
            self.calibrate(calibration)
        self.cache = EmbeddingCache() if cache is None or cache is True else (cache or None)
        self.show_progress = show_progress
        self.num_workers = max(1, int(num_workers))
        self._backbone: Backbone | None = given
        self._runner: Runner | None = None
        self._verified: bool | None = None
        self.engine_used_: str | None = None
        self.stats_: dict[str, Any] = {}

    # -- identity --------------------------------------------------------------------------------------
    def _weights_id(self) -> str:
        if self._backbone is not None:
            return self._backbone.weights_id
        if not self.pretrained:
            return f"random-init:{self.seed}"
        return resolve_weights(self.config, self.weights).sha256

    def _tokenizer_id(self) -> dict[str, Any] | None:
        if self.config.modality != "text":
            return None
        directory = getattr(self._backbone, "weights_dir", None)
        if directory is None:
            directory = resolve_weights(self.config, self.weights).path
        return text_tokenizer(self.config, directory)

    def calibrate(self, X: Any, labels: Any = None) -> Extractor:
        """Calibrate int8 quantization on items ``X`` (up to :data:`CALIBRATION_ITEMS` of them, stratified
        by ``labels`` when given). Changes the cache key of int8 features."""
        items = as_items(X, self.config.modality)
        idx = calibration_indices(len(items), None if labels is None else np.asarray(labels), seed=self.seed)
        self.calibration_set, self.ranges = (items, idx), None
        self.__dict__.pop("_identity", None)
        return self

    def use_ranges(self, ranges: Any) -> Extractor:
        """Quantize with the activation ``ranges`` of an earlier calibration (:meth:`calibration_ranges`,
        e.g. kept in a model folder) instead of calibrating on items: the same fp32 graph and ranges give
        the same int8 graph. Checked (:func:`~transferkit.extraction.quantize.check_ranges`)."""
        self.ranges, self.calibration_set = q.check_ranges(ranges), None
        self.__dict__.pop("_identity", None)
        return self

    def calibration_ranges(self) -> q.Ranges | None:
        """The activation ranges the int8 image graph was quantized with (after extracting), else ``None``."""
        if self.ranges is not None:
            return dict(self.ranges)
        path = self._ranges_path()
        return q.read_ranges(path) if self.precision == "int8" and path.exists() else None

    def _calibration_id(self) -> str | None:
        if self.ranges is not None:
            return "ranges:" + sha256_bytes(json.dumps(sorted(self.ranges.items())).encode())
        if self.calibration_set is None:
            return None
        items, idx = self.calibration_set
        return sha256_bytes(b"".join(items.content_hash(int(i)) for i in idx))

    def _fp32_identity(self) -> dict[str, Any]:
        if not hasattr(self, "_fp32_id"):
            self._fp32_id = {
                "backbone": self.config.name,
                "architecture": self.config.architecture,
                "weights": self._weights_id(),
                "preprocessing": preprocessing_spec(self.config, self.image_size, self._tokenizer_id()),
                "layer": self.layer,
                "format": 1,
            }
            if self.tta != "none":  # absent otherwise, so keys written before the option still match
                self._fp32_id["tta"] = self.tta
        return self._fp32_id

    def identity(self) -> dict[str, Any]:
        """Everything that determines the features, without building the network."""
        if not hasattr(self, "_identity"):
            self._identity = dict(self._fp32_identity())
            if self.precision != "fp32":  # absent for fp32, so keys written before the option still match
                self._identity["precision"] = self.precision
                if self.config.modality == "image":
                    self._identity["calibration"] = self._calibration_id()
                    self._identity["recipe"] = q.RECIPE
                    if self.int8_engine == "openvino":  # absent for ONNX Runtime, as before the option
                        self._identity["int8_engine"] = "openvino"
        return self._identity

    @property
    def key(self) -> str:
        return EmbeddingCache.make_key(self.identity())

    @property
    def feature_dim(self) -> int:
        return self.config.layer_dim(self.layer)

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = load_backbone(
                self.config,
                weights=self.weights,
                pretrained=self.pretrained,
                image_size=self.image_size,
                seed=self.seed,
            )
        return self._backbone

    # -- execution paths -------------------------------------------------------------------------------
    def _torch_runner(self) -> Runner:
        import torch

        from .modules import feature_module

        module = feature_module(self.backbone, self.layer, self.tta)
        image = self.config.modality == "image"
        if image:
            module = module.to(memory_format=torch.channels_last)

        def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                tensors = [torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()]
                return module(*tensors).float().numpy()

        return run

    def _onnx_path(self) -> Path:
        """The fp32 graph (the int8 one is quantized from it)."""
        return onnx_dir() / f"{EmbeddingCache.make_key(self._fp32_identity())}.onnx"

    def _int8_path(self) -> Path:
        return onnx_dir() / f"{self.key}.int8.onnx"

    def _ranges_path(self) -> Path:
        """ONNX Runtime's calibration cache of the int8 image graph (written with it)."""
        return onnx_dir() / f"{self.key}.ranges.json"

    def _int8_runner(self) -> Runner:
        path = self._int8_path()
        image = self.config.modality == "image"
        if not path.exists() or (image and not self._ranges_path().exists()):
            self._onnx_runner()  # exports and checks the fp32 graph against PyTorch
            batches = None
            if self.ranges is not None:
                q.write_ranges(self.ranges, self._ranges_path())
            elif image:
                if self.calibration_set is None:
                    raise ConfigError("precision='int8' needs calibration items; call calibrate(X) first")
                items, idx = self.calibration_set
                backbone = self._inputs()
                size = getattr(backbone, "image_size", None)
                batches = [backbone.collate([backbone.prepare_item(items.load_sized(int(i), size))
                                             for i in idx[s : s + 32]]) for s in range(0, len(idx), 32)]
            log.info("quantizing %s:%s to int8", self.config.name, self.layer)
            quantize_graph(self._onnx_path(), path, self.config.modality, batches,
                           ranges_path=self._ranges_path() if image else None)
        if image and self.int8_engine == "openvino":
            self.engine_used_ = "openvino"
            return openvino_runner(path)
        session = make_session(path)
        names = [i.name for i in session.get_inputs()]

        def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
            return session.run(None, dict(zip(names, inputs.values(), strict=True)))[0]

        self.engine_used_ = "onnx"
        return run

    def _marker_path(self) -> Path:
        return self._onnx_path().with_suffix(".verified.json")

    def _graph_verified(self) -> bool:
        """Whether the cached ONNX graph was checked against PyTorch under this onnxruntime version: its
        marker holds the graph file's sha256, so a changed or truncated graph is checked again."""
        if self._verified is None:
            self._verified = False
            path, marker = self._onnx_path(), self._marker_path()
            if path.exists() and marker.exists():
                try:
                    import onnxruntime as ort

                    record = json.loads(marker.read_text())
                    self._verified = (record.get("onnxruntime") == ort.__version__
                                      and record.get("sha256") == sha256_file(path))
                except (ImportError, OSError, ValueError, AttributeError):
                    self._verified = False
        return self._verified

    def _inputs(self) -> Any:
        """What turns loaded items into the runner's inputs: the backbone, or for images whose verified ONNX
        graph will run, the preprocessing alone (:class:`ImageInputs`), so the network is never built."""
        if self._backbone is None and self.config.modality == "image" and self.engine != "torch" \
                and self._graph_verified():
            from ..backbones.inputs import ImageInputs

            return ImageInputs(self.config, self.image_size)
        return self.backbone

    def _onnx_runner(self) -> Runner:
        import onnxruntime as ort

        path = self._onnx_path()
        verified = self._graph_verified()
        if not path.exists():
            export_feature_onnx(self.backbone, self.layer, path, tta=self.tta)
        session = make_session(path)
        input_names = [i.name for i in session.get_inputs()]

        def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
            return session.run(None, dict(zip(input_names, inputs.values(), strict=True)))[0]

        if not verified:  # check the graph against PyTorch before trusting it; the marker records the check
            _, probe = probe_inputs(self.backbone)
            ref = self._torch_runner()(probe)
            got = run(probe)
            diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
            if not np.isfinite(diff) or diff > ONNX_TOLERANCE * max(1.0, float(np.max(np.abs(ref)))):
                path.unlink(missing_ok=True)
                self._marker_path().unlink(missing_ok=True)
                raise TransferKitError(f"ONNX features differ from PyTorch by {diff:.2e}")
            atomic_write_json(self._marker_path(), {"sha256": sha256_file(path), "onnxruntime": ort.__version__,
                                                    "max_abs_diff": diff, "probe_items": len(ref)})
            self._verified = True
        return run

    def runner(self) -> Runner:
        if self._runner is not None:
            return self._runner
        if self.precision == "int8":  # ONNX Runtime quantizes; OpenVINO runs the graph when installed
            try:
                self._runner = self._int8_runner()
            except ImportError as exc:
                raise ConfigError("precision='int8' needs onnxruntime; `pip install onnxruntime`") from exc
            return self._runner
        want_onnx = self.engine == "onnx" or (self.engine == "auto" and (self._graph_verified()
                                                                         or self.backbone.onnx_exportable()))
        if want_onnx:
            try:
                self._runner = self._onnx_runner()
                self.engine_used_ = "onnx"
                return self._runner
            except ImportError as exc:
                if self.engine == "onnx":
                    raise ConfigError("engine='onnx' needs onnxruntime; `pip install onnxruntime`") from exc
            except Exception as exc:  # export/runtime failures fall back to the reference path
                if self.engine == "onnx":
                    raise
                log.warning("ONNX path unavailable for %s (%s); using PyTorch", self.config.name, exc)
        self._runner = self._torch_runner()
        self.engine_used_ = "torch"
        return self._runner

    # -- extraction ------------------------------------------------------------------------------------
    def extract(self, X: Any) -> np.ndarray:
        """Features ``(N, D)`` float32 for the items ``X`` (any form :func:`as_items` accepts)."""
        items = as_items(X, self.config.modality)
        if self.precision == "int8" and self.config.modality == "image" and self.calibration_set is None \
                and self.ranges is None:
            self.calibrate(items)  # no calibration set given: the first items extracted
        n = len(items)
        dim = self.feature_dim
        hashes = [items.content_hash(i) for i in range(n)]
        key = self.key if self.cache is not None else ""
        out: np.ndarray | None = None
        found = np.zeros(n, dtype=bool)
        if self.cache is not None:
            out, found = self.cache.lookup(key, hashes, dim=dim)
        if out is None:
            out = np.zeros((n, dim), dtype=np.float32)
        missing = np.flatnonzero(~found)
        self.stats_ = {"items": n, "cached": int(found.sum()), "computed": int(len(missing))}
        if len(missing) == 0:
            return out
        # items with identical content are computed once
        first_of: dict[bytes, int] = {}
        todo = [int(i) for i in missing if first_of.setdefault(hashes[i], int(i)) == int(i)]
        run = self.runner()
        bar = progress(total=len(todo), desc=f"{self.config.name}:{self.layer}", enabled=self.show_progress)
        try:
            for start in range(0, len(todo), SHARD_SIZE):
                chunk = todo[start : start + SHARD_SIZE]
                feats = self._run_chunk(items, chunk, run, bar)
                if feats.shape[1] != dim:
                    raise TransferKitError(f"{self.config.name}:{self.layer} produced {feats.shape[1]} features, expected {dim}")
                out[chunk] = feats
                if self.cache is not None:
                    self.cache.store(key, [hashes[i] for i in chunk], feats, self.identity())
        finally:
            bar.close()
        for i in missing:
            src = first_of[hashes[i]]
            if src != i:
                out[i] = out[src]
        return out

    def _run_chunk(self, items: ItemSource, chunk: list[int], run: Runner, bar: Any) -> np.ndarray:
        backbone = self._inputs()
        order = list(range(len(chunk)))
        if hasattr(backbone, "item_length"):  # text: batch similar lengths together to pad less
            order.sort(key=lambda j: backbone.item_length(items.load(chunk[j])))  # type: ignore[attr-defined]
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        feats = np.zeros((len(chunk), self.feature_dim), dtype=np.float32)

        size = getattr(backbone, "image_size", None)

        def prepare(batch: list[int]) -> dict[str, np.ndarray]:
            return backbone.collate([backbone.prepare_item(items.load_sized(chunk[j], size)) for j in batch])

        for batch, inputs in zip(batches, _prefetch(prepare, batches, self.num_workers), strict=True):
            feats[batch] = run(inputs)
            bar.update(len(batch))
        return feats


def _prefetch(fn: Callable[[Any], Any], jobs: list[Any], workers: int) -> Iterator[Any]:
    """Yield ``fn(job)`` in order, computing up to ``workers`` jobs ahead in threads."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [pool.submit(fn, job) for job in jobs[:workers]]
        nxt = workers
        while pending:
            result = pending.pop(0).result()
            if nxt < len(jobs):
                pending.append(pool.submit(fn, jobs[nxt]))
                nxt += 1
            yield result


def extract_features(X: Any, backbone: str, layer: str | None = None, **kwargs: Any) -> np.ndarray:
    """Convenience: ``Extractor(backbone, layer, **kwargs).extract(X)``."""
    return Extractor(backbone, layer, **kwargs).extract(X)
