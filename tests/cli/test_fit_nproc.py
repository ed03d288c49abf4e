"""`transferkit fit --nproc N`: the options are checked before any process starts, and the command reruns
itself under torchrun as N processes that train one model (rank 0 writes --out, the other ranks stay quiet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit.cli import app
from transferkit.cli.train import _without_nproc
from transferkit.training.distributed import torchrun_command

runner = CliRunner()


def _cli(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--nproc", "0", "--strategy", "fine-tune"], "--nproc 0 is not allowed; give 1 or more processes"),
    (["--nproc", "2"], "--nproc trains a network in several processes; strategy feature-extraction trains no network"),
    (["--nproc", "2", "--strategy", "fine-tune", "--batch-size", "15"],
     "--batch-size 15 is the global batch and must split evenly over 2 processes; use a multiple of 2"),
])
def test_bad_nproc_options_fail_in_one_line_before_any_process_starts(image_folder: Path, tmp_path: Path,
                                                                      args: list[str], message: str) -> None:
    code, err = _cli("fit", image_folder, "--out", tmp_path / "m", *args)
    assert code == 2 and message in err and err.strip().count("\n") == 0
    assert not (tmp_path / "m").exists()


def test_the_relaunch_command_is_torchrun_on_the_same_command_line_without_nproc() -> None:
    args = ["fit", "d/", "--nproc", "2", "--strategy", "fine-tune", "--nproc=2", "--out", "m/"]
    assert _without_nproc(args) == ["fit", "d/", "--strategy", "fine-tune", "--out", "m/"]
    cmd = torchrun_command(2, ["fit", "d/"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--nproc-per-node=2" in cmd and cmd[-4:] == ["-m", "transferkit", "fit", "d/"]


@pytest.mark.slow
def test_fit_in_two_processes_writes_one_model_with_the_single_process_figures(image_folder: Path,
                                                                               tmp_path: Path) -> None:
    # 24 training items in global batches of 8: every rank takes 4 items a step, no padded batch; no dropout,
    # no augmentation (per-rank random draws): the two runs compute the same updates up to float rounding
    common = ["fit", str(image_folder), "--backbone", "mobilenet_v2", "--image-size", "32", "--strategy", "fine-tune",
              "--epochs", "1", "--head-epochs", "2", "--batch-size", "8", "--augment", "none", "--fine-tune-param",
              "dropout=0", "--no-compare", "--no-report", "--no-progress", "--json"]
    one = runner.invoke(app, [*common, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "transferkit", *common, "--out", str(tmp_path / "two"), "--nproc", "2"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("training mobilenet_v2 with fine-tune") == 1  # rank 1 is quiet
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    r1, r2 = json.loads(one.stdout), json.loads(two.stdout)  # rank 0 alone prints the results
    assert r1["history"]["processes"] == 1 and r2["history"]["processes"] == 2
    assert r2["history"]["batch_size"] == r1["history"]["batch_size"] == 8  # the global batch
    np.testing.assert_allclose([e["train_loss"] for e in r2["history"]["epochs"]],
                               [e["train_loss"] for e in r1["history"]["epochs"]], rtol=1e-3)
    assert r2["metrics"]["accuracy"] == r1["metrics"]["accuracy"]
