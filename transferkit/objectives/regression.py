"""Regression: a number per item. Ridge or MLP heads on frozen features (regularisation by cross-validation),
a linear output trained on the standardised target when a network trains (the scale is folded back into the
head, so predictions and the ONNX graph give values in the target's own units), MAE / RMSE / R², and the
verdict on the mean absolute error against the from-scratch ridge regression, with a paired-bootstrap
interval."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..exceptions import ConfigError, DataError
from .base import Objective, register_objective

_PARAMS = {"ridge": {"alpha", "alphas", "power", "cv"}, "mlp": {"alpha", "alphas", "hidden", "max_iter", "power", "cv"}}
ALPHAS = tuple(float(a) for a in np.logspace(-3, 4, 15))


def as_numbers(y: Any, what: str = "regression target") -> np.ndarray:
    """``y`` as finite floats, or a one-line error naming the first value that is not a number."""
    arr = np.asarray(y, dtype=object).reshape(-1)
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise DataError(f"the {what} must be numbers, but item {i} is {v!r}; pick a numeric column "
                            "(or use a classifier for categories)") from None
        if not np.isfinite(out[i]):
            raise DataError(f"the {what} must be finite numbers, but item {i} is {v!r}; drop or fill that row")
    return out


@register_objective
class Regression(Objective):
    name = "regression"
    heads = ("ridge", "mlp")
    head_param_names = _PARAMS
    primary_metric = "mae"
    linear_model_name = "ridge regression"

    def __init__(self) -> None:
        self.mean, self.std = 0.0, 1.0

    # -- targets ---------------------------------------------------------------------------------------
    def fit_encode(self, y: Any) -> np.ndarray:
        Y = as_numbers(y)
        if len(Y) < 2:
            raise DataError(f"regression needs at least 2 items, got {len(Y)}")
        if np.ptp(Y) == 0:
            raise DataError(f"every regression target is {Y[0]:g}; there is nothing to learn")
        self.mean, self.std = float(Y.mean()), float(Y.std()) or 1.0
        return Y

    def encode(self, y: Any) -> np.ndarray:
        return as_numbers(y)

    @property
    def n_outputs(self) -> int:
        return 1

    def decode(self, head: Any, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64)[:, 0]

    def format_prediction(self, p: Any) -> str:
        return f"{float(p):.6g}"

    validation_measure = "R²"

    def validation_score(self, head: Any, z: np.ndarray, Y: np.ndarray) -> float:
        t = np.asarray(Y, dtype=np.float64)
        residual = float(np.sum((t - self.decode(head, z)) ** 2))
        return 1.0 - residual / max(float(np.sum((t - t.mean()) ** 2)), 1e-12)

    def make_head(self, kind: str, mean: np.ndarray, scale: np.ndarray, weights: list[np.ndarray],
                  biases: list[np.ndarray], params: dict[str, Any]) -> Any:
        from ..heads import HeadArrays

        return HeadArrays(kind, mean, scale, weights, biases, probabilistic=False, params=params, output="identity")

    # -- frozen features -------------------------------------------------------------------------------
    def check_head(self, kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
        params = super().check_head(kind, params)
        if "alpha" in params and not (isinstance(params["alpha"], (int, float)) and params["alpha"] > 0):
            raise ConfigError(f"head parameter alpha={params['alpha']!r} must be a positive number")
        return params

    def fit_head(self, features: np.ndarray, Y: np.ndarray, kind: str, params: dict[str, Any] | None, *,
                 random_state: int | None, n_jobs: int | None) -> tuple[Any, Any]:
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        from ..heads import prepare_features

        params = self.check_head(kind, params)
        Z, mean, scale, power = prepare_features(features, params.pop("power", "auto"))
        t = (np.asarray(Y, dtype=np.float64) - self.mean) / self.std
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            if kind == "ridge":
                est, Ws, bs, chosen = self._ridge(Z, t, params)
            else:
                est, Ws, bs, chosen = self._mlp(Z, t, params, random_state, n_jobs)
        Ws[-1], bs[-1] = Ws[-1] * self.std, bs[-1] * self.std + self.mean  # values in the target's units
        head = self.make_head(kind, mean, scale, Ws, bs, {**chosen, "power": power})
        head.power = power
        return head, est

    @staticmethod
    def _ridge(Z: np.ndarray, t: np.ndarray, params: dict[str, Any]) -> tuple[Any, list, list, dict]:
        from sklearn.linear_model import Ridge, RidgeCV

        if "alpha" in params:
            est = Ridge(alpha=float(params["alpha"])).fit(Z, t)
            chosen = {"alpha": float(params["alpha"]), "selected_by": "user"}
        else:
            alphas = [float(a) for a in params.get("alphas", ALPHAS)]
            est = RidgeCV(alphas=alphas).fit(Z, t)  # efficient leave-one-out over the alphas
            chosen = {"alpha": float(est.alpha_), "selected_by": f"leave-one-out CV over {len(alphas)} values"}
        return est, [np.atleast_2d(est.coef_).astype(np.float64)], [np.atleast_1d(est.intercept_).astype(np.float64)], chosen

    @staticmethod
    def _mlp(Z: np.ndarray, t: np.ndarray, params: dict[str, Any], random_state: int | None,
             n_jobs: int | None) -> tuple[Any, list, list, dict]:
        from sklearn.model_selection import GridSearchCV, KFold
        from sklearn.neural_network import MLPRegressor

        hidden = params.get("hidden", 256)
        hidden = tuple(hidden) if isinstance(hidden, (list, tuple)) else (int(hidden),)
        base = MLPRegressor(hidden_layer_sizes=hidden, max_iter=int(params.get("max_iter", 300)),
                            early_stopping=len(t) >= 50, n_iter_no_change=10, random_state=random_state)
        if "alpha" in params or len(t) < 10:
            alpha = float(params.get("alpha", 1e-2))
            est = base.set_params(alpha=alpha).fit(Z, t)
            chosen = {"alpha": alpha, "selected_by": "user" if "alpha" in params else "default (too few items for CV)"}
        else:
            alphas = [float(a) for a in params.get("alphas", [1e-3, 1e-1, 1.0, 10.0])]
            folds = KFold(n_splits=min(5, len(t) // 2), shuffle=True, random_state=random_state)
            search = GridSearchCV(base, {"alpha": alphas}, cv=folds, scoring="neg_mean_squared_error",
                                  n_jobs=n_jobs).fit(Z, t)
            est, alpha = search.best_estimator_, float(search.best_params_["alpha"])
            chosen = {"alpha": alpha, "selected_by": f"{folds.get_n_splits()}-fold CV on squared error over {len(alphas)} values"}
        chosen["hidden"] = list(hidden)
        return est, [w.T.copy() for w in est.coefs_], [b.copy() for b in est.intercepts_], chosen

    def fit_sparse(self, V: Any, Y: np.ndarray, random_state: int | None) -> tuple[Any, str]:
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=list(ALPHAS)).fit(V, np.asarray(Y, dtype=np.float64))
        return model, f"alpha={model.alpha_:g} by leave-one-out CV"

    def predict_sparse(self, model: Any, V: Any) -> np.ndarray:
        return np.asarray(model.predict(V), dtype=np.float64)

    # -- networks --------------------------------------------------------------------------------------
    def training_targets(self, Y: np.ndarray) -> np.ndarray:
        return ((np.asarray(Y, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def loss(self, head: Any, z: Any, targets: Any, *, label_smoothing: float = 0.0) -> tuple[Any, dict[str, float]]:
        import torch.nn.functional as F

        loss = F.mse_loss(z[:, 0], targets)
        return loss, {"loss": float(loss.detach()), "mae": float((z[:, 0] - targets).detach().abs().mean()) * self.std}

    def validation_split(self, Y: np.ndarray, fraction: float, seed: int,
                         min_per_group: int) -> tuple[np.ndarray, np.ndarray] | None:
        from ..training import stratified_split

        n = len(Y)
        if fraction <= 0 or n * fraction < min_per_group:
            return None
        bins = np.digitize(Y, np.quantile(Y, [0.2, 0.4, 0.6, 0.8]))  # spread the validation items over the range
        return stratified_split(bins, fraction, seed)

    def too_small_for_validation(self, Y: np.ndarray, fraction: float, min_per_group: int) -> str:
        return (f"{len(Y)} items would give {int(len(Y) * fraction)} validation items at validation_fraction="
                f"{fraction:g} (fewer than {min_per_group})")

    def head_from_module(self, head: Any, mean: np.ndarray, scale: np.ndarray, params: dict[str, Any]) -> Any:
        W = head.weight.detach().double().numpy() * self.std
        b = head.bias.detach().double().numpy() * self.std + self.mean
        return self.make_head("linear", mean, scale, [W], [b], params)

    # -- evaluation ------------------------------------------------------------------------------------
    def metrics(self, y_true: Any, y_pred: Any, names: list[str] | None = None) -> dict[str, Any]:
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        t, p = as_numbers(y_true), np.asarray(y_pred, dtype=np.float64)
        return {"mae": float(mean_absolute_error(t, p)), "rmse": float(np.sqrt(mean_squared_error(t, p))),
                "r2": float(r2_score(t, p)) if len(t) > 1 else float("nan"), "n": int(len(t)),
                "target_mean": float(t.mean()), "target_std": float(t.std())}

    def baseline(self, modality: str, random_state: int | None) -> Any:
        from ..evaluation.scratch import ScratchBaseline

        return ScratchBaseline(modality, self, random_state)

    def strongest(self, y_true: Any, predictions: list[Any]) -> int:
        t = as_numbers(y_true)
        return int(np.argmin([np.abs(t - np.asarray(p, dtype=np.float64)).mean() for p in predictions]))

    def verdict(self, y_true: Any, pred: Any, base_pred: Any, *, baseline_name: str, modality: str,
                seed: int) -> dict[str, Any]:
        from ..evaluation.verdict import NEGATIVE, POSITIVE, classify_gain, paired_bootstrap, verdict_record

        t = as_numbers(y_true)
        et, eb = np.abs(t - np.asarray(pred, dtype=np.float64)), np.abs(t - np.asarray(base_pred, dtype=np.float64))
        # gain = baseline MAE - transfer MAE: positive when transfer errs less
        gain, lo, hi = paired_bootstrap(-et, -eb, lambda sums, n: sums[:, 0] / n, seed=seed)
        mae_b = float(eb.mean())
        ci = f"95% CI {lo:+.4g} to {hi:+.4g}"
        verdict = classify_gain(lo, hi)
        if verdict == POSITIVE:
            text = (f"The pretrained model's mean absolute error is {gain:.4g} lower than the {baseline_name}'s "
                    f"({mae_b:.4g}; {ci}) on {len(t)} held-out items: transfer helps on this data.")
            steps = ["rank other backbones and layers with `transferkit rank`", "try fine-tuning (`--strategy fine-tune`)"]
        elif verdict == NEGATIVE:
            text = (f"The pretrained model's mean absolute error is {-gain:.4g} higher than the {baseline_name}'s "
                    f"({mae_b:.4g}; {ci}): this is negative transfer — the raw inputs predict this number better "
                    "than the pretrained features.")
            steps = ["try an intermediate layer (`--layer`)", "fine-tune the top blocks (`--strategy fine-tune`)",
                     "otherwise keep the from-scratch baseline: it is the better model here"]
        else:
            text = (f"The difference in mean absolute error from the {baseline_name} ({gain:+.4g}, {ci}) is within "
                    f"what chance on {len(t)} test items allows: there is no significant gain from transfer.")
            steps = ["collect more test items to narrow the interval", "try another layer or backbone (`transferkit rank`)"]
        return verdict_record(gain, lo, hi, metric="mae", n_test=len(t), text=text, steps=steps)

    def describe_targets(self, y: Any, display: Any = None) -> dict[str, Any]:
        t = as_numbers(y)
        return {"target": {"mean": float(t.mean()), "std": float(t.std()), "min": float(t.min()), "max": float(t.max())}}

    def map_labels(self, y: Any, display: Any = None) -> list[str]:
        """The item's quintile of the target (the map colours five bands)."""
        t = as_numbers(y)
        edges = np.quantile(t, [0.2, 0.4, 0.6, 0.8])
        bands = np.digitize(t, edges)
        bounds = [t.min(), *edges, t.max()]
        return [f"{bounds[b]:.3g}–{bounds[b + 1]:.3g}" for b in bands]

    #: test items the residual plot keeps (a seeded sample beyond that)
    MAX_RESIDUAL_POINTS = 2000

    def report_data(self, y_true: Any, pred: Any) -> dict[str, Any]:
        t = np.asarray(self.encode(y_true), dtype=np.float64).ravel()
        p = np.asarray(pred, dtype=np.float64).ravel()
        keep = np.arange(len(t))
        if len(t) > self.MAX_RESIDUAL_POINTS:
            keep = np.sort(np.random.default_rng(0).choice(len(t), self.MAX_RESIDUAL_POINTS, replace=False))
        return {"residuals": {"true": np.round(t[keep], 6).tolist(), "predicted": np.round(p[keep], 6).tolist()}}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"mae": metrics["mae"], "r2": metrics["r2"]}

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = float(state["mean"]), float(state["std"])
