"""Build the processors from the registry, once, for every runtime."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from clicktrail.config import Registry
from clicktrail.contracts import AnyEvent
from clicktrail.processors.intake import Clock, Intake, utc_now


def build_intake(registry: Registry, clock: Clock = utc_now) -> Intake:
    return Intake(
        max_event_bytes=registry.intake.max_event_bytes,
        max_future_skew=timedelta(seconds=registry.intake.max_future_skew_seconds),
        ip_mode=registry.privacy.ip_mode,
        ip_hash_key=registry.privacy.ip_hash_key,
        clock=clock,
    )


class ProcessingChain:
    """Everything that happens to an accepted event, as records to store and publish.

    The Faust agents and the embedded runner both call this one object, so the
    two runtimes cannot drift apart.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __call__(self, event: AnyEvent) -> list[BaseModel]:
        return [event]
