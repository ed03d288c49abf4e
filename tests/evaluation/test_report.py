"""The HTML report of a fit: self-contained, escaped, graceful without optional sections, written atomically;
sections contributed by a strategy (fine-tuning's learning curves, a plug-in's own template) appear in it."""

from __future__ import annotations

import base64
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib._pylab_helpers import Gcf

from transferkit.evaluation import plots, report
from transferkit.evaluation.page import Section, figure, template
from transferkit.evaluation.report import render_report, report_html
from transferkit.exceptions import ConfigError
from transferkit.strategies.fine_tuning.report import training_sections

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
PLOT_FUNCTIONS = ("confusion_matrix_png", "per_class_f1_png", "comparison_bars_png", "projection_png",
                  "learning_curves_png")
# optional key of results -> an id that is in the report only when the key is
SECTION_IDS = {
    "dataset": "dataset",
    "model": "model",
    "baseline": "plot-summary",
    "verdict": "verdict",
    "timings": "timings",
    "projection": "plot-projection",
    "comparison": "comparison",
}


def _metrics(labels: list[str], cm: list[list[int]]) -> dict[str, Any]:
    m = np.asarray(cm, dtype=float)
    tp = np.diag(m)
    precision = np.divide(tp, m.sum(axis=0), out=np.zeros_like(tp), where=m.sum(axis=0) > 0)
    recall = np.divide(tp, m.sum(axis=1), out=np.zeros_like(tp), where=m.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return {
        "accuracy": float(tp.sum() / m.sum()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "n": int(m.sum()),
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(m[i].sum())}
            for i, c in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": cm,
    }


def make_results(labels: list[str] | None = None) -> dict[str, Any]:
    labels = list(labels or CLASSES)
    k = len(labels)
    rng = np.random.default_rng(0)
    cm = (np.eye(k, dtype=int) * 20 + rng.integers(0, 4, size=(k, k))).tolist()
    cm_base = (np.eye(k, dtype=int) * 15 + rng.integers(0, 6, size=(k, k))).tolist()
    points = (rng.normal(size=(80, 2)) + np.repeat(np.arange(k), 80 // k + 1)[:80, None] * 4).tolist()
    point_labels = [labels[i % k] for i in np.repeat(np.arange(k), 80 // k + 1)[:80]]
    return {
        "transferkit_version": "0.1.0",
        "created": "2026-11-23T12:00:00Z",
        "dataset": {"name": "fashion-mnist-sample", "modality": "image", "n_items": 300, "n_train": 200,
                    "n_test": 100, "classes": labels, "class_counts": {c: 75 for c in labels}},
        "model": {"backbone": "mobilenet_v2", "layer": "features.18", "head": "logreg",
                  "head_params": {"C": 0.01, "selected_by": "5-fold CV on log-loss"},
                  "strategy": "feature-extraction", "image_size": 224, "engine": "onnx",
                  "weights_id": "b03531" + "0" * 58},
        "metrics": _metrics(labels, cm),
        "baseline": {"name": "raw-pixel logistic regression", "description": "pixels to logistic regression",
                     "metrics": _metrics(labels, cm_base)},
        "verdict": {"verdict": "positive transfer", "gain": 0.05, "ci_low": 0.03, "ci_high": 0.07,
                    "confidence": 0.95, "metric": "accuracy",
                    "method": "paired bootstrap over test items (2000 resamples)",
                    "explanation": "Transfer helps on this data.",
                    "next_steps": ["rank other backbones with `transferkit rank`", "try fine-tuning"]},
        "timings": {"extract_s": 12.3, "head_s": 4.5, "baseline_s": 3.2, "total_s": 20.0},
        "projection": {"method": "PCA (50) → t-SNE", "points": points, "labels": point_labels},
        "history": {"stage_boundary": 2, "epochs": [
            {"epoch": e, "stage": 1 if e <= 2 else 2, "train_loss": 1.0 / e, "val_loss": 1.1 / e + 0.02 * e,
             "train_acc": 1 - 0.5 / e, "val_acc": 0.95 - 0.5 / e} for e in range(1, 7)]},
        "comparison": [
            {"strategy": "feature-extraction", "backbone": "mobilenet_v2", "accuracy": 0.83, "f1_macro": 0.82,
             "time_s": 20.0},
            {"strategy": "fine-tune", "backbone": "mobilenet_v2", "accuracy": 0.86, "f1_macro": 0.85,
             "time_s": 412.0},
        ],
    }


def _tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(
        b"IEND", b"")


@pytest.fixture
def fake_plots(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Replace the (slow) plot functions by ones returning a 1×1 PNG; counts the calls."""
    calls = {name: 0 for name in PLOT_FUNCTIONS}

    def fake(name: str) -> Any:
        def draw(*args: Any, **kwargs: Any) -> bytes:
            calls[name] += 1
            return _tiny_png()

        return draw

    for name in PLOT_FUNCTIONS:
        monkeypatch.setattr(plots, name, fake(name))
    return calls


@pytest.fixture(scope="module")
def full_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real report (real plots) of a complete results dict, rendered once for this module."""
    path = tmp_path_factory.mktemp("report") / "model" / "report.html"
    results = make_results()
    out = render_report(results, path, sections=training_sections(results))  # what a fine-tuning fit writes
    assert out == path
    return path.read_text(encoding="utf-8")


class _Checker(HTMLParser):
    """Collects tags, attributes and ids, and checks that non-void elements are properly nested."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr", "area", "base", "embed"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: list[str] = []
        self.errors: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _parse(document: str) -> _Checker:
    checker = _Checker()
    checker.feed(document)
    checker.close()
    return checker


# --------------------------------------------------------------------------------------------------------
# the full report


def test_full_report_is_valid_self_contained_html(full_html: str) -> None:
    doc = _parse(full_html)
    assert doc.doctype.lower() == "doctype html"
    assert doc.errors == [] and doc.stack == []
    assert len(doc.ids) == len(set(doc.ids)), "ids must be unique"
    assert '<meta charset="utf-8">' in full_html
    lowered = full_html.lower()
    for forbidden in ('src="http', "<link", "<script", "@import", "url(", "http://", "https://"):
        assert forbidden not in lowered, forbidden
    images = [attrs for tag, attrs in doc.tags if tag == "img"]
    assert len(images) == 5  # confusion, per-class F1, baseline vs transfer, projection, learning curves
    prefix = "data:image/png;base64,"
    for attrs in images:
        src = str(attrs["src"])
        assert src.startswith(prefix)
        png = base64.b64decode(src[len(prefix):], validate=True)
        assert png.startswith(PNG_SIGNATURE)
        assert attrs.get("alt") and attrs.get("width") and attrs.get("height")


def test_sections_appear_in_order(full_html: str) -> None:
    order = ["header", "verdict", "dataset", "model", "metrics", "plot-confusion", "plot-per-class-f1",
             "plot-summary", "plot-projection", "plot-history", "comparison", "per-class", "timings", "footer"]
    positions = [full_html.index(f'id="{section}"') for section in order]
    assert positions == sorted(positions)


def test_header_verdict_and_tables(full_html: str) -> None:
    assert "<h1>fashion-mnist-sample</h1>" in full_html
    assert "23 Nov 2026, 12:00 UTC" in full_html
    assert 'class="badge badge-positive">Positive transfer<' in full_html
    assert "+5.0 points accuracy over raw-pixel logistic regression (95% CI +3.0 to +7.0)" in full_html
    assert "<code>transferkit rank</code>" in full_html  # backticks in next steps
    assert "Transfer helps on this data." in full_html
    for name in ("Accuracy", "Macro precision", "Macro recall", "Macro F1"):
        assert f'<th scope="row">{name}</th>' in full_html
    for name in CLASSES:
        assert f'<th scope="row">{name}</th>' in full_html  # per-class table
    assert "Feature extraction" in full_html and "20.0 s" in full_html  # timings
    assert "6 min 52 s" in full_html  # comparison time
    assert 'class="tag">this run<' in full_html
    assert "Generated by transferkit 0.1.0" in full_html


@pytest.mark.parametrize(("verdict", "gain", "lo", "hi", "badge", "sentence"), [
    ("positive transfer", 0.05, 0.03, 0.07, "positive",
     "+5.0 points accuracy over raw-pixel logistic regression (95% CI +3.0 to +7.0)"),
    ("no significant gain", 0.004, -0.011, 0.02, "neutral",
     "+0.4 points accuracy over raw-pixel logistic regression (95% CI \u22121.1 to +2.0)"),
    ("negative transfer", -0.062, -0.09, -0.031, "negative",
     "\u22126.2 points accuracy relative to raw-pixel logistic regression (95% CI \u22129.0 to \u22123.1)"),
])
def test_verdict_badge_and_gain_in_words(fake_plots: dict[str, int], verdict: str, gain: float, lo: float,
                                         hi: float, badge: str, sentence: str) -> None:
    results = make_results()
    results["verdict"].update(verdict=verdict, gain=gain, ci_low=lo, ci_high=hi)
    document = report_html(results)
    assert f'class="badge badge-{badge}">{verdict.capitalize()}<' in document
    assert f'<section class="verdict verdict-{badge}" id="verdict">' in document
    assert sentence in document


# --------------------------------------------------------------------------------------------------------
# escaping


def test_user_strings_are_escaped(fake_plots: dict[str, int]) -> None:
    evil = '<script>alert("x")</script>'
    results = make_results(["cat", evil, "a & b", 'quote"d'])
    results["dataset"]["name"] = "<b>data</b>"
    results["baseline"]["name"] = "<i>base</i>"
    results["verdict"]["explanation"] = "<img src=x onerror=alert(1)>"
    results["verdict"]["next_steps"] = ["<script>steal()</script> `<b>`"]
    results["comparison"][0]["strategy"] = "<u>s</u>"
    results["projection"]["labels"][0] = evil
    results["history"]["stages"] = [{"name": evil, "lr": 1e-3, "max_epochs": 2, "epochs_run": 2, "best_epoch": 2}]
    document = report_html(results, sections=training_sections(results))
    assert "<script" not in document.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in document
    for raw in ("<b>data", "<i>base", "<img src=x", "<u>s", "<b>`"):
        assert raw not in document
    assert "&lt;b&gt;data&lt;/b&gt;" in document and "a &amp; b" in document and "quote&quot;d" in document
    doc = _parse(document)
    assert doc.errors == [] and doc.stack == []
    assert [tag for tag, _ in doc.tags].count("img") == 5


def test_class_names_that_look_like_markup_or_tex_draw(tmp_path: Path) -> None:
    names = ['<script>alert("x")</script>', "$5 bill", r"$\frac$", "_hidden", "x" * 80]
    results = make_results(names)
    render_report(results, tmp_path / "report.html")  # real plots: mathtext off, long names shortened
    assert "&lt;script&gt;" in (tmp_path / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------------
# optional sections


@pytest.mark.parametrize("key", sorted(SECTION_IDS))
def test_optional_section_only_when_key_present(fake_plots: dict[str, int], key: str) -> None:
    full = make_results()
    marker = f'id="{SECTION_IDS[key]}"'
    assert marker in report_html(full)
    only = {"metrics": full["metrics"], key: full[key]}
    assert marker in report_html(only)
    for missing in ({k: v for k, v in full.items() if k != key}, {**full, key: None}):
        assert marker not in report_html(missing)


def test_minimal_results_render(tmp_path: Path) -> None:
    full = make_results()
    out = render_report({"metrics": full["metrics"]}, str(tmp_path / "report.html"))
    document = out.read_text(encoding="utf-8")
    doc = _parse(document)
    assert doc.errors == [] and doc.stack == []
    assert 'id="metrics"' in document and 'id="plot-confusion"' in document and 'id="per-class"' in document
    for absent in ("verdict", "plot-summary", "plot-projection", "plot-history", "comparison", "timings",
                   "dataset", "model"):
        assert f'id="{absent}"' not in document
    assert "<h1>Fit report</h1>" in document
    assert "Generated by transferkit" in document


@pytest.mark.parametrize("metrics", [
    {"accuracy": 0.8},
    {"accuracy": None, "f1_macro": float("nan"), "per_class": None, "labels": None, "confusion_matrix": None},
    {"accuracy": 0.8, "per_class": {"a": {"f1": None}, "b": {}}, "labels": ["a", "b"]},
])
def test_sparse_metrics_render(fake_plots: dict[str, int], metrics: dict[str, Any]) -> None:
    results = {key: None for key in SECTION_IDS} | {"metrics": metrics}
    document = report_html(results)
    assert 'id="metrics"' in document
    assert _parse(document).errors == []


def test_malformed_plot_data_leaves_a_note() -> None:
    results = make_results()
    results["metrics"]["confusion_matrix"] = [[1, 2], [3, 4]]  # 2×2 for 4 labels
    results["projection"]["labels"] = results["projection"]["labels"][:-1]  # one label short
    results["history"]["epochs"] = [{"epoch": 1}]  # nothing to draw
    document = report_html(results, sections=training_sections(results))  # real plots: they validate their input
    assert document.count('class="plot missing"') == 3
    assert "Confusion matrix not drawn: confusion_matrix has shape (2, 2) but there are 4 labels" in document
    assert 'id="metrics"' in document and 'id="per-class"' in document


@pytest.mark.parametrize("results", [None, [], {"dataset": {}}, {"metrics": None}, {"metrics": [0.8]}])
def test_results_without_metrics_are_rejected(results: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metrics|dictionary"):
        render_report(results, tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


# --------------------------------------------------------------------------------------------------------
# atomic write


def test_failure_while_rendering_leaves_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   fake_plots: dict[str, int]) -> None:
    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")

    def boom(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "projection_png", boom)
    with pytest.raises(RuntimeError, match="plotting failed"):
        render_report(make_results(), path)
    assert path.read_text(encoding="utf-8") == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_failure_while_writing_leaves_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 fake_plots: dict[str, int]) -> None:
    import transferkit._utils as utils

    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")

    def no_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(utils.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk full"):
        render_report(make_results(), path)
    assert path.read_text(encoding="utf-8") == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_render_replaces_existing_report(tmp_path: Path, fake_plots: dict[str, int]) -> None:
    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")
    results = make_results()
    render_report(results, path, sections=training_sections(results))
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert all(n == 1 for n in fake_plots.values()), fake_plots


# --------------------------------------------------------------------------------------------------------
# plots


def _size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def test_plots_are_deterministic_png_and_leak_no_figures() -> None:
    results = make_results()
    m, b = results["metrics"], results["baseline"]["metrics"]
    draws = {
        "confusion": lambda: plots.confusion_matrix_png(m["confusion_matrix"], m["labels"]),
        "f1": lambda: plots.per_class_f1_png(m["labels"], [m["per_class"][c]["f1"] for c in m["labels"]],
                                             [b["per_class"][c]["f1"] for c in m["labels"]]),
        "bars": lambda: plots.comparison_bars_png(m, b, gain=0.05, ci=(0.03, 0.07), confidence=0.95,
                                                  verdict="positive transfer"),
        "projection": lambda: plots.projection_png(results["projection"]["points"], results["projection"]["labels"]),
        "curves": lambda: plots.learning_curves_png(results["history"]["epochs"], 2),
    }
    before = Gcf.get_num_fig_managers()
    for name, draw in draws.items():
        first, second = draw(), draw()
        assert first.startswith(PNG_SIGNATURE), name
        assert first == second, f"{name} is not deterministic"
    assert Gcf.get_num_fig_managers() == before


def test_plots_ignore_the_users_matplotlib_style() -> None:
    m = make_results()["metrics"]
    reference = plots.confusion_matrix_png(m["confusion_matrix"], m["labels"])
    with matplotlib.rc_context({"axes.facecolor": "black", "font.size": 20, "figure.dpi": 30}):
        assert plots.confusion_matrix_png(m["confusion_matrix"], m["labels"]) == reference
        assert matplotlib.rcParams["axes.facecolor"] == "black"  # and leave it as it was


def test_confusion_matrix_grows_with_classes_but_fits_the_page() -> None:
    sizes = {}
    for n in (3, 50):
        labels = [f"class number {i} with a long name" for i in range(n)]
        cm = (np.eye(n, dtype=int) * 10 + 1).tolist()
        sizes[n] = _size(plots.confusion_matrix_png(cm, labels))
    assert sizes[50][0] > 1.8 * sizes[3][0] and sizes[50][1] > 1.8 * sizes[3][1]
    # shown at 100 CSS px per inch: 50 classes still fit the report's 1168 px column without scaling down
    assert sizes[50][0] * 100 / plots.DPI < 1168


def test_projection_legend_is_capped() -> None:
    rng = np.random.default_rng(0)
    labels = [f"c{i % 30}" for i in range(300)]
    png = plots.projection_png(rng.normal(size=(300, 2)).tolist(), labels)
    assert png.startswith(PNG_SIGNATURE)
    assert len(plots.class_colors(30)) == 30 and len(set(plots.class_colors(30))) == 30


@pytest.mark.parametrize(("epochs", "boundary", "expected"), [
    ([{"epoch": e, "stage": 1 if e <= 4 else 2} for e in range(1, 9)], None, [4.5]),
    ([{"epoch": e, "stage": 1 if e <= 4 else 2} for e in range(1, 9)], 7, [4.5]),  # stages win
    ([{"epoch": e} for e in range(1, 9)], 4, [4.5]),
    ([{"epoch": e} for e in range(1, 9)], None, []),
])
def test_stage_boundary_line(epochs: list[dict[str, Any]], boundary: int | None, expected: list[float]) -> None:
    x = np.array([e["epoch"] for e in epochs], dtype=float)
    assert plots._stage_lines(epochs, x, boundary) == expected


@pytest.mark.parametrize(("call", "message"), [
    (lambda: plots.confusion_matrix_png([[1, 2, 3]], ["a"]), "shape"),
    (lambda: plots.confusion_matrix_png([[1, "x"], [1]], ["a", "b"]), "square"),
    (lambda: plots.per_class_f1_png(["a", "b"], [0.5]), "same length"),
    (lambda: plots.projection_png([[0, 0, 0]], ["a"]), r"\[x, y\]"),
    (lambda: plots.learning_curves_png([]), "at least one epoch"),
])
def test_plots_reject_bad_input(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_report_module_exports() -> None:
    assert {"render_report", "report_html", "Section", "figure", "template"} <= set(report.__all__)


# --------------------------------------------------------------------------------------------------------
# sections contributed by a strategy (or any caller)

EVIL = '<script>alert("x")</script>'


def test_contributed_sections_follow_the_plots_with_their_own_template_and_css(fake_plots: dict[str, int]) -> None:
    own = template('{% from "macros.html.j2" import table %}<p class="mine">{{ who }} · {{ n | pct }}</p>'
                   '{{ table(["name", "value"], rows) }}')
    sections = [Section("mine", "My strategy", template=own, context={"who": "centroids", "n": 0.5,
                                                                      "rows": [["a", "1"], ["b", "2"]]},
                        intro="What the strategy saw.", css=".mine { color: #123456; }"),
                Section("plain", "Plain text", body="just text")]
    document = report_html(make_results(), sections=sections)
    doc = _parse(document)
    assert doc.errors == [] and doc.stack == [] and len(doc.ids) == len(set(doc.ids))
    assert '<p class="mine">centroids · 50.0%</p>' in document
    assert "<td>a</td>" in document and '<p class="intro">What the strategy saw.</p>' in document
    assert ".mine { color: #123456; }" in document.split("</style>")[0]  # the section's CSS is in the page's <style>
    order = ["plot-projection", "mine", "plain", "comparison", "per-class"]
    positions = [document.index(f'id="{i}"') for i in order]
    assert positions == sorted(positions)


def test_hostile_strings_in_contributed_sections_are_escaped(fake_plots: dict[str, int]) -> None:
    own = template("<p>{{ value }}</p><p>{{ value | code_spans }}</p>")
    sections = [Section("ctx", EVIL, template=own, context={"value": EVIL + " `x`"}, intro=EVIL),
                Section("body", "Body", body=EVIL),
                Section("fig", "Figure", template=template("{{ f }}"),
                        context={"f": figure("plot-x", plots.projection_png, EVIL, caption=EVIL)})]
    document = report_html(make_results(), sections=sections)
    assert "<script" not in document.lower()
    assert document.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 6  # title, intro, 2×ctx, body, fig
    assert "<code>x</code>" in document  # backticks still become code, inside escaped text
    assert _parse(document).errors == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"id": 'x" onload="y', "title": "t", "body": "b"}, "HTML id"),
    ({"id": "x", "title": "t"}, "exactly one of body= and template="),
    ({"id": "x", "title": "t", "body": "b", "template": "plots.html.j2"}, "exactly one of"),
    ({"id": "x", "title": "t", "body": "b", "css": "</style><script>"}, "style rules only"),
])
def test_bad_sections_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Section(**kwargs)


def test_duplicate_or_foreign_sections_are_refused(fake_plots: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="duplicate ids"):
        report_html(make_results(), sections=[Section("metrics", "Again", body="x")])
    with pytest.raises(ConfigError, match="must be transferkit.evaluation.report.Section"):
        report_html(make_results(), sections=["<b>raw html</b>"])  # type: ignore[list-item]


def test_fine_tuning_contributes_learning_curves_and_stages(fake_plots: dict[str, int]) -> None:
    from transferkit.strategies.fine_tuning.strategy import FineTuning

    results = make_results()
    results["history"]["stages"] = [
        {"name": "head", "lr": 0.003, "max_epochs": 10, "epochs_run": 2, "best_epoch": 2},
        {"name": "fine-tune", "lr": 0.0003, "max_epochs": 8, "epochs_run": 4, "best_epoch": 5}]
    sections = FineTuning.report_sections(None, results)  # type: ignore[arg-type]  # reads only results
    document = report_html(results, sections=sections)
    assert 'id="training"' in document and 'id="plot-history"' in document and fake_plots["learning_curves_png"] == 1
    assert "<td>fine-tune</td><td class=\"num\">0.0003</td>" in document
    assert 'id="plot-history"' not in report_html(results)  # the generic report does not draw them itself
    for missing in ({k: v for k, v in results.items() if k != "history"}, {**results, "history": None},
                    {**results, "history": {"epochs": []}}):
        assert FineTuning.report_sections(None, missing) == []  # type: ignore[arg-type]
