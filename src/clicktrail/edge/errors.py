"""Typed HTTP errors: a status, a machine-readable reason and a sentence for people."""

from __future__ import annotations

import orjson


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
