"""Typed HTTP errors: a status, a machine-readable reason and a sentence for people."""

from __future__ import annotations

from collections.abc import Mapping

import orjson


class EdgeError(Exception):
    """A request the edge refuses; ``recorded`` once its dead letter has been written.

    ``details`` adds machine-readable fields to the answer (e.g. the row and column of a
    malformed upload), beside ``error`` and ``message``.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        recorded: bool = False,
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.recorded = recorded
        self.details = dict(details or {})


def error_body(reason: str, message: str, details: Mapping[str, object] | None = None) -> bytes:
    return orjson.dumps({"error": reason, "message": message, **(details or {})})


def export_text(body: bytes) -> str:
    """An uploaded export as text (a UTF-8 byte-order mark dropped), or the 400 naming the
    first byte that is not UTF-8."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise EdgeError(
            400, "invalid_encoding", f"the export is not UTF-8 text (byte {error.start})"
        ) from None
