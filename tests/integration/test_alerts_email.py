"""Email alerts delivered to a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from clicktrail.config.registry import AlertSettings
from clicktrail.contracts.records import Alert, BrandConflict
from clicktrail.sinks.alerts import AlertDispatcher, RetryPolicy, conflict_message

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, timeout=3)


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def email_settings(port: int) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "destinations": {
                "mail": {
                    "kind": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "sender": "alerts@clicktrail.test",
                    "to": ["oncall@acme.test", "brand@acme.test"],
                }
            },
            "routes": [{"destinations": ["mail"]}],
        }
    )


def conflict() -> BrandConflict:
    return BrandConflict.model_validate(
        {
            "conflict_id": "c1",
            "brand_id": "acme",
            "offender_kind": "partner",
            "offender_id": "p9",
            "signal": "term",
            "keywords": ["acme shoes"],
            "first_seen": T0,
            "last_seen": T0,
            "clicks": 4,
        }
    )


async def send(settings: AlertSettings) -> list[Alert]:
    async with httpx.AsyncClient(trust_env=False) as client:
        dispatcher = AlertDispatcher.from_settings(settings, client, policy=POLICY)
        return await dispatcher.dispatch(conflict_message(conflict()))


def test_email_reaches_smtp_server(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    alerts = asyncio.run(send(email_settings(port)))
    assert [(a.status, a.destination) for a in alerts] == [("sent", "mail")]
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "alerts@clicktrail.test"
    assert envelope.rcpt_tos == ["oncall@acme.test", "brand@acme.test"]
    mail = message_from_bytes(envelope.content)
    assert "acme" in mail["Subject"] and "p9" in mail["Subject"]
    assert mail.get_content_type() == "text/plain"
    text = mail.get_payload(decode=True)
    assert isinstance(text, bytes)
    text = text.decode()
    assert "keywords: ['acme shoes']" in text and "clicks: 4" in text


def test_unreachable_smtp_is_retried_then_failed() -> None:
    alerts = asyncio.run(send(email_settings(free_port())))
    assert [(a.status, a.attempt) for a in alerts] == [("retrying", 1), ("failed", 2)]
    assert all(a.error for a in alerts)
