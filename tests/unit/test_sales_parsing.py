"""Sales exports as CRMs write them: header spellings, amounts, per-row refusals."""

from __future__ import annotations

import hashlib

import pytest

from clicktrail.processors.sales import SalesFileError, amount, parse_sales_csv, parse_sales_rows


class TestHeader:
    """Columns are found by any common spelling, in any case; required ones must be there."""

    @pytest.mark.parametrize(
        "header",
        [
            "order_id,date,amount,currency,status",
            "Order ID,Created_At,Total,Currency,Status",
            "\ufeffid,created-at,REVENUE,currency,order status",
            "status,currency,revenue,date,order_number,comment",
        ],
    )
    def test_spellings(self, header: str) -> None:
        columns = [c.strip().lower() for c in header.lstrip("\ufeff").split(",")]
        values = {"order_id": "A1", "date": "2026-03-01", "amount": "9.5", "currency": "eur"}
        row = []
        for column in columns:
            if "status" in column:
                row.append("paid")
            elif "cur" in column:
                row.append(values["currency"])
            elif column in ("amount", "total", "revenue"):
                row.append(values["amount"])
            elif "at" in column or column == "date":
                row.append(values["date"])
            elif column == "comment":
                row.append("gift")
            else:
                row.append(values["order_id"])
        parsed = parse_sales_csv(f"{header}\n{','.join(row)}\n")
        assert parsed.errors == []
        (sale,) = parsed.orders
        assert (sale.order_id, sale.amount, sale.currency, sale.status) == (
            "A1",
            9.5,
            "EUR",
            "approved",
        )

    def test_missing_columns_refuse_the_file(self) -> None:
        with pytest.raises(SalesFileError, match="lacks amount, currency") as caught:
            parse_sales_csv("order_id,date,status\nA1,2026-03-01,paid\n")
        assert caught.value.reason == "invalid_sales_file"

    def test_a_column_named_twice_refuses_the_file(self) -> None:
        with pytest.raises(SalesFileError, match="both read as amount"):
            parse_sales_csv("id,date,total,amount,currency,status\n")

    def test_empty(self) -> None:
        with pytest.raises(SalesFileError) as caught:
            parse_sales_csv("")
        assert caught.value.reason == "empty_sales_file"


class TestRows:
    """A bad row is refused on its own, with its number and column."""

    def test_bad_rows_and_good_rows(self) -> None:
        parsed = parse_sales_csv(
            "order_id,date,amount,currency,status\n"
            "A1,2026-03-01,10,EUR,paid\n"
            "A2,2026-03-01,-3,EUR,paid\n"
            "A3,2026-03-01\n"
            "\n"
            "A4,not a date,10,EUR,paid\n"
        )
        assert [o.order_id for o in parsed.orders] == ["A1"]
        assert parsed.rows == [2]
        assert [(e.row, e.column) for e in parsed.errors] == [
            (3, "amount"),
            (4, None),
            (6, "date"),
        ]
        assert "A2" in parsed.errors[0].raw

    def test_json_rows(self) -> None:
        parsed = parse_sales_rows(
            [
                {"Order ID": "A1", "created_at": "2026-03-01T10:00:00Z", "total": 5,
                 "currency": "USD", "status": "shipped", "user_id": "u-1"},
                {"order_id": "A2", "date": "2026-03-01", "amount": 5, "currency": "USD",
                 "status": "paid", "colour": "red"},
                "not an object",
            ]
        )  # fmt: skip
        assert [o.order_id for o in parsed.orders] == ["A1"]
        assert parsed.orders[0].user_id == "u-1"
        assert [(e.row, e.column) for e in parsed.errors] == [(2, "colour"), (3, None)]


@pytest.mark.parametrize(
    ("text", "value"),
    [("49.90", 49.9), ("1,234.50", 1234.5), ("49,90", 49.9), ("€ 49.90", 49.9), ("1,234", 1234.0)],
)
def test_amounts(text: str, value: float) -> None:
    assert amount(text) == pytest.approx(value)


def test_an_amount_that_is_no_number_stays_text() -> None:
    assert amount("ten") == "ten"


def test_an_e_mail_is_never_kept_raw() -> None:
    """A user_id column holding addresses is hashed; a refused row keeps the hash only."""
    parsed = parse_sales_csv(
        "order_id,date,amount,currency,status,email_hash\n"
        "A1,2026-03-01,10,EUR,paid, Jane.Doe@Example.com\n"
        "A2,2026-03-01,ten,EUR,paid,jane.doe@example.com\n"
    )
    digest = hashlib.sha256(b"jane.doe@example.com").hexdigest()[:40]
    assert parsed.orders[0].user_id == f"sha256:{digest}"
    (refused,) = parsed.errors
    assert "@" not in refused.raw and digest in refused.raw
