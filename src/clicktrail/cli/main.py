"""``clicktrail``: the command-line entry point.

Each sub-command reads the configuration and opens the store once, then hands
them to a runtime. Errors a user can fix are one line on stderr and exit code
2 (usage/config) or 1 (the store or the run failed); never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from clicktrail import __version__, logs
from clicktrail.cli import devmode
from clicktrail.config import ConfigError
from clicktrail.sinks.store import DEFAULT_DATABASE, DEFAULT_DSN, StoreError

log = structlog.get_logger("clicktrail.cli")

ENV_STORE = "CLICKTRAIL_STORE"
ENV_CONFIG = "CLICKTRAIL_CONFIG"
ENV_DATABASE = "CLICKTRAIL_DATABASE"


NO_REGISTRY = (
    f"clicktrail: warning: no registry (--config or ${ENV_CONFIG}): no campaigns, partners or "
    "brands; every event is judged with the defaults"
)


class UsageError(Exception):
    """Bad arguments: exit code 2."""


def resolve_config(args: argparse.Namespace) -> None:
    """The registry a command runs with: ``--config``, else the one its input brings
    (``own_config``: a simulator directory's), else ``$CLICKTRAIL_CONFIG``. A command that
    takes one and is left without says so in one line: it would judge every event by the
    defaults, and refuse every campaign and partner as unknown, without a word."""
    if not hasattr(args, "config") or args.command == "check-config":
        return
    own: Callable[[argparse.Namespace], str | None] | None = getattr(args, "own_config", None)
    if not args.config and own is not None:
        args.config = own(args)
    args.config = args.config or os.environ.get(ENV_CONFIG) or None
    if args.config is None:
        print(NO_REGISTRY, file=sys.stderr)


def _common(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get(ENV_STORE, DEFAULT_DSN),
        metavar="DSN",
        help=f"ClickHouse target: chdb://DIR (embedded) or http://HOST:8123 "
        f"(default: ${ENV_STORE} or %(default)s)",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get(ENV_DATABASE, DEFAULT_DATABASE),
        help="database holding clicktrail's tables (default: %(default)s)",
    )
    if config:
        parser.add_argument(
            "--config",
            metavar="FILE",
            help=f"registry YAML: advertisers, brands, campaigns, partners, rules "
            f"(default: ${ENV_CONFIG}; none means no business set up)",
        )


def _models_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        metavar="FILE",
        help="checkpoint of the per-action models, restored at start and saved every minute "
        "and at exit (default: <store dir>.models.ckpt for chdb://, else var/models.ckpt; "
        "'none' keeps them in memory only)",
    )


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument(
        "--broker",
        default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP or %(default)s)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=8,
        help="partitions of every topic: missing ones are created with it; it refuses to "
        "start when existing ones (or its tables' changelogs) have another count "
        "(default: %(default)s)",
    )
    parser.add_argument("--app-id", default="clicktrail", help="consumer group / app id")
    parser.add_argument(
        "--data-dir", default="var/worker", help="local table data (default: %(default)s)"
    )
    parser.add_argument(
        "--table-store",
        default=None,
        help="Faust table store: rocksdb:// (default when rocksdict is installed) or memory://",
    )
    parser.add_argument(
        "--tick-seconds",
        type=float,
        default=5.0,
        help="how often waiting conversions are checked against the watermark "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on this port (default: not served)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address /metrics listens on (default: %(default)s; 0.0.0.0 in a container)",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=45.0,
        help="seconds without heartbeats before a dead worker's partitions go to the others "
        "(6-300, default: %(default)s)",
    )
    parser.add_argument(
        "--instance-id",
        default="auto",
        metavar="ID|auto|none",
        help="static group membership: a worker restarted with the same id gets its "
        "partitions back at once, without a rebalance. auto (default): an id kept in "
        "<data-dir>/instance-id, so it follows the worker's state; none: dynamic "
        "membership (a clean stop hands the partitions over at once)",
    )


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=100_000, help="embedded run size")
    parser.add_argument("--rows", type=int, default=100_000, help="sink run size")
    parser.add_argument("--faust-events", type=int, default=30_000, help="Faust run size")
    parser.add_argument("--samples", type=int, default=20, help="latency samples")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--edge-seconds", type=float, default=3.0, help="load per endpoint")
    parser.add_argument(
        "--broker",
        default=os.environ.get("KAFKA_BOOTSTRAP"),
        help="Kafka for the Faust and edge-to-Kafka rows (default: $KAFKA_BOOTSTRAP)",
    )
    parser.add_argument(
        "--only",
        default="edge,embedded,sink,faust,latency,loop",
        help="comma-separated parts to run (default: %(default)s); 'loop' alone is the "
        "quick /healthz-during-a-10k-batch check",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from clicktrail.simulate.scenarios import SCENARIOS

    parser.add_argument(
        "directory",
        metavar="DIR",
        help="output of clicktrail simulate; with --matrix, where the runs are kept",
    )
    parser.add_argument("--store", default=None, metavar="DSN", help="default: chdb://DIR/store")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument(
        "--replay",
        choices=["auto", "always", "never"],
        default="auto",
        help="auto: replay when the store holds no clicks yet (default)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    matrix = parser.add_argument_group(
        "matrix",
        "judge by the worst case: simulate N worlds whose planted patterns draw their "
        "parameters from wide ranges (variants 1..N, seeds SEED..SEED+N-1), replay and score "
        "each, and report per measure the worst and median over them",
    )
    matrix.add_argument("--matrix", type=int, metavar="N", help="number of runs (e.g. 8)")
    matrix.add_argument(
        "--events", type=int, default=50_000, help="events per run (default: %(default)s)"
    )
    matrix.add_argument("--seed", type=int, default=1, help="first seed (default: %(default)s)")
    matrix.add_argument(
        "--scenario",
        default="default",
        choices=list(SCENARIOS),
        metavar="NAME",
        help="scenario of every run (default: %(default)s)",
    )


def _add_views(sub: Any) -> None:
    """Ready-made analyst views: who cheats, and who bids on whose brand."""
    from clicktrail.cli import commands

    fraud = sub.add_parser(
        "fraud",
        help="partners ranked by flagged share, with their top reasons",
        description="Read fraud_verdicts and the rollups: per partner, clicks, flagged clicks "
        "and share, flagged conversions and the most frequent reasons.",
    )
    _common(fraud, config=False)
    fraud.add_argument("--limit", type=int, default=20, help="partners to show")
    fraud.set_defaults(handler=commands.fraud_view)

    conflicts = sub.add_parser(
        "conflicts",
        help="current brand conflicts by brand and offender, with cost impact",
        description="Read brand_conflicts: per brand and offender, signals, keywords, clicks, "
        "impressions, auction-insights rows, head-to-head, estimated CPC inflation and cost "
        "impact, severity.",
    )
    _common(conflicts, config=False)
    conflicts.add_argument("--brand", help="only this brand")
    conflicts.set_defaults(handler=commands.conflicts_view)

    models = sub.add_parser(
        "models",
        help="each per-action model's quality and its strongest features",
        description="Read model_quality: per action, the latest progressive AUC, log loss, "
        "calibration error, examples, base rate and the strongest weights. With --lift, "
        "also how much better the top score decile converts (click_scores against the "
        "attributed conversions) and the spend that targeting the top deciles would save.",
    )
    _common(models, config=False)
    models.add_argument("--lift", action="store_true", help="add the lift report")
    models.add_argument(
        "--top-features", type=int, default=3, help="weights to show (default: %(default)s)"
    )
    models.set_defaults(handler=commands.models_view)


def _add_run_and_replay(sub: Any) -> None:
    """The embedded runtime: as a service, or over files."""
    from clicktrail.cli import commands

    run = sub.add_parser(
        "run",
        help="run the service: HTTP intake + processing on the embedded runtime",
        description="Start the tracking service on the embedded runtime (in-process bus, "
        "ClickHouse via chDB by default). Prints where it listens and a curl to try it.",
    )
    _common(run)
    _models_argument(run)
    run.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    run.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    run.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where accepted events are logged before they are acknowledged and the "
        "pipeline's state is snapshotted; a restart resumes from there (default: next to "
        "the chDB store, DIR.state, or var/state for a server store). One service per DIR",
    )
    run.add_argument(
        "--snapshot-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between state snapshots; a restart reprocesses at most the events "
        "logged since the last one (default: %(default)s)",
    )
    devmode.add_dev_argument(run)
    run.set_defaults(handler=commands.run)

    replay = sub.add_parser(
        "replay",
        help="feed JSONL event files and auction-insights exports through the pipeline",
        description="Validate and process JSONL files (one event per line, .gz ok, - for "
        "stdin) in order. Bad lines go to dead_letters with a reason; counts are printed. "
        "A .csv file is an auction-insights export (parsed whole first: a malformed one "
        "stops the run); a 'clicktrail simulate' directory stands for its events.jsonl "
        "followed by its auction_insights.csv, replayed with its registry.yaml unless --config "
        "names another (over $CLICKTRAIL_CONFIG, which describes another world).",
    )
    _common(replay)
    _models_argument(replay)
    replay.add_argument(
        "files", nargs="+", metavar="FILE", help="events .jsonl[.gz], export .csv, a DIR or -"
    )
    replay.set_defaults(handler=commands.replay, own_config=commands.replay_registry)


def _add_import_insights(sub: Any) -> None:
    """Advertisers' auction-insights exports into a running service."""
    from clicktrail.cli import insights

    parser = sub.add_parser(
        "import-insights",
        help="send an auction-insights export (CSV) to a running service",
        description=insights.DESCRIPTION,
        epilog=insights.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    insights.add_arguments(parser)
    parser.set_defaults(handler=insights.run)


def _add_sales(sub: Any) -> None:
    """The advertiser's sales against what was tracked."""
    from clicktrail.cli import sales

    parser = sub.add_parser(
        "import-sales",
        help="send the advertiser's sales export (CSV) to a running service and reconcile it",
        description=sales.DESCRIPTION,
        epilog=sales.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sales.add_arguments(parser)
    parser.set_defaults(handler=sales.run)

    reconcile = sub.add_parser(
        "reconcile",
        help="per partner: sales matched, refunded, not sold, not tracked, amount differences",
        description="Read reconciliation_summary (written by import-sales / POST /v1/sales): "
        "per advertiser, partner and currency, orders sold and tracked, refunded, tracked "
        "conversions not sold (payout at risk), orders not tracked (tracking gap) and amount "
        "differences, with a sentence for each partner that has something to act on.",
    )
    _common(reconcile, config=False)
    reconcile.add_argument("--advertiser", metavar="ID", help="only this advertiser")
    reconcile.set_defaults(handler=sales.reconcile_view)


def _guarded_worker(args: argparse.Namespace) -> int:
    """A worker verifies click ids and signs nothing it serves, but a forged click id
    passes it as well as the edge: the same secrets check, before Kafka is touched."""
    from clicktrail.cli import commands
    from clicktrail.config import load_registry

    devmode.require_safe_secrets(
        load_registry(args.config),
        config=args.config,
        dev=args.dev,
        hosts=devmode.broker_hosts(args.broker),
        role="the worker",
    )
    return commands.worker(args)


def build_parser() -> argparse.ArgumentParser:
    from clicktrail.cli import commands

    parser = argparse.ArgumentParser(
        prog="clicktrail",
        description="Streaming conversion tracking: attribution, fraud and brand-conflict "
        "detection, per-action conversion models, ClickHouse analytics.",
        epilog="Run 'clicktrail COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"clicktrail {__version__}")
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="log lines as JSON or readable text (auto: text on a terminal)",
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_run_and_replay(sub)
    _add_import_insights(sub)
    _add_sales(sub)

    query = sub.add_parser(
        "query",
        help="run read-only SQL against the store",
        description="Run SQL with readonly=1. When 'clicktrail run' holds the embedded store, "
        "the query goes through the running service.",
    )
    _common(query, config=False)
    query.add_argument("sql", help='e.g. "SELECT count() FROM clicktrail.clicks"')
    query.add_argument(
        "--format",
        choices=["table", "csv", "tsv", "json"],
        default="table",
        help="output format (default: %(default)s)",
    )
    query.set_defaults(handler=commands.query)

    migrate = sub.add_parser(
        "migrate",
        help="create or upgrade the ClickHouse tables (idempotent)",
        description="Apply schemas/clickhouse/NNN_*.sql in order; applied files are skipped. "
        "With --cluster, lay the tables out for a ClickHouse cluster of shards and replicas: "
        "each table x becomes a ReplicatedMergeTree-family x_local on every node (ON CLUSTER, "
        "Keeper path /clickhouse/tables/{shard}/DB/x_local, replica {replica}: both macros "
        "come from each server's config) with a Distributed table x in front, sharded by a "
        "hash of its sort key; materialized views aggregate each shard's local rows.",
        epilog="Examples: 'clicktrail migrate --cluster clicktrail --print' shows the DDL "
        "without a server; 'clicktrail migrate --cluster clicktrail --store "
        "http://user:password@node:8123' applies it through one node of the cluster. "
        "See docs/operations.md, 'Growing past one ClickHouse server'.",
    )
    _common(migrate, config=False)
    migrate.add_argument(
        "--cluster",
        metavar="NAME",
        help="the cluster in the servers' remote_servers config: create replicated tables "
        "with Distributed tables in front, ON CLUSTER NAME, instead of single-server tables",
    )
    migrate.add_argument(
        "--print",
        dest="print_ddl",
        action="store_true",
        help="print every statement migrate would run on an empty database, as one script "
        "for clickhouse-client --multiquery, and exit; opens no store",
    )
    migrate.set_defaults(handler=commands.migrate)

    schemas = sub.add_parser(
        "schemas",
        help="write (or check) the JSON Schemas of the event contract",
        description="Generate JSON Schemas from the pydantic models into a directory.",
    )
    schemas.add_argument("--out", default="schemas/events", help="directory (default: %(default)s)")
    schemas.add_argument(
        "--check", action="store_true", help="fail if the files differ from the models"
    )
    schemas.set_defaults(handler=commands.schemas)

    worker = sub.add_parser(
        "worker",
        help="run a Faust worker: the processors on Kafka (scale-out)",
        description="Consume the event topics from Kafka and run the processors; start more "
        "workers (same --app-id) to split the partitions. Writes to --store.",
    )
    _worker_arguments(worker)
    devmode.add_dev_argument(worker, where="every --broker host")
    worker.set_defaults(handler=_guarded_worker)

    from clicktrail.edge import cli as edge_cli

    edge = sub.add_parser(
        "edge",
        help="run the tracking edge alone, producing to Kafka (scale-out)",
        description="Serve pixels, click redirects, postbacks and batch intake, and produce "
        "the events to Kafka; while Kafka is away they wait in a local spool.",
    )
    edge_cli.add_arguments(edge)
    edge.set_defaults(handler=edge_cli.edge)

    from clicktrail.simulate import cli as simulate_cli

    simulate = sub.add_parser(
        "simulate",
        help="generate a seeded traffic scenario with ground truth (events, truth, registry)",
    )
    simulate_cli.add_arguments(simulate)
    simulate.set_defaults(handler=simulate_cli.run)

    bench = sub.add_parser(
        "bench",
        help="measure speed: edge, embedded pipeline, sink, Faust worker, latency",
        description="Run the benchmarks (several runs, medians) and print a table beside the "
        "goals of the brief; --json writes the figures for CI history.",
    )
    _bench_arguments(bench)
    bench.set_defaults(handler=commands.bench)

    evaluate = sub.add_parser(
        "evaluate",
        help="score the pipeline against a simulated scenario's ground truth",
        description="Replay a 'clicktrail simulate' directory through the embedded pipeline "
        "(unless its store already holds it) and compare what the store says with truth.jsonl: "
        "attribution accuracy, fraud precision/recall per pattern, brand-conflict "
        "precision/recall, per-action model AUC vs the oracle.",
    )
    _evaluate_arguments(evaluate)
    evaluate.set_defaults(handler=commands.evaluate)

    _add_views(sub)

    check = sub.add_parser(
        "check-config",
        help="validate a registry file and summarize it",
        description="Load the registry YAML and report every problem with its key.",
    )
    check.add_argument("config", metavar="FILE")
    check.set_defaults(handler=commands.check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # A stream processor allocates many short-lived containers per event; at the default
    # gen-0 threshold (700) the collector runs every few events and costs a third of the time.
    gc.set_threshold(50_000, 20, 20)
    logs.configure(args.log_format, args.log_level)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        resolve_config(args)
        return handler(args)
    except (ConfigError, UsageError) as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"clicktrail: store error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # e.g. `clicktrail query ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
