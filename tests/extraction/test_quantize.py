"""int8 extraction: an ONNX Runtime quantization of the checked fp32 graph, calibrated on the user's items;
its features stay close to fp32 but are not fp32's, so precision and calibration set key the cache."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import NEG, POS, make_images
from transferkit.exceptions import ConfigError
from transferkit.extraction import Extractor, calibration_indices


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_int8_image_features_are_close_to_fp32_and_keyed_apart(tiny_backbone: str) -> None:
    X, y = make_images(n_per_class=10)
    fp32 = Extractor(tiny_backbone, show_progress=False)
    int8 = Extractor(tiny_backbone, precision="int8", show_progress=False).calibrate(X, y)
    a, b = fp32.extract(X), int8.extract(X)
    assert int8.engine_used_ in ("onnx", "openvino") and int8._int8_path().exists()
    assert not np.array_equal(a, b)  # really quantized
    assert _cos(a, b).min() > 0.95
    assert int8.key != fp32.key and int8.identity()["precision"] == "int8"
    other = Extractor(tiny_backbone, precision="int8").calibrate(X[:9])
    assert other.key != int8.key  # another calibration set, other int8 features
    again = Extractor(tiny_backbone, precision="int8", show_progress=False).calibrate(X, y)
    assert again.key == int8.key and np.array_equal(again.extract(X), b)  # served from the cache, identical


def test_saved_ranges_quantize_the_same_graph_without_the_items(tiny_backbone: str, tmp_path, monkeypatch) -> None:
    X, y = make_images(n_per_class=10)
    first = Extractor(tiny_backbone, precision="int8", show_progress=False).calibrate(X, y)
    a = first.extract(X)
    ranges = first.calibration_ranges()
    assert ranges and all(lo <= hi for lo, hi in ranges.values())
    graph = first._int8_path().read_bytes()
    monkeypatch.setenv("TRANSFERKIT_CACHE_DIR", str(tmp_path / "elsewhere"))  # a new machine: no cached graphs
    again = Extractor(tiny_backbone, precision="int8", show_progress=False, calibration=ranges)
    assert again.calibration_ranges() == ranges and again.identity()["calibration"].startswith("ranges:")
    b = again.extract(X[:5])
    assert again._int8_path().read_bytes() == graph  # bit-identical quantization from the ranges alone
    assert np.array_equal(a[:5], b)


def test_ranges_from_elsewhere_are_refused_not_misapplied(tiny_backbone: str) -> None:
    from transferkit.exceptions import ModelFileError, TransferKitError

    X, _ = make_images(n_per_class=3)
    with pytest.raises(ModelFileError, match="bad entry for 'conv'"):
        Extractor(tiny_backbone, precision="int8", calibration={"conv": [2.0, 1.0]})
    with pytest.raises(ModelFileError, match="not a mapping"):
        Extractor(tiny_backbone, precision="int8").use_ranges([1, 2])
    foreign = Extractor(tiny_backbone, precision="int8", cache=False, show_progress=False,
                        calibration={"no_such_tensor": [0.0, 1.0]})
    with pytest.raises(TransferKitError, match="1 tensors this backbone's graph does not have"):
        foreign.extract(X)


def test_int8_without_a_calibration_set_calibrates_on_the_items(tiny_backbone: str) -> None:
    X, _ = make_images(n_per_class=4)
    e = Extractor(tiny_backbone, precision="int8", cache=False, show_progress=False)
    e.extract(X)
    assert e.identity()["calibration"] == Extractor(tiny_backbone, precision="int8").calibrate(X)._calibration_id()


def test_int8_text_uses_dynamic_quantization(tiny_text_backbone: str) -> None:
    texts = [f"the film was {w}" for w in POS + NEG]
    a = Extractor(tiny_text_backbone, cache=False, show_progress=False).extract(texts)
    b = Extractor(tiny_text_backbone, precision="int8", cache=False, show_progress=False).extract(texts)
    assert b.shape == a.shape and not np.array_equal(a, b) and _cos(a, b).min() > 0.9


def test_bad_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match="precision='int4' is not one of fp32, int8"):
        Extractor("mobilenet_v2", precision="int4")
    with pytest.raises(ConfigError, match="runs on ONNX Runtime; use engine='auto' or 'onnx'"):
        Extractor("mobilenet_v2", precision="int8", engine="torch")


def test_calibration_indices_are_stratified_and_bounded() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = calibration_indices(len(labels), labels, k=100)
    assert len(idx) <= 102 and len(set(idx)) == len(idx)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts[2] >= 1 and counts[0] > counts[1] > counts[2]
    assert np.array_equal(idx, calibration_indices(len(labels), labels, k=100))
    assert np.array_equal(calibration_indices(50, None, k=100), np.arange(50))


def test_feature_extractor_int8_calibrates_in_fit(tiny_backbone: str) -> None:
    from sklearn.base import clone

    from transferkit import FeatureExtractor

    X, y = make_images(n_per_class=6)
    fx = FeatureExtractor(tiny_backbone, precision="int8", progress=False).fit(X, y)
    a = fx.transform(X)
    b = FeatureExtractor(tiny_backbone, progress=False).fit(X, y).transform(X)
    assert not np.array_equal(a, b) and _cos(a, b).min() > 0.95
    assert fx.identity_["precision"] == "int8" and fx.identity_["calibration"]
    assert np.array_equal(clone(fx).fit(X, y).transform(X), a)
    with pytest.raises(ConfigError, match="calibrates on the training items; call fit"):
        FeatureExtractor(tiny_backbone, precision="int8").fit()


def test_openvino_and_onnxruntime_run_the_same_int8_graph(tiny_backbone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    X, y = make_images(n_per_class=6)
    ov = Extractor(tiny_backbone, precision="int8", cache=False, show_progress=False).calibrate(X, y)
    a = ov.extract(X)
    monkeypatch.setenv("TRANSFERKIT_OPENVINO", "0")
    ort = Extractor(tiny_backbone, precision="int8", cache=False, show_progress=False).calibrate(X, y)
    b = ort.extract(X)
    assert (ov.engine_used_, ort.engine_used_) == ("openvino", "onnx")
    assert _cos(a, b).min() > 0.98
