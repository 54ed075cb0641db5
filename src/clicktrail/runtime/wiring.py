"""What every runtime builds from the registry, once: the intake, the settings views read."""

from __future__ import annotations

from datetime import timedelta

from clicktrail.config import Registry
from clicktrail.processors.intake import Clock, Intake, utc_now
from clicktrail.sinks.report_settings import write_report_settings
from clicktrail.sinks.store import Store


def build_intake(registry: Registry, clock: Clock = utc_now) -> Intake:
    """With ``security.unknown_ids: reject``, ids the registry does not list are refused,
    partners once it lists any partner, campaigns once it lists any campaign (with
    ``accept_and_flag`` the fraud stage flags them instead)."""
    reject = registry.security.unknown_ids == "reject"
    partners = frozenset(registry.partners) if reject and registry.partners else None
    campaigns = frozenset(registry.campaigns) if reject and registry.campaigns else None
    return Intake(
        max_event_bytes=registry.intake.max_event_bytes,
        max_future_skew=timedelta(seconds=registry.intake.max_future_skew_seconds),
        max_past=timedelta(days=registry.intake.max_past_days),
        ip_mode=registry.privacy.ip_mode,
        ip_hash_key=registry.privacy.ip_hash_key,
        known_partners=partners,
        known_campaigns=campaigns,
        clock=clock,
    )


def publish_report_settings(registry: Registry, store: Store) -> None:
    """Tell the analyst views how this pipeline's registry wants its figures read."""
    write_report_settings(
        store,
        {
            "fraud.flagged_traffic": registry.fraud.flagged_traffic,
            "fraud.window_seconds": str(registry.fraud.window_seconds),
        },
    )
