"""Two-stage fine-tuning on the tiny CNN (and a tiny random BERT for text): what is frozen stays
bit-identical, BatchNorm statistics do not move, the model learns, a killed run resumes exactly, and the
estimator contract (clone, GridSearchCV, save/load, ONNX) holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import make_images, make_texts, run_cli, run_onnx
from transferkit import TransferClassifier, load_model
from transferkit.backbones import load_backbone
from transferkit.exceptions import ConfigError
from transferkit.strategies.fine_tuning import FineTuneConfig, fine_tune, lr_find
from transferkit.strategies.fine_tuning.data import prepare_inputs
from transferkit.strategies.fine_tuning.model import ClassificationTask
from transferkit.strategies.fine_tuning.train import build_setup
from transferkit.strategies.network import state_sha256
from transferkit.training import Callback, Trainer, stratified_split

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: see tests/conftest.py


FAST = {"epochs": 4, "head_epochs": 4, "lr": 0.03}


def _ft(**kw: Any) -> FineTuneConfig:
    return FineTuneConfig(**{**FAST, **kw})


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class AtStageEnd(Callback):
    """Snapshot the model's state at the end of each stage."""

    order = 60  # after EarlyStopping restored the best epoch

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_stage_end(self, trainer: Trainer) -> None:
        self.states.append(_state(trainer.task.model.features))


def test_frozen_parameters_are_bit_identical_after_stage_1_and_outside_the_unfrozen_blocks(tiny_backbone: str) -> None:
    X, y = make_images(20)
    base = load_backbone(tiny_backbone)
    pretrained = _state(base.feature_module())
    snap = AtStageEnd()
    result = fine_tune(base, X, y, 3, _ft(unfreeze="top-1"), callbacks=[snap])
    assert len(snap.states) == 2
    after_head, after_ft = snap.states
    for name, value in pretrained.items():
        assert torch.equal(after_head[name], value), name  # stage 1: the whole base is frozen
    for name, value in pretrained.items():  # stage 2 trains features.1 (the top block) only
        if name.startswith("body.0."):
            assert torch.equal(after_ft[name], value), name
    assert any(not torch.equal(after_ft[n], v) for n, v in pretrained.items() if n.startswith("body.1.") and "running" not in n)
    assert result.history["unfrozen_blocks"] == ["features.1"]
    # the shared, cached backbone was not touched
    assert all(torch.equal(v, pretrained[k]) for k, v in _state(base.feature_module()).items())


def _bn_stats(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()
            if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


def test_batchnorm_statistics_do_not_move_by_default_and_do_with_train_bn(tiny_backbone: str) -> None:
    X, y = make_images(20)
    base = load_backbone(tiny_backbone)
    before = _bn_stats(base.feature_module())
    assert len(before) == 12  # 4 BatchNorm layers x 3 buffers
    frozen = fine_tune(base, X, y, 3, _ft(unfreeze="all")).backbone.feature_module()
    for name, value in _bn_stats(frozen).items():
        assert torch.equal(value, before[name]), name
    trained = fine_tune(base, X, y, 3, _ft(unfreeze="all", train_bn=True)).backbone.feature_module()
    after = _bn_stats(trained)
    assert all(not torch.equal(after[n], before[n]) for n in before if n.endswith(("running_mean", "num_batches_tracked")))


def test_the_model_learns(tiny_backbone: str) -> None:
    X, y = make_images(20)
    clf = TransferClassifier(tiny_backbone, strategy="fine-tune", progress=False, **FAST).fit(X, y)
    epochs = clf.history_["epochs"]
    assert epochs[-1]["train_loss"] < 0.7 * epochs[0]["train_loss"]
    Xt, yt = make_images(15, seed=7)
    assert clf.score(Xt, yt) >= 0.8  # chance is 1/3
    h = clf.history_
    assert h["stage_boundary"] == sum(1 for e in epochs if e["stage"] == 1)
    assert [s["name"] for s in h["stages"]] == ["head", "fine-tune"] and h["n_val"] == 6


def test_kill_during_stage_2_then_resume_gives_the_same_weights(tiny_backbone: str, tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    class KillAt(Callback):
        def on_batch_end(self, trainer: Trainer, output: Any) -> None:
            if trainer.epoch == 5 and trainer.step_in_stage == 3:  # mid-epoch 6 (stage 2), after a checkpoint
                raise Killed

    X, y = make_images(20)
    base = load_backbone(tiny_backbone)
    cfg = _ft(unfreeze="all", gradual=True, l2sp=0.1, augment="strong")
    reference = fine_tune(base, X, y, 3, cfg)
    with pytest.raises(Killed):
        fine_tune(base, X, y, 3, cfg, checkpoint_dir=tmp_path / "ckpt", callbacks=[KillAt()])
    assert (tmp_path / "ckpt" / "state.json").is_file()
    resumed = fine_tune(base, X, y, 3, cfg, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.resumed_epoch == 5
    ref_state, res_state = reference.backbone.model.state_dict(), resumed.backbone.model.state_dict()
    for name, value in ref_state.items():
        assert torch.equal(value, res_state[name]), name
    assert all(np.array_equal(a, b) for a, b in zip(reference.head.weights, resumed.head.weights, strict=True))
    assert [e["train_loss"] for e in reference.history["epochs"]] == [e["train_loss"] for e in resumed.history["epochs"]]
    assert not (tmp_path / "ckpt").exists()  # removed after success


def test_l2sp_is_zero_at_the_start_and_pulls_toward_the_pretrained_weights(tiny_backbone: str) -> None:
    X, y = make_images(10)
    base = load_backbone(tiny_backbone)
    s = build_setup(base, X, y, 3, _ft(l2sp=1.0), layer=None)
    task: ClassificationTask = s["task"]
    assert float(task.l2sp_penalty().detach()) == 0.0
    w = s["net"].features.body[1][0].weight
    with torch.no_grad():
        w.add_(0.1)
    penalty = task.l2sp_penalty()
    penalty.backward()
    assert float(penalty.detach()) == pytest.approx(0.5 * 1.0 * 0.01 * w.numel(), rel=1e-4)
    assert torch.allclose(w.grad, torch.full_like(w, 0.1), atol=1e-6)  # gradient points back to w0

    pretrained = _state(base.feature_module())

    def distance(result: Any) -> float:
        tuned = _state(result.backbone.feature_module())
        return sum(float((tuned[k].float() - v.float()).pow(2).sum()) for k, v in pretrained.items() if "weight" in k)

    free = distance(fine_tune(base, X, y, 3, _ft(l2sp=0.0, lr=0.1)))
    held = distance(fine_tune(base, X, y, 3, _ft(l2sp=100.0, lr=0.1)))
    assert held < 0.5 * free


def test_augmentation_never_touches_validation_or_test_items(tiny_backbone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import transferkit.strategies.fine_tuning.train as ft

    seen: set[str] = set()

    def spy_make_augment(level: str, size: int) -> Any:
        def spy(pixels: torch.Tensor) -> torch.Tensor:
            seen.add(hashlib.sha256(pixels.numpy().tobytes()).hexdigest())
            return pixels.flip(1)

        return spy

    monkeypatch.setattr(ft, "make_augment", spy_make_augment)
    X, y = make_images(20)
    clf = TransferClassifier(tiny_backbone, strategy="fine-tune", progress=False, **FAST).fit(X, y)
    pixels, _ = prepare_inputs(clf.network_, X)
    digests = [hashlib.sha256(p.numpy().tobytes()).hexdigest() for p in pixels]
    train_idx, val_idx = stratified_split(y, 0.1, seed=0)
    assert seen == {digests[i] for i in train_idx}
    assert not seen & {digests[i] for i in val_idx}
    n = len(seen)
    Xt, _ = make_images(5, seed=9)
    clf.predict(Xt)
    assert len(seen) == n


def test_refit_head_is_a_logistic_regression_on_the_fine_tuned_features(tiny_backbone: str) -> None:
    from transferkit.heads import fit_head

    X, y = make_images(20)
    refit = TransferClassifier(tiny_backbone, strategy="fine-tune", progress=False, **FAST).fit(X, y)
    plain = TransferClassifier(tiny_backbone, strategy="fine-tune", progress=False,
                               fine_tune_params={"refit_head": False}, **FAST).fit(X, y)
    assert refit.network_.weights_id == plain.network_.weights_id  # same network: only the head differs
    assert plain.head_.kind == "linear" and plain.head_.params["trained_by"] == "fine-tune"
    assert refit.head_.kind == "logreg"
    assert refit.head_.params["trained_by"] == "logistic regression refitted on the fine-tuned features"
    # it is the feature-extraction head fitted on the fine-tuned features of every training item
    _, y_index = np.unique(y, return_inverse=True)
    F = refit.features(X)
    want, _ = fit_head("logreg", F, y_index, random_state=0)
    assert (want.params["C"], want.power) == (refit.head_.params["C"], refit.head_.power)
    assert np.array_equal(want.predict_index(F), refit.head_.predict_index(F))
    Xt, yt = make_images(15, seed=7)
    assert refit.score(Xt, yt) >= 0.8  # chance is 1/3


@pytest.mark.parametrize(("params", "message"), [
    ({"fine_tune_params": {"refit_head": "yes"}}, r"refit_head='yes' is not allowed"),
    ({"unfreeze": "top-3"}, r"TransferClassifier: unfreeze='top-3' is not allowed; tiny-cnn has 2 blocks: use top-1 … "
                            r"top-2, all or none"),
    ({"unfreeze": "top"}, r"unfreeze='top' is not allowed.*expected 'top-N' \(N >= 1\), 'all' or 'none'"),
    ({"augment": "medium"}, r"augment='medium' is not allowed.*expected one of 'none', 'light', 'strong'"),
    ({"lr": -1.0}, r"lr=-1.0 is not allowed; expected a number > 0.0"),
    ({"epochs": 2.5}, r"epochs=2.5 is not allowed; expected an integer >= 0"),
    ({"fine_tune_params": {"dropot": 0.3}}, r"fine-tuning has no parameter 'dropot' \(did you mean 'dropout'\?\)"),
    ({"fine_tune_params": {"dropout": 1.0}}, r"dropout=1.0 is not allowed; expected a number >= 0.0 and < 1.0"),
    ({"head": "svm"}, r"strategy='fine-tune' trains its own head; head='svm'"),
    ({"resume": True}, r"resume=True needs checkpoint_dir"),
    ({"strategy": "finetune"}, r"strategy='finetune' is not allowed \(did you mean 'fine-tune'\?\)"),
])
def test_configuration_errors_are_one_line_and_name_the_fix(tiny_backbone: str, params: dict, message: str) -> None:
    X, y = make_images(5)
    with pytest.raises(ConfigError, match=message) as info:
        TransferClassifier(tiny_backbone, **{"strategy": "fine-tune", "progress": False, **params}).fit(X, y)
    assert "\n" not in str(info.value)


def test_word_vectors_cannot_be_fine_tuned() -> None:
    with pytest.raises(ConfigError, match="backbone 'glove-6b-50d' has no trainable blocks to fine-tune; use "
                                          "strategy='feature-extraction'"):
        TransferClassifier("glove-6b-50d", strategy="fine-tune").fit(["a b", "c d", "e f", "g h"], [0, 1, 0, 1])


def test_save_load_identical_predictions_and_onnx(tiny_backbone: str, tmp_path: Path) -> None:
    from transferkit.export import export_onnx
    from transferkit.extraction import Extractor

    X, y = make_images(20)
    Xt, _ = make_images(6, seed=3)
    clf = TransferClassifier(tiny_backbone, strategy="fine-tune", progress=False, cache=False, **FAST).fit(X, y)
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["head.safetensors", "manifest.json", "model.json", "network.safetensors"]
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["strategy"]["name"] == "fine-tune" and doc["strategy"]["state"]["history"]["epochs"]
    loaded = load_model(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))
    saved = ("strategy", "epochs", "head_epochs", "lr", "unfreeze", "augment", "fine_tune_params", "random_state")
    assert {k: loaded.get_params()[k] for k in saved} == {k: clf.get_params()[k] for k in saved}
    # fine-tuned features: onnxruntime equals PyTorch to 1e-4
    onnx = Extractor(clf.network_, clf.layer_, engine="onnx", cache=False, show_progress=False).extract(Xt)
    eager = Extractor(clf.network_, clf.layer_, engine="torch", cache=False, show_progress=False).extract(Xt)
    assert np.max(np.abs(onnx - eager)) <= 1e-4
    # the exported file, run by a session of our own on new images, gives the loaded model's probabilities
    export_onnx(loaded, tmp_path / "m.onnx")
    rgb = np.repeat(Xt[..., None], 3, axis=3)
    got = run_onnx(tmp_path / "m.onnx", {"pixels": rgb})
    want = loaded.predict_proba(rgb)
    assert got.shape == want.shape == (len(Xt), 3) and np.max(np.abs(got - want)) <= 1e-4
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))
    # a corrupt network file is refused
    (tmp_path / "m" / "network.safetensors").write_bytes(b"garbage")
    with pytest.raises(Exception, match="network.safetensors"):
        load_model(tmp_path / "m")


def test_clone_and_grid_search(tiny_backbone: str) -> None:
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    est = TransferClassifier(tiny_backbone, strategy="fine-tune", epochs=2, head_epochs=3, progress=False,
                             unfreeze="top-1", fine_tune_params={"patience": 2, "refit_head": False})
    assert clone(est).get_params() == est.get_params()
    X, y = make_images(12)
    # a rate too small to move the head against one that learns: the search must see lr (set_params on a clone)
    search = GridSearchCV(est, {"lr": [1e-6, 0.03]}, cv=2).fit(X, y)
    low, high = search.cv_results_["mean_test_score"]
    assert high >= low + 0.2, (low, high)
    assert search.best_params_ == {"lr": 0.03} and search.best_estimator_.lr == 0.03
    assert hasattr(search.best_estimator_, "network_") and not hasattr(est, "network_")


def test_discriminative_learning_rates_and_gradual_unfreezing(tiny_backbone: str) -> None:
    X, y = make_images(10)
    s = build_setup(load_backbone(tiny_backbone), X, y, 3, _ft(layer_decay=0.5), layer=None)
    scales = {g["name"]: g["lr_scale"] for g in s["task"].param_groups()}
    assert scales["head"] == 1.0 and scales["features.1"] == 1.0 and scales["features.0"] == 0.5
    counts = []

    class Count(Callback):
        order = 60

        def on_epoch_start(self, trainer: Trainer) -> None:
            counts.append(sum(p.requires_grad for p in trainer.task.model.features.parameters()))

    fine_tune(load_backbone(tiny_backbone), X, y, 3, _ft(gradual=True, head_epochs=1, epochs=3, validation_fraction=0.0),
              callbacks=[Count()])
    assert counts[0] == 0 and counts[1] < counts[2] == counts[3]


def test_lr_find_suggests_a_finite_rate(tiny_backbone: str, tmp_path: Path) -> None:
    X, y = make_images(20)
    result = lr_find(load_backbone(tiny_backbone), X, y, 3, num_it=40)
    assert np.isfinite(result.suggestion) and result.lr_at_minimum / 100 <= result.suggestion <= result.lr_at_minimum
    assert result.plot(tmp_path / "lr.png").stat().st_size > 1000
    # the suggestion is a rate that trains stage 1 (the head on the frozen base); a hundredth of it does not
    Xt, yt = make_images(15, seed=7)

    def head_only(lr: float) -> float:
        return TransferClassifier(tiny_backbone, strategy="fine-tune", progress=False, epochs=0, head_epochs=4, lr=lr,
                                  fine_tune_params={"refit_head": False}).fit(X, y).score(Xt, yt)

    assert head_only(result.suggestion) >= 0.8 and head_only(result.suggestion / 100) <= 0.6  # chance is 1/3


# -- text: a tiny random BERT with a word-level vocabulary -------------------------------------------

def test_text_fine_tuning_learns_and_round_trips(tiny_text_backbone: str, tmp_path: Path) -> None:
    X, y = make_texts(40, seed=0)
    clf = TransferClassifier(tiny_text_backbone, strategy="fine-tune", progress=False, epochs=6, head_epochs=10,
                             lr=0.03).fit(X, y)
    Xt, yt = make_texts(20, seed=1)
    assert clf.score(Xt, yt) >= 0.9
    assert [s["name"] for s in clf.history_["stages"]] == ["head", "fine-tune"]
    assert clf.history_["unfrozen_blocks"] == ["embeddings", "encoder.layer.0", "encoder.layer.1"]
    clf.save(tmp_path / "t")
    assert np.array_equal(load_model(tmp_path / "t").predict_proba(Xt), clf.predict_proba(Xt))


def test_contrastive_pairs_pair_each_item_with_its_class_and_another() -> None:
    from transferkit.strategies.fine_tuning.contrastive import contrastive_pairs

    y = np.array([0, 0, 0, 1, 1, 2])
    pairs = contrastive_pairs(y, rounds=3, seed=0)
    assert pairs.shape == (2 * 3 * len(y), 3)
    same = pairs[pairs[:, 2] == 1]
    diff = pairs[pairs[:, 2] == 0]
    assert np.array_equal(np.bincount(same[:, 0], minlength=6), [3] * 6)  # every item, once per round
    assert np.all(y[same[:, 0]] == y[same[:, 1]])
    assert np.all((same[:, 0] != same[:, 1]) | (same[:, 0] == 5))  # itself only when alone in its class
    assert np.all(y[diff[:, 0]] != y[diff[:, 1]])
    assert np.array_equal(pairs, contrastive_pairs(y, rounds=3, seed=0))
    assert not np.array_equal(pairs, contrastive_pairs(y, rounds=3, seed=1))


def _class_separation(backbone: Any, X: list[str], y: np.ndarray) -> float:
    """Mean cosine similarity within classes minus across classes of the pooled embeddings."""
    from transferkit.strategies.fine_tuning.data import prepare_inputs
    from transferkit.strategies.fine_tuning.model import frozen_features
    from transferkit.training import ItemBatches

    inputs, collate = prepare_inputs(backbone, X)
    f = frozen_features(backbone.feature_module(None), ItemBatches(inputs, np.zeros(len(X)), collate, batch_size=64,
                                                                   shuffle=False))
    f = torch.nn.functional.normalize(f, dim=1)
    sim = (f @ f.T).numpy()
    same = y[:, None] == y[None, :]
    off = ~np.eye(len(y), dtype=bool)
    return float(sim[same & off].mean() - sim[~same].mean())


def test_contrastive_pre_tuning_pulls_classes_apart_and_is_saved_with_the_model(
        tiny_text_backbone: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from transferkit.strategies.fine_tuning.contrastive import contrastive_tune

    X, y = make_texts(12, seed=0)  # 6 per class
    y_index = (y == "rotten").astype(np.int64)
    base = load_backbone(tiny_text_backbone)
    before = state_sha256(base.model)
    tuned, info = contrastive_tune(base, X, y_index, _ft(lr=0.1), rounds=10, layer=None, progress=False)
    assert state_sha256(base.model) == before  # the shared backbone is not touched
    assert info["pairs"] == 2 * 10 * 12
    Xt, yt = make_texts(30, seed=1)
    assert _class_separation(tuned, Xt, yt) > _class_separation(base, Xt, yt) + 0.05
    again, _ = contrastive_tune(base, X, y_index, _ft(lr=0.1), rounds=10, layer=None, progress=False)
    assert state_sha256(again.model) == state_sha256(tuned.model)  # deterministic for a seed

    caplog.set_level("WARNING", logger="transferkit")
    clf = TransferClassifier(tiny_text_backbone, strategy="fine-tune", progress=False, unfreeze="none",
                             lr=0.03, fine_tune_params={"contrastive": 10}).fit(X, y)
    assert "smallest class has 6 items (fewer than 10), so no validation split" in caplog.text
    caplog.clear()
    assert clf.history_["contrastive"]["rounds"] == 10
    assert clf.score(Xt, yt) >= 0.9
    clf.save(tmp_path / "c")  # the contrastively tuned encoder is part of the saved model
    assert np.array_equal(load_model(tmp_path / "c").predict_proba(Xt), clf.predict_proba(Xt))
    X2, y2 = make_texts(24, seed=2)  # 12 per class: a validation split, no warning
    off = TransferClassifier(tiny_text_backbone, strategy="fine-tune", progress=False, epochs=1, head_epochs=1).fit(X2, y2)
    assert off.history_["contrastive"] is None and off.history_["n_val"] > 0
    assert "no validation split" not in caplog.text
    with pytest.raises(ConfigError, match="contrastive=-1 is not allowed"):
        TransferClassifier(tiny_text_backbone, strategy="fine-tune", fine_tune_params={"contrastive": -1}).fit(X2, y2)


# -- command line ------------------------------------------------------------------------------------

_cli = run_cli


def test_cli_fit_fine_tune_writes_history_comparison_and_learning_curves(tiny_backbone: str, image_folder: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "model"
    code, _, err = _cli("fit", image_folder, "--backbone", tiny_backbone, "--strategy", "fine-tune", "--out", out,
                        "--epochs", "3", "--head-epochs", "4", "--lr", "0.03", "--unfreeze", "top-1",
                        "--fine-tune-param", "dropout=0.1", "--no-progress")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["head.safetensors", "manifest.json", "model.json",
                                                     "network.safetensors", "report.html", "results.json"]
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["strategy"] == "fine-tune"
    assert results["model"]["head"] == "logreg, refitted"  # refit_head is on by default
    # the verdict is against the stronger from-scratch model; both are in the comparison
    scratch = {r["backbone"]: r["accuracy"] for r in results["comparison"] if r["strategy"] == "from scratch"}
    assert sorted(scratch) == sorted(results["baseline"]["candidates"]) == ["from-scratch small CNN",
                                                                            "raw-pixel logistic regression"]
    assert results["baseline"]["metrics"]["accuracy"] == max(scratch.values())
    assert results["baseline"]["name"] == max(scratch, key=lambda k: (scratch[k], k == "from-scratch small CNN"))
    assert results["verdict"]["gain"] == pytest.approx(results["metrics"]["accuracy"] - max(scratch.values()))
    h = results["history"]
    assert h["stage_boundary"] == 4 and {e["stage"] for e in h["epochs"]} == {1, 2}
    assert {"train_loss", "train_acc", "lr", "time_s"} <= set(h["epochs"][0])  # 8 items per class: no validation split
    strategies = [(r["strategy"], r["backbone"]) for r in results["comparison"]]
    weaker = ({"from-scratch small CNN", "raw-pixel logistic regression"} - {results["baseline"]["name"]}).pop()
    assert strategies == [("fine-tune", tiny_backbone), ("from scratch", results["baseline"]["name"]),
                          ("feature-extraction", tiny_backbone), ("from scratch", weaker)]
    html = (out / "report.html").read_text()
    assert "Learning curves" in html and "Strategies compared" in html
    code, stdout, _ = _cli("predict", out, image_folder, "--no-progress")
    assert code == 0 and stdout.count("\n") == 31


def test_cli_resume_and_errors(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    code, _, err = _cli("fit", image_folder, "--backbone", tiny_backbone, "--strategy", "fine-tune", "--unfreeze",
                        "top-9", "--out", tmp_path / "m", "--no-progress")
    assert code == 2 and err.strip().count("\n") == 0 and "tiny-cnn has 2 blocks" in err
    code, _, err = _cli("fit", image_folder, "--backbone", tiny_backbone, "--unfreeze", "some", "--out", tmp_path / "m")
    assert code == 2 and "'some' is not one of top-N (e.g. top-2), all, none" in err
    code, _, err = _cli("fit", image_folder, "--backbone", tiny_backbone, "--epochs", "3", "--out", tmp_path / "m")
    assert code == 2 and "error: --epochs only apply to --strategy fine-tune" in err
    code, _, err = _cli("fit", image_folder, "--backbone", tiny_backbone, "--strategy", "fine-tune", "--epochs", "1",
                        "--head-epochs", "1", "--resume", "--no-compare", "--no-report", "--out", tmp_path / "r",
                        "--no-progress")
    assert code == 0, err  # nothing to resume: a warning, then a fresh run


def test_cli_help_lists_the_fine_tuning_options() -> None:
    code, out, _ = _cli("fit", "--help")
    assert code == 0 and all(o in out for o in ("--strategy", "--unfreeze", "--augment", "--resume", "--epochs",
                                                "--head-epochs", "--fine-tune-param"))
    code, out, _ = _cli("lr-find", "--help")
    assert code == 0 and "Usage" in out and "--num-it" in out


def test_cli_lr_find(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    code, stdout, err = _cli("lr-find", image_folder, "--backbone", tiny_backbone, "--plot", tmp_path / "lr.png",
                             "--num-it", "30", "--no-progress")
    assert code == 0, err
    assert stdout.startswith("suggested learning rate: ") and (tmp_path / "lr.png").stat().st_size > 1000
    code, stdout, _ = _cli("lr-find", image_folder, "--backbone", tiny_backbone, "--plot", tmp_path / "lr2.png",
                           "--num-it", "30", "--json", "--no-progress")
    data = json.loads(stdout)
    assert np.isfinite(data["suggestion"]) and len(data["lrs"]) == len(data["losses"])
    code, _, err = _cli("lr-find", image_folder, "--backbone", "minilm-l6")
    assert code == 2 and "takes text input but the data is image" in err


# -- real weights ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mobilenet_v2_fine_tuning_on_fashion_mnist_loss_falls() -> None:
    from transferkit.data import load_fashion_mnist_sample

    ds = load_fashion_mnist_sample()
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(ds.y == c), 10, replace=False) for c in range(10)])
    X, y = ds.X[idx], ds.y[idx]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = fine_tune(load_backbone("mobilenet_v2", image_size=64), X, y, 10,
                       FineTuneConfig(head_epochs=3, epochs=3, validation_fraction=0.0, batch_size=20), progress=False)
    epochs = result.history["epochs"]
    assert [e["stage"] for e in epochs] == [1, 1, 1, 2, 2, 2]
    # each stage learns: its training loss falls; stage 2 starts from a fresh optimiser and warm-up, and
    # on augmented images, so its first epoch is not compared with the end of stage 1
    for stage in (1, 2):
        losses = [e["train_loss"] for e in epochs if e["stage"] == stage]
        assert losses[-1] < 0.8 * losses[0], (stage, losses)
    assert epochs[-1]["train_acc"] > 0.5  # chance is 0.1
