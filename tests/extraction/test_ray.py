"""Ray Data extraction on a local two-node cluster (head + worker node on this machine): same embeddings as the local
path, and every item exactly once when a worker process is killed mid-run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'transferkit[ray]' (.ci/run installs it)")

from transferkit.extraction import Extractor  # noqa: E402
from transferkit.extraction.ray_extract import EmbedBatch, extract_with_ray, read_ray_metadata  # noqa: E402
from transferkit.extraction.writer import read_metadata, write_embeddings  # noqa: E402

KILL_MARKER = "TRANSFERKIT_TEST_KILL_MARKER"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    from ray.cluster_utils import Cluster

    root = str(Path(__file__).resolve().parents[2])
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", KILL_MARKER)}
    # the workers import this test module (KillOnce) and the checkout under test
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, saved["PYTHONPATH"]) if p)
    os.environ[KILL_MARKER] = str(tmp_path_factory.mktemp("ray") / "killed")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=2)
    ray.init(address=c.address, log_to_driver=False, include_dashboard=False)
    yield c
    ray.shutdown()
    c.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class KillOnce(EmbedBatch):
    """Kills its own worker process (SIGKILL) on the first batch any actor of the run receives."""

    def __call__(self, batch):  # type: ignore[no-untyped-def]
        try:
            fd = os.open(os.environ[KILL_MARKER], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().__call__(batch)
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def _by_id(path: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    table = pq.read_table(path).sort_by("id")
    emb = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
    labels = table.column("label").to_pylist() if "label" in table.column_names else None
    return table.column("id").to_pylist(), emb, labels


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.png"))


def test_ray_equals_local_path(cluster, tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    files = _files(image_folder)
    labels = [Path(f).parent.name for f in files]
    local = tmp_path / "local.parquet"
    write_embeddings(Extractor(tiny_backbone, cache=False, show_progress=False), files, local, labels=labels)
    out = tmp_path / "ray"
    summary = extract_with_ray(files, out, backbone=Extractor(tiny_backbone).config, labels=labels, workers=2,
                               block_size=4)
    assert summary["rows"] == len(files) and summary["shards"] >= 2
    ids, emb, got_labels = _by_id(out)
    ids0, emb0, labels0 = _by_id(local)
    assert ids == ids0 and got_labels == labels0
    assert np.max(np.abs(emb - emb0)) <= 1e-5
    assert pq.read_schema(next(out.glob("*.parquet"))).equals(pq.read_schema(local), check_metadata=True)
    assert read_ray_metadata(out) == read_metadata(local)


def test_killed_worker_loses_and_duplicates_nothing(cluster, tiny_backbone: str, image_folder: Path,
                                                    tmp_path: Path) -> None:
    files = _files(image_folder)
    out = tmp_path / "ray"
    summary = extract_with_ray(files, out, backbone=Extractor(tiny_backbone).config, workers=2, block_size=3,
                               actor_class=KillOnce)
    assert Path(os.environ[KILL_MARKER]).exists(), "no worker was killed"
    ids, emb, _ = _by_id(out)
    assert summary["rows"] == len(files) and ids == sorted(files)  # every item exactly once
    ref = Extractor(tiny_backbone, cache=False, show_progress=False).extract(ids)
    assert np.max(np.abs(emb - ref)) <= 1e-5
