"""Domain adaptation (issue 15): the losses, shallow alignment, label-free selection, the estimator, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from transferkit import DomainAdapter, TransferClassifier, load_model
from transferkit.cli import app
from transferkit.exceptions import ConfigError, DataError
from transferkit.strategies.domain_adaptation.losses import (
    CoralLoss,
    GradientReversal,
    MultiKernelMMD,
    dann_coefficient,
)
from transferkit.strategies.domain_adaptation.selection import (
    candidate_scores,
    cluster_agreement,
    cluster_select,
    dev_risk,
    dev_terms,
    domain_accuracy,
    select,
    standard_error,
    target_clusters,
)
from transferkit.strategies.domain_adaptation.shallow import align, fit_linear, target_view

from ..conftest import make_images


def _shift(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three Gaussian classes in 6-D; the target is the same task with every feature rescaled and offset."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(3, 6))
    y = np.arange(2 * n) % 3
    X = centres[y] + rng.normal(size=(2 * n, 6))
    scale, offset = rng.uniform(0.3, 3.0, size=6), rng.normal(0, 6, size=6)
    return X[:n], y[:n], X[n:] * scale + offset, y[n:]


def test_gradient_reversal_flips_the_sign_of_the_gradient() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = GradientReversal(0.7)(x)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.7 * w)
    assert dann_coefficient(0.0) == 0.0 and 0.99 < dann_coefficient(1.0) < 1.0
    assert dann_coefficient(0.2) < dann_coefficient(0.5)


def test_coral_matches_second_order_statistics_after_alignment() -> None:
    Xs, _, Xt, _ = _shift()
    rng = np.random.default_rng(1)
    Xt = Xt @ (np.eye(6) + 0.5 * rng.normal(size=(6, 6)))  # correlated target features
    al = align("coral", Xs, Xt, reg=1e-8)
    Zt = target_view(al, Xt)
    assert np.allclose(np.cov(al.source, rowvar=False), np.cov(Zt, rowvar=False), atol=1e-5)
    before = np.cov((Xs - Xs.mean(0)) / Xs.std(0), rowvar=False)
    assert np.abs(before - np.cov(Zt, rowvar=False)).max() > 0.3  # they differed before
    # the deep losses are zero for identical batches and positive for shifted ones
    a, b = torch.randn(64, 6), torch.randn(64, 6) * 3 + 1
    assert float(CoralLoss()(a, a)) == 0.0 and float(CoralLoss()(a, b)) > 0.01
    assert abs(float(MultiKernelMMD()(a, a))) < 1e-6 and float(MultiKernelMMD()(a, b)) > 0.05


def test_shallow_adaptation_reduces_the_domain_gap_and_helps_on_a_synthetic_shift() -> None:
    Xs, ys, Xt, yt = _shift(seed=1)
    accs, gaps = {}, {}
    for method in ("source-only", "coral", "subspace", "tca", "reweight"):
        al = align(method, Xs, Xt, n_components=4)
        head, _, _ = fit_linear(al, ys, 3, kind=method)
        accs[method] = float((head.predict_index(Xt) == yt).mean())
        gaps[method] = domain_accuracy(al.source, target_view(al, Xt))
    assert accs["source-only"] < 0.7 and gaps["source-only"] > 0.9  # the shift is real
    assert accs["coral"] > 0.95 and accs["subspace"] > accs["source-only"] + 0.15
    assert accs["tca"] > accs["source-only"]
    assert gaps["coral"] < 0.6 and gaps["subspace"] < 0.6  # a domain classifier can no longer tell them apart


def _train_on_a_toy_shift(method: str, epochs: int = 20, optimizer: str = "adamw", lr: float = 3e-3
                          ) -> tuple[Any, list[dict], torch.Tensor, torch.Tensor, np.ndarray]:
    """``(net, history, source features, target inputs, target labels)`` after ``method`` on three Gaussian
    classes in 6-D whose target is translated by 2 in every dimension (an MLP trunk, 400 items per domain)."""
    from torch import nn

    from transferkit.strategies.domain_adaptation.deep import train_deep
    from transferkit.strategies.fine_tuning.data import stack_batch
    from transferkit.strategies.fine_tuning.model import ClassifierNet
    from transferkit.training import ItemBatches

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 6))
    y = np.arange(800) % 3
    X = centres[y] + rng.normal(size=(800, 6))
    Xs, ys, Xt, yt = X[:400], y[:400], X[400:] + 2.0, y[400:]  # the target is translated
    torch.manual_seed(0)
    net = ClassifierNet(nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU()), 16, 3, 0.0)
    Fs, Ft = torch.tensor(Xs, dtype=torch.float32), torch.tensor(Xt, dtype=torch.float32)
    with torch.no_grad():
        f0 = net.features(Fs)
        net.standardize.mean.copy_(f0.mean(0))
        net.standardize.scale.copy_(f0.std(0).clamp_min(1e-3))
    src = ItemBatches(Fs, ys, stack_batch, batch_size=64, shuffle=True, seed=0)
    tgt = ItemBatches(Ft, np.zeros(len(Ft), dtype=np.int64), stack_batch, batch_size=64, shuffle=True, seed=1)
    history = train_deep(method, net, src, tgt, None, n_classes=3, epochs=epochs, lr=lr, trade_off=1.0,
                         features_lr_scale=1.0, seed=0, progress=False, optimizer=optimizer)
    return net, history, Fs, Ft, yt


def _features(net: Any, X: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.standardize(net.features(X))


def test_dann_discriminator_accuracy_falls_toward_chance() -> None:
    net, history, _, Ft, yt = _train_on_a_toy_shift("dann")
    acc = [e["train_domain_acc"] for e in history]
    late = float(np.mean(acc[-3:]))
    assert max(acc) > 0.9  # while the reversal weight is small the domains are easy to tell apart
    assert late < max(acc) - 0.1 and late < 0.85  # then the features align and it falls toward chance
    with torch.no_grad():
        assert float((net(Ft).argmax(1).numpy() == yt).mean()) > 0.85


def test_dann_with_sgd_trains_its_discriminator_and_is_deterministic() -> None:
    net, history, Fs, Ft, yt = _train_on_a_toy_shift("dann", optimizer="sgd", lr=0.01)
    acc = [e["train_domain_acc"] for e in history]
    assert max(acc) > 0.9 and min(acc) > 0.4  # the discriminator learns, and is never pushed far below chance
    assert float(np.mean(acc[-3:])) < max(acc) - 0.1  # while the features align
    with torch.no_grad():
        assert float((net(Ft).argmax(1).numpy() == yt).mean()) > 0.85
    again, _, _, _, _ = _train_on_a_toy_shift("dann", optimizer="sgd", lr=0.01)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))


@pytest.fixture(scope="module")
def toy_source_only() -> tuple:
    return _train_on_a_toy_shift("source-only")


def test_cdan_aligns_the_domains_its_discriminator_is_fooled(toy_source_only: tuple) -> None:
    net, history, Fs, Ft, yt = _train_on_a_toy_shift("cdan")
    acc = [e["train_domain_acc"] for e in history]
    assert max(acc) > 0.9 and float(np.mean(acc[-3:])) < max(acc) - 0.1  # CDAN+E's discriminator is fooled
    base, _, _, _, _ = toy_source_only
    # a fresh domain classifier (not CDAN's own) tells target from source features less well than after
    # source-only training on the same data, trunk, budget and seed
    assert (domain_accuracy(_features(net, Fs).numpy(), _features(net, Ft).numpy())
            < domain_accuracy(_features(base, Fs).numpy(), _features(base, Ft).numpy()) - 0.1)
    with torch.no_grad():
        assert float((net(Ft).argmax(1).numpy() == yt).mean()) > 0.85


@pytest.mark.parametrize("method", ["mmd", "deep-coral"])
def test_mmd_and_deep_coral_reduce_their_own_loss_between_the_domains(method: str, toy_source_only: tuple) -> None:
    net, history, Fs, Ft, _ = _train_on_a_toy_shift(method)
    base, _, _, _, _ = toy_source_only
    loss = MultiKernelMMD() if method == "mmd" else CoralLoss()
    after, untrained_for_it = (float(loss(_features(m, Fs), _features(m, Ft))) for m in (net, base))
    assert after < 0.5 * untrained_for_it, (after, untrained_for_it)  # the target features moved toward the source
    logged = [e["train_transfer_loss"] for e in history]
    assert np.mean(logged[-3:]) < 0.5 * logged[0]  # and the loss it minimised fell during training


def test_dev_risk_and_selection() -> None:
    losses = np.array([0.1, 0.5, 0.2, 0.4])
    assert dev_risk(losses, np.ones(4)) == pytest.approx(losses.mean())
    table = [{"method": "a", "dev_risk": 0.3, "iwv_risk": 0.3}, {"method": "b", "dev_risk": -0.2, "iwv_risk": 0.5},
             {"method": "c", "dev_risk": 0.0, "iwv_risk": 0.2}]
    assert select(table) == "c"  # b's negative estimate is replaced by its IWV risk (0.5); c wins
    table[1]["iwv_risk"], table[2]["dev_risk"] = 0.1, 0.15
    assert select(table) == "b"


def test_selection_skips_a_candidate_whose_features_separate_the_domains() -> None:
    """Candidate "separated" fits the source almost perfectly but its features put the target far from every
    source item; "aligned" has a higher source loss on features where the domains overlap. DEV alone prefers
    the separated one (its weights are ~0, so it returns about its source loss); its weights do not cover the
    target, so the selection takes the aligned one."""
    rng = np.random.default_rng(0)
    y_val = np.arange(300) % 3

    def probs(loss: float) -> np.ndarray:
        p = np.full((300, 3), (1 - np.exp(-loss)) / 2)
        p[np.arange(300), y_val] = np.exp(-loss)
        return p

    def scores(shift: float, loss: float) -> dict:
        src = rng.normal(size=(600, 4))
        val = rng.normal(size=(300, 4))
        tgt = rng.normal(size=(600, 4)) + shift
        return candidate_scores(src, val, tgt, probs(loss), y_val, np.full((600, 3), 1 / 3), seed=0)

    table = [{"method": "separated", **scores(8.0, 0.01)}, {"method": "aligned", **scores(0.0, 0.3)}]
    assert table[0]["dev_risk"] < table[1]["dev_risk"]  # DEV alone would keep the separated candidate
    assert table[0]["weight_mean"] < 0.1 and 0.8 < table[1]["weight_mean"] < 1.2
    assert select(table) == "aligned"
    assert select(table[:1]) == "separated"  # with nothing covered, the best-covered candidate is kept


def test_selection_prefers_a_well_determined_risk_over_a_lower_noisy_one() -> None:
    """Candidate "noisy" has the lower DEV risk, but its weights put nearly all mass on a few validation items
    (large standard error); "steady" has uniform weights and a slightly higher, tight estimate. The selection
    ranks by the upper end of the interval and keeps "steady"; with the noise gone the lower risk wins again."""
    rng = np.random.default_rng(0)
    n = 300
    losses = rng.uniform(0.0, 0.2, n)
    heavy = np.full(n, 0.05)
    heavy[:6] = (n - 0.05 * (n - 6)) / 6  # mean 1: six items carry ~95 % of the weight
    noisy_terms, steady_terms = dev_terms(losses * 0.9, heavy), dev_terms(losses, np.ones(n))
    noisy = {"method": "noisy", "dev_risk": noisy_terms.mean(), "dev_se": standard_error(noisy_terms),
             "iwv_risk": 0.1, "weight_mean": 1.0}
    steady = {"method": "steady", "dev_risk": steady_terms.mean(), "dev_se": standard_error(steady_terms),
              "iwv_risk": 0.1, "weight_mean": 1.0}
    assert noisy["dev_risk"] < steady["dev_risk"] and noisy["dev_se"] > 3 * steady["dev_se"]
    assert select([noisy, steady]) == "steady"
    assert select([{**noisy, "dev_se": steady["dev_se"]}, steady]) == "noisy"
    assert dev_risk(losses, heavy) == pytest.approx(dev_terms(losses, heavy).mean())


def test_cluster_agreement_rewards_predictions_that_split_the_target_like_its_clusters() -> None:
    """Three well-separated target blobs: k-means finds them (AMI 1 with the blob index); a candidate whose
    predictions follow the blobs — under any naming of the classes — scores 1, one that mixes them scores about
    0, and the second opinion is the former (its AMI is reported, not used by ``select``)."""
    rng = np.random.default_rng(0)
    blob = np.repeat(np.arange(3), 100)
    F_t = rng.normal(size=(300, 8)) + 10.0 * np.eye(8)[blob]
    clusters = target_clusters(F_t, 3, seed=0)
    assert cluster_agreement(blob, clusters) == pytest.approx(1.0)
    assert cluster_agreement((blob + 1) % 3, clusters) == pytest.approx(1.0)  # blind to which class is which
    mixed = rng.integers(0, 3, 300)
    assert abs(cluster_agreement(mixed, clusters)) < 0.05
    table = [{"method": "mixed", "cluster_ami": cluster_agreement(mixed, clusters)},
             {"method": "follows", "cluster_ami": cluster_agreement(blob, clusters)}]
    assert cluster_select(table) == "follows"
    assert cluster_select([{"method": "a"}]) is None
    assert np.array_equal(target_clusters(F_t, 3, seed=0), clusters)  # seeded: the same clusters again


def test_selection_criterion_decides_which_candidate_is_kept(tiny_backbone: str) -> None:
    """The same fit under ``selection="dev"`` and ``"clusters"``: identical label-free scores and per-criterion
    choices; each keeps its own criterion's candidate. A bad value is a one-line ConfigError."""
    Xs, ys = make_images(12)
    Xt, _ = _target_images()
    kw = {"method": "auto", "candidates": ["source-only", "coral", "subspace", "tca", "reweight"], "progress": False}
    by_dev = DomainAdapter(tiny_backbone, selection="dev", **kw).fit(Xs, ys, X_target=Xt)
    by_clusters = DomainAdapter(tiny_backbone, selection="clusters", **kw).fit(Xs, ys, X_target=Xt)
    assert by_dev.dev_choice_ == by_clusters.dev_choice_ and by_dev.cluster_choice_ == by_clusters.cluster_choice_
    assert by_dev.dev_choice_ != by_dev.cluster_choice_  # on this toy shift the criteria differ: a real test
    assert by_dev.method_ == by_dev.dev_choice_ and by_clusters.method_ == by_clusters.cluster_choice_
    best = max(by_clusters.selection_, key=lambda r: r["cluster_ami"])
    assert by_clusters.method_ == best["method"]
    with pytest.raises(ConfigError, match="selection"):
        DomainAdapter(tiny_backbone, selection="oracle", **kw).fit(Xs, ys, X_target=Xt)


def _target_images() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_images(12, seed=3)
    return (255 - X).astype(np.uint8), y  # inverted contrast: same classes, another domain


def test_domain_adapter_save_load_export_and_compare(tiny_backbone: str, tmp_path: Path) -> None:
    Xs, ys = make_images(20)
    Xt, yt = _target_images()
    da = DomainAdapter(tiny_backbone, method="dann", trunk="small-cnn", epochs=3, progress=False).fit(Xs, ys, X_target=Xt)
    assert da.method_ == "dann" and da.baseline_ == "deep-source-only"
    assert {r["method"] for r in da.selection_} == {"dann", "deep-source-only"}
    assert "train_domain_acc" in da.histories_["dann"][0]
    report = da.compare(Xt, yt)
    assert report["verdict"]["ci_low"] <= report["verdict"]["gain"] <= report["verdict"]["ci_high"]
    loaded = load_model(da.save(tmp_path / "m"))
    assert isinstance(loaded, DomainAdapter) and loaded.method_ == "dann"
    assert np.array_equal(loaded.predict_proba(Xt), da.predict_proba(Xt))

    import onnxruntime as ort

    from transferkit.export import export_onnx

    export_onnx(loaded, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    probs = session.run(None, {session.get_inputs()[0].name: np.repeat(Xt[..., None], 3, axis=-1)})[0]
    assert np.allclose(probs, da.predict_proba(Xt), atol=1e-4)

    shallow = DomainAdapter(tiny_backbone, method="coral", progress=False).fit(Xs, ys, X_target=Xt)
    assert shallow.baseline_ == "source-only" and shallow.strategy_.network is None
    again = load_model(shallow.save(tmp_path / "s"))
    assert np.array_equal(again.predict(Xt), shallow.predict(Xt))


def test_bad_input_gives_one_line_errors(tiny_backbone: str) -> None:
    Xs, ys = make_images(10)
    Xt, yt = _target_images()
    da = DomainAdapter(tiny_backbone, method="coral", progress=False)
    with pytest.raises(DataError, match="X_target is empty"):
        da.fit(Xs, ys, X_target=[])
    for n in (1, 2):  # too few to score the candidates on: a clear error, not scikit-learn's
        with pytest.raises(DataError, match=rf"X_target has {n} item\(s\).*at least 3"):
            DomainAdapter(tiny_backbone, method="auto", candidates=["source-only", "coral"],
                          progress=False).fit(Xs, ys, X_target=Xt[:n])
    with pytest.raises(DataError, match="same modality"):
        da.fit(Xs, ys, X_target=["a sentence, not an image", "another one"])
    flat = Xt.reshape(len(Xt), -1)  # the right pixels, flattened: no image shape to resize
    with pytest.raises(DataError, match=rf"X_target's items have shape \({flat.shape[1]},\) but the source's are "
                                        rf"images of shape \({Xs.shape[1]}, {Xs.shape[2]}\); these cannot be reconciled"):
        da.fit(Xs, ys, X_target=flat)
    with pytest.raises(DataError, match="needs the unlabelled target items"):
        da.fit(Xs, ys)
    with pytest.raises(ConfigError, match="method"):
        DomainAdapter(tiny_backbone, method="danne", progress=False).fit(Xs, ys, X_target=Xt)
    with pytest.raises(ConfigError, match="candidates"):
        DomainAdapter(tiny_backbone, candidates=["coral", "nope"], progress=False).fit(Xs, ys, X_target=Xt)
    da.fit(Xs, ys, X_target=Xt)
    with pytest.raises(DataError, match="never had"):
        da.compare(Xt, np.where(yt == 0, 7, yt))
    with pytest.raises(ConfigError, match="needs unlabelled target items"):
        TransferClassifier(tiny_backbone, strategy="domain-adaptation", progress=False).fit(Xs, ys)


def _write_target_csv(root: Path, X: np.ndarray, labels: np.ndarray) -> Path:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    path = root / "target.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for i, (img, lab) in enumerate(zip(X, labels, strict=True)):
            f = root / f"t{i:03d}.png"
            if not f.exists():
                Image.fromarray(img, mode="L").save(f)
            w.writerow([str(f), lab])
    return path


def test_auto_never_reads_target_labels(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    Xt, yt = _target_images()
    names = np.array(["horizontal", "vertical", "blob"])
    truth = _write_target_csv(tmp_path / "t", Xt, names[yt])
    misleading = _write_target_csv(tmp_path / "t2", Xt, names[(yt + 1) % 3])  # every label wrong
    runner = CliRunner()
    outs = []
    for i, target in enumerate((truth, misleading)):
        out = tmp_path / f"m{i}"
        result = runner.invoke(app, ["adapt", str(image_folder), str(target), "--backbone", tiny_backbone,
                                     "--candidates", "source-only,coral,subspace,reweight,dann", "--trunk", "small-cnn",
                                     "--epochs", "2", "--path-column", "path", "--out", str(out), "--no-progress"])
        assert result.exit_code == 0, result.stderr
        assert "used only to evaluate" in result.stderr
        outs.append(json.loads((out / "results.json").read_text()))
        adapt = outs[-1]["adaptation"]
        assert "cluster AMI" in result.stderr  # each candidate's line shows both label-free criteria
        assert adapt["dev_choice"] == adapt["method"]  # selection="dev", the default
        assert ("criteria disagree" in result.stderr) == (adapt["cluster_choice"] != adapt["dev_choice"])
        page = (out / "report.html").read_text()
        assert "Selection (no target labels)" in page and "Domain discriminator over training" in page
        assert "embeddings (PCA)" in page and "target acc." in page and "cluster AMI" in page
    a, b = outs
    assert a["adaptation"]["method"] == b["adaptation"]["method"]
    def scores(r: dict) -> list:
        return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in r["adaptation"]["selection"]]

    assert scores(a) == scores(b)  # every label-free score identical (timings aside)
    assert all(-1.0 <= row["cluster_ami"] <= 1.0 for row in a["adaptation"]["selection"])
    assert a["adaptation"]["cluster_choice"] == b["adaptation"]["cluster_choice"]
    assert a["adaptation"]["cluster_choice"] in {row["method"] for row in a["adaptation"]["selection"]}
    acc_a = {r["method"]: r["target_accuracy"] for r in a["evaluation"]["selection"]}
    acc_b = {r["method"]: r["target_accuracy"] for r in b["evaluation"]["selection"]}
    assert acc_a != acc_b  # the labels were read — for evaluation only
    m0, m1 = load_model(tmp_path / "m0"), load_model(tmp_path / "m1")
    assert m0.cluster_choice_ == a["adaptation"]["cluster_choice"]  # kept through save / load
    assert m0.dev_choice_ == a["adaptation"]["dev_choice"]
    assert np.array_equal(m0.predict_proba(Xt), m1.predict_proba(Xt))
    ev = runner.invoke(app, ["evaluate", str(tmp_path / "m0"), str(truth), "--path-column", "path", "--no-progress"])
    assert ev.exit_code == 0, ev.stderr
    kept = a["adaptation"]["method"]
    assert json.loads(ev.stdout)["accuracy"] == pytest.approx(acc_a[kept])


def test_cli_adapt_errors(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["adapt", str(image_folder), str(tmp_path / "nope"), "--backbone", tiny_backbone])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    Xt, yt = _target_images()
    alien = _write_target_csv(tmp_path / "t", Xt, np.array(["cat", "dog", "blob"])[yt])
    bad = runner.invoke(app, ["adapt", str(image_folder), str(alien), "--backbone", tiny_backbone, "--method", "coral",
                              "--path-column", "path", "--no-progress", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "SOURCE never has" in bad.stderr and "Traceback" not in bad.stderr
    wrong = runner.invoke(app, ["adapt", str(image_folder), str(alien), "--backbone", tiny_backbone, "--method", "dan"])
    assert wrong.exit_code == 2 and "method" in wrong.stderr
    texts = tmp_path / "target.txt"
    texts.write_text("a review of a film\nanother review\n")
    other = runner.invoke(app, ["adapt", str(image_folder), str(texts), "--backbone", tiny_backbone, "--method", "coral",
                                "--no-progress", "--out", str(tmp_path / "o2")])
    assert other.exit_code == 2 and "same modality" in other.stderr and "Traceback" not in other.stderr
    assert other.stderr.strip().count("\n") == 1  # the TARGET line, then the one-line error


def test_semi_supervised_target_labels_train_the_classifier(tiny_backbone: str) -> None:
    Xs, ys = make_images(20)
    Xt, yt = _target_images()
    rolled = (yt + 1) % 3  # labels that contradict the source: only training on them makes a model agree
    known = np.arange(len(yt)) % 2 == 0
    y_target = [int(v) if k else None for v, k in zip(rolled, known, strict=True)]
    for method, kw in (("source-only", {}), ("dann", {"trunk": "small-cnn", "epochs": 4})):
        plain = DomainAdapter(tiny_backbone, method=method, progress=False, **kw).fit(Xs, ys, X_target=Xt)
        semi = DomainAdapter(tiny_backbone, method=method, progress=False, **kw).fit(Xs, ys, X_target=Xt,
                                                                                      y_target=y_target)
        def agree(m: DomainAdapter) -> float:
            return float((m.predict(Xt[known]) == rolled[known]).mean())

        assert agree(semi) >= agree(plain) + 0.3, (method, agree(plain), agree(semi))
        assert semi.strategy_.results_extra()["adaptation"]["target_labels_trained_on"] == int(known.sum())
    # every entry unknown (-1, scikit-learn's mark) is the unsupervised fit, bit for bit
    plain = DomainAdapter(tiny_backbone, method="coral", progress=False).fit(Xs, ys, X_target=Xt)
    none = DomainAdapter(tiny_backbone, method="coral", progress=False).fit(Xs, ys, X_target=Xt,
                                                                             y_target=np.full(len(yt), -1))
    assert np.array_equal(plain.predict_proba(Xt), none.predict_proba(Xt))
    with pytest.raises(DataError, match="y_target has 3 entries but X_target has"):
        plain.fit(Xs, ys, X_target=Xt, y_target=[0, 1, 2])
    with pytest.raises(DataError, match="'7', which the source never had"):
        plain.fit(Xs, ys, X_target=Xt, y_target=np.where(yt == 0, 7, -1))


def test_cli_target_labels_file(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    from PIL import Image

    Xt, yt = _target_images()
    names = np.array(["horizontal", "vertical", "blob"])
    flat = tmp_path / "target"
    flat.mkdir()
    for i, img in enumerate(Xt):
        Image.fromarray(img, mode="L").save(flat / f"t{i:03d}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("item,label\n" + "".join(f"t{i:03d}.png,{names[yt[i]]}\n" for i in range(0, len(yt), 3)))
    runner = CliRunner()
    args = ["adapt", str(image_folder), str(flat), "--backbone", tiny_backbone, "--method", "coral", "--no-progress"]
    ok = runner.invoke(app, [*args, "--target-labels", str(labels), "--out", str(tmp_path / "m")])
    assert ok.exit_code == 0, ok.stderr
    n = len(range(0, len(yt), 3))
    assert f"{n} of {len(yt)} TARGET items labelled for training" in ok.stderr
    assert json.loads((tmp_path / "m" / "results.json").read_text())["adaptation"]["target_labels_trained_on"] == n
    labels.write_text("item,label\nnot_there.png,blob\n")
    bad = runner.invoke(app, [*args, "--target-labels", str(labels), "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr
    assert "'not_there.png'" in bad.stderr.strip().splitlines()[-1]  # one error line after the TARGET line
    labels.write_text("path,label\nt000.png,blob\n")
    cols = runner.invoke(app, [*args, "--target-labels", str(labels), "--out", str(tmp_path / "c")])
    assert cols.exit_code == 2 and "needs 'item' and 'label'" in cols.stderr


def test_small_cnn_trunk_is_not_standardised_by_its_untrained_statistics(tiny_backbone: str) -> None:
    # a random-init trunk's eval-mode features barely vary before training (std ~1e-3): dividing by that
    # blew the logits up by orders of magnitude once BatchNorm learnt (first-epoch loss in the hundreds)
    Xs, ys = make_images(30)
    Xt, _ = _target_images()
    da = DomainAdapter(tiny_backbone, method="deep-source-only", trunk="small-cnn", epochs=3,
                       progress=False).fit(Xs, ys, X_target=Xt)
    head = da.strategy_.candidates["deep-source-only"]["head"]
    history = da.histories_["deep-source-only"]
    assert all(np.isfinite(e["train_loss"]) and e["train_loss"] < 2 * np.log(3) for e in history), history
    assert history[-1]["train_accuracy"] > 0.9
    assert np.allclose(head.mean, 0.0) and np.allclose(head.scale, 1.0)


def test_an_epoch_covers_the_larger_domain() -> None:
    from transferkit.strategies.domain_adaptation.deep import PairedBatches
    from transferkit.strategies.fine_tuning.data import stack_batch
    from transferkit.training import ItemBatches

    def batches(n: int, seed: int) -> ItemBatches:
        return ItemBatches(torch.arange(n, dtype=torch.float32)[:, None], np.zeros(n, dtype=np.int64), stack_batch,
                           batch_size=4, shuffle=True, seed=seed)

    small_source = PairedBatches(batches(8, 0), batches(28, 1))
    assert len(small_source) == 7
    steps = list(small_source.epoch(0))
    target_seen = torch.cat([xt[0][:, 0] for _, _, xt in steps])
    assert sorted(target_seen.tolist()) == list(range(28))  # every target item once
    source_seen = torch.cat([xs[0][:, 0] for xs, _, _ in steps]).tolist()
    assert len(source_seen) == 28 and set(source_seen) == set(range(8))  # the source cycled
    big_source = PairedBatches(batches(28, 0), batches(8, 1))
    assert len(big_source) == 7 and sorted(torch.cat([xs[0][:, 0] for xs, _, _ in big_source.epoch(0)]).tolist()) \
        == list(range(28))
