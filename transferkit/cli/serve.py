"""`transferkit serve`: a saved model behind an HTTP endpoint (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import Precision, fail, say, user_errors
from .fit import PRECISION_OVERRIDE_HELP


@user_errors
def serve(
    model: Annotated[Path, typer.Argument(help="Model directory written by `transferkit fit`.")],
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the server local (use 0.0.0.0 "
                                           "only behind a proxy or firewall).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest request body accepted (413 above).")] = 10.0,
    max_items: Annotated[int, typer.Option("--max-items", help="Most items in one request (413 above).")] = 64,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most items the network runs at once when requests are batched.")] = 32,
    batch_window_ms: Annotated[float, typer.Option("--batch-window-ms", help="How long a request waits for others to share its batch.")] = 5.0,
    weights: Annotated[str | None, typer.Option(help="The backbone's local weights file, for a model trained with --weights or on a backbone not registered here.")] = None,
    precision: Annotated[Precision | None, typer.Option(help=PRECISION_OVERRIDE_HELP)] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level.")] = "info",
) -> None:
    """Serve a saved model: POST /predict (images as multipart field `file`, texts as JSON {"texts": [...]}),
    GET /health, GET /metadata, OpenAPI docs at /docs."""
    if not 0 < port < 65536:
        raise fail(f"--port {port} is not a TCP port; pass 1..65535")
    for name, value in (("--max-upload-mb", max_upload_mb), ("--max-items", max_items), ("--max-batch", max_batch)):
        if value <= 0:
            raise fail(f"{name} {value} must be positive")
    if batch_window_ms < 0:
        raise fail(f"--batch-window-ms {batch_window_ms} must be 0 or more")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise fail("serving needs FastAPI and uvicorn; `pip install 'transferkit[serve]'`") from None
    from ..serving import Predictor, create_app, run

    predictor = Predictor(model, weights=weights, batch_size=max_batch,
                          precision=precision.value if precision is not None else None)
    predictor.warm_up()
    app = create_app(predictor, max_upload_mb=max_upload_mb, max_items=max_items, max_batch=max_batch,
                     batch_window_ms=batch_window_ms)
    say(f"serving {model} ({predictor.modality}, {len(predictor.outputs)} outputs) on http://{host}:{port} "
        f"(docs at /docs)")
    run(app, host=host, port=port, log_level=log_level)
