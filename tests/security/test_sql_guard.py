"""The analyst SQL checker on its own: each attack refused with its reason, analysts' SQL kept."""

from __future__ import annotations

import pytest

from clicktrail.sinks.readonly_sql import RefusedSql, check, check_clickhouse_ast


class TestRefused:
    """Statements that would leave the database, write, or loosen the limits."""

    @pytest.mark.parametrize(
        ("sql", "reason"),
        [
            ("SELECT * FROM clicktrail.clicks INTO OUTFILE '/tmp/x' APPEND", "into_outfile"),
            ("select 1 into outfile 'x' truncate format CSV", "into_outfile"),
            ("SELECT 1; SELECT 2", "multiple_statements"),
            ("SELECT 1; DROP TABLE clicktrail.clicks", "multiple_statements"),
            ("DROP TABLE clicktrail.clicks", "not_a_select"),
            ("INSERT INTO clicktrail.clicks SELECT * FROM clicktrail.clicks", "not_a_select"),
            ("SHOW TABLES", "not_a_select"),
            ("EXPLAIN SELECT 1", "not_a_select"),
            ("SET readonly = 0", "not_a_select"),
            ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table_function_not_allowed"),
            ("SELECT * FROM FILE('/etc/passwd')", "table_function_not_allowed"),
            ("SELECT * FROM `file`('/etc/passwd')", "table_function_not_allowed"),
            ("SELECT * FROM url('http://127.0.0.1/', 'CSV')", "table_function_not_allowed"),
            ("SELECT * FROM s3('https://b/k')", "table_function_not_allowed"),
            ("SELECT * FROM remote('h:9000', system.one)", "table_function_not_allowed"),
            ("SELECT * FROM remoteSecure('h:9440', system.one)", "table_function_not_allowed"),
            ("SELECT * FROM executable('x.sh', 'TSV', 'a String')", "table_function_not_allowed"),
            ("SELECT * FROM input('a String')", "table_function_not_allowed"),
            ("SELECT * FROM mysql('h:3306', 'd', 't', 'u', 'p')", "table_function_not_allowed"),
            ("SELECT * FROM postgresql('h', 'd', 't', 'u', 'p')", "table_function_not_allowed"),
            ("SELECT * FROM cluster('c', system.one)", "table_function_not_allowed"),
            ("SELECT * FROM view(SELECT 1 AS x)", "table_function_not_allowed"),
            (
                "SELECT c.event_id FROM clicktrail.clicks AS c JOIN url('http://x', 'CSV') AS u "
                "ON c.click_id = u.id",
                "table_function_not_allowed",
            ),
            (
                "SELECT 1 WHERE 1 IN (SELECT * FROM file('/etc/hostname'))",
                "table_function_not_allowed",
            ),
            ("SELECT file('/etc/passwd')", "function_not_allowed"),
            ("SELECT 1 SETTINGS max_execution_time = 0", "settings_not_allowed"),
            ("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", "settings_not_allowed"),
            ("SELECT 1 FORMAT JSON", "format_not_allowed"),
            ("", "empty_statement"),
            ("  ;  ", "empty_statement"),
            ("SELECT nonsense(", "syntax_error"),
        ],
    )
    def test_each_attack_has_its_reason(self, sql: str, reason: str) -> None:
        with pytest.raises(RefusedSql) as refused:
            check(sql)
        assert refused.value.reason == reason


class TestAccepted:
    """What analysts write every day passes unchanged."""

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT count() FROM clicktrail.clicks",
            "SELECT 1;",
            "SELECT c.campaign_id, count() AS n FROM clicktrail.clicks AS c "
            "JOIN clicktrail.conversions AS v ON v.click_id = c.click_id "
            "GROUP BY c.campaign_id HAVING n > 1 ORDER BY n DESC LIMIT 10",
            "WITH recent AS (SELECT * FROM clicktrail.clicks WHERE ts > now() - INTERVAL 1 DAY) "
            "SELECT partner_id, count() FROM recent GROUP BY partner_id",
            "SELECT event_id FROM clicktrail.clicks UNION ALL SELECT event_id FROM "
            "clicktrail.impressions",
            "SELECT * FROM clicktrail.clicks WHERE click_id IN "
            "(SELECT click_id FROM clicktrail.conversions)",
            "SELECT name, engine FROM system.tables WHERE database = 'clicktrail'",
            "SELECT * FROM clicktrail.brand_conflicts FINAL WHERE offender_kind = 'domain'",
            "SELECT number FROM numbers(10)",
            "SELECT count() FROM numbers(1e12)",
            "SELECT format('{} of {}', 1, 2), 'a;b', 'into outfile'",
            "SELECT partner_id, sum(payout) OVER (PARTITION BY partner_id) FROM "
            "clicktrail.conversions -- a comment; not a second statement",
        ],
    )
    def test_analyst_sql_passes(self, sql: str) -> None:
        assert check(sql) == sql.strip()


AST_SELECT = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      {table}
"""


class TestClickHouseAst:
    """The same rules over ClickHouse's own ``EXPLAIN AST`` (the parser that executes)."""

    def test_a_plain_select_and_an_allowed_generator_pass(self) -> None:
        check_clickhouse_ast(AST_SELECT.format(table="TableIdentifier clicktrail.clicks"))
        numbers = "Function numbers (children 1)\n       ExpressionList (children 1)"
        check_clickhouse_ast(AST_SELECT.format(table=numbers))

    @pytest.mark.parametrize(
        ("tree", "reason"),
        [
            (AST_SELECT.format(table="Function file (alias f)"), "table_function_not_allowed"),
            (AST_SELECT.format(table="Function url (children 1)"), "table_function_not_allowed"),
            (AST_SELECT + " Literal 'out.txt'\n", "into_outfile"),
            (AST_SELECT + " Set\n", "settings_not_allowed"),
            (AST_SELECT + " Identifier CSV\n", "format_not_allowed"),
            ("InsertQuery (children 1)\n", "not_a_select"),
            ("", "not_a_select"),
        ],
    )  # fmt: skip
    def test_refusals(self, tree: str, reason: str) -> None:
        with pytest.raises(RefusedSql) as refused:
            check_clickhouse_ast(tree)
        assert refused.value.reason == reason
