"""TransferClassifier / FeatureExtractor: the scikit-learn contract, learning, persistence, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.conftest import make_images, run_onnx
from transferkit import FeatureExtractor, TransferClassifier
from transferkit.exceptions import ConfigError, DataError, ModelFileError, NotFittedError, UnknownNameError


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = make_images(15, seed=0)
    Xt, yt = make_images(10, seed=1)
    return X, y, Xt, yt


def test_classifier_learns_and_beats_chance(tiny_backbone: str, data) -> None:
    X, y, Xt, yt = data
    clf = TransferClassifier(backbone=tiny_backbone).fit(X, y)
    assert clf.score(Xt, yt) > 0.8  # chance is 1/3
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_features_ == 8 and clf.layer_ == "features.1"
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 3) and np.allclose(proba.sum(1), 1)
    assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(Xt))


def test_string_labels_and_lists_of_paths(tiny_backbone: str, image_folder: Path) -> None:
    from transferkit.data import load_image_folder

    ds = load_image_folder(image_folder)
    clf = TransferClassifier(backbone=tiny_backbone).fit(ds.X, ds.y)
    assert set(clf.predict(ds.X[:5])) <= {"blob", "horizontal", "vertical"}
    assert clf.score(ds.X, ds.y) > 0.8


def test_sklearn_contract(tiny_backbone: str, data) -> None:
    X, y, Xt, yt = data
    est = TransferClassifier(backbone=tiny_backbone, head="svm")
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError, match="not fitted"):
        est.predict(Xt)
    assert not hasattr(est, "predict_proba")  # svm gives no probabilities
    scores = cross_val_score(TransferClassifier(backbone=tiny_backbone), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(TransferClassifier(backbone=tiny_backbone), {"head": ["logreg", "svm"], "layer": ["features.0", "last"]}, cv=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.7 and set(grid.best_params_) == {"head", "layer"}
    pipe = make_pipeline(FeatureExtractor(backbone=tiny_backbone), StandardScaler(), LogisticRegression(max_iter=1000))
    assert pipe.fit(X, y).score(Xt, yt) > 0.7
    names = pipe[0].get_feature_names_out()
    assert len(names) == 8 and names[0] == "tiny-cnn_features_1_0"


def test_feature_extractor_layers(tiny_backbone: str, data) -> None:
    X = data[0]
    assert FeatureExtractor(backbone=tiny_backbone, layer="features.0").fit_transform(X).shape == (len(X), 4)
    with pytest.raises(NotFittedError):
        FeatureExtractor(backbone=tiny_backbone).transform(X)


def test_parameter_errors(tiny_backbone: str, data) -> None:
    X, y, _, _ = data
    with pytest.raises(ConfigError, match=r"backbone='mobilnet_v2' is not allowed \(did you mean 'mobilenet_v2'\?\)"):
        TransferClassifier(backbone="mobilnet_v2").fit(X, y)
    with pytest.raises(ConfigError, match=r"head='forest' is not allowed.*'logreg', 'svm', 'mlp'"):
        TransferClassifier(backbone=tiny_backbone, head="forest").fit(X, y)
    with pytest.raises(UnknownNameError, match="no layer 'block9'"):
        TransferClassifier(backbone=tiny_backbone, layer="block9").fit(X, y)
    with pytest.raises(ConfigError, match="image_size=8 is not allowed"):
        TransferClassifier(backbone=tiny_backbone, image_size=8).fit(X, y)
    with pytest.raises(ConfigError, match="text backbone"):
        TransferClassifier(backbone="glove-6b-50d", image_size=64).fit(["a b"], [0])
    with pytest.raises(DataError, match="X has 45 items but y has 44 labels"):
        TransferClassifier(backbone=tiny_backbone).fit(X, y[:-1])
    with pytest.raises(DataError, match="1 class"):
        TransferClassifier(backbone=tiny_backbone).fit(X, np.zeros(len(X), int))
    with pytest.raises(ConfigError, match="takes image input but X holds text"):
        TransferClassifier(backbone=tiny_backbone).fit(["some text", "more text"], [0, 1])
    with pytest.raises(DataError, match="'gone.png' does not exist"):
        TransferClassifier(backbone=tiny_backbone).fit(["gone.png", "gone2.png"], [0, 1])


def test_save_load_gives_identical_predictions(tiny_backbone: str, data, tmp_path: Path) -> None:
    X, y, Xt, _ = data
    for head in ("logreg", "svm", "mlp"):
        clf = TransferClassifier(backbone=tiny_backbone, head=head).fit(X, y.astype(str))
        out = clf.save(tmp_path / head)
        assert sorted(p.name for p in out.iterdir()) == ["head.safetensors", "manifest.json", "model.json"]
        loaded = TransferClassifier.load(out)
        assert np.array_equal(loaded.predict(Xt), clf.predict(Xt))
        assert loaded.classes_.dtype.kind == "U"
        assert np.array_equal(loaded.decision_function(Xt), clf.decision_function(Xt))
        if head != "svm":
            assert np.array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))


def test_loading_checks_files_and_weights(tiny_backbone: str, data, tmp_path: Path) -> None:
    import json

    from transferkit._utils import sha256_file

    X, y, _, _ = data
    clf = TransferClassifier(backbone=tiny_backbone).fit(X, y)
    d = clf.save(tmp_path / "m")
    with pytest.raises(ModelFileError, match="does not exist"):
        TransferClassifier.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="no model.json"):
        TransferClassifier.load(tmp_path / "empty")
    doc = json.loads((d / "model.json").read_text())
    doc["strategy"]["state"]["weights_id"] = "f" * 64
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=r"model\.json' differs from the file the model was saved with"):
        TransferClassifier.load(d)  # the manifest catches the edit
    manifest = json.loads((d / "manifest.json").read_text())  # a consistent folder made with other weights
    manifest["files"]["model.json"]["sha256"] = sha256_file(d / "model.json")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="trained with tiny-cnn weights ffffffffffff"):
        TransferClassifier.load(d)
    (d / "head.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match=r"head\.safetensors' differs"):
        TransferClassifier.load(d)
    manifest["files"]["head.safetensors"]["sha256"] = sha256_file(d / "head.safetensors")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="corrupt"):
        TransferClassifier.load(d)


def test_saved_files_contain_no_pickle(tiny_backbone: str, data, tmp_path: Path) -> None:
    X, y, _, _ = data
    d = TransferClassifier(backbone=tiny_backbone).fit(X, y).save(tmp_path / "m")
    for f in d.iterdir():
        assert b"\x80\x04\x95" not in f.read_bytes() and b"\x80\x05\x95" not in f.read_bytes()


def test_hflip_tta_is_flip_invariant_saved_and_exported(tiny_backbone: str, data, tmp_path: Path) -> None:
    from transferkit.export import export_onnx

    X, y, Xt, _ = data
    clf = TransferClassifier(backbone=tiny_backbone, tta="hflip", cache=False).fit(X, y)
    mirror = Xt[:, :, ::-1].copy()
    assert np.max(np.abs(clf.predict_proba(Xt) - clf.predict_proba(mirror))) <= 1e-5
    loaded = TransferClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.tta == "hflip"
    assert np.array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))
    # the exported graph averages the mirror too: a session of our own on the file gives the same probabilities
    export_onnx(loaded, tmp_path / "m.onnx")
    rgb = np.repeat(Xt[..., None], 3, axis=3)
    got = run_onnx(tmp_path / "m.onnx", {"pixels": rgb})
    assert got.shape == (len(Xt), 3) and np.max(np.abs(got - loaded.predict_proba(rgb))) <= 1e-4
    mirrored = run_onnx(tmp_path / "m.onnx", {"pixels": np.ascontiguousarray(rgb[:, :, ::-1])})
    assert np.max(np.abs(got - mirrored)) <= 1e-5
    assert clone(clf).get_params()["tta"] == "hflip"
    with pytest.raises(ConfigError, match="tta='hflip' flips images but 'glove-6b-50d' is a text backbone"):
        TransferClassifier("glove-6b-50d", tta="hflip").fit(["good film", "bad film"], [1, 0])
    with pytest.raises(ConfigError, match=r"TransferClassifier: tta='vflip' is not allowed.*expected one of none, hflip"):
        TransferClassifier(backbone=tiny_backbone, tta="vflip").fit(X, y)
