"""The report's audio section: a small log-mel spectrogram of each misclassified test clip (at most
:data:`MAX_CLIPS`), titled with its file name, true class and predicted class, so a reader can hear with
their eyes what the model confused (silence, a clipped word, a second speaker)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .page import Section, figure
from .plot_style import new_figure, short, to_png

MAX_CLIPS = 8
#: 64 mel bands, 25-ms Hann window, 10-ms hop at 16 kHz; at most this many seconds are drawn
N_MELS, MAX_SECONDS = 64, 4.0


def log_mel(wave: np.ndarray, rate: int = 16000) -> np.ndarray:
    """``(N_MELS, frames)`` log10 mel power of the first :data:`MAX_SECONDS` of a 16 kHz clip."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    wave = np.asarray(wave, dtype=np.float64)[: int(MAX_SECONDS * rate)]
    if len(wave) < 400:
        wave = np.pad(wave, (0, 400 - len(wave)))
    mel = mel_filter_bank(num_frequency_bins=257, num_mel_filters=N_MELS, min_frequency=20.0, max_frequency=rate / 2,
                          sampling_rate=rate, norm="slaney", mel_scale="slaney")
    return spectrogram(wave, window_function(400, "hann"), frame_length=400, hop_length=160, fft_length=512,
                       power=2.0, mel_filters=mel, log_mel="log10", mel_floor=1e-10)


def misclassified(true: Sequence[Any], predicted: Sequence[Any], limit: int = MAX_CLIPS) -> list[int]:
    """Indices of the first ``limit`` test items whose prediction is not their label."""
    return [i for i, (t, p) in enumerate(zip(true, predicted, strict=True)) if t != p][:limit]


def spectrograms_png(waves: Sequence[np.ndarray], titles: Sequence[str]) -> bytes:
    cols = min(4, len(waves))
    rows = -(-len(waves) // cols)
    with new_figure(2.6 * cols, 2.1 * rows, constrained=True) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(waves):]:
            ax.set_axis_off()
        for ax, wave, title in zip(axes.flat, waves, titles, strict=False):
            spec = log_mel(wave)
            top = float(spec.max())
            ax.imshow(np.maximum(spec, top - 8.0), origin="lower", aspect="auto", cmap="magma",
                      extent=(0.0, spec.shape[1] / 100, 0, N_MELS))  # 80 dB of range, 10-ms frames
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("seconds", fontsize=8)
            ax.set_yticks([])
        return to_png(fig)


def audio_section(items: Any, true: Sequence[Any], predicted: Sequence[Any], names: Sequence[Any] | None = None,
                  display: dict[Any, str] | None = None) -> Section | None:
    """The misclassified-clips section for test ``items`` (an audio item source or anything
    :func:`~transferkit.data.items.as_items` takes), or ``None`` when every clip was right.

    ``names``: what to call each item (file names; default its position), ``display``: class → shown name."""
    from ..data.items import as_items

    wrong = misclassified(list(true), list(predicted))
    if not wrong:
        return None
    source = as_items(items, "audio")
    show = (lambda c: str(display.get(c, c))) if display else str  # noqa: E731
    titles = [f"{short(Path(str(names[i])).name if names is not None else f'item {i}', 28)}\n"
              f"{short(show(true[i]), 14)} → {short(show(predicted[i]), 14)}" for i in wrong]
    waves = [source.load(i) for i in wrong]
    fig = figure("plot-misclassified-clips", lambda: spectrograms_png(waves, titles),
                 "log-mel spectrograms of misclassified test clips",
                 "Log-mel spectrogram (64 bands, 20 Hz–8 kHz, the first 4 s; brighter is louder) of each misclassified "
                 "test clip, titled true class → predicted class.", layout="wide")
    n_wrong = sum(1 for t, p in zip(true, predicted, strict=True) if t != p)
    intro = f"{n_wrong} of {len(true)} test clips were misclassified" + (
        f"; the first {len(wrong)} are shown." if n_wrong > len(wrong) else ".")
    return Section("misclassified-clips", "Misclassified clips", template="plots.html.j2",
                   context={"figures": [fig]}, intro=intro)
