"""Which analyst SQL may run: one read statement, parsed, never pattern-matched.

``readonly=1`` is not enough on its own: chDB still honours ``INTO OUTFILE`` (it
writes on the host), runs several ``;``-separated statements, and table functions
such as ``file``, ``url`` or ``executable`` reach outside the database. So a
statement passes two parsers before it runs:

1. :func:`check` (pure, no engine): sqlglot's ClickHouse dialect. It gives the
   refusal a reason code (``multiple_statements``, ``into_outfile`` ...) and
   works where no engine is at hand (tests, the CLI before it opens a store).
2. :func:`check_clickhouse_ast`: ClickHouse's own parser, which is the one that
   executes. The store first asks the engine to re-format the statement
   (``formatQuerySingleLine``, passed as a bound parameter, which refuses
   multi-statements), then reads ``EXPLAIN AST`` of that text and walks the tree.
   What runs is that re-formatted text, so the statement executed is exactly the
   one ClickHouse's parser described; a construct sqlglot reads differently
   (a parser differential) is still judged by the parser that runs it.

Both checks use the same allow-list of table functions (generators that read
nothing) and refuse query-level ``SETTINGS`` (they could loosen the limits) and
``FORMAT`` (the output format is ours to choose).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries"}
)
"""Table functions (lower case) that generate rows and touch no file, URL, process or server."""

REFUSED_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "file", "fileCluster", "url", "urlCluster", "s3", "s3Cluster", "gcs", "oss", "cosn",
        "remote", "remoteSecure", "cluster", "clusterAllReplicas", "executable",
        "executablePool", "input", "mysql", "postgresql", "jdbc", "odbc", "hdfs", "hdfsCluster",
        "azureBlobStorage", "azureBlobStorageCluster", "sqlite", "mongodb", "redis", "iceberg",
        "icebergS3", "icebergAzure", "icebergHDFS", "icebergLocal", "deltaLake", "hudi",
        "catboostEvaluate",
    )
)  # fmt: skip
"""Functions refused wherever they appear (``file`` is also a scalar that reads a file)."""


class RefusedSql(ValueError):
    """A statement the analyst endpoint will not run; ``reason`` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Node:
    """One line of ``EXPLAIN AST``: its depth, kind (``Function``) and name (``file``)."""

    depth: int
    kind: str
    name: str
    parent: str


def check(sql: str) -> str:
    """The one read statement in ``sql`` (trailing ``;`` and comments kept as sent), or
    :class:`RefusedSql` saying why it may not run."""
    text = sql.strip()
    if not text:
        raise RefusedSql("empty_statement", "send one SELECT statement")
    try:
        statements = [s for s in sqlglot.parse(text, dialect="clickhouse") if s is not None]
    except SqlglotError as error:
        if _has_into_outfile(text):
            raise RefusedSql("into_outfile", "INTO OUTFILE is not allowed") from None
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RefusedSql("syntax_error", f"cannot parse the statement: {first}") from None
    if not statements:
        raise RefusedSql("empty_statement", "send one SELECT statement")
    if len(statements) > 1:
        raise RefusedSql("multiple_statements", "send one statement, without ';' between two")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        kind = statement.key.upper()
        raise RefusedSql("not_a_select", f"only SELECT statements are served, not {kind}")
    for node in statement.walk():
        _check_node(node)
    return text


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, exp.Into):
        raise RefusedSql("into_outfile", "SELECT ... INTO is not allowed")
    if isinstance(node, (exp.Command, exp.DML, exp.Create, exp.Drop, exp.Alter)):
        raise RefusedSql("not_a_select", "only SELECT statements are served")
    if node.args.get("settings"):
        raise RefusedSql("settings_not_allowed", "a SETTINGS clause is not allowed")
    if node.args.get("format"):
        raise RefusedSql("format_not_allowed", "FORMAT is not allowed; use ?format=")
    if isinstance(node, exp.Func):
        name = _function_name(node)
        in_table_position = isinstance(node.parent, exp.Table) and node.arg_key == "this"
        if in_table_position and name not in ALLOWED_TABLE_FUNCTIONS:
            raise RefusedSql(
                "table_function_not_allowed",
                f"table function {name}() is not allowed; allowed: "
                + ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS)),
            )
        if name in REFUSED_FUNCTIONS:
            raise RefusedSql("function_not_allowed", f"function {name}() is not allowed")


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _has_into_outfile(text: str) -> bool:
    """After a failed parse: does a token ``INTO`` precede ``OUTFILE``? Only the reason
    code depends on this; the statement is refused either way."""
    try:
        tokens = sqlglot.Dialect.get_or_raise("clickhouse").tokenize(text)
    except SqlglotError:
        return False
    words = [t.text.upper() for t in tokens if t.token_type is not TokenType.STRING]
    return any(a == "INTO" and b == "OUTFILE" for a, b in itertools.pairwise(words))


def check_clickhouse_ast(tree: str) -> None:
    """Judge ``EXPLAIN AST`` output of the statement about to run (ClickHouse's parser).

    The root must be a ``SelectWithUnionQuery`` whose only direct child is its list of
    selects: ``INTO OUTFILE`` shows there as a ``Literal``, ``SETTINGS`` as ``Set`` and
    ``FORMAT`` as an ``Identifier``. A ``Function`` directly under a ``TableExpression``
    is a table function and must be on the allow-list.
    """
    nodes = list(_nodes(tree))
    if not nodes or nodes[0].kind not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
        kind = nodes[0].kind if nodes else "nothing"
        raise RefusedSql("not_a_select", f"only SELECT statements are served, not {kind}")
    for node in nodes[1:]:
        if node.kind == "Set":
            raise RefusedSql("settings_not_allowed", "a SETTINGS clause is not allowed")
        if node.depth == 1 and node.kind != "ExpressionList":
            if node.kind == "Identifier":
                raise RefusedSql("format_not_allowed", "FORMAT is not allowed; use ?format=")
            raise RefusedSql("into_outfile", "INTO OUTFILE is not allowed")
        if node.kind in ("TableFunction", "Function"):
            name = node.name.lower()
            table = node.kind == "TableFunction" or node.parent == "TableExpression"
            if table and name not in ALLOWED_TABLE_FUNCTIONS:
                raise RefusedSql(
                    "table_function_not_allowed", f"table function {name}() is not allowed"
                )
            if name in REFUSED_FUNCTIONS:
                raise RefusedSql("function_not_allowed", f"function {name}() is not allowed")


def _nodes(tree: str) -> Iterator[_Node]:
    """``EXPLAIN AST`` lines as nodes; one leading space per level of depth."""
    parents: list[str] = []
    for line in tree.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        words = line.strip().split()
        kind = words[0]
        name = words[1] if len(words) > 1 and not words[1].startswith("(") else ""
        del parents[depth:]
        parent = parents[-1] if parents else ""
        parents.append(kind)
        yield _Node(depth, kind, name, parent)
