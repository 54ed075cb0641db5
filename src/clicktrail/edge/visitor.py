"""Who sent a request: client IP (through trusted proxies only), user agent, cookie, geo.

The IP is anonymized here with the same function the intake uses
(:func:`clicktrail.processors.privacy.ip_anonymizer`, idempotent), so not even a
dead-lettered request carries a raw address; the intake applies it again and
gets the same value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping

from starlette.types import Scope

from clicktrail.config.registry import EdgeSettings, PrivacySettings
from clicktrail.contracts.common import COUNTRIES
from clicktrail.processors.privacy import ip_anonymizer

_ID = re.compile(r"^[A-Za-z0-9._:~\-]{1,128}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
MAX_USER_AGENT = 2048
MAX_TEXT = 256
CACHE_SIZE = 65_536

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def mint_user_id() -> str:
    return os.urandom(12).hex()


def plain_header(raw: bytes) -> str:
    """A header value as text the contract accepts: UTF-8 (or Latin-1 when it is not),
    control characters replaced by one space. Headers come from browsers: a tab or a
    stray byte in a user agent is not the visitor's fault and must not cost the event."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if text.isascii() and text.isprintable():
        return text.strip()
    return _CONTROL.sub(" ", text).strip()


class Visitor:
    """Reads user context from a request; built once from the registry's settings."""

    def __init__(self, edge: EdgeSettings, privacy: PrivacySettings) -> None:
        self._proxies: tuple[Network, ...] = tuple(
            ipaddress.ip_network(cidr) for cidr in edge.trusted_proxies
        )
        self._anonymize = ip_anonymizer(privacy.ip_mode, privacy.ip_hash_key)
        self._safe_ips: dict[str, str | None] = {}
        self._trusted: dict[str, bool] = {}
        self.cookie = edge.cookie_name
        self._cookie_prefix = f"{edge.cookie_name}=".encode()
        self._country_header = edge.country_header.lower().encode() if edge.country_header else None
        attributes = [f"Max-Age={int(edge.cookie_max_age_days * 86400)}", "Path=/"]
        if edge.cookie_domain:
            attributes.append(f"Domain={edge.cookie_domain}")
        attributes += ["SameSite=Lax", "HttpOnly"]
        if edge.cookie_secure:
            attributes.append("Secure")
        self._cookie_suffix = ("; " + "; ".join(attributes)).encode()

    # --------------------------------------------------------------- address

    def _is_trusted(self, host: str) -> bool:
        known = self._trusted.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self._proxies)
            if len(self._trusted) >= CACHE_SIZE:
                self._trusted.clear()
            self._trusted[host] = known
        return known

    def client_ip(self, scope: Scope, headers: Mapping[bytes, bytes]) -> str | None:
        """The peer, or with a trusted peer the right-most untrusted X-Forwarded-For hop."""
        client = scope.get("client")
        host: str | None = client[0] if client else None
        if host is None or not self._proxies or not self._is_trusted(host):
            return host
        forwarded = headers.get(b"x-forwarded-for")
        if not forwarded:
            return host
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",")]
        for hop in reversed(hops):
            if hop and not self._is_trusted(hop):
                return hop
        return hops[0] or host

    def safe_ip(self, raw: str | None) -> str | None:
        """Anonymized address; None for anything that is not an IP (never a 4xx for it)."""
        if raw is None:
            return None
        cached = self._safe_ips.get(raw, "")
        if cached != "":
            return cached
        try:
            safe: str | None = self._anonymize(raw.strip("[]"))
        except ValueError:
            safe = None
        if len(self._safe_ips) >= CACHE_SIZE:
            self._safe_ips.clear()
        self._safe_ips[raw] = safe
        return safe

    # ---------------------------------------------------------------- cookie

    def cookie_id(self, headers: Mapping[bytes, bytes]) -> str | None:
        raw = headers.get(b"cookie")
        if not raw:
            return None
        at = raw.find(self._cookie_prefix)
        while at > 0 and raw[at - 1 : at] not in (b" ", b";"):
            at = raw.find(self._cookie_prefix, at + 1)
        if at < 0:
            return None
        start = at + len(self._cookie_prefix)
        end = raw.find(b";", start)
        value = (raw[start:] if end < 0 else raw[start:end]).strip().decode("latin-1")
        return value if _ID.match(value) else None

    def set_cookie(self, user_id: str) -> tuple[bytes, bytes]:
        return b"set-cookie", self._cookie_prefix + user_id.encode() + self._cookie_suffix

    # ------------------------------------------------------------------ user

    def user(
        self,
        scope: Scope,
        headers: Mapping[bytes, bytes],
        params: Mapping[str, str],
        user_id: str | None,
    ) -> dict[str, object]:
        """The event's ``user`` object (values validated later by the contract)."""
        user: dict[str, object] = {}
        if user_id:
            user["user_id"] = user_id
        ip = self.safe_ip(self.client_ip(scope, headers))
        if ip:
            user["ip"] = ip
        agent = headers.get(b"user-agent")
        if agent:
            text = plain_header(agent[:MAX_USER_AGENT])
            if text:
                user["user_agent"] = text
        country = params.get("country") or params.get("geo")
        if not country and self._country_header is not None:
            # a CDN's own codes (XX unknown, T1 Tor) are no country: the event goes without
            sent = headers.get(self._country_header, b"").decode("latin-1").upper()
            country = sent if sent in COUNTRIES else None
        if country:
            user["country"] = country
        device = params.get("device_type") or params.get("device")
        if device:
            user["device_type"] = device.lower()
        system = params.get("os")
        if system:
            user["os"] = system[:MAX_TEXT]
        return user
