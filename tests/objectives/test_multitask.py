"""Multi-task learning: masked labels, the weightings (fixed, uncertainty, PCGrad), the reduction to plain
fine-tuning with one task, save/load/export, the single-task comparison and the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import make_images
from transferkit import MultiTaskClassifier, TransferClassifier
from transferkit.estimators import load_model, single_task_comparison
from transferkit.exceptions import DataError
from transferkit.objectives import MultiTask
from transferkit.objectives.multitask_torch import pcgrad_step


def _objective(y: np.ndarray, **kw) -> tuple[MultiTask, np.ndarray]:
    objective = MultiTask(**kw)
    return objective, objective.fit_encode(y)


def _tasks(labels: np.ndarray, missing: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Three tasks of the synthetic images: the class, whether it is class 0, and the class again named
    differently (some of it missing)."""
    rng = np.random.default_rng(seed)
    shape = np.where(labels == 0, "h", np.where(labels == 1, "v", "blob")).astype(object)
    first = np.where(labels == 0, "yes", "no").astype(object)
    other = np.asarray([f"c{v}" for v in labels], dtype=object)
    other[rng.random(len(labels)) < missing] = None
    return {"shape": shape, "first": first, "other": other}


def test_masked_labels_contribute_no_gradient() -> None:
    objective, Y = _objective({"a": ["x", "y", "x", "y"], "b": ["p", None, "q", None]})
    head = objective.torch_head(3)
    z = torch.randn(4, objective.n_outputs, requires_grad=True)
    loss, logs = objective.loss(head, z, torch.as_tensor(Y))
    loss.backward()
    b = slice(2, 4)  # task b's logits
    assert torch.all(z.grad[[1, 3], b] == 0)  # the rows missing b's label: no gradient through b's outputs
    assert torch.all(z.grad[[0, 2], b] != 0)
    # a batch in which no row has task b's label: a finite loss and b's logits untouched
    z2 = torch.randn(2, objective.n_outputs, requires_grad=True)
    loss2, _ = objective.loss(head, z2, torch.as_tensor(np.array([[0, -1], [1, -1]])))
    loss2.backward()
    assert torch.isfinite(loss2) and torch.all(z2.grad[:, b] == 0)


def test_uncertainty_weighting_gives_the_noisier_task_the_lower_weight() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    clean = np.where(X[:, 0] > 0, "pos", "neg")
    noisy = np.where(X[:, 1] > 0, "pos", "neg")
    flip = rng.random(400) < 0.35
    noisy[flip] = np.where(noisy[flip] == "pos", "neg", "pos")
    objective, Y = _objective({"clean": clean, "noisy": noisy}, weighting="uncertainty")
    torch.manual_seed(0)
    head = objective.torch_head(4)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        loss, logs = objective.loss(head, head(torch.as_tensor(X)), torch.as_tensor(Y))
        loss.backward()
        opt.step()
    assert logs["w_noisy"] < 0.8 * logs["w_clean"]
    assert logs["loss_noisy"] > logs["loss_clean"]


def test_pcgrad_update_never_opposes_a_task() -> None:
    """Two tasks that pull the shared layer in opposite directions: the plain sum's gradient opposes one of
    them; PCGrad's has a non-negative inner product with both (Yu et al. 2020, two-task case)."""
    torch.manual_seed(0)
    X = torch.randn(64, 5)
    a = (X[:, 0] > 0).long()
    objective, Y = _objective({"a": a.numpy().astype(str), "b": (1 - a).numpy().astype(str)}, weighting="pcgrad")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Linear(5, 1)  # one shared unit: the tasks must fight over it
            self.standardize = torch.nn.Identity()
            self.dropout = torch.nn.Identity()
            self.head = objective.torch_head(1)
            with torch.no_grad():  # both heads read the shared unit the same way round
                self.head.weight.copy_(torch.tensor([[0.0], [1.0], [0.0], [1.0]]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x))

    net = Net()
    targets = torch.as_tensor(Y)
    shared = list(net.features.parameters())
    task_grads = []
    for t in range(2):
        net.zero_grad()
        losses = objective.task_losses(net(X), targets)
        losses[t].backward()
        task_grads.append(torch.cat([p.grad.reshape(-1) for p in shared]).clone())
    plain = task_grads[0] + task_grads[1]
    assert min(float(plain @ g) for g in task_grads) < 0 or float(task_grads[0] @ task_grads[1]) < 0
    net.zero_grad()
    loss, logs = pcgrad_step(objective, net, (X,), targets, 0.0)
    loss.backward()
    combined = torch.cat([p.grad.reshape(-1) for p in shared])
    assert float(task_grads[0] @ task_grads[1]) < 0 and logs["conflicts"] == 1.0
    for g in task_grads:
        assert float(combined @ g) >= -1e-6
    assert not torch.allclose(combined, plain)


def test_one_task_reduces_to_plain_fine_tuning(tiny_backbone: str) -> None:
    X, y = make_images(12)
    params = dict(epochs=2, head_epochs=2, unfreeze="all", random_state=3, fine_tune_params={"refit_head": False})
    multi = MultiTaskClassifier(tiny_backbone, **params).fit(X, {"only": y.astype(str)})
    plain = TransferClassifier(tiny_backbone, strategy="fine-tune", **params).fit(X, y.astype(str))
    a, b = multi.network_.model.state_dict(), plain.network_.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(multi.head_.weights[0], plain.head_.weights[0])
    np.testing.assert_array_equal(multi.predict(X)[:, 0], plain.predict(X))


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "pcgrad"])
def test_multi_task_learns_saves_loads_and_exports(tiny_backbone: str, tmp_path: Path, weighting: str) -> None:
    import onnxruntime as ort

    X, y = make_images(16)
    Xt, yt = make_images(8, seed=5)
    model = MultiTaskClassifier(tiny_backbone, task_weighting=weighting, epochs=2, head_epochs=4,
                                random_state=0).fit(X, _tasks(y, missing=0.3))
    pred = model.predict(Xt)
    assert pred.shape == (len(Xt), 3) and model.tasks_ == ["shape", "first", "other"]
    assert model.score(Xt, _tasks(yt)) > 0.7  # random features separate stripes and blobs
    weights = [e["train_w_other"] for e in model.history_["epochs"]]
    assert len(weights) == len(model.history_["epochs"])  # the weights in force, logged every epoch
    if weighting == "uncertainty":
        assert len(set(np.round(weights, 6))) > 1
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(Xt), pred)
    probs = loaded.predict_proba(Xt)
    assert [p.shape[1] for p in probs] == [3, 2, 3] and np.allclose([p.sum(1) for p in probs], 1.0)
    from transferkit.export import export_onnx

    export_onnx(loaded, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    from transferkit.export import probe_inputs

    _, feeds = probe_inputs(loaded.strategy_.extractor().backbone, 4)
    got = session.run(None, {i.name: np.asarray(feeds[i.name]) for i in session.get_inputs()})[0]
    assert got.shape[1] == 8 and np.allclose(got[:, :3].sum(1), 1.0, atol=1e-5) and np.allclose(got[:, 3:5].sum(1), 1.0, atol=1e-5)


def test_single_task_comparison_reports_each_task(tiny_backbone: str) -> None:
    X, y = make_images(12)
    Xt, yt = make_images(6, seed=7)
    model = MultiTaskClassifier(tiny_backbone, epochs=1, head_epochs=2).fit(X, _tasks(y, missing=0.2))
    out = single_task_comparison(model, X, _tasks(y, missing=0.2), Xt, _tasks(yt))
    assert set(out) == {"shape", "first", "other"}
    for row in out.values():
        assert row["sharing"] in ("helped", "hurt", "no significant difference")
        assert row["ci_low"] <= row["gain"] <= row["ci_high"] and row["n_test"] == len(Xt)


def test_target_errors() -> None:
    with pytest.raises(DataError, match="task 'b' has one value \\('z'\\)"):
        MultiTask().fit_encode({"a": ["x", "y"], "b": ["z", "z"]})
    with pytest.raises(DataError, match="task 'b' has no label in any row"):
        MultiTask().fit_encode({"a": ["x", "y"], "b": [None, ""]})
    with pytest.raises(DataError, match="task 'colour' is not a column of the targets \\(did you mean 'color'\\?\\)"):
        MultiTask(tasks=["colour"]).fit_encode({"color": ["x", "y"]})
    objective, _ = _objective({"a": ["x", "y"]})
    with pytest.raises(DataError, match="'w' are not classes"):
        objective.encode({"a": ["w", "x"]})


def _write_csv(folder: Path, X: np.ndarray, tasks: dict[str, np.ndarray]) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "items.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", *tasks])
        for i, img in enumerate(X):
            Image.fromarray(img).save(folder / f"{i}.png")
            w.writerow([f"{i}.png", *[("" if tasks[t][i] is None else tasks[t][i]) for t in tasks]])
    return folder / "items.csv"


def test_cli_fit_evaluate_predict(tiny_backbone: str, tmp_path: Path) -> None:
    import json

    from tests.cli.test_commands import run

    X, y = make_images(10)
    data = _write_csv(tmp_path / "data", X, _tasks(y, missing=0.2))
    out = tmp_path / "model"
    code, _, err = run("fit", data, "--backbone", tiny_backbone, "--tasks", "shape,other", "--epochs", "1",
                       "--head-epochs", "2", "--out", out, "--no-progress", "--no-report")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["strategy"] == "multi-task" and set(results["metrics"]["tasks"]) == {"shape", "other"}
    assert set(results["single_task"]) == {"shape", "other"} and set(results["verdict"]["tasks"]) == {"shape", "other"}
    code, stdout, err = run("evaluate", out, data, "--no-progress")
    assert code == 0, err
    assert set(json.loads(stdout)["tasks"]) == {"shape", "other"}
    code, stdout, err = run("predict", out, data, "--no-progress")
    assert code == 0 and stdout.splitlines()[0] == "item,shape,other"
    code, _, err = run("fit", data, "--backbone", tiny_backbone, "--tasks", "shape,othr", "--out", tmp_path / "x")
    assert code == 2 and "no task column 'othr' (did you mean 'other'?)" in err
    code, _, err = run("fit", data, "--backbone", tiny_backbone, "--strategy", "multi-task", "--out", tmp_path / "x")
    assert code == 2 and "needs --tasks" in err


def test_multi_task_classifier_follows_the_scikit_learn_contract(tiny_backbone: str) -> None:
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    X, y = make_images(10)
    table = np.stack([_tasks(y)[t] for t in ("shape", "first")], axis=1)  # a 2-D array: tasks task0, task1
    est = MultiTaskClassifier(tiny_backbone, epochs=1, head_epochs=2, unfreeze="none")
    assert clone(est).get_params() == est.get_params()
    scores = cross_val_score(est, X, table, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.6
