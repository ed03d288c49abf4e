"""The report's misclassified-clips section: one spectrogram per wrong clip (capped), named by file and
classes, escaped, absent when every clip is right; and `fit` on an audio folder puts it in report.html."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from tests.data.test_audio import tone, tone_folder  # noqa: E402
from transferkit.evaluation.audio_report import MAX_CLIPS, N_MELS, audio_section, log_mel  # noqa: E402
from transferkit.evaluation.page import page_html  # noqa: E402


def test_log_mel_puts_a_tone_in_the_right_band_and_frames() -> None:
    low, high = log_mel(tone(300.0, seconds=1.0, noise=0.0)), log_mel(tone(3000.0, seconds=1.0, noise=0.0))
    assert low.shape == (N_MELS, 101) and high.shape == low.shape  # 10-ms hop
    assert int(np.argmax(low.mean(1))) < int(np.argmax(high.mean(1)))  # the higher tone sits in a higher band
    assert log_mel(tone(300.0, seconds=9.0)).shape[1] == 401  # only the first 4 s are drawn


def test_section_shows_each_wrong_clip_up_to_the_cap_and_escapes_names() -> None:
    waves = [tone(200.0 + 50 * i, seconds=0.3) for i in range(12)]
    true = ["a"] * 12
    assert audio_section(waves, true, true) is None  # nothing wrong, no section
    pred = ["b"] * 11 + ["a"]
    names = [f"<script>{i}.wav" for i in range(12)]
    section = audio_section(waves, true, pred, names=names, display={"a": "alpha", "b": "beta"})
    assert section is not None and section.id == "misclassified-clips"
    assert section.intro == f"11 of 12 test clips were misclassified; the first {MAX_CLIPS} are shown."
    fig = section.context["figures"][0]
    assert fig.error is None and base64.b64decode(fig.src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    html = page_html(title="t", sections=[section])
    assert "Misclassified clips" in html and section.intro in html and "<script>" not in html


def test_the_workflow_adds_the_section_for_audio_classification_only(tmp_path: Path) -> None:
    from transferkit.data.datasets import load_dataset
    from transferkit.objectives import Classification, Regression
    from transferkit.workflow import audio_sections

    test = load_dataset(str(tone_folder(tmp_path / "clips", {"low": 220.0, "high": 880.0}, n=3)))
    assert test.modality == "audio"
    wrong = np.where(test.y == "low", "high", "low")
    (section,) = audio_sections(test, wrong, Classification())
    assert section.intro == "6 of 6 test clips were misclassified."
    assert audio_sections(test, test.y, Classification()) == []
    assert audio_sections(test, wrong, Regression()) == []
