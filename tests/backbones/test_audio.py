"""Audio backbones on real shipped weights: the Whisper conversion against stored reference vectors, CREPE's
pitch, windows + pooling over valid frames, a tiny task learned end to end with save → load identical
predictions. Tests skip when the weights packages are not installed (CI installs them)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from transferkit.backbones import get_config, is_installed, load_backbone  # noqa: E402
from transferkit.extraction import Extractor  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from test_audio import tone, tone_folder  # noqa: E402


def need(name: str) -> None:
    config = get_config(name)
    if not is_installed(config) or any(
            not is_installed(config.__class__(**{**config.__dict__, "weights": type(config.weights)(**p)}))
            for p in config.extra.get("more_parts", ())):
        pytest.skip(f"weights package of {name} not installed")


def probe() -> np.ndarray:
    t = np.arange(32000) / 16000
    env = np.minimum(1, 4 * np.sin(np.pi * t / 2) ** 2)
    return (0.3 * env * (np.sin(2 * np.pi * 300 * t) + 0.5 * np.sin(2 * np.pi * (600 + 200 * t) * t))).astype(np.float32)


# Pooled encoder output for probe(), from the CTranslate2 → transformers mapping of
# /work/shared/reference/weights/verify_whisper.py; that converted model transcribes an espeak-ng sentence
# ("the quick brown fox ...") correctly, and this package's encoder equals it bit for bit on that sentence.
REFERENCE = {
    "whisper-tiny-en": ([0.82438, 0.47952, -0.72312, 0.42909, 0.06494, 0.49996, -0.5388, -0.17755, -0.49524,
                         -0.35586, -1.79404, 0.11749, 0.11932, 1.07879, -0.38152, 0.89905], 19.5338),
    "whisper-base": ([-0.8342, 0.96806, -0.0235, 0.09042, -0.04569, 0.35743, 0.51614, -0.64404, -0.57008,
                      -0.49644, 0.03536, -0.65176, 0.01265, -0.80711, -0.67162, 0.5392], 26.6908),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_whisper_conversion_matches_reference(name: str) -> None:
    need(name)
    feats = Extractor(name, cache=False, show_progress=False).extract([probe()])
    first, norm = REFERENCE[name]
    assert feats.shape == (1, get_config(name).feature_dim)
    np.testing.assert_allclose(feats[0, :16], first, atol=2e-4)
    assert float(np.linalg.norm(feats[0])) == pytest.approx(norm, abs=2e-3)


@pytest.mark.slow
def test_whisper_windows_pool_over_valid_frames() -> None:
    need("whisper-tiny-en")
    rng = np.random.default_rng(0)
    long = np.concatenate([tone(f, seconds=5.0, seed=i) for i, f in enumerate(rng.uniform(150, 900, 13))])  # 65 s
    w = 30 * 16000
    parts = [long[:w], long[w : 2 * w], long[2 * w :]]
    feats = Extractor("whisper-tiny-en", cache=False, show_progress=False, batch_size=2).extract([long, *parts])
    frames = np.array([1500, 1500, 250])  # 20-ms encoder frames of each window's real audio
    np.testing.assert_allclose(feats[0], (frames[:, None] * feats[1:]).sum(0) / frames.sum(), atol=1e-4)


@pytest.mark.slow
def test_clip_length_whisper_is_batch_independent() -> None:
    from dataclasses import replace

    from transferkit.backbones.audio import WhisperBackbone

    need("whisper-tiny-en")
    padded = load_backbone("whisper-tiny-en")
    config = replace(padded.config, extra={**padded.config.extra, "clip_length": True})
    clip = WhisperBackbone(config, padded.model, padded.weights_id)
    net = clip.feature_module()
    import torch

    short, longer = tone(300, seconds=0.7), tone(500, seconds=2.6)
    with torch.inference_mode():
        alone = net(*[torch.from_numpy(v) for v in clip.prepare([short]).values()]).numpy()
        batch = net(*[torch.from_numpy(v) for v in clip.prepare([short, longer]).values()]).numpy()
    assert clip.prepare([short])["mel"].shape[2] == 102  # 1 s + 2 floor frames, not 30 s
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-4)  # padding to the batch's longest clip is masked


@pytest.mark.parametrize(("name", "clip_length"), [("crepe-tiny", False), ("whisper-tiny-en", True),
                                                    ("whisper-tiny-en", False)])
def test_the_onnx_graph_gives_the_torch_features_for_clips_of_any_length(name: str, clip_length: bool) -> None:
    from dataclasses import replace

    need(name)
    config = get_config(name)
    if clip_length:
        config = replace(config, extra={**config.extra, "clip_length": True})
    clips = [tone(300, seconds=0.7), tone(500, seconds=2.6, seed=1), tone(700, seconds=1.3, seed=2)]
    eager = Extractor(config, engine="torch", cache=False, show_progress=False).extract(clips)
    graph = Extractor(config, engine="auto", cache=False, show_progress=False, batch_size=2)
    got = graph.extract(clips)  # batches of 2 and 1 clips: other window counts and lengths than the trace
    assert graph.engine_used_ == "onnx"
    np.testing.assert_allclose(got, eager, atol=1e-4 * max(1.0, float(np.abs(eager).max())))


def test_crepe_tiny_hears_pitch() -> None:
    need("crepe-tiny")
    import torch

    backbone = load_backbone("crepe-tiny")
    for f0 in (220.0, 440.0, 880.0):
        frames = torch.from_numpy(backbone.prepare_item(tone(f0, seconds=0.5, noise=0.0))[5:-5])
        frames = frames - frames.mean(1, keepdim=True)
        frames = frames / frames.std(1, keepdim=True)
        with torch.inference_mode():
            bins = backbone.model.pitch_probs(frames).argmax(1).float()
        hz = 10 * 2 ** ((20 * bins + 1997.3794084376191) / 1200)
        assert abs(float(hz.median()) / f0 - 1) < 0.03


def test_random_controls_build_without_weights() -> None:
    for name in ("whisper-tiny-en", "crepe-tiny"):
        a = Extractor(name, pretrained=False, seed=1, cache=False, show_progress=False).extract([tone(440)])
        b = Extractor(name, pretrained=False, seed=2, cache=False, show_progress=False).extract([tone(440)])
        assert a.shape == (1, get_config(name).feature_dim) and not np.allclose(a, b)


def test_fit_predict_save_load_on_tone_folder(tmp_path: Path) -> None:
    need("crepe-tiny")
    from typer.testing import CliRunner

    from transferkit.cli import app
    from transferkit.estimators import load_model

    root = tone_folder(tmp_path / "clips", {"low": 220.0, "mid": 440.0, "high": 880.0}, n=8)
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["fit", str(root), "--backbone", "crepe-tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    import json

    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["accuracy"] >= 0.9
    files = sorted(str(p) for p in root.rglob("*.wav"))
    model = load_model(out)
    pred = model.predict(files)
    assert (pred == np.array([Path(f).parent.name for f in files])).mean() >= 0.9
    again = load_model(out)
    np.testing.assert_array_equal(again.predict_proba(files), model.predict_proba(files))
    bad = CliRunner().invoke(app, ["predict", str(out), str(tmp_path / "clips.txt")])
    assert bad.exit_code == 2
    # the whole model (CREPE + head) as one ONNX graph, run by its own session on the backbone's inputs
    exported = CliRunner().invoke(app, ["export", str(out), "--onnx", str(tmp_path / "model.onnx")])
    assert exported.exit_code == 0, exported.output
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = model.strategy_.extractor().backbone.prepare([tone(220.0, seconds=1.0), tone(880.0, seconds=2.0)])
    probs = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]
    want = model.predict_proba([tone(220.0, seconds=1.0), tone(880.0, seconds=2.0)])
    np.testing.assert_allclose(probs, want, atol=1e-4)


@pytest.mark.slow
def test_whisper_tells_espeak_words_apart_for_voices_it_never_heard(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from sklearn.linear_model import LogisticRegression

    from transferkit.data.audio import read_audio

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    need("whisper-tiny-en")
    words, voices = ["yes", "no", "stop"], ["en+m1", "en+f2", "en-us+m3", "en-gb-scotland+f1", "en+m4", "en-us+f3"]
    waves, labels, voice = [], [], []
    for v, name in enumerate(voices):
        for word in words:
            out = tmp_path / f"{v}_{word}.wav"
            subprocess.run(["espeak-ng", "-v", name, "-w", str(out), word], check=True, capture_output=True)
            waves.append(read_audio(out))  # espeak-ng writes 22,050 Hz: resampled to 16 kHz
            labels.append(word)
            voice.append(v)
    config = get_config("whisper-tiny-en")
    from dataclasses import replace

    clip = replace(config, extra={**config.extra, "clip_length": True})
    F = Extractor(clip, cache=False, show_progress=False).extract(waves)
    y, voice = np.asarray(labels), np.asarray(voice)
    train, test = voice < 4, voice >= 4  # two voices held out
    head = LogisticRegression(max_iter=2000).fit(F[train], y[train])
    assert (head.predict(F[test]) == y[test]).mean() >= 5 / 6
