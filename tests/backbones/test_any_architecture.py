"""Any torchvision / timm architecture from a local weights file: randomly initialised networks saved by the
test (safetensors and a plain state dict), loaded by name, compared with the network itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from transferkit.backbones import get_config, load_backbone
from transferkit.exceptions import WeightsError

SIZE = 64


def _save(model: torch.nn.Module, path: Path) -> Path:
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, str(path))
    return path


@pytest.fixture(scope="module")
def resnet18() -> torch.nn.Module:
    import torchvision

    torch.manual_seed(7)
    return torchvision.models.resnet18().eval()


def _pixels(n: int = 3, size: int = SIZE) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8))


def _normalised(pixels: torch.Tensor, config) -> torch.Tensor:
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (pixels.permute(0, 3, 1, 2).float() / 255.0 - mean) / std


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_torchvision_resnet18_from_a_file_gives_the_networks_own_features(resnet18, tmp_path, suffix) -> None:
    path = _save(resnet18, tmp_path / f"resnet18{suffix}")
    backbone = load_backbone("resnet18", weights=path, image_size=SIZE)
    config = backbone.config
    assert list(config.layers) == ["relu", "layer1", "layer2", "layer3", "layer4", "pre_logits"]
    assert config.feature_dim == 512 and config.num_source_classes == 1000 and config.input_size == 224
    pixels = _pixels()
    x = _normalised(pixels, config)
    with torch.no_grad():
        ours = backbone.feature_module()(pixels)
        r = resnet18
        stem = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        l3 = r.layer3(r.layer2(r.layer1(stem)))
        reference = torch.flatten(r.avgpool(r.layer4(l3)), 1)
        mid = backbone.feature_module("layer3")(pixels)
        probs = backbone.feature_module("source_probs")(pixels)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mid, l3.mean(dim=(2, 3)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(probs, torch.softmax(r.fc(reference), 1), rtol=1e-5, atol=1e-6)
    assert backbone.weights_id == __import__("transferkit._utils", fromlist=["x"]).sha256_file(path)


def test_a_key_mismatch_names_the_first_missing_and_unexpected_keys(resnet18, tmp_path) -> None:
    state = dict(resnet18.state_dict())
    state["renamed.weight"] = state.pop("layer1.0.conv1.weight")
    path = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(WeightsError, match=r"missing keys: layer1\.0\.conv1\.weight.*unexpected keys: renamed\.weight"):
        load_backbone("resnet18", weights=path)


def test_another_architecture_file_is_refused_with_its_keys(tmp_path) -> None:
    import torchvision

    path = _save(torchvision.models.mobilenet_v3_small(), tmp_path / "mnv3.pth")
    with pytest.raises(WeightsError, match=r"does not fit torchvision resnet18 \(missing keys: conv1\.weight"):
        load_backbone("resnet18", weights=path)


def test_a_classifier_of_another_size_is_dropped(tmp_path) -> None:
    import torchvision

    torch.manual_seed(3)
    tuned = torchvision.models.resnet18(num_classes=10).eval()
    backbone = load_backbone("resnet18", weights=_save(tuned, tmp_path / "tuned.safetensors"), image_size=SIZE)
    pixels = _pixels(2)
    with torch.no_grad():
        tuned.fc = torch.nn.Identity()
        torch.testing.assert_close(backbone.feature_module()(pixels), tuned(_normalised(pixels, backbone.config)),
                                   rtol=1e-5, atol=1e-5)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_state_dict_holding_a_pickled_object_is_refused_without_running_it(resnet18, tmp_path) -> None:
    marker = tmp_path / "code-ran"
    state = dict(resnet18.state_dict())
    state["extra"] = _Payload(marker)
    path = tmp_path / "evil.pth"
    torch.save(state, str(path))
    with pytest.raises(WeightsError, match="pickled Python objects"):
        load_backbone("resnet18", weights=path)
    assert not marker.exists()


def test_timm_model_from_a_file(tmp_path) -> None:
    import timm

    torch.manual_seed(5)
    model = timm.create_model("test_efficientnet", pretrained=False).eval()
    backbone = load_backbone("timm:test_efficientnet", weights=_save(model, tmp_path / "t.safetensors"), image_size=SIZE)
    config = backbone.config
    assert config.family == "timm" and config.default_layer == "pre_logits"
    assert config.interpolation == "bicubic" and config.input_size == model.pretrained_cfg["input_size"][-1]
    assert [f["module"] for f in model.feature_info] == list(config.layers)[:-1]
    pixels = _pixels()
    x = _normalised(pixels, config)
    with torch.no_grad():
        reference = model.forward_head(model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(backbone.feature_module()(pixels), reference, rtol=1e-5, atol=1e-5)
        stage = backbone.feature_module("blocks.2")(pixels)
    assert stage.shape == (3, config.layers["blocks.2"])


def test_no_weights_is_a_clear_error_and_random_init_needs_none() -> None:
    with pytest.raises(WeightsError, match="no packaged weights: pass its weights file with --weights"):
        load_backbone("resnet18")
    control = load_backbone("resnet18", pretrained=False, image_size=SIZE, seed=1)
    assert control.weights_id == "random-init:1"


def test_unknown_architecture_keeps_the_did_you_mean_error() -> None:
    from transferkit.exceptions import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown backbone 'resnet5000'"):
        get_config("resnet5000")
    with pytest.raises(Exception, match="timm has no classification model 'nosuchnet'"):
        get_config("timm:nosuchnet")


def test_vision_transformer_layers_are_its_blocks() -> None:
    config = get_config("vit_b_16")
    blocks = [n for n in config.layers if n.startswith("encoder.layers.")]
    assert len(blocks) == 12 and config.feature_dim == 768 and config.default_layer == "pre_logits"


@pytest.mark.slow
def test_torchvision_vgg11_from_a_state_dict(tmp_path) -> None:
    import torchvision

    torch.manual_seed(11)
    vgg = torchvision.models.vgg11().eval()
    backbone = load_backbone("vgg11", weights=_save(vgg, tmp_path / "vgg11.pth"), image_size=SIZE)
    assert backbone.config.feature_dim == 4096
    pixels = _pixels(2)
    with torch.no_grad():
        vgg.classifier[6] = torch.nn.Identity()
        torch.testing.assert_close(backbone.feature_module()(pixels), vgg(_normalised(pixels, backbone.config)),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "timm:test_efficientnet"])
def test_fine_tuning_a_graph_backbone_saves_and_loads_identical_predictions(name, tmp_path) -> None:
    import timm
    import torchvision

    from tests.conftest import make_images
    from transferkit import TransferClassifier, load_model

    torch.manual_seed(9)
    model = torchvision.models.resnet18() if name == "resnet18" else timm.create_model("test_efficientnet")
    weights = _save(model, tmp_path / "w.safetensors")
    X, y = make_images(n_per_class=8, size=32)
    clf = TransferClassifier(name, weights=str(weights), strategy="fine-tune", image_size=32,
                             epochs=1, head_epochs=1, progress=False, cache=False, engine="torch").fit(X, y)
    frozen = dict(load_backbone(name, weights=weights).model.state_dict())
    torch.testing.assert_close(frozen, {k: v for k, v in model.state_dict().items()}, rtol=0, atol=0)  # copy trained
    clf.save(tmp_path / "model")
    again = load_model(tmp_path / "model", weights=str(weights))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
