"""The report's sections of regression, multi-label and multi-task results."""

from __future__ import annotations

from transferkit.evaluation.report import report_html


def _results(**extra):
    return {"metrics": {"accuracy": 0.9, "n": 10}, "baseline": {"name": "b", "metrics": {"accuracy": 0.8}},
            "verdict": {"verdict": "positive transfer", "gain": 0.1, "ci_low": 0.05, "ci_high": 0.15}, **extra}


def test_regression_report_has_the_residual_plot() -> None:
    html = report_html(_results(residuals={"true": [1.0, 2.0, 3.0, 4.0], "predicted": [1.1, 1.8, 3.3, 3.9]}))
    assert 'id="residuals"' in html and "data:image/png;base64," in html.split('id="residuals"')[1]
    assert 'id="residuals"' not in report_html(_results())  # no residuals: no section


def test_multi_label_report_has_the_per_tag_table() -> None:
    per = {"<red>": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4}}
    html = report_html(_results(metrics={"f1_micro": 0.7, "per_label": per},
                                baseline={"name": "b", "metrics": {"per_label": {"<red>": {"f1": 0.5}}}}))
    section = html.split('id="per-label"')[1].split("</section>")[0]
    assert "&lt;red&gt;" in section and "<red>" not in section and "0.667" in section and "0.500" in section


def test_multi_task_report_says_per_task_whether_sharing_helped() -> None:
    tasks = {"digit": {"accuracy": 0.9, "labels": ["0", "1"], "confusion_matrix": [[4, 1], [0, 5]]},
             "par<i>ty": {"accuracy": 0.95, "labels": ["even", "odd"], "confusion_matrix": [[5, 0], [1, 4]]}}
    single = {"digit": {"sharing": "hurt", "single_task_accuracy": 0.97, "ci_low": -0.12, "ci_high": -0.01},
              "par<i>ty": {"sharing": "helped", "single_task_accuracy": 0.9, "ci_low": 0.01, "ci_high": 0.09}}
    epochs = [{"epoch": e, "train_w_digit": 1.0 / e, "train_w_par<i>ty": 1.0} for e in (1, 2, 3)]
    html = report_html(_results(metrics={"accuracy": 0.92, "tasks": tasks}, single_task=single,
                                history={"epochs": epochs}))
    table = html.split('id="tasks"')[1].split("</section>")[0]
    assert '<span class="neg">hurt</span>' in table and '<span class="pos">helped</span>' in table
    assert "par&lt;i&gt;ty" in table and "<i>" not in table
    assert html.split('id="task-confusion"')[1].split("</section>")[0].count("<img") == 2
    assert 'id="task-weights"' in html
