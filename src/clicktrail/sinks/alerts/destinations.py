"""Where alerts go: a signed webhook, Slack, email over SMTP, or the log.

Each destination renders its own body (kept on the ``Alert`` record as sent) and
delivers it once; retries, timeouts and isolation belong to the dispatcher.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Protocol

import httpx
import orjson
import structlog

from clicktrail.config.registry import AlertSettings
from clicktrail.config.registry import Destination as DestinationSettings
from clicktrail.sinks.alerts.payloads import AlertMessage, json_body, slack_body
from clicktrail.sinks.alerts.signing import signed_headers

RETRYABLE_STATUS = {408, 425, 429}


class DeliveryError(Exception):
    """One attempt failed; ``retryable`` is False when repeating cannot help (e.g. a 404)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Destination(Protocol):
    def render(self, message: AlertMessage) -> bytes: ...

    async def deliver(self, message: AlertMessage, body: bytes) -> None: ...


class HttpDestination:
    """POST a JSON body; 2xx is success, 5xx/408/429 and network errors are worth a retry."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alert destination url must be http(s): {url!r}")
        self.client = client
        self.url = url

    def render(self, message: AlertMessage) -> bytes:
        return json_body(message)

    def headers(self, body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    async def deliver(self, message: AlertMessage, body: bytes) -> None:
        try:
            response = await self.client.post(self.url, content=body, headers=self.headers(body))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            status = response.status_code
            retryable = status >= 500 or status in RETRYABLE_STATUS
            raise DeliveryError(f"HTTP {status}: {response.text[:200]}", retryable)


class WebhookDestination(HttpDestination):
    """The generic webhook: signed with HMAC-SHA256 when a secret is configured."""

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str | None = None) -> None:
        super().__init__(client, url)
        self.secret = secret

    def headers(self, body: bytes) -> dict[str, str]:
        base = super().headers(body)
        return base | signed_headers(self.secret, body) if self.secret else base


class SlackDestination(HttpDestination):
    def render(self, message: AlertMessage) -> bytes:
        return slack_body(message)


class EmailDestination:
    """Plain-text mail through stdlib smtplib, run in a thread so the loop never blocks."""

    def __init__(
        self, host: str, port: int, sender: str, to: list[str], timeout: float = 10.0
    ) -> None:
        if not to:
            raise ValueError("an email destination needs at least one recipient")
        self.host, self.port, self.sender, self.to, self.timeout = host, port, sender, to, timeout

    def render(self, message: AlertMessage) -> bytes:
        lines = [message.title, "", f"severity: {message.severity}", f"key: {message.dedup_key}"]
        lines += [f"{k}: {v}" for k, v in message.evidence.items() if v is not None]
        lines += ["", f"alert id: {message.alert_id}"]
        return "\n".join(lines).encode()

    def _send(self, subject: str, body: bytes) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, ", ".join(self.to), subject
        mail.set_content(body.decode())
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(mail)

    async def deliver(self, message: AlertMessage, body: bytes) -> None:
        subject = f"[clicktrail {message.severity}] {message.title}"
        try:
            await asyncio.to_thread(self._send, subject, body)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


class LogDestination:
    """Writes the alert as one structured log line: the fallback that cannot fail.
    ``level``: a replay logs them at debug (they are in the ``alerts`` table all the same),
    so a backfill's alerts do not bury its progress on stderr."""

    def __init__(self, name: str = "log", level: str = "warning") -> None:
        self.log = structlog.get_logger("clicktrail.alerts").bind(destination=name)
        self.level = level

    def render(self, message: AlertMessage) -> bytes:
        return json_body(message)

    async def deliver(self, message: AlertMessage, body: bytes) -> None:
        getattr(self.log, self.level)(
            "alert", title=message.title, severity=str(message.severity),
            dedup_key=message.dedup_key, evidence=orjson.loads(body)["evidence"],
        )  # fmt: skip


def build_destination(
    name: str, settings: DestinationSettings, client: httpx.AsyncClient, log_level: str = "warning"
) -> Destination:
    if settings.kind == "webhook":
        return WebhookDestination(client, settings.url or "", settings.secret)
    if settings.kind == "slack":
        return SlackDestination(client, settings.url or "")
    if settings.kind == "email":
        return EmailDestination(
            settings.smtp_host or "",
            settings.smtp_port or 25,
            settings.sender or "clicktrail@localhost",
            list(settings.to),
        )
    return LogDestination(name, log_level)


def build_destinations(
    settings: AlertSettings, client: httpx.AsyncClient, log_level: str = "warning"
) -> Mapping[str, Destination]:
    return {
        name: build_destination(name, d, client, log_level)
        for name, d in settings.destinations.items()
    }
