"""Embeddings to Parquet / .npy: schema and metadata, readable by pandas and pyarrow, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import make_images
from transferkit.exceptions import ConfigError
from transferkit.extraction import Extractor
from transferkit.extraction.writer import read_metadata, write_embeddings


def _rows(path: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(path)
    dim = table.schema.field("embedding").type.list_size
    flat = table.column("embedding").combine_chunks().flatten().to_numpy()
    return table.column("id").to_pylist(), flat.reshape(-1, dim)


def test_parquet_schema_metadata_and_values(tiny_backbone: str, tiny_images, tmp_path: Path) -> None:
    X, y = tiny_images
    extractor = Extractor(tiny_backbone, cache=False, show_progress=False)
    out = tmp_path / "emb.parquet"
    summary = write_embeddings(extractor, X, out, labels=list(y), chunk_size=16)
    assert summary["rows"] == len(X) == summary["computed"] and summary["skipped"] == 0
    schema = pq.read_schema(out)
    assert schema.names == ["id", "label", "embedding"]
    assert schema.field("embedding").type == pa.list_(pa.float32(), extractor.feature_dim)
    assert pq.ParquetFile(out).num_row_groups == -(-len(X) // 16)  # one row group per chunk
    meta = read_metadata(out)
    assert meta["backbone"] == tiny_backbone and meta["layer"] == extractor.layer and meta["dim"] == 8
    assert meta["weights"] == extractor.identity()["weights"] and "preprocessing" in meta
    ids, emb = _rows(out)
    assert ids == [str(i) for i in range(len(X))]
    np.testing.assert_array_equal(emb, Extractor(tiny_backbone, cache=False, show_progress=False).extract(X))
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # parts folder and temp file gone

    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["id", "label", "embedding"] and len(frame) == len(X)
    np.testing.assert_array_equal(np.stack(frame["embedding"].to_numpy()), emb)
    assert frame["label"].tolist() == [str(v) for v in y]


def test_npy_output_and_sidecar(tiny_backbone: str, tiny_images, tmp_path: Path) -> None:
    X, _ = tiny_images
    extractor = Extractor(tiny_backbone, cache=False, show_progress=False)
    out = tmp_path / "emb.npy"
    write_embeddings(extractor, X, out, chunk_size=25)
    emb = np.load(out)
    assert emb.dtype == np.float32 and emb.shape == (len(X), 8)
    np.testing.assert_array_equal(emb, extractor.extract(X))
    side = json.loads((tmp_path / "emb.ids.json").read_text())
    assert side["ids"] == [str(i) for i in range(len(X))] and side["labels"] is None
    assert read_metadata(out)["backbone"] == tiny_backbone


def test_rerun_appends_only_new_items_and_refuses_other_features(tiny_backbone: str, tiny_images,
                                                                 tmp_path: Path) -> None:
    X, _ = tiny_images
    out = tmp_path / "emb.parquet"
    extractor = Extractor(tiny_backbone, cache=False, show_progress=False)
    write_embeddings(extractor, X[:30], out, ids=[f"a{i}" for i in range(30)])
    again = write_embeddings(extractor, X[:30], out, ids=[f"a{i}" for i in range(30)])
    assert again == {**again, "rows": 30, "computed": 0, "skipped": 30}
    more = write_embeddings(extractor, X, out, ids=[f"a{i}" for i in range(len(X))])
    assert more["rows"] == len(X) and more["computed"] == len(X) - 30
    ids, emb = _rows(out)
    assert ids == [f"a{i}" for i in range(len(X))]
    np.testing.assert_array_equal(emb, extractor.extract(X))
    with pytest.raises(ConfigError, match="made differently.*layer"):
        write_embeddings(Extractor(tiny_backbone, "features.0", cache=False, show_progress=False), X, out)
    with pytest.raises(ConfigError, match="suffix '.csv'"):
        write_embeddings(extractor, X, tmp_path / "emb.csv")


_CHILD = """
import sys, numpy as np
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.conftest import TINY_NAME
from transferkit._utils import sha256_file
from transferkit.backbones import BackboneConfig, WeightsSource, register_backbone
w = {weights!r}
register_backbone(BackboneConfig(name=TINY_NAME, family="smallcnn", architecture="smallcnn", modality="image",
    description="tiny", weights=WeightsSource(sha256=sha256_file(w), local_path=w, license="MIT"),
    layers={{"features.0": 4, "features.1": 8}}, blocks=("features.0", "features.1"), input_size=32,
    mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_source_classes=5, license="MIT",
    extra={{"widths": [4, 8]}}))
from transferkit.extraction import Extractor
from transferkit.extraction.writer import write_embeddings
X = np.load({data!r})
print(write_embeddings(Extractor(TINY_NAME, cache=False, show_progress=False), X, {out!r}, chunk_size=8))
"""


def test_resume_after_kill_9_keeps_every_item_exactly_once(tiny_backbone: str, tiny_weights: Path,
                                                           tmp_path: Path) -> None:
    X, _ = make_images(n_per_class=400)  # 1,200 images in 150 parts of 8
    data, out = tmp_path / "x.npy", tmp_path / "emb.parquet"
    np.save(data, X)
    root = str(Path(__file__).resolve().parents[2])
    script = _CHILD.format(root=root, weights=str(tiny_weights), data=str(data), out=str(out))
    env = {**os.environ, "PYTHONPATH": root}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parts = tmp_path / ".emb.parquet.parts"
    while child.poll() is None and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not out.exists(), "the run finished before it was killed; the test needs it killed mid-run"
    kept = len(list(parts.glob("part-*.parquet")))
    assert 3 <= kept < 150
    extractor = Extractor(tiny_backbone, cache=False, show_progress=False)
    summary = write_embeddings(extractor, X, out, chunk_size=8)
    assert summary["skipped"] == 8 * kept and summary["computed"] == len(X) - 8 * kept
    ids, emb = _rows(out)
    assert ids == [str(i) for i in range(len(X))]  # every item exactly once, in order
    np.testing.assert_allclose(emb, extractor.extract(X), atol=1e-6)


def test_feature_extractor_writes_the_same_embeddings_as_transform(tiny_backbone: str, tiny_images,
                                                                   tmp_path: Path) -> None:
    from transferkit.estimators import FeatureExtractor

    X, y = tiny_images
    fe = FeatureExtractor(tiny_backbone, cache=False, progress=False)
    summary = fe.write_embeddings(X, tmp_path / "emb.parquet", y, chunk_size=20)
    assert summary["rows"] == len(X)
    ids, emb = _rows(tmp_path / "emb.parquet")
    np.testing.assert_allclose(emb, fe.transform(X), atol=1e-6)
    assert pq.read_table(tmp_path / "emb.parquet").column("label").to_pylist() == [str(v) for v in y]


@pytest.mark.parametrize("appending", [False, True])
def test_npy_killed_between_the_array_and_its_sidecar_recovers(tiny_backbone: str, tiny_images, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               appending: bool) -> None:
    """The .npy and .ids.json are renamed into place one after the other; the process dies between the two
    (the sidecar's write raises, as a kill there would stop it). The rerun rebuilds the sidecar from the
    parts left behind and the result equals an uninterrupted run."""
    from transferkit.extraction import writer

    X, y = tiny_images
    labels = [str(v) for v in y]
    extractor = Extractor(tiny_backbone, cache=False, show_progress=False)
    want = tmp_path / "want.npy"
    write_embeddings(extractor, X, want, labels=labels, chunk_size=8)
    out = tmp_path / "emb.npy"
    if appending:  # an earlier run wrote the first half; this one adds the rest
        write_embeddings(extractor, X[:20], out, labels=labels[:20], chunk_size=8)
    real = writer.atomic_write_json

    def killed_at_the_sidecar(path: Path, doc: object) -> None:
        if Path(path).name.endswith(".ids.json"):
            raise KeyboardInterrupt  # the process stops here
        real(path, doc)

    monkeypatch.setattr(writer, "atomic_write_json", killed_at_the_sidecar)
    with pytest.raises(KeyboardInterrupt):
        write_embeddings(extractor, X, out, labels=labels, chunk_size=8)
    monkeypatch.setattr(writer, "atomic_write_json", real)
    assert np.load(out).shape[0] == len(X) and (tmp_path / ".emb.npy.parts").is_dir()
    summary = write_embeddings(extractor, X, out, labels=labels, chunk_size=8)
    assert summary["computed"] == 0 and summary["rows"] == len(X)
    np.testing.assert_array_equal(np.load(out), np.load(want))
    assert json.loads((tmp_path / "emb.ids.json").read_text()) == json.loads((tmp_path / "want.ids.json").read_text())
    assert not (tmp_path / ".emb.npy.parts").exists()
