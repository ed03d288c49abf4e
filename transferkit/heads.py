"""Light classification heads trained on frozen features, from scikit-learn.

``fit_head`` trains a head and returns it in two forms: the fitted scikit-learn estimator (for inspection)
and a :class:`HeadArrays` — standardisation followed by dense layers ending in class logits — which is what
predictions use, what is saved (safetensors, no pickle) and what is exported to ONNX. Both give the same
predictions; tests check it.

Heads:

- ``logreg`` (default): standardise + multinomial logistic regression; ``C`` chosen by stratified
  cross-validation on log-loss when not given.
- ``svm``: standardise + linear SVM (``LinearSVC``); ``C`` chosen by cross-validated accuracy. No
  probabilities.
- ``mlp``: standardise + one hidden ReLU layer (``MLPClassifier``; early stopping from 500 items, below that
  trained to convergence); the L2 penalty ``alpha`` chosen by cross-validation.

Before standardising, every head applies a *signed power normalisation* ``sign(x) |x|^power`` (Perronnin
et al. 2010; the signed square root of bilinear CNNs, Lin et al. 2015). ``power="auto"`` (the default) is 0.5
when every training feature is non-negative — average-pooled post-ReLU activations, such as the last layer of
a CNN, whose heavy right tail a square root tames — and 1 (no change) otherwise (linear-bottleneck blocks,
text encoders, word vectors). Measured on development splits drawn from the training sets only
(docs/benchmarks.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._registry import Registry
from .exceptions import ConfigError

HEAD_KINDS = ("logreg", "svm", "mlp")
MLP_EARLY_STOPPING_MIN = 500  #: fewer training items: the MLP head trains to convergence (alpha regularises)
HEADS: Registry[str] = Registry("head")
for _k in HEAD_KINDS:
    HEADS.register(_k, _k)

_PARAMS = {
    "logreg": {"C", "max_iter", "Cs", "cv", "power"},
    "svm": {"C", "max_iter", "Cs", "cv", "power"},
    "mlp": {"alpha", "hidden", "max_iter", "alphas", "cv", "power"},
}


def signed_power(X: np.ndarray, power: float) -> np.ndarray:
    """``sign(X) * |X| ** power`` (the identity for ``power == 1``)."""
    X = np.asarray(X, dtype=np.float64)
    return X if power == 1.0 else np.sign(X) * np.abs(X) ** power


def auto_power(X: np.ndarray) -> float:
    """0.5 for non-negative features (pooled post-ReLU activations), else 1."""
    return 0.5 if X.size and float(np.min(X)) >= 0.0 else 1.0


def prepare_features(features: np.ndarray, power_spec: Any = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """What every head trains on: ``(Z, mean, scale, power)`` with ``Z = (signed_power(X, power) - mean) /
    scale`` (``power_spec``: ``"auto"`` or a number; a constant feature keeps scale 1)."""
    X = np.asarray(features, dtype=np.float64)
    if not np.isfinite(X).all():
        raise ConfigError("features contain NaN or infinity; check the inputs (an empty or corrupt item?)")
    power = auto_power(X) if power_spec == "auto" else float(power_spec)
    X = signed_power(X, power)
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return (X - scaler.mean_) / scale, scaler.mean_, scale, power


@dataclass
class HeadArrays:
    """Inference form of a fitted head: ``logits = dense_layers((signed_power(X, power) - mean) / scale)``.

    Hidden layers use ``activation``; the output layer gives one logit per class. ``probabilistic`` heads
    turn logits into probabilities with ``output``: ``"softmax"`` over all outputs (binary heads are stored
    as logits ``[0, z]`` so the softmax equals the logistic function of the original model), ``"sigmoid"``
    per output (multi-label), or ``"segments"``: a softmax over each run of ``segments`` outputs (one per task
    of a multi-task head). Regression heads are not probabilistic: their outputs are the predicted values.
    """

    kind: str
    mean: np.ndarray
    scale: np.ndarray
    weights: list[np.ndarray]  # each (out, in)
    biases: list[np.ndarray]
    activation: str = "relu"
    probabilistic: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    power: float = 1.0
    output: str = "softmax"
    segments: list[int] | None = None

    @property
    def n_classes(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def logits(self, X: np.ndarray) -> np.ndarray:
        h = (signed_power(X, self.power) - self.mean) / self.scale
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ W.T + b
            if i < len(self.weights) - 1:
                h = _ACTIVATIONS[self.activation](h)
        return h

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(X), axis=1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not self.probabilistic:
            raise AttributeError(f"head {self.kind!r} gives no probabilities; use head='logreg' or 'mlp'")
        return self.probabilities(self.logits(X))

    def probabilities(self, z: np.ndarray) -> np.ndarray:
        """The head's probabilities of its logits ``z`` (see ``output``)."""
        if self.output == "sigmoid":
            return 1.0 / (1.0 + np.exp(-z))
        if self.output == "segments":
            bounds = np.cumsum([0, *(self.segments or [])])
            return np.concatenate([_softmax(z[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)], axis=1)
        return _softmax(z)

    # -- serialisation ---------------------------------------------------------------------------------
    def to_tensors(self, prefix: str = "head.") -> dict[str, np.ndarray]:
        out = {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale}
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"{prefix}layers.{i}.weight"] = W
            out[f"{prefix}layers.{i}.bias"] = b
        return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in out.items()}

    def meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "activation": self.activation,
            "probabilistic": self.probabilistic,
            "n_layers": len(self.weights),
            "params": self.params,
            "power": self.power,
            "output": self.output,
            "segments": self.segments,
        }

    @classmethod
    def from_tensors(cls, meta: dict[str, Any], tensors: dict[str, np.ndarray], prefix: str = "head.") -> HeadArrays:
        n = int(meta["n_layers"])
        return cls(
            kind=meta["kind"],
            mean=tensors[f"{prefix}mean"],
            scale=tensors[f"{prefix}scale"],
            weights=[tensors[f"{prefix}layers.{i}.weight"] for i in range(n)],
            biases=[tensors[f"{prefix}layers.{i}.bias"] for i in range(n)],
            activation=meta.get("activation", "relu"),
            probabilistic=bool(meta.get("probabilistic", True)),
            params=dict(meta.get("params", {})),
            power=float(meta.get("power", 1.0)),
            output=str(meta.get("output", "softmax")),
            segments=[int(n) for n in meta["segments"]] if meta.get("segments") else None,
        )

    def torch_module(self) -> Any:
        """An ``nn.Module`` computing probabilities (or scores for non-probabilistic heads), float32."""
        import torch
        from torch import nn

        class _Head(nn.Module):
            def __init__(self, arrays: HeadArrays) -> None:
                super().__init__()
                self.register_buffer("mean", torch.tensor(arrays.mean, dtype=torch.float32))
                self.register_buffer("inv_scale", torch.tensor(1.0 / arrays.scale, dtype=torch.float32))
                self.layers = nn.ModuleList()
                for W, b in zip(arrays.weights, arrays.biases, strict=True):
                    lin = nn.Linear(W.shape[1], W.shape[0])
                    lin.weight.data = torch.tensor(W, dtype=torch.float32)
                    lin.bias.data = torch.tensor(b, dtype=torch.float32)
                    self.layers.append(lin)
                self.activation = arrays.activation
                self.probabilistic = arrays.probabilistic
                self.power = float(arrays.power)
                self.output = arrays.output
                self.segments = list(arrays.segments or [])

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if self.power != 1.0:
                    x = torch.sign(x) * torch.abs(x).pow(self.power)
                h = (x - self.mean) * self.inv_scale
                for i, lin in enumerate(self.layers):
                    h = lin(h)
                    if i < len(self.layers) - 1:
                        h = torch.relu(h) if self.activation == "relu" else torch.tanh(h)
                if not self.probabilistic:
                    return h
                if self.output == "sigmoid":
                    return torch.sigmoid(h)
                if self.output == "segments":
                    return torch.cat([torch.softmax(part, dim=1) for part in torch.split(h, self.segments, dim=1)], 1)
                return torch.softmax(h, dim=1)

        return _Head(self)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_ACTIVATIONS = {
    "relu": lambda h: np.maximum(h, 0.0),
    "tanh": np.tanh,
}


def _cv_folds(y: np.ndarray, wanted: int, random_state: int | None) -> Any:
    """Stratified folds, as many as the smallest class allows (None when it allows fewer than two)."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y).min())
    k = min(wanted, smallest)
    if k < 2:
        return None
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)


def _binary_as_two_logits(W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1, D) weights of a binary model → (2, D) with logits [0, z]."""
    return np.vstack([np.zeros_like(W), W]), np.concatenate([np.zeros_like(b), b])


def check_head_params(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    kind = HEADS.canonical(kind)
    params = dict(params or {})
    unknown = set(params) - _PARAMS[kind]
    if unknown:
        from ._registry import did_you_mean

        bad = sorted(unknown)[0]
        raise ConfigError(
            f"head {kind!r} has no parameter {bad!r}{did_you_mean(bad, sorted(_PARAMS[kind]))}; "
            f"allowed: {', '.join(sorted(_PARAMS[kind]))}"
        )
    for name in ("C", "alpha"):
        if name in params and not (isinstance(params[name], (int, float)) and params[name] > 0):
            raise ConfigError(f"head parameter {name}={params[name]!r} must be a positive number")
    if "power" in params:
        p = params["power"]
        if not (p == "auto" or (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p <= 1)):
            raise ConfigError(f"head parameter power={p!r} must be 'auto' or a number in (0, 1] "
                              "(1 = no power normalisation, 0.5 = signed square root)")
    return params


def fit_head(
    kind: str,
    features: np.ndarray,
    y_index: np.ndarray,
    params: dict[str, Any] | None = None,
    *,
    random_state: int | None = 0,
    n_jobs: int | None = None,
) -> tuple[HeadArrays, Any]:
    """Train a head on ``features`` (N, D) and integer labels ``y_index`` in ``0..C-1``.

    Returns ``(arrays, estimator)``; ``arrays.params`` records the hyper-parameters used (the chosen ``C``
    or ``alpha`` when cross-validation picked it, and ``power``). The scikit-learn estimator is fitted on the
    standardised, power-normalised features.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    kind = HEADS.canonical(kind)
    params = check_head_params(kind, params)
    power_spec = params.pop("power", "auto")
    Z, mean, scale, power = prepare_features(features, power_spec)
    folds = _cv_folds(y_index, int(params.get("cv", 5)), random_state)
    # Multi-threaded OpenBLAS is several times *slower* than one thread on these small solves (measured:
    # 45 s vs 11 s for 5-fold CV of logistic regression on 2,000 x 1,280 features on 2 cores).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "logreg":
            est, W, b, chosen = _fit_logreg(Z, y_index, params, folds, random_state, n_jobs)
            arrays = HeadArrays(kind, mean, scale, [W], [b], params=chosen)
        elif kind == "svm":
            est, W, b, chosen = _fit_svm(Z, y_index, params, folds, random_state, n_jobs)
            arrays = HeadArrays(kind, mean, scale, [W], [b], probabilistic=False, params=chosen)
        else:
            est, Ws, bs, chosen = _fit_mlp(Z, y_index, params, folds, random_state, n_jobs)
            arrays = HeadArrays(kind, mean, scale, Ws, bs, activation="relu", params=chosen)
    arrays.power = power
    arrays.params["power"] = power
    if power_spec == "auto":
        arrays.params["power_selected_by"] = ("auto: features non-negative" if power != 1.0
                                              else "auto: features take negative values")
    return arrays, est


def _logreg_cv_compat() -> dict[str, Any]:
    """Keyword arguments that pin LogisticRegressionCV's behaviour across scikit-learn versions (1.8+
    warns about changing defaults of ``l1_ratios`` and ``use_legacy_attributes``)."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    sig = inspect.signature(LogisticRegressionCV)
    out: dict[str, Any] = {}
    if "use_legacy_attributes" in sig.parameters:
        out["use_legacy_attributes"] = False
    if "l1_ratios" in sig.parameters and "use_legacy_attributes" in sig.parameters:
        out["l1_ratios"] = (0.0,)
    return out


def _fit_logreg(Z, y, params, folds, random_state, n_jobs):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    max_iter = int(params.get("max_iter", 1000))
    if "C" in params or folds is None:
        C = float(params.get("C", 1.0))
        est = LogisticRegression(C=C, max_iter=max_iter, random_state=random_state).fit(Z, y)
        chosen = {"C": C, "selected_by": "user" if "C" in params else "default (too few items per class for CV)"}
    else:
        Cs = [float(c) for c in params.get("Cs", np.logspace(-4, 2, 7))]
        est = LogisticRegressionCV(
            Cs=Cs, cv=folds, scoring="neg_log_loss", max_iter=max_iter, random_state=random_state, n_jobs=n_jobs,
            **_logreg_cv_compat(),
        ).fit(Z, y)
        C = float(np.ravel(est.C_)[0])
        chosen = {"C": C, "selected_by": f"{folds.get_n_splits()}-fold CV on log-loss over {len(Cs)} values"}
    W, b = est.coef_, est.intercept_
    if W.shape[0] == 1:
        W, b = _binary_as_two_logits(W, b)
    return est, W, b, chosen


def _fit_svm(Z, y, params, folds, random_state, n_jobs):
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import LinearSVC

    max_iter = int(params.get("max_iter", 2000))
    base = LinearSVC(max_iter=max_iter, random_state=random_state)
    if "C" in params or folds is None:
        C = float(params.get("C", 0.01))
        est = base.set_params(C=C).fit(Z, y)
        chosen = {"C": C, "selected_by": "user" if "C" in params else "default (too few items per class for CV)"}
    else:
        Cs = [float(c) for c in params.get("Cs", np.logspace(-5, 0, 6))]
        search = GridSearchCV(base, {"C": Cs}, cv=folds, scoring="accuracy", n_jobs=n_jobs).fit(Z, y)
        est = search.best_estimator_
        C = float(search.best_params_["C"])
        chosen = {"C": C, "selected_by": f"{folds.get_n_splits()}-fold CV on accuracy over {len(Cs)} values"}
    W, b = est.coef_, est.intercept_
    if W.shape[0] == 1:
        W, b = _binary_as_two_logits(W, b)
    return est, W, b, chosen


def _fit_mlp(Z, y, params, folds, random_state, n_jobs):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier

    hidden = params.get("hidden", 256)
    hidden = tuple(hidden) if isinstance(hidden, (list, tuple)) else (int(hidden),)
    base = MLPClassifier(
        hidden_layer_sizes=hidden,
        max_iter=int(params.get("max_iter", 300)),
        # early stopping scores a 10 % validation split: below 500 items it saturates within a few epochs and
        # keeps nearly untrained weights (0.74 training accuracy on separable blobs). Small sets train to
        # convergence instead, at a larger step (1-3 batches an epoch), in about as many epochs
        early_stopping=len(y) >= MLP_EARLY_STOPPING_MIN,
        learning_rate_init=0.001 if len(y) >= MLP_EARLY_STOPPING_MIN else 0.01,
        n_iter_no_change=10,
        random_state=random_state,
    )
    if "alpha" in params or folds is None:
        alpha = float(params.get("alpha", 1e-2))
        est = base.set_params(alpha=alpha).fit(Z, y)
        chosen = {"alpha": alpha, "hidden": list(hidden),
                  "selected_by": "user" if "alpha" in params else "default (too few items per class for CV)"}
    else:
        alphas = [float(a) for a in params.get("alphas", [1e-3, 1e-1, 1.0, 10.0])]
        search = GridSearchCV(base, {"alpha": alphas}, cv=folds, scoring="neg_log_loss", n_jobs=n_jobs).fit(Z, y)
        est = search.best_estimator_
        alpha = float(search.best_params_["alpha"])
        chosen = {"alpha": alpha, "hidden": list(hidden),
                  "selected_by": f"{folds.get_n_splits()}-fold CV on log-loss over {len(alphas)} values"}
    Ws = [w.T.copy() for w in est.coefs_]
    bs = [b.copy() for b in est.intercepts_]
    if Ws[-1].shape[0] == 1:
        Ws[-1], bs[-1] = _binary_as_two_logits(Ws[-1], bs[-1])
    return est, Ws, bs, chosen
