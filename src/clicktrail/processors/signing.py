"""Signed click ids: verifiable later without a lookup, so forged ids are caught anywhere.

Format ``<body>.<tag>``: ``body`` is base64url of 6 bytes of mint time (epoch ms), 3 bytes of
owner tag and 6 random bytes; ``tag`` is base64url of the first 9 bytes of
HMAC-SHA256(key, body). 33 characters, all inside the contract's id alphabet.

The owner tag (the first 3 bytes of HMAC-SHA256(key, "owner:" + advertiser)) binds a click to
the advertiser whose campaign it was minted for. A postback or a batch conversion that names a
click can then be checked against the key that sent it without any lookup: advertiser B's
secret cannot credit advertiser A's click, because the signature covers the owner tag.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable

_TAG_BYTES = 9
_OWNER_BYTES = 3
_RANDOM_BYTES = 6


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
        self._owners: dict[str, bytes] = {}

    def _tag(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_TAG_BYTES])

    def owner_tag(self, owner: str) -> bytes:
        tag = self._owners.get(owner)
        if tag is None:
            digest = hmac.new(self._key, b"owner:" + owner.encode(), hashlib.sha256).digest()
            tag = self._owners[owner] = digest[:_OWNER_BYTES]
        return tag

    def mint(self, ts_ms: int, owner: str | None = None) -> str:
        """A new click id; ``owner`` is the advertiser of the campaign clicked (None: an id
        no advertiser owns, e.g. in tests)."""
        tag = self.owner_tag(owner) if owner is not None else self._random(_OWNER_BYTES)
        body = _b64(ts_ms.to_bytes(6, "big") + tag + self._random(_RANDOM_BYTES))
        return f"{body}.{self._tag(body)}"

    def verify(self, click_id: str) -> bool:
        """Minted by an edge holding this key (any text is safe to pass: False, never an error)."""
        body, dot, tag = click_id.partition(".")
        if not dot or len(body) != 20 or len(tag) != 12 or not click_id.isascii():
            return False
        return hmac.compare_digest(tag, self._tag(body))

    def minted_for(self, click_id: str, owner: str) -> bool:
        """Genuine and minted for a campaign of ``owner``."""
        if not self.verify(click_id):
            return False
        try:
            tag = _unb64(click_id.partition(".")[0])[6 : 6 + _OWNER_BYTES]
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(tag, self.owner_tag(owner))

    @staticmethod
    def minted_at_ms(click_id: str) -> int | None:
        """Mint time of a well-formed id (not a proof: call ``verify`` first)."""
        body = click_id.partition(".")[0]
        try:
            return int.from_bytes(_unb64(body)[:6], "big")
        except (ValueError, TypeError):
            return None
