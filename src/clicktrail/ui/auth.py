"""Who may see the dashboard: the operator, proven by the operator token.

The token (``security.operator_token`` or ``$CLICKTRAIL_OPERATOR_TOKEN``, the same one
``/v1/query`` takes) is sent once, to ``POST /ui/login``; the answer sets a session cookie
that holds an expiry and an HMAC of it keyed by the token: nothing secret is in it, it
cannot be forged without the token, it stops working when the token changes, and it is
checked with :func:`hmac.compare_digest`. The cookie is HttpOnly and SameSite=Strict, so
no other site can make a browser send it (the login and logout forms are the only POSTs,
and a cross-site POST arrives without the cookie). Scripts may send
``Authorization: Bearer <token>`` instead.

Without a token nobody logs in: loopback peers are let in, as on ``/v1/query``, and only
while no trusted proxy is configured (a proxy on this host would relay anyone).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from clicktrail.edge.auth import OPERATOR_TOKEN_ENV
from clicktrail.edge.query import loopback

COOKIE = "ct_ui_session"
SESSION_SECONDS = 12 * 3600
_CONTEXT = b"clicktrail-dashboard-session|"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    status: int = 200
    """401: log in first; 403: refused."""
    message: str = ""


class Gate:
    """Checks a request against the operator token; built once per app."""

    def __init__(
        self,
        token: str | None,
        trusted_proxies: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token or None
        self.trust_loopback = not trusted_proxies
        self.clock = clock

    def _sign(self, expires: int) -> str:
        key = (self.token or "").encode()
        return hmac.new(key, _CONTEXT + str(expires).encode(), hashlib.sha256).hexdigest()

    def session(self) -> str:
        """A fresh cookie value: ``<expiry>.<hmac>``."""
        expires = int(self.clock()) + SESSION_SECONDS
        return f"{expires}.{self._sign(expires)}"

    def valid_session(self, value: str) -> bool:
        expires, _, mac = value.partition(".")
        if not expires.isdigit() or len(expires) > 12 or self.token is None:
            return False
        good = hmac.compare_digest(mac.encode(), self._sign(int(expires)).encode())
        return good and int(expires) > self.clock()

    def valid_token(self, supplied: str) -> bool:
        expected = (self.token or "").encode()
        # compared even without a token, so timing tells nothing
        matches = hmac.compare_digest(supplied.encode(), expected)
        return matches and self.token is not None

    def check(self, request: Request) -> Decision:
        if self.token is None:
            client = request.client.host if request.client else ""
            if self.trust_loopback and loopback(client):
                return Decision(True)
            return Decision(
                False,
                403,
                "The dashboard is open to this machine only until an operator token is set "
                f"(security.operator_token or ${OPERATOR_TOKEN_ENV}).",
            )
        raw = request.headers.get("authorization", "")
        scheme, _, supplied = raw.partition(" ")
        if scheme.lower() == "bearer" and supplied.strip():
            if self.valid_token(supplied.strip()):
                return Decision(True)
            return Decision(False, 403, "The operator token is not valid.")
        if self.valid_session(request.cookies.get(COOKIE, "")):
            return Decision(True)
        return Decision(False, 401, "Log in with the operator token.")
