"""Build the processors from the registry, once, for every runtime."""

from __future__ import annotations

from datetime import timedelta

from clicktrail.config import Registry
from clicktrail.processors.intake import Clock, Intake, utc_now


def build_intake(registry: Registry, clock: Clock = utc_now) -> Intake:
    return Intake(
        max_event_bytes=registry.intake.max_event_bytes,
        max_future_skew=timedelta(seconds=registry.intake.max_future_skew_seconds),
        ip_mode=registry.privacy.ip_mode,
        ip_hash_key=registry.privacy.ip_hash_key,
        clock=clock,
    )
