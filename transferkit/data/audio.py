"""Reading sound files: decode (libsndfile through ``soundfile``), mix down to mono, resample (``soxr``).

Every audio backbone in the registry works at 16 kHz, so clips are decoded once to 16 kHz mono float32
whatever their own rate and channel count. A file that cannot be used — missing, unreadable, empty,
digitally silent, or longer than :data:`MAX_SECONDS` — raises :class:`AudioReadError` naming the file and
the fix, the same rule as broken images (the run stops at the first one).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..exceptions import AudioReadError, ConfigError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au")
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
