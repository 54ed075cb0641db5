"""Alert delivery: route and deduplicate, render with evidence, deliver signed and retried."""

from __future__ import annotations

from clicktrail.sinks.alerts.destinations import (
    DeliveryError,
    Destination,
    EmailDestination,
    LogDestination,
    SlackDestination,
    WebhookDestination,
    build_destinations,
)
from clicktrail.sinks.alerts.dispatcher import AlertDispatcher, RetryPolicy
from clicktrail.sinks.alerts.payloads import (
    AlertMessage,
    alert_messages,
    conflict_key,
    conflict_message,
    json_body,
    partner_message,
    slack_body,
)
from clicktrail.sinks.alerts.routing import AlertRouter, Decision, Delivery
from clicktrail.sinks.alerts.service import AlertService, alert_source
from clicktrail.sinks.alerts.signing import sign, signed_headers, verify

__all__ = [
    "AlertDispatcher",
    "AlertMessage",
    "AlertRouter",
    "AlertService",
    "Decision",
    "Delivery",
    "DeliveryError",
    "Destination",
    "EmailDestination",
    "LogDestination",
    "RetryPolicy",
    "SlackDestination",
    "WebhookDestination",
    "alert_messages",
    "alert_source",
    "build_destinations",
    "conflict_key",
    "conflict_message",
    "json_body",
    "partner_message",
    "sign",
    "signed_headers",
    "slack_body",
    "verify",
]
