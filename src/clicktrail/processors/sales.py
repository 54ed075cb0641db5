"""Sales exports as the advertiser's CRM writes them: header spellings, statuses, amounts.

Every shop names its columns its own way (``Order ID``, ``order_id``, ``id``;
``total``, ``amount``, ``revenue``...), so headers are matched case-insensitively
against the spellings below. Unlike an auction-insights export, a sales export is not
used whole or not at all: each order stands alone, so a bad row is reported (row number,
column, reason) and the others go on. A header without the required columns refuses the
file. Pure functions, no I/O.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from clicktrail.contracts.sales import SaleOrder

COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("order_id", "orderid", "order", "id", "order_number", "transaction_id", "txid"),
    "ts": ("date", "created_at", "order_date", "created", "ordered_at", "datetime", "time", "ts"),
    "amount": ("amount", "total", "revenue", "order_total", "value", "sum", "grand_total"),
    "currency": ("currency", "currency_code"),
    "status": ("status", "order_status", "state", "payment_status"),
    "user_id": ("user_id", "email_hash", "customer_hash", "user_hash", "customer_id"),
    "advertiser_id": ("advertiser_id", "advertiser"),
}
REQUIRED = ("order_id", "ts", "amount", "currency", "status")
MAX_ROWS = 100_000
_SPACES = re.compile(r"[\s\-]+")
_EMAIL = re.compile(r"[^\s,;:<>\"'@]+@[^\s,;:<>\"'@]+\.[A-Za-z]{2,}")


def email_hash(address: str) -> str:
    """A raw e-mail address as the id it may be stored as: SHA-256 of the trimmed,
    lower-cased address (how shops and ad platforms hash customer e-mails)."""
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()
    return f"sha256:{digest[:40]}"


def private(text: str) -> str:
    """Text with every e-mail address in it replaced by its hash: a refused row is kept
    in the dead letters, and no address may be kept raw."""
    return _EMAIL.sub(lambda m: email_hash(m.group()), text)


class SalesFileError(ValueError):
    """The file as a whole cannot be read (no header, missing columns, broken CSV)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class RowError:
    """One refused row: its number (1 is the header; JSON rows count from 1 too), the
    column at fault when one is, the reason and the row as sent."""

    row: int
    column: str | None
    message: str
    raw: str
    reason: str = "invalid_field"

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "error": self.reason,
            "message": self.message,
        }


@dataclass
class ParsedSales:
    orders: list[SaleOrder] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    """The row number of each order (same positions as ``orders``)."""
    errors: list[RowError] = field(default_factory=list)


def _normal(name: str) -> str:
    return _SPACES.sub("_", name.strip().lstrip("\ufeff").lower())


_ALIASES = {spelling: column for column, spellings in COLUMNS.items() for spelling in spellings}


def header_map(header: Iterable[str]) -> dict[int, str]:
    """Position -> contract field for the columns we know; unknown columns are ignored.
    A missing required column or a column named twice refuses the file."""
    found: dict[str, int] = {}
    positions: dict[int, str] = {}
    for position, name in enumerate(header):
        column = _ALIASES.get(_normal(name))
        if column is None:
            continue
        if column in found:
            raise SalesFileError(
                "invalid_sales_file",
                f"row 1: columns {found[column] + 1} and {position + 1} both read as {column}",
            )
        found[column] = position
        positions[position] = column
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        spell = "; ".join(f"{c}: {'/'.join(COLUMNS[c][:3])}" for c in missing)
        raise SalesFileError(
            "invalid_sales_file",
            f"row 1: the header lacks {', '.join(missing)} (accepted spellings: {spell})",
        )
    return positions


def amount(text: str) -> float | str:
    """``49.90``, ``1,234.50``, ``49,90`` or ``€ 49.90``: a number; anything else stays text
    for the contract to refuse."""
    cleaned = re.sub(r"[^\d.,\-]", "", text)
    if not cleaned or not re.search(r"\d", cleaned):
        return text
    if "," in cleaned and "." in cleaned:
        cleaned = cleaned.replace(",", "")
    elif cleaned.count(",") == 1 and len(cleaned.split(",")[1]) != 3:
        cleaned = cleaned.replace(",", ".")  # a decimal comma
    else:
        cleaned = cleaned.replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return text


def validate_row(cells: Mapping[str, Any], row: int, raw: str) -> SaleOrder | RowError:
    """One row's cells (contract field -> value) as an order, or why not."""
    data = {k: v for k, v in cells.items() if v not in ("", None)}
    if isinstance(data.get("user_id"), str) and "@" in data["user_id"]:
        data["user_id"] = email_hash(data["user_id"])
    if isinstance(data.get("amount"), str):
        data["amount"] = amount(data["amount"])
    if isinstance(data.get("currency"), str):
        data["currency"] = data["currency"].strip().upper()
    try:
        return SaleOrder.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        column = str(first["loc"][0]) if first["loc"] else None
        column = "date" if column == "ts" else column
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "missing":
            message = f"{column} is empty"
        return RowError(row, column, f"row {row}, column {column!r}: {message}", raw)


def parse_sales_csv(text: str) -> ParsedSales:
    """Every row of a sales CSV: the orders, and the rows refused with their reasons."""
    reader = csv.reader(io.StringIO(text))
    parsed = ParsedSales()
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise SalesFileError("empty_sales_file", "the file is empty: no header row")
        positions = header_map(header)
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(parsed.orders) + len(parsed.errors) >= MAX_ROWS:
                raise SalesFileError(
                    "too_many_rows", f"at most {MAX_ROWS} orders per import; split the file"
                )
            raw = private(",".join(values)[:4096])
            if len(values) != len(header):
                message = f"row {number}: expected {len(header)} columns, got {len(values)}"
                parsed.errors.append(RowError(number, None, message, raw))
                continue
            cells = {col: values[pos].strip() for pos, col in positions.items()}
            _add(parsed, validate_row(cells, number, raw), number)
    except csv.Error as error:
        raise SalesFileError(
            "invalid_sales_file", f"row {reader.line_num}: not CSV ({error})"
        ) from None
    return parsed


def parse_sales_rows(items: list[Any]) -> ParsedSales:
    """JSON rows (objects keyed by any of the header spellings) the same way."""
    parsed = ParsedSales()
    if len(items) > MAX_ROWS:
        raise SalesFileError("too_many_rows", f"at most {MAX_ROWS} orders per import")
    for number, item in enumerate(items, start=1):
        raw = private(orjson.dumps(item).decode()[:4096])
        if not isinstance(item, dict):
            parsed.errors.append(RowError(number, None, f"row {number}: not an object", raw))
            continue
        cells: dict[str, Any] = {}
        unknown = []
        for key, value in item.items():
            column = _ALIASES.get(_normal(str(key)))
            if column is None:
                unknown.append(str(key))
            else:
                cells[column] = value.strip() if isinstance(value, str) else value
        if unknown:
            message = f"row {number}: unknown field {unknown[0][:40]!r}"
            parsed.errors.append(RowError(number, unknown[0][:40], message, raw))
            continue
        if isinstance(cells.get("amount"), bool):
            cells["amount"] = str(cells["amount"])
        _add(parsed, validate_row(cells, number, raw), number)
    return parsed


def _add(parsed: ParsedSales, result: SaleOrder | RowError, number: int) -> None:
    if isinstance(result, RowError):
        parsed.errors.append(result)
    else:
        parsed.orders.append(result)
        parsed.rows.append(number)
