"""Ranking candidates (backbone × layer, with random-init controls), the `rank` command and `fit --backbone auto`.

Two tiny image backbones with the SmallCNN(4, 8) architecture of ``tiny-cnn`` are ranked:

- ``tiny-edges``: hand-made "pretrained" weights whose first filters detect horizontal and vertical edges
  (and whose 3-class classifier reads them), so its features carry the signal of the striped images below;
- ``tiny-cnn`` (conftest): seeded random weights posing as pretrained ones.

A tiny word-vector backbone ``tiny-words`` covers text, which has no source classifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from transferkit.exceptions import ConfigError, DataError, UnknownNameError
from transferkit.selection.ranking import (
    CLEAR_GAP,
    DEFAULT_SCORE,
    FEW_PER_CLASS,
    Candidate,
    CandidateResult,
    Ranking,
    control_layers,
    make_candidates,
    rank_candidates,
    ranking_next_steps,
    recommend,
    select_layers,
    stage_layers,
)

EDGES = "tiny-edges"
WORDS = "tiny-words"


# ---------------------------------------------------------------------------------------------------------
# fixtures


def edge_cnn() -> torch.nn.Module:
    """SmallCNN(4, 8) with edge filters: block 0 gives relu(±d/dy), relu(±d/dx); block 1 adds |d/dy|, |d/dx|."""
    from transferkit.backbones.vision import SmallCNN

    m = SmallCNN(widths=(4, 8), num_classes=3)
    sobel = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 12.0
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        b0, b1 = m.features[0], m.features[1]
        for i, f in enumerate([sobel, -sobel, sobel.T, -sobel.T]):
            b0[0].weight[i] = f  # the same filter on the three (grey) channels
        for conv, n in ((b0[3], 4), (b1[3], 8)):
            for i in range(n):
                conv.weight[i, i, 1, 1] = 1.0
        for i in range(4):
            b1[0].weight[i, i, 1, 1] = 1.0
        b1[0].weight[4, 0:2, 1, 1] = 1.0
        b1[0].weight[5, 2:4, 1, 1] = 1.0
        b1[0].weight[6, 0:2, 1, 1], b1[0].weight[6, 2:4, 1, 1] = 1.0, -1.0
        b1[0].weight[7, 0:2, 1, 1], b1[0].weight[7, 2:4, 1, 1] = -1.0, 1.0
        for bn in (b0[1], b0[4], b1[1], b1[4]):
            bn.weight.fill_(1.0)
            bn.running_var.fill_(1.0)
        m.classifier.weight[0, 4], m.classifier.weight[0, 5] = 4.0, -4.0
        m.classifier.weight[1, 4], m.classifier.weight[1, 5] = -4.0, 4.0
        m.classifier.weight[2, 4], m.classifier.weight[2, 5], m.classifier.bias[2] = -4.0, -4.0, 2.0
    return m.eval()


@pytest.fixture(scope="module")
def edges_backbone(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: str) -> str:
    from safetensors.torch import save_file

    from transferkit._utils import sha256_file
    from transferkit.backbones import BACKBONES, BackboneConfig, WeightsSource, register_backbone

    path = tmp_path_factory.mktemp("edges") / "edges.safetensors"
    save_file({k: v.contiguous() for k, v in edge_cnn().state_dict().items()}, str(path))
    register_backbone(BackboneConfig(
        name=EDGES, family="smallcnn", architecture="smallcnn", modality="image", description="edge detectors",
        weights=WeightsSource(sha256=sha256_file(path), local_path=str(path), license="MIT"),
        layers={"features.0": 4, "features.1": 8}, blocks=("features.0", "features.1"), input_size=32,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_source_classes=3, license="MIT",
        extra={"widths": [4, 8]},
    ))
    yield EDGES
    BACKBONES.unregister(EDGES)


@pytest.fixture(scope="module")
def words_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from transferkit._utils import sha256_file
    from transferkit.backbones import BACKBONES, BackboneConfig, WeightsSource, register_backbone

    d = tmp_path_factory.mktemp("words")
    words = ["good", "great", "fine", "bad", "awful", "poor", "movie", "film", "the", "a"]
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 0.3, size=(len(words), 6)).astype(np.float32)
    vectors[:3, 0] += 2.0  # positive words
    vectors[3:6, 0] -= 2.0  # negative words
    np.save(d / "vectors.npy", vectors)
    pq.write_table(pa.table({"word": words}), d / "index.parquet")
    register_backbone(BackboneConfig(
        name=WORDS, family="word_vectors", architecture="glove", modality="text", description="tiny word vectors",
        weights=WeightsSource(sha256=sha256_file(d / "vectors.npy"), local_path=str(d), is_directory=True,
                              main_file="vectors.npy", license="MIT"),
        layers={"mean": 6}, license="MIT", extra={"index_file": "index.parquet"},
    ))
    yield WORDS
    BACKBONES.unregister(WORDS)


def striped_images(n_per_class: int = 12, seed: int = 3, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Faint horizontal stripes, faint vertical stripes, plain noise: edge filters tell them apart, random
    filters hardly do."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for _ in range(n_per_class):
        for c in range(3):
            phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(4, 8)
            base = [np.sin(2 * np.pi * yy / period + phase), np.sin(2 * np.pi * xx / period + phase), 0 * xx][c]
            images.append(np.clip(127.5 + 25 * base + rng.normal(0, 45, (size, size)), 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(images), np.asarray(labels)


def texts() -> tuple[list[str], np.ndarray]:
    pos = ["good movie", "great film", "a fine film", "the movie was great", "good good film", "a great movie"]
    neg = ["bad movie", "awful film", "a poor film", "the movie was awful", "bad bad film", "a poor movie"]
    return pos + neg, np.asarray(["pos"] * len(pos) + ["neg"] * len(neg))


@pytest.fixture
def striped_folder(tmp_path: Path) -> Path:
    from PIL import Image

    X, y = striped_images(n_per_class=10)
    root = tmp_path / "stripes"
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        d = root / ["horizontal", "vertical", "noise"][label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(d / f"{i:03d}.png")
    return root


run = run_cli


def one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


# ---------------------------------------------------------------------------------------------------------
# candidates


def test_layer_sets_of_the_registry_backbones() -> None:
    from transferkit.backbones import get_config

    mobilenet = get_config("mobilenet_v2")
    # stage ends (width changes) in the deeper half: blocks 11, 14, 17, 18, 19 counted from 1
    assert stage_layers(mobilenet) == ["features.10", "features.13", "features.16", "features.17", "features.18"]
    assert stage_layers(get_config("tf_efficientnet_lite0")) == ["blocks.3", "blocks.4", "blocks.5", "blocks.6", "conv_head"]
    assert stage_layers(get_config("minilm-l6")) == [f"encoder.layer.{i}" for i in range(2, 6)]
    assert stage_layers(get_config("glove-6b-50d")) == ["mean"]
    assert select_layers(mobilenet, "last") == ["features.18"]
    assert select_layers(mobilenet, "all") == list(mobilenet.layers)
    assert select_layers(mobilenet, ["last", "features.3", "features.18"]) == ["features.18", "features.3"]
    with pytest.raises(ConfigError, match="not one of last, stages, all"):
        select_layers(mobilenet, "middle")
    with pytest.raises(UnknownNameError, match="no layer 'features.99'"):
        select_layers(mobilenet, ["features.99"])
    with pytest.raises(ConfigError, match="not a feature layer"):
        select_layers(mobilenet, ["source_probs"])
    assert control_layers(["a", "b", "c", "d", "e"]) == ["c", "e"] and control_layers(["a"]) == ["a"]


def test_candidates_cover_the_modality_with_controls(edges_backbone: str) -> None:
    cands = make_candidates("image", [edges_backbone, "tiny-cnn"], "all")
    assert [c.label for c in cands] == [
        "tiny-edges:features.0", "tiny-edges:features.1", "tiny-edges:features.0 (random init)",
        "tiny-edges:features.1 (random init)", "tiny-cnn:features.0", "tiny-cnn:features.1",
        "tiny-cnn:features.0 (random init)", "tiny-cnn:features.1 (random init)",
    ]
    every = {c.backbone for c in make_candidates("image", None, "last", controls=False)}
    assert {"mobilenet_v2", "tf_efficientnet_lite0", edges_backbone} <= every
    assert not every & {"minilm-l6", "glove-6b-50d"}
    with pytest.raises(DataError, match="takes text input but the data is image"):
        make_candidates("image", "minilm-l6")


# ---------------------------------------------------------------------------------------------------------
# ranking


@pytest.fixture(scope="module")
def ranked(edges_backbone: str, tmp_path_factory: pytest.TempPathFactory) -> Ranking:
    X, y = striped_images()
    with pytest.MonkeyPatch.context() as mp:  # module scope: set up before the per-test isolated cache
        mp.setenv("TRANSFERKIT_CACHE_DIR", str(tmp_path_factory.mktemp("ranked-cache")))
        return rank_candidates(X, y, backbones=[edges_backbone, "tiny-cnn"], layers="all", engine="torch",
                               progress=False, dataset_name="stripes")


def test_ranking_is_sorted_and_the_informative_backbone_wins(ranked: Ranking) -> None:
    assert ranked.score == DEFAULT_SCORE
    values = [r.scores[DEFAULT_SCORE] for r in ranked.results]
    assert values == sorted(values, reverse=True)
    assert [r.rank for r in ranked.results] == list(range(1, 9))
    assert ranked.top.candidate.backbone == EDGES and ranked.results[0] is ranked.top
    # every score is computed and timed for every candidate; LEEP/NCE depend on the backbone only
    for r in ranked.results:
        assert set(r.scores) == {"logme", "leep", "nce", "hscore", "hscore_raw", "ridge_loo"} == set(r.score_s)
        assert all(np.isfinite(v) for v in r.scores.values()) and r.extract_s >= 0
    a, b = ranked.result(EDGES, "features.0"), ranked.result(EDGES, "features.1")
    assert a.scores["leep"] == b.scores["leep"] and a.scores["nce"] == b.scores["nce"]
    assert ranked.result(EDGES, "features.1").scores["leep"] > ranked.result(EDGES, "features.1", False).scores["leep"]
    rec = ranked.recommendation
    assert (rec["backbone"], rec["layer"]) == (ranked.top.candidate.backbone, ranked.top.candidate.layer)
    assert rec["strategy"] == "feature-extraction" and "12 items in the smallest class" in rec["why"]


def test_controls_rank_below_their_pretrained_counterparts(ranked: Ranking) -> None:
    pairs = [p for p in ranked.controls["pairs"] if p["backbone"] == EDGES]
    assert len(pairs) == 2 and ranked.controls["checked"] == 4
    for p in pairs:
        assert p["below"] and p["control_rank"] > p["pretrained_rank"]
        assert p["below_by_score"]["logme"] and p["below_by_score"]["leep"]


def test_ranking_round_trips_through_json(ranked: Ranking) -> None:
    d = json.loads(json.dumps(ranked.to_dict()))
    again = Ranking.from_dict(d)
    assert again.to_dict() == ranked.to_dict()
    with pytest.raises(ConfigError, match="not a transferkit ranking"):
        Ranking.from_dict({"metrics": {}})


def test_a_second_ranking_reads_every_feature_from_the_cache(edges_backbone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from transferkit.extraction import Extractor

    X, y = striped_images()
    first = rank_candidates(X, y, backbones=edges_backbone, layers="all", engine="torch", progress=False)

    def no_network_run(self: Extractor) -> None:
        raise AssertionError(f"{self.config.name}:{self.layer} was computed again instead of read from the cache")

    monkeypatch.setattr(Extractor, "runner", no_network_run)
    second = rank_candidates(X[::-1], y[::-1], backbones=edges_backbone, layers="all", engine="torch", progress=False)
    assert all(r.from_cache == 1.0 for r in second.results)
    assert [r.candidate for r in second.results] == [r.candidate for r in first.results]
    for r in second.results:
        assert r.scores["logme"] == pytest.approx(first.result(r.candidate.backbone, r.candidate.layer,
                                                               r.candidate.pretrained).scores["logme"], rel=1e-9)


def test_leep_and_nce_do_not_apply_to_text(words_backbone: str) -> None:
    X, y = texts()
    ranking = rank_candidates(X, y, backbones=words_backbone, progress=False)
    assert [r.candidate.label for r in ranking.results] == ["tiny-words:mean", "tiny-words:mean (random init)"]
    for r in ranking.results:
        assert r.scores["leep"] is None and r.scores["nce"] is None and r.scores["logme"] is not None
        assert "no source classifier" in r.not_applicable["leep"]
    assert ranking.controls["all_below"]
    with pytest.raises(ConfigError, match="cannot rank by 'leep'.*no source classifier"):
        rank_candidates(X, y, backbones=words_backbone, score="leep", progress=False)


def test_bad_inputs(edges_backbone: str) -> None:
    X, y = striped_images(n_per_class=3)
    with pytest.raises(DataError, match="3 labels"):
        rank_candidates(X, y[:3], backbones=edges_backbone, progress=False)
    with pytest.raises(DataError, match="only 1 item"):
        rank_candidates(X[:4], y[:4], backbones=edges_backbone, progress=False)
    with pytest.raises(UnknownNameError, match="did you mean 'logme'"):
        rank_candidates(X, y, backbones=edges_backbone, score="logmee", progress=False)
    words, labels = texts()
    with pytest.raises(ConfigError, match="takes image input but X holds text"):
        rank_candidates(words, labels, backbones=edges_backbone, progress=False)


# ---------------------------------------------------------------------------------------------------------
# the recommendation rule


def _ranking(rows: list[tuple[str, str, bool, float]], min_per_class: int, last: dict[str, str]) -> Ranking:
    from transferkit.backbones import BackboneConfig, WeightsSource

    results = [CandidateResult(Candidate(b, layer, pre), 8, {"logme": s}, rank=i + 1)
               for i, (b, layer, pre, s) in enumerate(sorted(rows, key=lambda r: -r[3]))]
    ranking = Ranking(results, "logme", ["logme"], {"min_per_class": min_per_class}, {}, {}, {}, {})
    configs = {b: BackboneConfig(name=b, family="smallcnn", architecture="x", modality="image",
                                 weights=WeightsSource(sha256="0"), layers={"mid": 4, last[b]: 8}) for b in last}
    import transferkit.selection.recommendation as R

    original = R.get_config
    R.get_config = lambda name: configs[name]  # type: ignore[assignment]
    try:
        ranking.recommendation = recommend(ranking)
    finally:
        R.get_config = original  # type: ignore[assignment]
    return ranking


def test_recommendation_rule() -> None:
    last = {"a": "last", "b": "last"}
    plain = [("a", "last", True, 1.0), ("a", "mid", True, 0.8), ("b", "last", True, 0.5), ("a", "last", False, 0.0)]
    rec = _ranking(plain, 100, last).recommendation
    assert (rec["backbone"], rec["layer"], rec["strategy"]) == ("a", "last", "feature-extraction")
    assert "frozen last-layer features already suit this data" in rec["why"] and "next a:mid at 0.800" in rec["why"]
    # an intermediate layer clearly above the last one: far from the source → fine-tune, given enough data
    far = [("a", "mid", True, 1.0), ("a", "last", True, 1.0 - 2 * CLEAR_GAP), ("a", "last", False, 0.0)]
    rec = _ranking(far, 100, last).recommendation
    assert (rec["layer"], rec["strategy"]) == ("mid", "fine-tune") and "beats its last layer" in rec["why"]
    rec = _ranking(far, FEW_PER_CLASS - 1, last).recommendation
    assert (rec["layer"], rec["strategy"]) == ("mid", "feature-extraction") and "over-fit" in rec["why"]
    # a small lead is no signal
    near = [("a", "mid", True, 1.0), ("a", "last", True, 1.0 - CLEAR_GAP / 2), ("a", "last", False, 0.0)]
    assert _ranking(near, 100, last).recommendation["strategy"] == "feature-extraction"
    # pretrained no better than random → fine-tune
    dead = [("a", "last", True, 1.0), ("a", "last", False, 1.2), ("b", "last", True, 0.1)]
    rec = _ranking(dead, 500, last).recommendation
    assert rec["backbone"] == "a" and rec["strategy"] == "fine-tune" and "random-init" in rec["why"]


# ---------------------------------------------------------------------------------------------------------
# the `rank` command and `fit --backbone auto`


def test_cli_rank_table_json_and_html(edges_backbone: str, striped_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "rank"
    code, stdout, stderr = run("rank", striped_folder, "--backbones", f"{edges_backbone},tiny-cnn", "--layers", "all",
                               "--engine", "torch", "--out", out, "--no-progress")
    assert code == 0, stderr
    lines = stdout.splitlines()
    first_row = next(ln for ln in lines if "tiny-" in ln and "│" in ln)
    assert "tiny-edges" in first_row and "pretrained" in first_row
    assert "ridge_loo ▼" in stdout and "logme" in stdout and "leep" in stdout and "time" in stdout
    assert "recommendation: tiny-edges at layer" in stdout and "why: tiny-edges:" in stdout
    assert "random-init controls" in stdout
    saved = json.loads((out / "rank.json").read_text())
    assert saved["kind"] == "transferkit-ranking" and len(saved["candidates"]) == 8
    assert saved["recommendation"]["backbone"] == EDGES
    html = (out / "rank.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert 'id="plot-scores"' in html and "not drawn" not in html and "tiny-edges" in html

    code, stdout, stderr = run("rank", striped_folder, "--backbones", edges_backbone, "--no-controls", "--json",
                               "--engine", "torch", "--no-progress")
    assert code == 0, stderr
    d = json.loads(stdout)
    assert [c["control"] for c in d["candidates"]] == [False] and d["controls"]["checked"] == 0


def test_fit_backbone_auto_uses_the_top_candidate_and_rank_plots_fits(
        edges_backbone: str, striped_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "auto"
    code, _, stderr = run("fit", striped_folder, "--backbone", "auto", "--candidates", f"tiny-cnn,{edges_backbone}",
                          "--layer", "all", "--engine", "torch", "--out", model, "--no-progress", "--no-report")
    assert code == 0, stderr
    assert "ranking recommends" in stderr
    results = json.loads((model / "results.json").read_text())
    ranking = results["ranking"]
    top = next(c for c in ranking["candidates"] if not c["control"])
    assert (results["model"]["backbone"], results["model"]["layer"]) == (top["backbone"], top["layer"])
    assert top["backbone"] == EDGES and ranking["recommendation"]["backbone"] == EDGES
    # ranked on the training split only (the held-out test items stay unseen)
    assert ranking["dataset"]["n_items"] == results["dataset"]["n_train"]
    steps = ranking_next_steps(Ranking.from_dict(ranking), "no significant gain")
    assert steps[0].startswith("the ranking's next candidates: `--backbone ")
    # the verdict's next steps come from this ranking: the next pretrained candidates as commands to run
    # (unless transfer already wins), then the recommendation's own advice
    rec = ranking["recommendation"]
    others = [c for c in ranking["candidates"] if not c["control"]
              and (c["backbone"], c["layer"]) != (rec["backbone"], rec["layer"])][:2]
    next_steps = results["verdict"]["next_steps"]
    commands = [f"`--backbone {c['backbone']} --layer {c['layer']}`" for c in others]
    assert others
    if results["verdict"]["verdict"] == "positive transfer":  # the case here: no need to try others
        assert not any(cmd in step for cmd in commands for step in next_steps)
    else:
        assert all(cmd in next_steps[0] for cmd in commands)
    if rec.get("next_step"):
        assert rec["next_step"] in next_steps
    # a pretrained candidate its random-init control matched is named, with its layer
    weak = [p for p in ranking["controls"]["pairs"] if not p["below"]]
    assert weak  # tiny-cnn's "pretrained" weights are themselves a random draw
    assert any(f"random-init {weak[0]['backbone']}" in step and weak[0]["layer"] in step for step in next_steps)

    # a fit of another candidate, then `rank --fits`: score vs accuracy in the report
    other = tmp_path / "other"
    code, _, stderr = run("fit", striped_folder, "--backbone", "tiny-cnn", "--layer", "features.0", "--engine", "torch",
                          "--out", other, "--no-progress", "--no-report")
    assert code == 0, stderr
    out = tmp_path / "rank"
    code, stdout, stderr = run("rank", striped_folder, "--backbones", f"{edges_backbone},tiny-cnn", "--layers", "all",
                               "--engine", "torch", "--fits", f"{model},{other / 'results.json'}", "--out", out,
                               "--scores", "ridge_loo", "--no-progress", "--json")
    assert code == 0, stderr
    fits = json.loads(stdout)["fits"]
    assert [f["candidate"] for f in fits] == [f"{top['backbone']}:{top['layer']}", "tiny-cnn:features.0"]
    assert all(f["accuracy"] is not None and f["rank"] is not None for f in fits)
    html = (out / "rank.html").read_text()
    assert 'id="plot-fits"' in html and 'id="fits"' in html


def test_cli_rank_on_text_drops_the_columns_of_scores_that_apply_to_no_candidate(words_backbone: str,
                                                                                tmp_path: Path) -> None:
    import csv

    X, y = texts()
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *zip(X, y, strict=True)])
    code, stdout, stderr = run("rank", data, "--backbones", words_backbone, "--no-progress")
    assert code == 0, stderr
    header = next(ln for ln in stdout.splitlines() if "backbone" in ln and "layer" in ln)
    assert "ridge_loo" in header and "logme" in header and "leep" not in header and "nce" not in header
    assert "not shown: leep, nce, which apply to no candidate here (tiny-words has no source classifier)" in stdout
    assert "n/a" not in stdout and "source classifier's probabilities" not in stdout


def test_cli_rank_user_errors(edges_backbone: str, striped_folder: Path, tmp_path: Path) -> None:
    one_line_error(*run("rank", tmp_path / "missing")[::2], "does not exist")
    one_line_error(*run("rank", striped_folder, "--backbones", "tiny-edgs")[::2], "did you mean 'tiny-edges'")
    one_line_error(*run("rank", striped_folder, "--backbones", "glove-6b-50d")[::2], "takes text input")
    one_line_error(*run("rank", striped_folder, "--backbones", edges_backbone, "--score", "leap")[::2],
                   "unknown score 'leap'", "did you mean 'leep'")
    one_line_error(*run("rank", striped_folder, "--fits", tmp_path / "nofit")[::2], "no results.json")
    one_line_error(*run("rank", striped_folder, "--backbones", edges_backbone, "--image-size", "4")[::2], "too small")
    code, _, stderr = run("rank", striped_folder, "--layers", "middle")
    assert code == 2 and "middle" in stderr and "Traceback" not in stderr
    one_line_error(*run("fit", striped_folder, "--backbone", "auto", "--layer", "features.1", "--out", tmp_path / "m")[::2],
                   "needs a backbone")
    one_line_error(*run("fit", striped_folder, "--backbone", edges_backbone, "--candidates", "tiny-cnn",
                        "--out", tmp_path / "m")[::2], "use --backbone auto")
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,label\n" + "\n".join(f"{t},{lbl}" for t, lbl in zip(*texts(), strict=True)) + "\n")
    one_line_error(*run("rank", csv_path, "--backbones", "minilm-l6", "--score", "nce")[::2], "no source classifier")
