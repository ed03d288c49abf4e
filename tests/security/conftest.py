"""Shared by the security tests: one fitted tiny model folder, and a helper that rewrites a folder's
``model.json`` the way an attacker would (with a manifest that matches it, so the hash check passes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..conftest import make_images


@pytest.fixture(scope="module")
def saved_model(tiny_backbone: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transferkit import TransferClassifier

    X, y = make_images(6)
    return TransferClassifier(tiny_backbone, cache=False, progress=False).fit(X, y).save(
        tmp_path_factory.mktemp("model") / "m")


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite(folder: Path, doc: Any, *, raw: str | None = None) -> None:
    """Replace ``model.json`` (with ``doc`` as JSON, or ``raw`` text) and re-sign it in the manifest."""
    from transferkit._utils import sha256_file

    (folder / "model.json").write_text(raw if raw is not None else json.dumps(doc), encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.json"] = {"sha256": sha256_file(folder / "model.json"),
                                       "bytes": (folder / "model.json").stat().st_size}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (relative), to compare before and after."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}
