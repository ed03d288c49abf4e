"""From-scratch baselines every fit is compared against, trained on the same split as the transfer model.

- images: :class:`RawPixelClassifier` — pixels (small, flattened) → standardise → logistic regression;
- text: :class:`TfidfClassifier` — TF-IDF of words and word pairs → logistic regression;
- audio: :class:`MfccClassifier` — MFCC statistics (mean, std of the coefficients and of their deltas) →
  standardise → logistic regression.

Both choose their regularisation by stratified cross-validation, as the transfer heads do, so the
comparison is between representations, not between tuning efforts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..data.items import as_items, native_square_size, resize_center_crop
from ..heads import fit_head


def raw_pixels(X: Any, size: int, grey: bool | None) -> tuple[np.ndarray, bool]:
    """``(N, size·size·C)`` pixels in [0, 1] of images ``X`` resized (shorter side + centre crop) to ``size``,
    and whether one grey channel was kept (``grey=None``: when every image is grey)."""
    items = as_items(X, "image")
    rows = []
    all_grey = True
    for i in range(len(items)):
        arr = resize_center_crop(items.load_sized(i, size), size)
        if grey is None and all_grey:
            all_grey = bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
        rows.append(arr)
    stack = np.stack(rows)
    use_grey = all_grey if grey is None else grey
    if use_grey:
        stack = stack[..., :1]
    return stack.reshape(len(stack), -1).astype(np.float32) / 255.0, use_grey


N_MFCC = 20


def mfcc_stats(X: Any, n_mfcc: int = N_MFCC) -> np.ndarray:
    """``(N, 4·n_mfcc)`` MFCC statistics of clips ``X`` (16 kHz): mean and std over frames of the MFCCs
    (25-ms Hann window, 10-ms hop, 40 mel bands from 20 Hz to 8 kHz, log, DCT-II) and of their deltas."""
    from scipy.fft import dct
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    from ..data.audio import SAMPLE_RATE

    items = as_items(X, "audio")
    mel = mel_filter_bank(num_frequency_bins=257, num_mel_filters=40, min_frequency=20.0,
                          max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney")
    window = window_function(400, "hann")
    rows = []
    for i in range(len(items)):
        wave = items.load(i).astype(np.float64)
        if len(wave) < 400:
            wave = np.pad(wave, (0, 400 - len(wave)))
        logmel = spectrogram(wave, window, frame_length=400, hop_length=160, fft_length=512, power=2.0,
                             mel_filters=mel, log_mel="log", mel_floor=1e-10)
        mfcc = dct(logmel, type=2, axis=0, norm="ortho")[:n_mfcc]  # (n_mfcc, frames)
        delta = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
        rows.append(np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]))
    return np.asarray(rows, dtype=np.float32)


class MfccClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression on MFCC statistics (:func:`mfcc_stats`), C chosen by cross-validation."""

    name = "MFCC logistic regression"

    def __init__(self, n_mfcc: int = N_MFCC, random_state: int | None = 0) -> None:
        self.n_mfcc = n_mfcc
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> MfccClassifier:
        F = mfcc_stats(X, self.n_mfcc)
        self.classes_, y_index = np.unique(np.asarray(y), return_inverse=True)
        self.head_, _ = fit_head("logreg", F, y_index, {"power": 1.0}, random_state=self.random_state)
        self.description_ = (f"logistic regression on MFCC statistics ({F.shape[1]} values: mean and std of "
                             f"{self.n_mfcc} MFCCs and of their deltas; C={self.head_.params['C']:g}, "
                             f"{self.head_.params['selected_by']})")
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.head_.predict_index(mfcc_stats(X, self.n_mfcc))]


def tfidf_vectorizer() -> Any:
    """The text baseline's representation: TF-IDF of words and word bigrams, sublinear tf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)


class RawPixelClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression on raw pixels.

    Images are resized (shorter side + centre crop) to ``size``×``size``; when every training image
    already has one square size of at most 64 pixels, that native size is used. If every training image is
    grey (R = G = B), one channel is kept.
    """

    name = "raw-pixel logistic regression"

    def __init__(self, size: int = 32, random_state: int | None = 0) -> None:
        self.size = size
        self.random_state = random_state

    def _pixels(self, X: Any, size: int, grey: bool | None) -> tuple[np.ndarray, bool]:
        return raw_pixels(X, size, grey)

    def fit(self, X: Any, y: Any) -> RawPixelClassifier:
        self.input_size_ = native_square_size(X) or self.size
        P, self.grey_ = self._pixels(X, self.input_size_, None)
        self.classes_, y_index = np.unique(np.asarray(y), return_inverse=True)
        # the plain pixel baseline: no power normalisation (pixels are non-negative, "auto" would apply it)
        self.head_, _ = fit_head("logreg", P, y_index, {"power": 1.0}, random_state=self.random_state)
        self.description_ = (
            f"logistic regression on {self.input_size_}×{self.input_size_} {'grey' if self.grey_ else 'RGB'} pixels "
            f"(C={self.head_.params['C']:g}, {self.head_.params['selected_by']})"
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        P, _ = self._pixels(X, self.input_size_, self.grey_)
        return self.classes_[self.head_.predict_index(P)]


class TfidfClassifier(ClassifierMixin, BaseEstimator):
    """TF-IDF (words and word bigrams, sublinear tf) + logistic regression, C chosen by CV on log-loss."""

    name = "TF-IDF logistic regression"

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> TfidfClassifier:
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        from ..heads import _cv_folds

        texts = list(as_items(X, "text").texts)  # type: ignore[attr-defined]
        self.classes_, y_index = np.unique(np.asarray(y), return_inverse=True)
        self.vectorizer_ = tfidf_vectorizer()
        V = self.vectorizer_.fit_transform(texts)
        folds = _cv_folds(y_index, 5, self.random_state)
        base = LogisticRegression(max_iter=2000, random_state=self.random_state)
        with threadpool_limits(limits=1, user_api="blas"):
            how = self._fit_model(base, V, y_index, folds)
        self.description_ = (
            f"TF-IDF of words and word pairs ({V.shape[1]} terms) + logistic regression "
            f"(C={self.model_.C:g}, {how})"
        )
        return self

    def _fit_model(self, base: Any, V: Any, y_index: np.ndarray, folds: Any) -> str:
        from sklearn.model_selection import GridSearchCV

        if folds is None:
            self.model_ = base.set_params(C=10.0).fit(V, y_index)
            how = "default C (too few items per class for CV)"
        else:
            search = GridSearchCV(base, {"C": [0.1, 1.0, 10.0, 100.0]}, cv=folds, scoring="neg_log_loss").fit(V, y_index)
            self.model_ = search.best_estimator_
            how = f"{folds.get_n_splits()}-fold CV on log-loss"
        return how

    def predict(self, X: Any) -> np.ndarray:
        texts = list(as_items(X, "text").texts)  # type: ignore[attr-defined]
        return self.classes_[self.model_.predict(self.vectorizer_.transform(texts))]


def make_baseline(modality: str, random_state: int | None = 0) -> Any:
    """The from-scratch baseline for a modality."""
    if modality == "audio":
        return MfccClassifier(random_state=random_state)
    if modality == "image":
        return RawPixelClassifier(random_state=random_state)
    if modality == "text":
        return TfidfClassifier(random_state=random_state)
    raise ValueError(f"no baseline for modality {modality!r}")
