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


def flatten(record: BaseModel) -> dict[str, Any]:
    """Model fields as a flat dict; the nested user context is lifted to the top."""
    data = dict(record.__dict__)
    user = data.pop("user", None)
    if user is not None:
        data.update(user.__dict__)
    return data


@dataclass(frozen=True)
class TableShape:
    table: str
    columns: tuple[str, ...]
    empties: tuple[Any, ...]  # replacement for None per column (None if Nullable)

    def row(self, data: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            empty if (value := data.get(name)) is None else value
            for name, empty in zip(self.columns, self.empties, strict=True)
        )


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
