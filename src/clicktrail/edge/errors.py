"""Typed HTTP errors: a status, a machine-readable reason and a sentence for people."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class EdgeError(Exception):
    """A request the edge refuses; ``recorded`` once its dead letter has been written."""

    def __init__(self, status: int, reason: str, message: str, *, recorded: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.recorded = recorded


def error_body(reason: str, message: str) -> bytes:
    return orjson.dumps({"error": reason, "message": message})


def error_response(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message}, status_code=status)


async def handle_edge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EdgeError)
    return error_response(exc.status, exc.reason, exc.message)
