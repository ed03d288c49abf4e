"""`transferkit serve`: a real uvicorn server on a free 127.0.0.1 port, answering with the saved model's own
predictions; every bad request gets the promised 4xx and a JSON error; concurrent clients are all answered
and share batches."""

from __future__ import annotations

import inspect
import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from tests.conftest import NEG, POS, make_images  # noqa: E402
from transferkit import TransferClassifier  # noqa: E402
from transferkit.serving import Predictor, create_app  # noqa: E402


@contextmanager
def running(app) -> Iterator[str]:  # noqa: ANN001
    """Serve ``app`` with uvicorn on a socket bound to a free 127.0.0.1 port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def _get(url: str, **kw: object) -> httpx.Response:
    return httpx.get(url, timeout=None, **kw)  # no time limit: a loaded machine may answer slowly


def _post(url: str, **kw: object) -> httpx.Response:
    return httpx.post(url, timeout=None, **kw)


class Gated:
    """The real predictor, held back until ``gate`` opens: lets a test queue requests behind a running batch
    without relying on timing."""

    def __init__(self, predictor: Predictor, gate: threading.Event) -> None:
        self.predictor, self.gate = predictor, gate
        self.held = 0  # items of the batch waiting at the gate

    def __call__(self, items: list) -> list:
        self.held = len(items)
        self.gate.wait()
        return self.predictor(items)

    def __getattr__(self, name: str) -> object:  # modality, metadata(), ... of the real predictor
        return getattr(self.predictor, name)


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def image_model(tiny_backbone: str, tmp_path: Path) -> tuple[Path, TransferClassifier, np.ndarray]:
    X, y = make_images(n_per_class=10)
    names = np.array(["stripes-h", "stripes-v", "blob"])[y]
    clf = TransferClassifier(backbone=tiny_backbone, progress=False).fit(X, names)
    path = clf.save(tmp_path / "model")
    return Path(path), clf, make_images(n_per_class=3, seed=7)[0]


def test_predict_health_metadata_match_the_model(image_model) -> None:
    path, clf, X = image_model
    predictor = Predictor(path)
    with running(create_app(predictor)) as url:
        assert _get(f"{url}/health").json() == {"status": "ok"}
        meta = _get(f"{url}/metadata").json()
        assert meta["classes"] == [str(c) for c in clf.classes_] and meta["backbone"] == clf.backbone_
        assert meta["precision"] == "fp32" and meta["transferkit_version"]
        files = [("file", (f"{i}.png", _png(x), "image/png")) for i, x in enumerate(X)]
        r = _post(f"{url}/predict", files=files)
        assert r.status_code == 200, r.text
        got = r.json()["predictions"]
        assert [g["prediction"] for g in got] == list(clf.predict(X))
        probs = np.array([[g["probabilities"][c] for c in meta["classes"]] for g in got])
        np.testing.assert_allclose(probs, clf.predict_proba(X), atol=1e-5)
        one = _post(f"{url}/predict", files={"file": ("a.png", _png(X[0]), "image/png")}).json()
        assert one["predictions"][0]["prediction"] == got[0]["prediction"]
        assert one["predictions"][0]["probabilities"] == pytest.approx(got[0]["probabilities"], abs=1e-6)
        assert "/predict" in _get(f"{url}/openapi.json").json()["paths"]


def test_bad_requests_get_the_promised_status(image_model) -> None:
    path, _, X = image_model
    app = create_app(Predictor(path), max_upload_mb=0.01, max_items=3)  # 10 kB, 3 items
    png = _png(X[0])
    with running(app) as url:
        def post(**kw):  # noqa: ANN003, ANN202
            r = _post(f"{url}/predict", **kw)
            assert r.headers["content-type"].startswith("application/json") and "error" in r.json(), r.text
            return r.status_code, r.json()["error"]

        status, error = post(files={"file": ("x.png", b"not an image at all", "image/png")})
        assert status == 400 and "'x.png' is not a readable image" in error
        status, error = post(content=b"hello", headers={"content-type": "text/plain"})
        assert status == 415 and "'text/plain' is not supported" in error
        status, error = post(json={"texts": ["a text"]})
        assert status == 415 and "this model reads images" in error
        status, error = post(files={"file": ("big.png", b"\0" * 20_000, "image/png")})
        assert status == 413 and "0.01 MB limit" in error
        status, error = post(files=[("file", (f"{i}.png", png, "image/png")) for i in range(4)])
        assert status == 413 and "4 files in one request; at most 3" in error
        status, error = post(files={"other": ("x.png", png, "image/png")})
        assert status == 400 and "no items to predict" in error
        assert _post(f"{url}/predict", files={"file": ("ok.png", png, "image/png")}).status_code == 200


def test_concurrent_clients_are_all_answered_and_batched(image_model) -> None:
    """8 clients at once: the first batch is held until every other request waits in the queue behind it,
    so the one next batch gathers them all (no timing assumption); every client gets its own answer."""
    path, clf, X = image_model
    X = make_images(n_per_class=3, seed=11)[0][:8]
    expected = list(clf.predict(X))
    gate = threading.Event()
    gated = Gated(Predictor(path), gate)
    app = create_app(gated, batch_window_ms=0, max_batch=8)
    batcher = app.state.batcher
    answers: dict[int, object] = {}
    with running(app) as url:
        def client(i: int) -> None:
            r = _post(f"{url}/predict", files={"file": (f"{i}.png", _png(X[i]), "image/png")})
            answers[i] = r.json()["predictions"][0]["prediction"] if r.status_code == 200 else r.status_code

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        # the worker holds a batch at the gate, the others queue behind it (a client that failed ends the wait)
        while gated.held + batcher.queue.qsize() < 8 and all(t.is_alive() for t in threads):
            threading.Event().wait(0.01)
        first = gated.held
        gate.set()
        for t in threads:
            t.join()
    assert [answers[i] for i in range(8)] == expected  # every client got its own item's answer
    assert batcher.batches == ([first, 8 - first] if first < 8 else [8])
    assert max(batcher.batches) > 1  # 8 requests in at most 2 batches


def test_a_text_model_takes_json(tiny_text_backbone: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    texts = [f"the film was {rng.choice(POS if i % 2 else NEG)}" for i in range(40)]
    labels = ["fresh" if i % 2 else "rotten" for i in range(40)]
    clf = TransferClassifier(tiny_text_backbone, progress=False).fit(texts, labels)
    path = clf.save(tmp_path / "text-model")
    queries = ["the movie was lovely", "the film is boring", "a dull film"]
    with running(create_app(Predictor(path))) as url:
        r = _post(f"{url}/predict", json={"texts": queries})
        assert r.status_code == 200, r.text
        assert [p["prediction"] for p in r.json()["predictions"]] == list(clf.predict(queries))
        r = _post(f"{url}/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        r = _post(f"{url}/predict", json={"texts": "one string"})
        assert r.status_code == 400 and "list of strings" in r.json()["error"]
        r = _post(f"{url}/predict", files={"file": ("a.png", b"x", "image/png")})
        assert r.status_code == 415 and "this model reads texts" in r.json()["error"]


def test_cli_binds_localhost_by_default_and_refuses_bad_input(tmp_path: Path) -> None:
    from transferkit.cli import app
    from transferkit.cli.serve import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    runner = CliRunner()
    missing = runner.invoke(app, ["serve", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "error:" in missing.output and "Traceback" not in missing.output
    bad_port = runner.invoke(app, ["serve", str(tmp_path), "--port", "70000"])
    assert bad_port.exit_code == 2 and "--port 70000 is not a TCP port" in bad_port.output
