"""Reading sound files: decode (libsndfile through ``soundfile``), mix down to mono, resample (``soxr``).

Every audio backbone in the registry works at 16 kHz, so clips are decoded once to 16 kHz mono float32
whatever their own rate and channel count. A file that cannot be used — missing, unreadable, empty,
digitally silent, or longer than :data:`MAX_SECONDS` — raises :class:`AudioReadError` naming the file and
the fix, the same rule as broken images (the run stops at the first one).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import AudioReadError, ConfigError, DataError
from .items import AUDIO_EXTENSIONS, AUDIO_ITEMS, ItemSource, _digest

__all__ = ["AUDIO_EXTENSIONS", "AudioArrays", "AudioPaths", "audio_items", "read_audio", "resample"]
#: the rate every audio backbone takes
SAMPLE_RATE = 16000
#: the longest clip accepted (10 minutes): longer files are almost always recordings given by mistake
MAX_SECONDS = float(os.environ.get("TRANSFERKIT_MAX_AUDIO_SECONDS", 600))
#: the shortest clip accepted: 10 ms (one mel frame)
MIN_SECONDS = 0.01
#: the resampler's quality (part of the cache key)
RESAMPLER = "soxr-HQ"


def _needs(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"audio needs the {module!r} package ({exc}); install it with `pip install 'transferkit[audio]'` "
            "(on Debian also `apt-get install libsndfile1`)"
        ) from exc


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``wave`` (mono, float) from ``rate`` Hz to ``target`` Hz with soxr's high-quality resampler."""
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if int(rate) == int(target):
        return wave
    soxr = _needs("soxr")
    return np.asarray(soxr.resample(wave, int(rate), int(target), quality="HQ"), dtype=np.float32)


def to_mono(wave: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) → (frames,) by averaging the channels."""
    wave = np.asarray(wave, dtype=np.float32)
    return wave.mean(axis=1) if wave.ndim == 2 else wave


def _too_long(where: str, seconds: float) -> str:
    return (f"{where} is {seconds / 60:.1f} minutes long, over the {MAX_SECONDS / 60:.0f}-minute limit; cut it "
            "into clips (e.g. `sox in.wav out.wav trim 0 30 : newfile : restart`) or raise "
            "$TRANSFERKIT_MAX_AUDIO_SECONDS")


def check_clip(wave: np.ndarray, where: str, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Refuse clips a backbone cannot use (with one line naming ``where``); return ``wave`` as float32."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise AudioReadError(f"{where} has shape {wave.shape}; expected one mono channel (frames,)")
    seconds = wave.size / float(rate)
    if wave.size == 0:
        raise AudioReadError(f"{where} is empty (0 samples); remove it or record it again")
    if seconds < MIN_SECONDS:
        raise AudioReadError(f"{where} is {seconds * 1000:.1f} ms long; clips must last at least "
                             f"{MIN_SECONDS * 1000:.0f} ms")
    if seconds > MAX_SECONDS:
        raise AudioReadError(_too_long(where, seconds))
    if not np.isfinite(wave).all():
        raise AudioReadError(f"{where} contains NaN or infinite samples; re-encode it")
    if not np.any(wave):
        raise AudioReadError(f"{where} is silent (every sample is 0); remove it or label it as its own class "
                             "after adding noise")
    return wave


def read_audio(path: str | os.PathLike[str], rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file to mono float32 at ``rate`` Hz, raising :class:`AudioReadError` naming the file."""
    sf = _needs("soundfile")
    where = f"audio file {str(path)!r}"
    try:
        info = sf.info(str(path))  # the header: a multi-hour file is refused before it is decoded
        if info.samplerate > 0 and info.frames / info.samplerate > MAX_SECONDS:
            raise AudioReadError(_too_long(where, info.frames / info.samplerate))
        data, native = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError as exc:
        raise AudioReadError(f"{where} does not exist") from exc
    except AudioReadError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        detail = str(exc).replace(str(path), "").strip(" :'\"") or type(exc).__name__
        if not os.path.exists(path):
            raise AudioReadError(f"{where} does not exist") from exc
        raise AudioReadError(f"cannot decode {where} ({detail}); convert it to WAV or FLAC "
                             "(e.g. `sox in.xyz out.wav`) or remove it") from exc
    if data.shape[0] == 0:
        raise AudioReadError(f"{where} is empty (0 samples); remove it or record it again")
    return check_clip(resample(to_mono(data), native, rate), where, rate)


class AudioPaths(ItemSource):
    """Sound files, each loaded as a 16 kHz mono float32 waveform (:func:`~transferkit.data.audio.read_audio`)."""

    modality = "audio"

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> np.ndarray:
        return read_audio(self.paths[i])

    def content_hash(self, i: int) -> bytes:
        try:
            return _digest(b"audio-file:", self.paths[i].read_bytes())
        except FileNotFoundError as exc:
            raise AudioReadError(f"audio file {str(self.paths[i])!r} does not exist") from exc
        except OSError as exc:
            raise AudioReadError(f"cannot read audio file {str(self.paths[i])!r} ({exc.strerror or exc})") from exc

    def describe(self, i: int) -> str:
        return str(self.paths[i])


class AudioArrays(ItemSource):
    """Waveforms given as arrays ((frames,) or (frames, channels)) at ``sample_rate`` Hz."""

    modality = "audio"

    def __init__(self, waves: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> None:
        self.waves = list(waves)
        self.sample_rate = int(sample_rate)

    def __len__(self) -> int:
        return len(self.waves)

    def load(self, i: int) -> np.ndarray:
        where = f"audio clip {i} of the array"
        wave = np.asarray(self.waves[i])
        if wave.dtype.kind not in "fiu" or wave.ndim not in (1, 2):
            raise ConfigError(f"{where} has shape {wave.shape} and dtype {wave.dtype}; expected float samples "
                              "(frames,) or (frames, channels)")
        return check_clip(resample(to_mono(wave.astype(np.float32)), self.sample_rate), where)

    def content_hash(self, i: int) -> bytes:
        arr = np.ascontiguousarray(np.asarray(self.waves[i], dtype=np.float32))
        return _digest(b"audio-array:", str(self.sample_rate).encode(), str(arr.shape).encode(), arr.tobytes())

    def describe(self, i: int) -> str:
        return f"audio clip {i} of the array"


def audio_items(X: Any) -> ItemSource:
    """The item source of audio input: sound-file paths, or waveforms (1-D float arrays at 16 kHz)."""
    seq = list(X)
    if not seq:
        raise DataError("X is empty; pass at least one item per class")
    if all(isinstance(p, (str, os.PathLike)) for p in seq):
        return AudioPaths(seq)
    if all(isinstance(w, np.ndarray) for w in seq):
        return AudioArrays(seq)
    raise ConfigError("this backbone takes audio input; pass a list of sound-file paths or of 16 kHz waveforms "
                      "(1-D float arrays)")


AUDIO_ITEMS[:] = [audio_items]
