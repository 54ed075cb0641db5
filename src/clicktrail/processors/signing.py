"""Signed click ids: verifiable later without a lookup, so forged ids are caught anywhere.

Format ``<body>.<tag>``: ``body`` is base64url of 6 bytes of mint time (epoch ms) and 9 random
bytes; ``tag`` is base64url of the first 9 bytes of HMAC-SHA256(key, body). 33 characters,
all inside the contract's id alphabet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable

_TAG_BYTES = 9
_RANDOM_BYTES = 9


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ClickIdSigner:
    def __init__(self, key: str, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        if len(key) < 16:
            raise ValueError("click id signing key must have at least 16 characters")
        self._key = key.encode()
        self._random = random_bytes

    def _tag(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_TAG_BYTES])

    def mint(self, ts_ms: int) -> str:
        body = _b64(ts_ms.to_bytes(6, "big") + self._random(_RANDOM_BYTES))
        return f"{body}.{self._tag(body)}"

    def verify(self, click_id: str) -> bool:
        body, dot, tag = click_id.partition(".")
        if not dot or len(body) != 20 or len(tag) != 12:
            return False
        return hmac.compare_digest(tag, self._tag(body))

    @staticmethod
    def minted_at_ms(click_id: str) -> int | None:
        """Mint time of a well-formed id (not a proof: call ``verify`` first)."""
        body = click_id.partition(".")[0]
        try:
            return int.from_bytes(_unb64(body)[:6], "big")
        except (ValueError, TypeError):
            return None
