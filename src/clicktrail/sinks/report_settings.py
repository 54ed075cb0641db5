"""Registry settings that the analyst views read, kept in the store beside the figures.

Views are DDL that a migration writes once, so a setting that changes how they count
(``fraud.flagged_traffic``) cannot be baked into them: it lives in ``report_settings``,
written by each runtime when it starts, and the views read its latest value. Several
pipelines writing to one database with different settings: the last one started wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from clicktrail.sinks.store import Store

TABLE = "report_settings"


def write_report_settings(
    store: Store, settings: Mapping[str, str], now: datetime | None = None
) -> None:
    stamp = now or datetime.now(UTC)
    rows = [(name, value, stamp) for name, value in sorted(settings.items())]
    store.insert(TABLE, rows, ["name", "value", "updated_at"])
