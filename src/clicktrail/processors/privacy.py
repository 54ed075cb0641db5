"""Strip personal data from user context before an event leaves the intake.

Truncation keeps the network (/24 for IPv4, /48 for IPv6) so datacenter ranges
and per-network click counts still work; hashing keeps per-address counts
without the address. ``none`` exists for closed test environments only.

Both functions are idempotent (the edge anonymizes, the intake again) without trusting
the sender: a truncated address truncates to itself, and in hash mode only the exact
shape this module produces (``h:`` + 24 lowercase hex digits) passes as already hashed.
Anything else that is not an address raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable
from typing import Literal

IpMode = Literal["truncate", "hash", "none"]
HASH_PREFIX = "h:"
HASH_DIGITS = 24
_HASHED = re.compile(rf"{HASH_PREFIX}[0-9a-f]{{{HASH_DIGITS}}}")


def _truncate_ipv4(value: str) -> str | None:
    """The common case without ``ipaddress`` (60 µs there, 1 µs here); None if not IPv4."""
    parts = value.split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if (
            not part.isdigit()
            or len(part) > 3
            or int(part) > 255
            or (len(part) > 1 and part[0] == "0")
        ):
            return None
    return f"{parts[0]}.{parts[1]}.{parts[2]}.0"


def truncate_ip(value: str) -> str:
    """``203.0.113.77`` -> ``203.0.113.0``; ``2001:db8:1:2::5`` -> ``2001:db8:1::``."""
    fast = _truncate_ipv4(value)
    if fast is not None:
        return fast
    address = ipaddress.ip_address(value)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def ip_anonymizer(mode: IpMode, key: str = "") -> Callable[[str], str]:
    """Build the per-event function once, so the hot path has no branching."""
    if mode == "none":
        return lambda value: value
    if mode == "truncate":
        return truncate_ip
    secret = key.encode()

    def hash_ip(value: str) -> str:
        if _HASHED.fullmatch(value):
            return value
        canonical = str(ipaddress.ip_address(value))
        digest = hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()[:HASH_DIGITS]
        return HASH_PREFIX + digest

    return hash_ip
