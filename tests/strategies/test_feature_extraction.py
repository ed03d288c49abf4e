"""Feature extraction in int8 (issue 19): the accuracy guard keeps int8 only when the head loses at most
0.5 point on held-out training items against fp32 features, falls back to fp32 (saying so) otherwise, and
an int8 model carries its calibration ranges, so another process predicts identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_images, make_texts
from transferkit import TransferClassifier, TransferRegressor
from transferkit.exceptions import ConfigError
from transferkit.extraction import quantize


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_images(n_per_class=16)


def test_int8_is_kept_when_it_loses_nothing_and_travels_with_the_model(tiny_backbone: str, data, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", 1.0)  # whatever int8 scores, it is within the tolerance
    clf = TransferClassifier(tiny_backbone, precision="int8", progress=False).fit(X, y)
    guard = clf.strategy_.guard
    assert clf.precision_ == "int8" and guard["kept"] == "int8" and guard["n_validation"] == 12
    assert 0.0 <= guard["int8"] <= 1.0 and 0.0 <= guard["fp32"] <= 1.0
    assert set(guard["head_params"]) == {"C", "power"} and guard["repeats"] == 4
    assert clf.strategy_.info["notes"][0].startswith("int8 kept: mean accuracy over 4 hold-outs of 12 training items")
    fp32 = TransferClassifier(tiny_backbone, progress=False).fit(X, y)
    assert not np.array_equal(clf.features(X), fp32.features(X))  # really int8 features
    proba = clf.predict_proba(X)
    clf.save(tmp_path / "m")
    monkeypatch.setenv("TRANSFERKIT_CACHE_DIR", str(tmp_path / "another-machine"))  # no cached graph, no items
    loaded = TransferClassifier.load(tmp_path / "m")
    assert loaded.precision_ == "int8" and loaded.strategy_.ranges == clf.strategy_.ranges
    assert np.array_equal(loaded.predict_proba(X), proba)
    assert loaded.use_precision("fp32").precision_ == "fp32"  # fp32 always works on an int8 model
    assert not np.array_equal(loaded.predict_proba(X), proba)
    from transferkit.serving import Predictor

    served = Predictor(tmp_path / "m", precision="fp32")
    assert served.metadata()["precision"] == "fp32"
    assert Predictor(tmp_path / "m").metadata()["precision"] == "int8"
    with pytest.raises(ConfigError, match="fitted in fp32, so it has no int8 calibration; refit it with precision int8"):
        fp32.use_precision("int8")  # it would have to calibrate on whatever it is asked to predict


def test_the_guard_tries_both_int8_engines_and_the_model_remembers_its_own(
        tiny_backbone: str, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    pytest.importorskip("openvino")
    X, y = data
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", 1.0)
    clf = TransferClassifier(tiny_backbone, precision="int8", progress=False).fit(X, y)
    guard = clf.strategy_.guard
    assert set(guard["int8_by_engine"]) == {"openvino", "onnxruntime"}
    assert guard["int8_engine"] == "openvino"  # both pass: the faster one is kept
    assert clf.strategy_.extractor().identity()["int8_engine"] == "openvino"
    on_openvino = clf.predict_proba(X)
    clf.save(tmp_path / "m")
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", -1.0)  # no engine passes: fp32, saying what each scored
    fp32 = TransferClassifier(tiny_backbone, precision="int8", progress=False).fit(X, y)
    assert fp32.precision_ == "fp32" and set(fp32.strategy_.guard["int8_by_engine"]) == {"openvino", "onnxruntime"}
    monkeypatch.setenv("TRANSFERKIT_OPENVINO", "0")  # a machine without OpenVINO, with nothing cached
    monkeypatch.setenv("TRANSFERKIT_CACHE_DIR", str(tmp_path / "another-machine"))
    loaded = TransferClassifier.load(tmp_path / "m")
    assert "checked on OpenVINO, which is not installed here" in caplog.text
    assert loaded.precision_ == "int8" and loaded.strategy_.context.int8_engine == "onnxruntime"
    proba = loaded.predict_proba(X)
    assert loaded.engine_ == "onnx" and not np.array_equal(proba, on_openvino)


def test_the_guard_falls_back_to_fp32_when_forced(tiny_backbone: str, data, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    X, y = data
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", -1.0)  # int8 would have to beat fp32 by 100 points
    clf = TransferClassifier(tiny_backbone, precision="int8", progress=False).fit(X, y)
    assert clf.precision_ == "fp32" and clf.strategy_.guard["kept"] == "fp32"
    assert "int8 fell back to fp32: it lost" in caplog.text
    fp32 = TransferClassifier(tiny_backbone, progress=False).fit(X, y)
    assert np.array_equal(clf.predict_proba(X), fp32.predict_proba(X))  # exactly the fp32 model
    clf.save(tmp_path / "m")
    loaded = TransferClassifier.load(tmp_path / "m")
    assert loaded.precision == "int8" and loaded.precision_ == "fp32"  # asked int8, uses fp32
    assert np.array_equal(loaded.predict_proba(X), fp32.predict_proba(X))


def test_a_class_too_small_to_hold_out_keeps_fp32(tiny_backbone: str, data) -> None:
    X, y = data
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]  # class 2 has one item
    clf = TransferClassifier(tiny_backbone, precision="int8", progress=False, head_params={"C": 1.0})
    clf.fit(X[keep], y[keep])
    assert clf.precision_ == "fp32" and "cannot be checked" in clf.strategy_.info["notes"][0]


def test_regression_guards_on_r2(tiny_backbone: str, data, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", 1.0)
    reg = TransferRegressor(tiny_backbone, precision="int8", progress=False).fit(X, y.astype(float) * 1.5)
    assert reg.precision_ == "int8" and reg.strategy_.guard["measure"] == "R²"
    assert reg.strategy_.guard["head_params"]  # the guard's heads reuse the hyper-parameters CV chose once


def test_int8_text_needs_no_ranges(tiny_text_backbone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts, labels = make_texts(40, seed=0)
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", 1.0)
    clf = TransferClassifier(tiny_text_backbone, precision="int8", progress=False).fit(texts, labels)
    assert clf.precision_ == "int8" and clf.strategy_.ranges is None  # dynamic quantization
    clf.save(tmp_path / "m")
    assert np.array_equal(TransferClassifier.load(tmp_path / "m").predict_proba(texts), clf.predict_proba(texts))
    fp32 = TransferClassifier(tiny_text_backbone, progress=False).fit(texts, labels)
    assert fp32.use_precision("int8").precision_ == "int8"  # text: dynamic quantization, nothing to calibrate
    assert np.array_equal(fp32.features(texts), clf.features(texts))  # the same int8 encoder


def test_strategies_that_cannot_run_int8_say_so(tiny_backbone: str, data) -> None:
    X, y = data
    with pytest.raises(ConfigError, match="strategy 'fine-tune' runs in fp32 only, not precision='int8'; use "
                                          "precision='fp32' or strategy 'feature-extraction'"):
        TransferClassifier(tiny_backbone, strategy="fine-tune", precision="int8").fit(X, y)
    with pytest.raises(ConfigError, match="precision='int4' is not allowed"):
        TransferClassifier(tiny_backbone, precision="int4").fit(X, y)
    fitted = TransferClassifier(tiny_backbone, strategy="fine-tune", epochs=1, head_epochs=1, progress=False).fit(X, y)
    with pytest.raises(ConfigError, match="runs in fp32 only"):
        fitted.use_precision("int8")
