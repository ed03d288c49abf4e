"""Serving a saved model over HTTP (``transferkit serve``): FastAPI + uvicorn, the ``serve`` extra."""

from __future__ import annotations

from .predictor import Predictor

__all__ = ["Predictor", "create_app", "run"]


def create_app(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """See :func:`transferkit.serving.app.create_app` (imports FastAPI only when called)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


def run(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:  # noqa: ANN001
    """Serve ``app`` with uvicorn on ``host:port`` (127.0.0.1 unless told otherwise)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)
