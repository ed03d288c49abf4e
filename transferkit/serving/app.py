"""The HTTP face of a saved model: a FastAPI app (``transferkit serve`` runs it under uvicorn).

- ``POST /predict``: multipart field ``file`` (one or several images) for an image model, or JSON
  ``{"texts": [...]}`` for a text model; answers ``{"predictions": [{"prediction", "probabilities"}, ...]}``.
- ``GET /health``, ``GET /metadata`` (classes, backbone, precision, transferkit version), OpenAPI at ``/docs``.

Concurrent requests are gathered into one batch (up to ``max_batch`` items, waiting at most
``batch_window_ms`` for more) and run by one worker thread on the model's single ONNX session, so the
network sees full batches under load and is never run from two threads at once. Bad input is a 4xx with
``{"error": ...}``: unreadable body or file 400, wrong content type 415, body over ``max_upload_mb`` or more
than ``max_items`` items 413.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..exceptions import DataError

_MB = 1024 * 1024


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Batcher:
    """Gather concurrent requests into batches of at most ``max_batch`` items for one predictor thread."""

    def __init__(self, predict: Any, max_batch: int, window_s: float) -> None:
        self.predict = predict
        self.max_batch = max(1, int(max_batch))
        self.window_s = max(0.0, float(window_s))
        self.queue: asyncio.Queue[tuple[list[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transferkit-predict")
        self.batches: list[int] = []  # sizes of the batches run (the last 1000), for /metadata and tests

    async def submit(self, items: list[Any]) -> list[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((items, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0][0])
            deadline = loop.time() + self.window_s
            while count < self.max_batch:
                try:
                    job = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self.queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                jobs.append(job)
                count += len(job[0])
            items = [x for job, _ in jobs for x in job]
            try:
                results = await loop.run_in_executor(self.pool, self.predict, items)
            except Exception as exc:  # the requests of this batch fail; the server goes on
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches = (self.batches + [len(items)])[-1000:]
            start = 0
            for job, future in jobs:
                if not future.done():
                    future.set_result(results[start : start + len(job)])
                start += len(job)


def create_app(predictor: Any, *, max_upload_mb: float = 10.0, max_items: int = 64, max_batch: int = 32,
               batch_window_ms: float = 5.0) -> Any:
    """The FastAPI app serving ``predictor`` (a :class:`~transferkit.serving.predictor.Predictor`)."""
    limit = int(max_upload_mb * _MB)
    batcher = Batcher(predictor, max_batch, batch_window_ms / 1000.0)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            task.cancel()
            batcher.pool.shutdown(wait=False)

    app = FastAPI(title="transferkit model server", version=predictor.metadata()["transferkit_version"],
                  lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError) -> Any:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return {**predictor.metadata(), "max_upload_mb": max_upload_mb, "max_items": max_items,
                "max_batch": max_batch}

    body_doc = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": {"type": "object", "required": ["texts"], "properties": {
            "texts": {"type": "array", "items": {"type": "string"}}}}}}}}

    @app.post("/predict", openapi_extra=body_doc)
    async def predict(request: Request) -> dict[str, Any]:
        """Predict one or several items: images as multipart field ``file``, texts as JSON ``{"texts": [...]}``."""
        items = await _read_items(request, predictor.modality, limit, max_upload_mb, max_items)
        return {"predictions": await batcher.submit(items)}

    return app


async def _read_body(request: Any, limit: int, max_upload_mb: float) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = HTTPError(413, f"request body over the {max_upload_mb:g} MB limit; send fewer or smaller items "
                               "(or start the server with a larger --max-upload-mb)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _read_items(request: Any, modality: str, limit: int, max_upload_mb: float, max_items: int) -> list[Any]:
    from ..data.items import max_image_pixels
    from .predictor import decode_image

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    wants = "JSON {\"texts\": [...]}" if modality == "text" else "multipart/form-data with field 'file'"
    if ctype not in ("multipart/form-data", "application/json"):
        raise HTTPError(415, f"content type {ctype or 'none'!r} is not supported; this {modality} model takes {wants}")
    if (ctype == "application/json") != (modality == "text"):
        raise HTTPError(415, f"this model reads {modality}s, so it takes {wants}, not {ctype}")
    body = await _read_body(request, limit, max_upload_mb)
    if ctype == "application/json":
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"the body is not valid JSON ({exc}); send {{\"texts\": [\"...\"]}}") from None
        texts = doc.get("texts") if isinstance(doc, dict) else None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise HTTPError(400, "expected a JSON object {\"texts\": [...]} holding a list of strings")
        items: list[Any] = texts
    else:
        request._body = body  # starlette parses the form from the body already read (and size-checked)
        try:
            form = await request.form(max_files=max_items + 1, max_fields=max_items + 1, max_part_size=limit)
        except Exception as exc:  # starlette's MultiPartException and malformed bodies
            status = 413 if "exceeded" in str(exc).lower() else 400
            raise HTTPError(status, f"cannot read the multipart body ({exc})") from None
        uploads = [f for f in form.getlist("file") if hasattr(f, "read")]
        if len(uploads) > max_items:
            raise HTTPError(413, f"{len(uploads)} files in one request; at most {max_items} are allowed")
        items = []
        budget, pixels = max_image_pixels(), 0
        for upload in uploads:
            try:
                items.append(decode_image(await upload.read(), upload.filename or "file"))
            except DataError as exc:
                raise HTTPError(400, str(exc)) from None
            pixels += items[-1].size[0] * items[-1].size[1]
            if pixels > budget:  # decoded images wait for the batch: their total is bounded, not just each one
                raise HTTPError(413, f"the images of one request decode to over {budget / 1e6:g} megapixels in "
                                     "total; send fewer or smaller images per request")
    if not items:
        raise HTTPError(400, f"no items to predict; this {modality} model takes {wants}")
    if len(items) > max_items:
        raise HTTPError(413, f"{len(items)} items in one request; at most {max_items} are allowed")
    return items
