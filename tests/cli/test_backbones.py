"""Bring-your-own backbones through the command line: fit / predict / export / rank with a torchvision and a
timm network from local weights files, `backbones NAME --layers`, and `backbones add/remove`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.cli.test_commands import run


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory) -> Path:
    import torchvision

    torch.manual_seed(21)
    path = tmp_path_factory.mktemp("w") / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in torchvision.models.resnet18().state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory) -> Path:
    import timm

    torch.manual_seed(22)
    path = tmp_path_factory.mktemp("w") / "test_efficientnet.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), str(path))
    return path


@pytest.mark.parametrize("backbone,weights", [("resnet18", "resnet_file"), ("timm:test_efficientnet", "timm_file")])
def test_fit_predict_export_with_a_local_weights_file(backbone, weights, request, image_folder: Path, tmp_path: Path) -> None:
    weights_file = request.getfixturevalue(weights)
    model = tmp_path / "model"
    code, out, err = run("fit", image_folder, "--backbone", backbone, "--weights", weights_file, "--image-size", "32",
                         "--out", model, "--no-progress", "--no-report", "--json", "--engine", "torch")
    assert code == 0, err
    results = json.loads(out)
    assert results["model"]["backbone"] == backbone and results["model"]["layer"] == "pre_logits"
    preds = tmp_path / "pred.csv"
    code, _, err = run("predict", model, image_folder, "--weights", weights_file, "--output", preds, "--no-progress")
    assert code == 0, err
    rows = list(csv.DictReader(preds.open()))
    assert len(rows) == 30
    onnx_file = tmp_path / "m.onnx"
    code, _, err = run("export", model, "--onnx", onnx_file, "--weights", weights_file)
    assert code == 0, err
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    pixels = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    assert session.run(None, {session.get_inputs()[0].name: pixels})[-1].shape[0] == 2
    correct = np.mean([Path(r["item"]).parent.name == r["prediction"] for r in rows])
    assert correct >= 0.5  # random-init features still separate stripes from blobs


def test_predict_without_the_weights_file_says_what_to_pass(resnet_file, image_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    code, _, err = run("fit", image_folder, "--backbone", "resnet18", "--weights", resnet_file, "--image-size", "32",
                       "--out", model, "--no-progress", "--no-report", "--engine", "torch")
    assert code == 0, err
    code, _, err = run("predict", model, image_folder, "--no-progress")
    assert code == 2 and "--weights" in err and err.strip().count("\n") == 0


def test_layers_listing_and_user_registration_then_rank(resnet_file, tiny_backbone, image_folder: Path) -> None:
    code, out, err = run("backbones", "resnet18", "--layers", "--json")
    assert code == 0, err
    assert [n for n, _ in json.loads(out)["layer_dims"]] == ["relu", "layer1", "layer2", "layer3", "layer4", "pre_logits"]
    code, _, err = run("backbones", "add", "my-resnet", "--arch", "resnet18", "--weights", resnet_file,
                       "--input-size", "32", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25")
    assert code == 0, err
    code, out, _ = run("backbones", "--json")
    mine = [r for r in json.loads(out) if r["name"] == "my-resnet"]
    assert mine and mine[0]["installed"] and mine[0]["input_size"] == 32
    code, out, err = run("rank", image_folder, "--backbones", f"my-resnet,{tiny_backbone}", "--no-progress", "--json",
                         "--engine", "torch")
    assert code == 0, err
    ranked = {(c["backbone"], c["control"]) for c in json.loads(out)["candidates"]}
    assert ("my-resnet", False) in ranked and ("my-resnet", True) in ranked
    code, _, err = run("backbones", "add", "my-resnet", "--arch", "resnet18", "--weights", resnet_file)
    assert code == 2 and "already exists" in err
    code, _, err = run("backbones", "remove", "my-resnet")
    assert code == 0, err
    code, out, _ = run("backbones", "--json")
    assert "my-resnet" not in {r["name"] for r in json.loads(out)}


def test_registering_a_file_that_does_not_fit_writes_nothing(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "mnv3.safetensors"
    save_file({k: v.contiguous() for k, v in torchvision.models.mobilenet_v3_small().state_dict().items()}, str(path))
    code, _, err = run("backbones", "add", "wrong", "--arch", "resnet18", "--weights", path)
    assert code == 2 and "missing keys: conv1.weight" in err and err.strip().count("\n") == 0
    from transferkit.backbones.user import read_entries

    assert read_entries() == {}
    code, _, err = run("backbones", "remove", "wrong")
    assert code == 2 and "not a backbone you registered" in err
