"""``clicktrail edge``: the tracking edge alone, producing to Kafka (scale-out).

No processing here: events go to Kafka (or the local spool while Kafka is away)
and the Faust workers take them from there. Run one per core, each with its own
port and spool directory. Given ``--dashboard-store`` (the ClickHouse server the
workers write to), it also serves the dashboard at ``/ui/`` from that store.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from clicktrail.cli.devmode import add_dev_argument, require_safe_secrets
from clicktrail.config import load_registry

if TYPE_CHECKING:
    from clicktrail.bus.admin import TopicPartitionsError

ENV_CONFIG = "CLICKTRAIL_CONFIG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get(ENV_CONFIG),
        metavar="FILE",
        help=f"registry YAML (default: ${ENV_CONFIG}; none means no campaigns)",
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP or %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    add_dev_argument(parser)
    parser.add_argument(
        "--spool-dir",
        default=None,
        help="where events wait while Kafka is away (default: edge.spool_dir of the config)",
    )
    parser.add_argument(
        "--create-topics",
        action="store_true",
        help="create missing topics first (with --partitions and --retention-days)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=8,
        help="partitions of every topic; existing topics with another count are an error "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--grow-partitions",
        action="store_true",
        help="with --create-topics: add partitions to existing topics that have fewer than "
        "--partitions. Keys move to other partitions: only on a drained pipeline, with the "
        "workers restarted on fresh state (README, Scale-out on Kafka)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        metavar="FILE",
        help="serve GET /v1/score from this model checkpoint (a worker's "
        "<data-dir>/models.ckpt, shared or copied); re-read when it changes",
    )
    parser.add_argument("--retention-days", type=float, default=7.0, help="(default: %(default)s)")
    parser.add_argument(
        "--dashboard-store",
        metavar="DSN",
        default=None,
        help="serve the dashboard at /ui/ from this ClickHouse (e.g. http://clickhouse:8123, "
        "the workers' store); behind the operator token (docs/dashboard.md)",
    )
    parser.add_argument(
        "--database", default="clicktrail", help="database of --dashboard-store (%(default)s)"
    )
    parser.add_argument(
        "--compression",
        choices=["auto", "lz4", "zstd", "gzip"],
        default="auto",
        help="record batch compression (auto: lz4, else zstd, else gzip)",
    )


def edge(args: argparse.Namespace) -> int:
    import uvicorn

    from clicktrail.bus.kafka import KafkaBus, KafkaSettings
    from clicktrail.bus.spool import Spool, SpoolError
    from clicktrail.edge.app import build_edge
    from clicktrail.edge.backend import KafkaBackend
    from clicktrail.edge.serve import server_config

    registry = load_registry(args.config)
    require_safe_secrets(
        registry, config=args.config, dev=args.dev, hosts=[args.host], role="the edge"
    )
    if args.create_topics or args.grow_partitions:
        failed = _create_topics(args)
        if failed:
            return failed
    settings = registry.edge
    try:
        spool = Spool(
            args.spool_dir or settings.spool_dir,
            fsync=settings.spool_fsync,
            fsync_interval=settings.spool_fsync_ms / 1000,
            segment_bytes=settings.spool_segment_bytes,
        )
    except SpoolError as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 1
    compression = None if args.compression == "auto" else args.compression
    bus = KafkaBus(KafkaSettings(args.broker, compression=compression), spool)
    dashboard = None
    if args.dashboard_store:
        from clicktrail.edge.auth import operator_token
        from clicktrail.sinks.store import Store, StoreError
        from clicktrail.ui import dashboard_app

        try:
            store = Store(args.dashboard_store, args.database)
        except StoreError as error:
            print(f"clicktrail: error: {error}", file=sys.stderr)
            return 1
        token = operator_token(registry.security.operator_token)
        proxies = [str(cidr) for cidr in settings.trusted_proxies]
        dashboard = dashboard_app(store, registry, token, proxies)
    app = build_edge(KafkaBackend(registry, bus), models=args.models, dashboard=dashboard)
    server = uvicorn.Server(server_config(app, args.host, args.port))
    print(
        f"clicktrail edge listening on http://{args.host}:{args.port}  "
        f"(kafka: {args.broker}, spool: {spool.directory}, {spool.depth} records waiting)",
        flush=True,
    )
    # uvicorn shuts down gracefully on SIGTERM (the lifespan flushes the producer and
    # syncs the spool), then re-raises it: a handler here makes that a normal exit.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        if not spool.closed:
            spool.close()
    if not server.started:
        print(f"clicktrail: error: could not listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    return 0


def _create_topics(args: argparse.Namespace) -> int:
    """Missing topics created, fewer partitions grown when asked; an exit code if not."""
    from clicktrail.bus.admin import TopicPartitionsError, create_topics, grow_topics

    if not args.create_topics:
        print("clicktrail: error: --grow-partitions needs --create-topics", file=sys.stderr)
        return 2
    try:
        grown = grow_topics(args.broker, args.partitions) if args.grow_partitions else {}
        created = create_topics(args.broker, args.partitions, timedelta(days=args.retention_days))
    except TopicPartitionsError as error:
        print(partitions_advice(error, args.broker), file=sys.stderr)
        return 2
    except Exception as error:  # kafka-python raises many kinds for an absent broker
        print(f"clicktrail: error: cannot create topics on {args.broker}: {error}", file=sys.stderr)
        return 1
    if grown:
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(grown.items()))
        print(f"grew to {args.partitions} partitions: {listed}", flush=True)
    if created:
        print(f"created topics: {', '.join(created)}", flush=True)
    return 0


def partitions_advice(error: TopicPartitionsError, broker: str) -> str:
    """What exists, and the ways out: keep the count, grow the topics, or recreate them."""
    lines = [f"clicktrail: error: on {broker}, {error} (--partitions {error.partitions})."]
    counts = set(error.found.values())
    if len(counts) == 1:
        lines.append(
            f"  To keep them: run the edge and every worker with --partitions {counts.pop()}."
        )
    if error.fewer:
        lines.append(
            f"  To grow them to {error.partitions}: add --grow-partitions. Keys then move to "
            "other partitions, so stop the edges and let the workers catch up first, and "
            f"start the workers with --partitions {error.partitions} and a new --app-id and "
            '--data-dir (their state is split by the old partitions); README, "Scale-out on '
            'Kafka".'
        )
    if error.more:
        lines.append(
            "  Kafka cannot remove partitions: for fewer, delete these topics (once drained) "
            "and let --create-topics create them again."
        )
    return "\n".join(lines)
