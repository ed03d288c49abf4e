"""Audio items: real decoding of generated WAV/FLAC/OGG files, resampling, bad files, datasets, the MFCC
baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from transferkit.data import audio  # noqa: E402
from transferkit.data.audio import AudioArrays, AudioPaths  # noqa: E402
from transferkit.data.datasets import list_images, load_csv, load_dataset  # noqa: E402
from transferkit.data.items import as_items  # noqa: E402
from transferkit.exceptions import AudioReadError  # noqa: E402


def tone(freq: float, seconds: float = 0.5, rate: int = 16000, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    return (0.4 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28)) + noise * rng.standard_normal(t.size)).astype(np.float32)


def peak_hz(wave: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[np.argmax(spectrum)])


def tone_folder(root: Path, freqs: dict[str, float], n: int = 8, ext: str = "wav", rate: int = 22050) -> Path:
    for label, f in freqs.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            sf.write(root / label / f"{i}.{ext}", tone(f * (1 + 0.01 * (i - n / 2)), rate=rate, seed=i), rate)
    return root


@pytest.mark.parametrize("ext,rate,subtype", [("wav", 44100, "PCM_16"), ("flac", 22050, "PCM_24"),
                                              ("ogg", 48000, "VORBIS"), ("wav", 8000, "FLOAT")])
def test_decode_resample_keeps_pitch_and_length(tmp_path: Path, ext: str, rate: int, subtype: str) -> None:
    wave = tone(440.0, seconds=1.0, rate=rate, noise=0.0)
    stereo = np.stack([wave, 0.5 * wave], axis=1)
    path = tmp_path / f"a.{ext}"
    sf.write(path, stereo, rate, subtype=subtype)
    out = audio.read_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 1
    assert abs(peak_hz(out) - 440.0) <= 1.0  # a 440 Hz tone stays at 440 Hz
    # mono mix-down is the channel mean: amplitude 0.75 of the left channel's 0.4
    assert np.max(np.abs(out[1000:-1000])) == pytest.approx(0.3, abs=0.02)


def test_resample_rejects_aliasing() -> None:
    # a 7 kHz tone at 44.1 kHz → 16 kHz is below Nyquist (8 kHz) and must survive; 9 kHz must be filtered out
    t = np.arange(44100) / 44100
    kept = audio.resample(np.sin(2 * np.pi * 7000 * t), 44100)
    gone = audio.resample(np.sin(2 * np.pi * 9000 * t), 44100)
    assert abs(peak_hz(kept) - 7000) <= 1.0
    assert np.sqrt(np.mean(gone[500:-500] ** 2)) < 0.01 * np.sqrt(np.mean(kept[500:-500] ** 2))


def test_bad_files_give_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 10)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(8000, np.float32), 16000)
    long = tmp_path / "long.wav"
    sf.write(long, tone(300, seconds=3.0), 16000)
    cases = [(tmp_path / "missing.wav", "does not exist"), (garbage, "cannot decode"), (empty, "empty"),
             (silent, "silent")]
    for path, words in cases:
        with pytest.raises(AudioReadError, match=words) as info:
            audio.read_audio(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setattr(audio, "MAX_SECONDS", 2.0)
    with pytest.raises(AudioReadError, match="minutes long, over the"):
        audio.read_audio(long)
    with pytest.raises(AudioReadError, match="clip 0 of the array is empty"):
        AudioArrays([np.zeros(0, np.float32)]).load(0)


def test_items_and_cache_identity(tmp_path: Path) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.flac"
    sf.write(a, tone(300), 16000)
    sf.write(b, tone(300), 16000)
    items = as_items([str(a), str(b)])
    assert isinstance(items, AudioPaths) and items.modality == "audio"
    np.testing.assert_allclose(items.load(0), items.load(1), atol=1e-4)  # same samples, two containers
    arrays = as_items([tone(300), tone(310)], "audio")
    assert isinstance(arrays, AudioArrays) and arrays.content_hash(0) != arrays.content_hash(1)
    slow = AudioArrays([tone(300, rate=8000)], sample_rate=8000)
    assert len(slow.load(0)) == 8000  # 0.5 s at 8 kHz → 16 kHz
    assert slow.content_hash(0) != AudioArrays([tone(300, rate=8000)]).content_hash(0)  # the rate is in the key


def test_folder_csv_and_prediction_listing(tmp_path: Path) -> None:
    root = tone_folder(tmp_path / "clips", {"low": 220.0, "high": 880.0}, n=3, ext="flac")
    ds = load_dataset(root)
    assert ds.modality == "audio" and len(ds) == 6 and set(ds.y) == {"low", "high"}
    rel = [str(Path(p).relative_to(tmp_path)) for p in ds.X]
    (tmp_path / "clips.csv").write_text("path,label\n" + "".join(f"{p},{y}\n" for p, y in zip(rel, ds.y, strict=True)))
    csv_ds = load_csv(tmp_path / "clips.csv")
    assert csv_ds.modality == "audio" and csv_ds.X == ds.X
    assert list_images(root, "audio") == sorted(ds.X)


def test_mfcc_baseline_learns_pitch(tmp_path: Path) -> None:
    from transferkit.evaluation.baselines import MfccClassifier, make_baseline

    freqs = {"a": 200.0, "b": 400.0, "c": 1200.0}
    X = [tone(f * (1 + 0.02 * (i % 5 - 2)), seed=i) for f in freqs.values() for i in range(12)]
    y = np.repeat(list(freqs), 12)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:24], order[24:]
    model = make_baseline("audio").fit([X[i] for i in train], y[train])
    assert isinstance(model, MfccClassifier) and "MFCC" in model.description_
    assert (model.predict([X[i] for i in test]) == y[test]).mean() >= 0.9


def test_audio_augmentation_is_seeded_keeps_length_and_bounds_gain_and_noise() -> None:
    import torch

    from transferkit.data.augment import make_audio_augment
    from transferkit.exceptions import ConfigError

    assert make_audio_augment("none") is None
    with pytest.raises(ConfigError, match="augment='loud' is not allowed"):
        make_audio_augment("loud")
    wave = tone(440.0, seconds=1.0, noise=0.0)
    augment = make_audio_augment("light")
    torch.manual_seed(0)
    a = augment(wave)
    torch.manual_seed(0)
    assert np.array_equal(a, augment(wave))  # the trainer's seed fixes it
    outs = [augment(wave) for _ in range(20)]
    assert all(o.shape == wave.shape and o.dtype == np.float32 for o in outs)
    assert len({o.tobytes() for o in outs}) == 20  # a new draw every time
    ratio = np.array([np.mean(o**2) / np.mean(wave**2) for o in outs])
    assert ratio.min() > 10 ** (-6.5 / 10) * 0.85 and ratio.max() < 10 ** (6.5 / 10) * 1.05  # ±6 dB gain
    assert ratio.max() / ratio.min() > 1.5  # and the gain does vary
    assert all(abs(peak_hz(o) - 440.0) < 2.0 for o in outs)  # pitch kept: only gain, shift and noise


def test_audio_augmentation_of_a_clip_shorter_than_the_shift() -> None:
    # a drum one-shot of 910 samples (57 ms) against a shift of up to 0.2 s: it crashed the fine-tuning arm of
    # bench/audio.py (broadcast of 910 samples into 0); now the shift keeps at least half of the clip
    import torch

    from transferkit.data.augment import make_audio_augment

    wave = tone(440.0, seconds=910 / 16000, noise=0.0)
    augment = make_audio_augment("strong")
    torch.manual_seed(0)
    outs = [augment(wave) for _ in range(50)]
    assert all(o.shape == wave.shape and np.isfinite(o).all() for o in outs)
    assert all(np.count_nonzero(np.abs(o) > 1e-6) >= len(wave) // 2 for o in outs)
