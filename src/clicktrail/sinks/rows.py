"""Shape pydantic records into ClickHouse rows, driven by the table's own columns.

The column list comes from ``DESCRIBE TABLE`` once per table, so the DDL is the
single source of truth: a record field without a column is ignored, a column
without a field takes its DEFAULT, and ``None`` becomes ``''``/0 where the
column is not Nullable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from clicktrail.sinks.store import Store

TABLE_FOR_TYPE = {
    "impression": "impressions",
    "click": "clicks",
    "conversion": "conversions",
    "attributed_conversion": "attributed_conversions",
    "fraud_verdict": "fraud_verdicts",
    "brand_conflict": "brand_conflicts",
    "alert": "alerts",
    "dead_letter": "dead_letters",
    "model_quality": "model_quality",
    "click_scores": "click_scores",
}


def _empty_for(ch_type: str) -> Any:
    base = ch_type.removeprefix("LowCardinality(").rstrip(")")
    if base.startswith(("String", "FixedString")):
        return ""
    if base.startswith(("Array",)):
        return []
    if base.startswith("Map"):
        return {}
    if base.startswith("Bool"):
        return False
    return 0


@dataclass(frozen=True)
class TableShape:
    table: str
    columns: tuple[str, ...]
    empties: tuple[Any, ...]  # replacement for None per column (None if Nullable)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pairs", tuple(zip(self.columns, self.empties, strict=True)))

    def row(self, record: BaseModel, src: str, offset: int) -> tuple[Any, ...]:
        """The record's row; the nested user context is lifted to top-level columns.

        On the per-event path: one dict merge and one comprehension, no per-field calls.
        """
        data = record.__dict__
        user = data.get("user")
        merged = {**data, **user.__dict__} if user is not None else dict(data)
        merged["src"] = src
        merged["src_offset"] = offset
        get = merged.get
        pairs: tuple[tuple[str, Any], ...] = self._pairs  # type: ignore[attr-defined]
        return tuple([empty if (value := get(name)) is None else value for name, empty in pairs])


def describe(store: Store, table: str, fields: set[str] | None = None) -> TableShape:
    """Columns that a writer fills: no DEFAULT/MATERIALIZED unless the record has the field."""
    described = store.rows(f"DESCRIBE TABLE {store.database}.{table}")
    columns, empties = [], []
    for name, ch_type, default_kind, *_ in described:
        if default_kind and (fields is None or name not in fields):
            continue
        columns.append(name)
        empties.append(None if ch_type.startswith("Nullable") else _empty_for(ch_type))
    return TableShape(table, tuple(columns), tuple(empties))
