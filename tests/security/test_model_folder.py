"""A model folder is data, never instructions: the attacks of issue 14 against loading one.

Each test plays an attacker who controls every byte of the folder (so also writes a manifest whose hashes
match), then loads it with :func:`transferkit.load_model` and the CLI the way a user would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit import load_model
from transferkit.cli import app
from transferkit.exceptions import ModelFileError, TransferKitError

from ..conftest import make_images
from .conftest import copy_model, rewrite, tree

runner = CliRunner()


def _payload(tmp_path: Path) -> tuple[Path, Path]:
    """A local 'package' whose setup.py creates a marker file when anything runs it."""
    pkg = tmp_path / "payload"
    pkg.mkdir()
    marker = tmp_path / "PWNED"
    (pkg / "setup.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('setup.py ran')\n"
        "from setuptools import setup\nsetup(name='payload', version='1.0')\n")
    (pkg / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n'
                                        'build-backend = "setuptools.build_meta"\n')
    return pkg, marker


def _predict_everything(folder: Path, images: Path) -> list[tuple[int, str]]:
    """Load through the API and the CLI (predict, evaluate, export); every failure must be a one-line error."""
    outcomes = []
    try:
        model = load_model(folder)
        model.predict(make_images(1)[0])
        outcomes.append((0, "api ok"))
    except TransferKitError as exc:
        assert "\n" not in str(exc).strip()
        outcomes.append((2, str(exc)))
    for args in (["predict", str(folder), str(images), "--no-progress"],
                 ["export", str(folder), "--onnx", str(images.parent / "m.onnx")]):
        result = runner.invoke(app, args)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback: the test fails showing it
        assert result.exit_code in (0, 2), result.stderr
        if result.exit_code == 2:
            assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        outcomes.append((result.exit_code, result.stderr))
    return outcomes


@pytest.fixture
def images(tmp_path: Path) -> Path:
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    for i, img in enumerate(make_images(1)[0]):
        Image.fromarray(img).save(d / f"{i}.png")
    return d


@pytest.mark.parametrize("name", ["not-registered-here", "tiny-cnn"])
def test_a_setup_py_named_in_model_json_never_runs(saved_model: Path, tmp_path: Path, images: Path, name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights package, URL and hash in model.json are the attacker's, with auto-install on: the local
    folder's setup.py is never built (no marker file), whatever the backbone is called."""
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "1")
    pkg, marker = _payload(tmp_path)
    folder = copy_model(saved_model, tmp_path / "m")
    doc = json.loads((folder / "model.json").read_text())
    doc["backbone"]["name"] = name
    doc["backbone"]["weights"].update(package=str(pkg), version=None, module="payload", path_in_package="w.bin",
                                      local_path=None, url=f"file://{pkg}/setup.py", hub_id="attacker/repo",
                                      sha256="0" * 64)
    rewrite(folder, doc)
    outcomes = _predict_everything(folder, images)
    assert not marker.exists(), "the model folder's setup.py was executed"
    if name == "tiny-cnn":  # a registered name: the registry's own weights are used, the folder's ignored
        assert outcomes[0] == (0, "api ok")
    else:  # unregistered: no source at all, a one-line error naming the fix
        assert all(code == 2 and "--weights" in msg for code, msg in outcomes), outcomes


@pytest.mark.parametrize("name", ["../../../../x", "/abs/x", "a/b", "..", "x/../../y", "ok\\..\\x", ""])
def test_a_traversal_backbone_name_writes_nothing_outside_the_cache(saved_model: Path, tmp_path: Path, images: Path,
                                                                    name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "1")
    source = tmp_path / "src" / "w.pth"
    source.parent.mkdir()
    source.write_bytes(b"attacker bytes")
    folder = copy_model(saved_model, tmp_path / "m")
    doc = json.loads((folder / "model.json").read_text())
    doc["backbone"]["name"] = name
    doc["backbone"]["weights"].update(url=source.as_uri(), sha256="1" * 64, local_path=None)
    rewrite(folder, doc)
    before = tree(tmp_path)
    outcomes = _predict_everything(folder, images)
    assert all(code == 2 for code, _ in outcomes), outcomes
    assert tree(tmp_path) == before  # not even an empty folder: nothing outside the cache
    assert not list(Path("/").glob("x")) or name != "/abs/x"


@pytest.mark.parametrize("arch", ["hf-hub:attacker/repo", "../x", "os.system", "get_weight"])
@pytest.mark.parametrize("family", ["timm", "torchvision", "nope"])
def test_an_unregistered_architecture_cannot_fetch_or_call_anything(saved_model: Path, tmp_path: Path,
                                                                   family: str, arch: str) -> None:
    """The family/architecture of an unregistered backbone must not reach timm's hub loader or arbitrary
    attributes of torchvision.models."""
    folder = copy_model(saved_model, tmp_path / "m")
    doc = json.loads((folder / "model.json").read_text())
    doc["backbone"].update(name="unregistered", family=family, architecture=arch)
    rewrite(folder, doc)
    weights = next(folder.glob("*.safetensors"))
    with pytest.raises(TransferKitError, match="architecture|family") as info:
        load_model(folder, weights=weights).predict(make_images(1)[0])
    assert "\n" not in str(info.value)


def test_a_tampered_file_is_named_by_load(saved_model: Path, tmp_path: Path) -> None:
    folder = copy_model(saved_model, tmp_path / "m")
    tensors = sorted(folder.glob("*.safetensors"))
    assert tensors
    data = bytearray(tensors[0].read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last weight
    tensors[0].write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=rf"{tensors[0].name}.*differs from the file the model was saved with"):
        load_model(folder)
    code = runner.invoke(app, ["predict", str(folder), str(tmp_path)])
    assert code.exit_code == 2 and tensors[0].name in code.stderr

    folder2 = copy_model(saved_model, tmp_path / "m2")
    doc = json.loads((folder2 / "model.json").read_text())
    doc["params"]["random_state"] = 7
    (folder2 / "model.json").write_text(json.dumps(doc))  # no manifest update: model.json is named
    with pytest.raises(ModelFileError, match="model.json"):
        load_model(folder2)
    rewrite(folder2, doc)
    (folder2 / "extra.safetensors").write_bytes(b"")  # files not in the manifest are never read
    load_model(folder2)
    manifest = json.loads((folder2 / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = {"sha256": "0"}
    (folder2 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="plain name"):
        load_model(folder2)


def test_loading_reads_no_pickle(saved_model: Path, tmp_path: Path) -> None:
    """A pickle dropped into the folder under a listed name is refused, never unpickled."""
    import pickle

    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self) -> tuple:
            return (Path.write_text, (marker, "ran"))

    folder = copy_model(saved_model, tmp_path / "m")
    name = sorted(folder.glob("*.safetensors"))[0]
    name.write_bytes(pickle.dumps(Boom()))
    manifest = json.loads((folder / "manifest.json").read_text())
    from transferkit._utils import sha256_file

    manifest["files"][name.name]["sha256"] = sha256_file(name)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError):
        load_model(folder)
    assert not marker.exists()


def test_model_paths_stay_in_the_folder_and_python_path_is_untouched(saved_model: Path) -> None:
    before = list(sys.path)
    model = load_model(saved_model)
    assert sys.path == before
    assert np.asarray(model.predict(make_images(1)[0])).shape == (3,)
