"""``clicktrail import-sales`` and ``clicktrail reconcile``: the advertiser's sales against
what was tracked.

``import-sales`` reads the export here first, so a missing file, a file that is not
UTF-8 CSV or a header without the needed columns is reported without a round trip
(rows that fail are listed, and the service refuses them again: it trusts no client).
It then posts the file to a running ``clicktrail run``, which holds the conversions the
matched orders update, and prints the per-partner summary. ``reconcile`` prints that
summary from the store at any time. Exit codes: 2 for a file to fix (or one the service
refused), 1 when the service or the store cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from clicktrail.cli.upload import (
    API_KEY_ENV,
    ImportFailed,
    add_service_arguments,
    checked_url,
    post_csv,
)
from clicktrail.edge.auth import operator_token
from clicktrail.processors.sales import COLUMNS, ParsedSales, SalesFileError, parse_sales_csv
from clicktrail.sinks.store import DEFAULT_DATABASE, DEFAULT_DSN

PATH = "/v1/sales"
DESCRIPTION = """\
Check the advertiser's sales export (orders from its CRM or shop), then POST it to
URL/v1/sales of a running 'clicktrail run'. Each order is matched to the tracked
conversion whose txid is its order id (or, with a user_id column, to the same user's
nearest conversion without a txid); matched orders update their conversion's status and
amount as a status postback would. The per-partner summary is printed: matched, refunded,
tracked but not sold (payout at risk), sold but not tracked (tracking gap), amount
differences. Importing the same file again changes nothing. With --offline, the
matching runs on the store itself (no service needed) and conversions are left as they
are.

The file is UTF-8 CSV with a header; column names are matched case-insensitively:

  order id   order_id, order id, id, order_number, transaction_id, txid
  date       date, created_at, order_date (YYYY-MM-DD or RFC 3339)
  amount     amount, total, revenue, order_total
  currency   currency, currency_code (ISO 4217)
  status     status, order_status (paid/completed/shipped, refunded/cancelled/
             chargeback, pending/processing)
  user_id    optional: hashed customer id or e-mail hash
"""
EPILOG = """\
exit codes: 0 imported, 2 the file is malformed or was refused, 1 the service could not
be reached or failed.

example:
  clicktrail import-sales exports/orders-2026-03.csv --api-key "$ACME_API_KEY"
  clicktrail import-sales orders.csv --advertiser acme    # operator token from
                                                          # $CLICKTRAIL_OPERATOR_TOKEN
"""
SUMMARY_COLUMNS = (
    ("partner", "partner"),
    ("currency", "currency"),
    ("matched", "sold+tracked"),
    ("refunded", "refunded"),
    ("tracked_not_sold", "not sold"),
    ("payout_at_risk", "payout at risk"),
    ("sold_not_tracked", "not tracked"),
    ("untracked_amount", "untracked sales"),
    ("amount_differences", "amount diffs"),
    ("amount_difference", "sold - tracked"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the export: UTF-8 CSV with a header")
    parser.add_argument(
        "--advertiser",
        metavar="ID",
        help="whose sales (needed with the operator token; an advertiser's key implies it)",
    )
    parser.add_argument(
        "--action",
        action="append",
        default=[],
        metavar="NAME",
        help="tracked action(s) the orders are held against (default: purchase)",
    )
    add_service_arguments(
        parser, serves="'clicktrail run'", timeout=120.0, key_help=", else the operator token"
    )
    offline = parser.add_argument_group(
        "offline",
        "without a running service: match against the store directly and record the pairs "
        "and the summary; conversions are not updated (no running pipeline holds them, and "
        "an update now would count them again); refused rows are printed, not dead-lettered",
    )
    offline.add_argument("--offline", action="store_true", help="reconcile on the store itself")
    offline.add_argument(
        "--store",
        default=os.environ.get("CLICKTRAIL_STORE", DEFAULT_DSN),
        metavar="DSN",
        help="with --offline: the store (default: $CLICKTRAIL_STORE or %(default)s)",
    )
    offline.add_argument(
        "--database",
        default=os.environ.get("CLICKTRAIL_DATABASE", DEFAULT_DATABASE),
        help="with --offline: the database (default: %(default)s)",
    )
    offline.add_argument(
        "--config",
        dest="registry",
        default=os.environ.get("CLICKTRAIL_CONFIG"),
        metavar="FILE",
        help="with --offline: the registry, for the advertiser's campaigns (default: "
        "$CLICKTRAIL_CONFIG)",
    )


def read_export(path: Path) -> tuple[bytes, ParsedSales]:
    """The file's bytes and its parse, or the one-line reason it cannot be sent."""
    try:
        body = path.read_bytes()
    except OSError as error:
        raise ImportFailed(f"cannot read {path}: {error.strerror or error}", 2) from None
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFailed(f"{path} is not UTF-8 text", 2) from None
    try:
        parsed = parse_sales_csv(text)
    except SalesFileError as error:
        raise ImportFailed(f"{path}: {error.message}", 2) from None
    if not parsed.orders and not parsed.errors:
        raise ImportFailed(f"{path} has a header and no orders", 2)
    if not parsed.orders:
        first = parsed.errors[0].message
        raise ImportFailed(f"{path}: no order is valid ({len(parsed.errors)} rows; {first})", 2)
    return body, parsed


def run(args: argparse.Namespace) -> int:
    if args.offline:
        return offline(args)
    try:
        answer = import_file(
            Path(args.file),
            args.url,
            args.timeout,
            args.api_key,
            advertiser=args.advertiser,
            actions=args.action,
        )
    except ImportFailed as failure:
        print(f"clicktrail: error: {failure}", file=sys.stderr)
        return failure.code
    for row in answer.get("rejected", []):
        print(f"refused: {row.get('message')}", file=sys.stderr)
    outcomes = answer.get("outcomes", {})
    print(
        f"imported {answer.get('accepted', 0)} orders for {answer.get('advertiser')} from "
        f"{args.file} ({len(answer.get('rejected', []))} refused, "
        f"{answer.get('updates', 0)} conversions updated; import {answer.get('import_id')})"
    )
    if answer.get("not_updated"):
        print(
            f"{answer['not_updated']} matched conversions were not updated: the service no "
            "longer holds them (it restarted since they were tracked, or they are older than "
            "its attribution state); their pairs are recorded all the same",
            file=sys.stderr,
        )
    if outcomes:
        print("this import: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print()
    print(render_summary(answer.get("summary", [])))
    return 0


def offline(args: argparse.Namespace) -> int:
    """``import-sales --offline``: the matching and the pairs, on the store itself."""
    from clicktrail.cli.commands import _open_store
    from clicktrail.config import load_registry
    from clicktrail.runtime.reconcile import SalesLedger
    from clicktrail.sinks.migrations import migrate

    try:
        _, parsed = read_export(Path(args.file))
    except ImportFailed as failure:
        print(f"clicktrail: error: {failure}", file=sys.stderr)
        return failure.code
    registry = load_registry(args.registry)
    advertiser = args.advertiser
    if advertiser is None and len(registry.advertisers) == 1:
        advertiser = next(iter(registry.advertisers))
    if advertiser not in registry.advertisers:
        known = ", ".join(registry.advertisers) or "none in the registry"
        print(
            f"clicktrail: error: --advertiser must name one of the registry's ({known})",
            file=sys.stderr,
        )
        return 2
    for error in parsed.errors:
        print(f"refused: {error.message}", file=sys.stderr)
    orders = [o for o in parsed.orders if o.advertiser_id in (None, advertiser)]
    store = _open_store(argparse.Namespace(store=args.store, database=args.database))
    migrate(store)
    ledger = SalesLedger(registry, store)
    try:
        result = ledger.reconcile(advertiser, orders, args.action)
    except ValueError as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 2
    result.held_back(set(result.updated))
    ledger.record(result.records)
    outcomes: dict[str, int] = {}
    for record in result.records:
        outcomes[str(record.outcome)] = outcomes.get(str(record.outcome), 0) + 1
    print(
        f"reconciled {len(orders)} orders for {advertiser} from {args.file} on {store.dsn} "
        f"({len(parsed.errors)} refused; offline: {len(result.updated)} conversions to update "
        "were left as they are)"
    )
    print("this import: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print()
    print(render_summary(s.as_dict() for s in ledger.summary(advertiser)))
    return 0


def import_file(
    path: Path,
    url: str,
    timeout: float,
    api_key: str = "",
    *,
    advertiser: str | None = None,
    actions: Iterable[str] = (),
) -> dict[str, Any]:
    base = checked_url(url)
    body, _ = read_export(path)
    key = api_key or operator_token() or ""
    if not key:
        raise ImportFailed(
            f"an API key is needed: pass --api-key, set ${API_KEY_ENV} or the operator token", 2
        )
    query = [("advertiser", advertiser)] if advertiser else []
    query += [("action", a) for a in actions]
    target = base + PATH + (f"?{urllib.parse.urlencode(query)}" if query else "")
    return post_csv(target, body, timeout, key, hint=" (is 'clicktrail run' running?)")


def render_summary(rows: Iterable[Mapping[str, Any]]) -> str:
    """The per-partner summary as a table, then one plain sentence per partner that has
    something to act on."""
    rows = list(rows)
    if not rows:
        return "no sales imported yet"
    table = [[label for _, label in SUMMARY_COLUMNS]]
    for row in rows:
        table.append([_cell(name, row) for name, _ in SUMMARY_COLUMNS])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]
    sentences = [s for row in rows if (s := advice(row))]
    return "\n".join([*lines, "", *sentences] if sentences else lines)


MONEY = frozenset({"payout_at_risk", "untracked_amount", "amount_difference"})


def _cell(name: str, row: Mapping[str, Any]) -> str:
    value = row.get(name if name != "partner" else "partner_id")
    if name == "partner":
        return str(value) or "(no partner)"
    if name in MONEY:
        return f"{float(value or 0):,.2f}"
    return str(value if value is not None else "")


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def advice(row: Mapping[str, Any]) -> str:
    """What a manager should know about one line, in words ('' when nothing)."""
    partner, currency = row.get("partner_id") or "", row.get("currency", "")
    parts = []
    not_sold = int(row.get("tracked_not_sold") or 0) + int(row.get("refunded") or 0)
    if not_sold:
        at_risk = float(row.get("payout_at_risk") or 0)
        text = f"{_count(not_sold, 'tracked conversion')} not sold or refunded"
        if at_risk > 0:
            text += f": {at_risk:,.2f} {currency} of payouts at risk"
        else:
            text += " (already rejected: no payout at risk)"
        parts.append(text)
    if row.get("amount_differences"):
        difference = float(row.get("amount_difference") or 0)
        orders = _count(int(row["amount_differences"]), "order")
        parts.append(f"{orders} sold for {difference:+,.2f} {currency} against what was tracked")
    if row.get("currency_mismatches"):
        orders = _count(int(row["currency_mismatches"]), "order")
        parts.append(f"{orders} sold in another currency than tracked")
    if row.get("sold_not_tracked"):
        amount = float(row.get("untracked_amount") or 0)
        orders = _count(int(row["sold_not_tracked"]), "order")
        parts.append(f"{orders} ({amount:,.2f} {currency}) sold but never tracked: a tracking gap")
    if not parts:
        return ""
    who = partner or "Without a partner"
    return f"{who}: " + "; ".join(parts) + "."


def reconcile_view(args: argparse.Namespace) -> int:
    """``clicktrail reconcile``: the summary from the store (through a running service)."""
    from clicktrail.cli.commands import _read_only

    where = ""
    if args.advertiser:
        if not all(c.isalnum() or c in "._:~-" for c in args.advertiser):
            print("clicktrail: error: --advertiser is an id", file=sys.stderr)
            return 2
        where = f" WHERE advertiser_id = '{args.advertiser}'"
    sql = (
        "SELECT advertiser_id, partner_id, currency, matched, refunded, tracked_not_sold, "
        "toFloat64(payout_at_risk) AS payout_at_risk, sold_not_tracked, "
        "toFloat64(untracked_amount) AS untracked_amount, amount_differences, "
        "toFloat64(amount_difference) AS amount_difference, currency_mismatches "
        f"FROM {args.database}.reconciliation_summary{where} "
        "ORDER BY advertiser_id, partner_id = '', payout_at_risk DESC, partner_id, currency"
    )
    raw = _read_only(args, sql, "json")
    rows = [_typed(json.loads(line)) for line in raw.decode().splitlines() if line.strip()]
    if not rows:
        print("no sales imported yet: clicktrail import-sales FILE")
        return 0
    advertisers = sorted({r["advertiser_id"] for r in rows})
    for n, name in enumerate(advertisers):
        if n:
            print()
        print(f"advertiser {name}")
        print(render_summary([r for r in rows if r["advertiser_id"] == name]))
    return 0


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """JSONEachRow quotes 64-bit integers: counts back to numbers."""
    for name, value in row.items():
        if isinstance(value, str) and name not in ("advertiser_id", "partner_id", "currency"):
            row[name] = float(value) if "." in value else int(value)
    return row


__all__ = ["COLUMNS", "ImportFailed", "add_arguments", "read_export", "reconcile_view", "run"]
