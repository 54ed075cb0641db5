"""What each sub-command does, given parsed arguments. Returns the exit code."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import structlog

from clicktrail.bus.admin import TopicPartitionsError
from clicktrail.bus.spool import SpoolError
from clicktrail.cli import service_file
from clicktrail.cli.output import tsv_to_table
from clicktrail.config import ConfigError, Registry, load_registry
from clicktrail.contracts.jsonschema import generate
from clicktrail.runtime.checkpoints import ModelCheckpoint
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.gate import IntakeStats
from clicktrail.runtime.snapshots import SnapshotError
from clicktrail.sinks.migrations import migrate as apply_migrations
from clicktrail.sinks.store import Store, StoreError, chdb_path

log = structlog.get_logger("clicktrail.cli")


def _open_store(args: argparse.Namespace) -> Store:
    path = chdb_path(args.store)
    if path is not None and (url := service_file.running_service(path)):
        raise StoreError(
            f"the embedded store {path} is held by the service at {url}; stop it first "
            "(clicktrail query goes through it)"
        )
    return Store(args.store, args.database)


def _checkpoint(args: argparse.Namespace, store: Store) -> ModelCheckpoint | None:
    if args.models == "none":
        return None
    if args.models:
        return ModelCheckpoint(Path(args.models))
    path = chdb_path(store.dsn)
    if path is not None:
        directory = Path(path)
        return ModelCheckpoint(directory.with_name(directory.name + ".models.ckpt"))
    return ModelCheckpoint(Path("var/models.ckpt"))


def _data_dir(args: argparse.Namespace, store: Store) -> Path:
    if args.data_dir:
        return Path(args.data_dir)
    path = chdb_path(store.dsn)
    if path is not None:
        directory = Path(path)
        return directory.with_name(directory.name + ".state")
    return Path("var/state")


def migrate(args: argparse.Namespace) -> int:
    from clicktrail.sinks import cluster

    if args.cluster is not None and not cluster.valid_cluster_name(args.cluster):
        raise ConfigError(f"--cluster {args.cluster!r}: {cluster.CLUSTER_NAME_RULE}")  # exit 2
    try:
        if args.print_ddl:
            sys.stdout.write(cluster.script(args.database, args.cluster))
            return 0
        if args.cluster and chdb_path(args.store) is not None:
            raise StoreError(cluster.NOT_A_CLUSTER)
        store = _open_store(args)
        if args.cluster:
            result = cluster.migrate_cluster(store, args.cluster)
        else:
            result = apply_migrations(store)
    except cluster.ClusterLayoutError as error:  # a migration the layout cannot rewrite
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 1
    for label in result.applied:
        print(f"applied  {label}")
    for label in result.skipped:
        print(f"present  {label}")
    for label in result.changed:
        print(
            f"warning: {label} changed after it was applied; write a new migration instead",
            file=sys.stderr,
        )
    where = f" (cluster {args.cluster})" if args.cluster else ""
    print(f"database {store.database} at {store.dsn}{where} is up to date")
    return 0


def replay_registry(args: argparse.Namespace) -> str | None:
    """The registry of the simulator directories replayed, if they hold one (announced on
    stderr: the events were made in that world, whatever ``$CLICKTRAIL_CONFIG`` says)."""
    from clicktrail.runtime.replay import ReplayInputError, registry_of

    try:
        found = registry_of(args.files)
    except ReplayInputError as error:
        raise ConfigError(str(error)) from None
    if found is not None:
        print(
            f"clicktrail: registry {found} (the simulation's; --config names another)",
            file=sys.stderr,
        )
    return found


def replay(args: argparse.Namespace) -> int:
    from clicktrail.runtime.replay import ReplayInputError, expand, replay_runtime
    from clicktrail.runtime.replay import replay as run_replay

    try:
        files = expand(args.files)
    except ReplayInputError as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 2
    missing = [f for f in files if f != "-" and not Path(f).is_file()]
    if missing:
        print(f"clicktrail: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    registry = load_registry(args.config)
    store = _open_store(args)
    apply_migrations(store)
    runtime = replay_runtime(registry, store, checkpoint=_checkpoint(args, store))

    def progress(stats: IntakeStats, elapsed: float) -> None:
        rate = stats.read / elapsed if elapsed else 0.0
        print(
            f"  {stats.read:,} read, {stats.accepted:,} accepted, "
            f"{stats.dead_lettered:,} dead-lettered ({rate:,.0f}/s)",
            file=sys.stderr,
        )

    try:  # exports are parsed before anything runs: a malformed one stores nothing
        stats = run_replay(runtime, files, progress)
    except ReplayInputError as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 2
    print(_summary(stats))
    return 0


def _summary(stats: IntakeStats) -> str:
    line = f"read {stats.read}, accepted {stats.accepted}, dead-lettered {stats.dead_lettered}"
    if stats.reasons:
        reasons = ", ".join(f"{r}: {n}" for r, n in stats.reasons.most_common())
        line += f" ({reasons})"
    if stats.insight_rows:
        line += f"; {stats.insight_rows} auction-insights rows"
    return line


def query(args: argparse.Namespace) -> int:
    fmt = "tsv" if args.format == "table" else args.format
    result = _read_only(args, args.sql, fmt)
    sys.stdout.write(tsv_to_table(result) if args.format == "table" else result.decode())
    sys.stdout.flush()
    return 0


def _read_only(args: argparse.Namespace, sql: str, fmt: str) -> bytes:
    """Analyst SQL, through the running service when it holds the embedded store."""
    path = chdb_path(args.store)
    url = service_file.running_service(path) if path is not None else None
    if url is not None:
        return _query_service(url, sql, fmt)
    return Store(args.store, args.database).read_only(sql, fmt)


def _query_service(url: str, sql: str, fmt: str) -> bytes:
    """POST the SQL to the service's ``/v1/query``, with the operator token from the
    environment when one is set (required there once a trusted proxy is configured)."""
    from clicktrail.edge.auth import operator_token

    target = f"{url}/v1/query?{urllib.parse.urlencode({'format': fmt})}"
    headers = {"authorization": f"Bearer {token}"} if (token := operator_token()) else {}
    request = urllib.request.Request(target, data=sql.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read()).get("message", error.reason)
        except ValueError:
            message = error.reason
        raise StoreError(str(message)) from None
    except urllib.error.URLError as error:
        raise StoreError(f"the service at {url} did not answer: {error.reason}") from None


def schemas(args: argparse.Namespace) -> int:
    out = Path(args.out)
    files = generate()
    if args.check:
        stale = [
            name
            for name, text in files.items()
            if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
        ]
        present = out.glob("*.json") if out.is_dir() else []
        extra = sorted(p.name for p in present if p.name not in files)
        if stale or extra:
            print(
                f"schemas in {out} are out of date: {', '.join(stale + extra)}; "
                "run 'clicktrail schemas'",
                file=sys.stderr,
            )
            return 1
        print(f"{len(files)} schemas in {out} match the models")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} schemas to {out}")
    return 0


def check_config(args: argparse.Namespace) -> int:
    registry = load_registry(args.config)
    print(
        f"{args.config} is valid: {len(registry.advertisers)} advertisers, "
        f"{len(registry.brands)} brands, {len(registry.campaigns)} campaigns, "
        f"{len(registry.partners)} partners, {len(registry.actions)} actions, "
        f"{len(registry.alerts.destinations)} alert destinations"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from clicktrail.cli.devmode import require_safe_secrets
    from clicktrail.edge.app import build_app
    from clicktrail.edge.serve import server_config

    registry = load_registry(args.config)
    require_safe_secrets(
        registry, config=args.config, dev=args.dev, hosts=[args.host], role="the service"
    )
    store = _open_store(args)
    apply_migrations(store)
    if args.snapshot_seconds <= 0:
        print("clicktrail: error: --snapshot-seconds must be positive", file=sys.stderr)
        return 2
    try:
        runtime = EmbeddedRuntime(
            registry,
            store,
            checkpoint=_checkpoint(args, store),
            data_dir=_data_dir(args, store),
            snapshot_every=args.snapshot_seconds,
        )
    except (SnapshotError, SpoolError) as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 1
    app = build_app(runtime)
    url = f"http://{args.host}:{args.port}"
    server = uvicorn.Server(server_config(app, args.host, args.port))
    path = chdb_path(store.dsn)
    if path is not None:
        service_file.write(path, url)
    print(_banner(url, store, registry), flush=True)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: a handler here turns
    # that into a normal return so the service file is removed and the exit code is 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        if path is not None:
            service_file.remove(path)
    if not server.started:
        print(f"clicktrail: error: could not listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    return 0


def _banner(url: str, store: Store, registry: Registry) -> str:
    """Where it listens and a first request that needs no key: a click through the redirect
    of the first campaign (batch intake takes an API key, see docs/edge.md)."""
    campaign = next(iter(registry.campaigns), None)
    partner = next(iter(registry.partners), "aff-1")
    if campaign is None:
        first = "  (no campaign is configured: see deploy/clicktrail.example.yaml)\n"
    else:
        first = f"  curl -si '{url}/c/{campaign}?pid={partner}&sub1=hello' | grep -i location\n"
    return (
        f"clicktrail listening on {url}  (store: {store.dsn}, database: {store.database})\n"
        f"Send a first click:\n"
        f"{first}"
        f"Then look at it:\n"
        f'  {_this_command()} query "SELECT event_id, campaign_id, partner_id FROM '
        f'{store.database}.clicks"\n'
        f"Or open the dashboard: {url}/ui/"
    )


def _this_command() -> str:
    """How to call clicktrail again from this shell: bare when it is on PATH."""
    here = Path(sys.argv[0])
    found = shutil.which("clicktrail")
    if here.name == "clicktrail" and found and Path(found).resolve() == here.resolve():
        return "clicktrail"
    return str(here) if here.name == "clicktrail" else "clicktrail"


def worker(args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from clicktrail.bus.admin import check_partitions, create_topics
    from clicktrail.bus.topics import ALL_TOPICS
    from clicktrail.runtime.faust_app import (
        FaustRuntime,
        WorkerSettings,
        default_table_store,
        instance_id,
    )
    from clicktrail.sinks.clickhouse import ClickHouseSink

    member = {"auto": None, "none": None}.get(args.instance_id, args.instance_id)
    if args.instance_id == "auto":
        member = instance_id(args.data_dir)
    try:
        settings = WorkerSettings(
            bootstrap=args.broker,
            partitions=args.partitions,
            app_id=args.app_id,
            data_dir=args.data_dir,
            table_store=args.table_store or default_table_store(),
            tick_seconds=args.tick_seconds,
            session_timeout=args.session_timeout,
            instance_id=member,
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
        )
    except ValueError as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 2
    registry = load_registry(args.config)
    store = _open_store(args)
    apply_migrations(store)
    runtime = FaustRuntime(registry, ClickHouseSink(store), settings)
    try:
        create_topics(args.broker, args.partitions, topics=ALL_TOPICS)
        # Faust keeps an existing changelog as it is, then stops at the first table write
        check_partitions(args.broker, args.partitions, runtime.changelog_topics())
    except TopicPartitionsError as error:
        print(_partitions_advice(error, args), file=sys.stderr)
        return 2
    except Exception as error:  # kafka-python raises many kinds for an absent broker
        raise StoreError(f"Kafka at {args.broker} is not reachable: {error}") from None
    print(
        f"clicktrail worker {args.app_id} on {args.broker} ({args.partitions} partitions), "
        f"store {store.dsn}, tables {settings.table_store}, "
        f"member {settings.instance_id or '(dynamic)'}"
        + (
            f", metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics"
            if settings.metrics_port is not None
            else ""
        ),
        flush=True,
    )
    Worker(runtime.app, loglevel=args.log_level.upper(), quiet=True).execute_from_commandline()
    return 0


def _partitions_advice(error: TopicPartitionsError, args: argparse.Namespace) -> str:
    """Which topics disagree with --partitions, and what to do about it, before Faust
    would stop on it with ``PartitionsMismatch`` at the first table write."""
    counts = set(error.found.values())
    keep = f"--partitions {counts.pop()}" if len(counts) == 1 else "the partitions they have"
    head = f"clicktrail: error: on {args.broker}, {error} (--partitions {error.partitions})."
    if all(name.endswith("-changelog") for name in error.found):
        return (
            f"{head}\n  These keep the table state of --app-id {args.app_id}, split by the "
            f"partitions the input topics had when it was written. Start the workers with "
            f"{keep}, or on fresh state: a new --app-id and --data-dir (the state is rebuilt "
            "from the retained input; rows already stored are not written twice)."
        )
    return (
        f"{head}\n  Start the workers with {keep}, or grow the topics first (on a drained "
        f"pipeline): clicktrail edge --create-topics --partitions {error.partitions} "
        '--grow-partitions; README, "Scale-out on Kafka".'
    )


def bench(args: argparse.Namespace) -> int:
    from clicktrail.bench.report import PARTS, as_json, collect, table

    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        print(
            f"clicktrail: error: unknown bench parts: {', '.join(sorted(unknown))}", file=sys.stderr
        )
        return 2
    figures = collect(
        events=args.events,
        rows=args.rows,
        faust_events=args.faust_events,
        samples=args.samples,
        runs=max(1, args.runs),
        broker=args.broker or None,
        edge_seconds=args.edge_seconds,
        parts=parts,
        progress=lambda text: print(f"  {text} ...", file=sys.stderr, flush=True),
    )
    print(table(figures))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(as_json(figures) + "\n", encoding="utf-8")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from clicktrail.evaluation import evaluate as score
    from clicktrail.evaluation import replay_scenario, stored_clicks

    if args.matrix is not None:
        return evaluate_matrix(args)
    directory = Path(args.directory)
    needed = ["truth.jsonl", "scenario.json", "registry.yaml", "events.jsonl"]
    missing = [name for name in needed if not (directory / name).is_file()]
    if missing:
        print(
            f"clicktrail: error: {directory} is not a simulate output (missing "
            f"{', '.join(missing)}); run 'clicktrail simulate --out {directory}'",
            file=sys.stderr,
        )
        return 2
    args.store = args.store or f"chdb://{directory / 'store'}"
    store = _open_store(args)

    def progress(text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    if args.replay != "never":
        present = stored_clicks(store) if args.replay == "auto" else 0
        if present == 0:
            replay_scenario(directory, store, progress)
        else:
            progress(f"store already holds {present:,} clicks: scoring it as it is")
    result = score(directory, store)
    print(result.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(result.as_json() + "\n", encoding="utf-8")
    return 0


def evaluate_matrix(args: argparse.Namespace) -> int:
    from clicktrail.evaluation_matrix import run_matrix

    if args.matrix < 1 or args.events < 1000:
        print("clicktrail: error: --matrix needs N >= 1 and --events >= 1000", file=sys.stderr)
        return 2
    matrix = run_matrix(
        Path(args.directory),
        args.matrix,
        events=args.events,
        seed=args.seed,
        scenario=args.scenario,
        progress=lambda text: print(f"  {text}", file=sys.stderr, flush=True),
    )
    print(matrix.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(matrix.as_json() + "\n", encoding="utf-8")
    return 0


FRAUD_VIEW = """
SELECT r.partner_id AS partner, r.clicks AS clicks, r.flagged_clicks AS flagged_clicks,
       round(r.flagged_share, 4) AS flagged_share, r.conversions AS conversions,
       round(r.flagged_conversions, 2) AS flagged_conversions,
       round(r.fraud_rejected_conversions, 2) AS rejected,
       round(r.fraud_escalated_conversions, 2) AS of_which_escalated,
       round(r.fraud_suspicious_conversions, 2) AS suspicious,
       c.top_reasons AS top_reasons
FROM {db}.partner_report AS r
LEFT JOIN
(
    SELECT partner_id, arrayStringConcat(topK(3)(fraud_reason), ', ') AS top_reasons
    FROM {db}.attributed_latest
    WHERE fraud_action != 'ok'
    GROUP BY partner_id
) AS c ON r.partner_id = c.partner_id
ORDER BY flagged_share DESC, flagged_clicks DESC
LIMIT {limit}
"""
"""Per partner, one definition of flagged (migration 010): the conversions of the
rollups whose latest verdict is not ok, rejected (own verdict, or suspicious in an hour
the partner was rejected) or suspicious; reasons from the same attributed rows."""

CONFLICTS_VIEW = """
SELECT brand_id AS brand, offender_id AS offender,
       arrayStringConcat(groupUniqArray(signal), ', ') AS signals,
       arrayStringConcat(arraySlice(arrayDistinct(arrayFlatten(groupArray(keywords))), 1, 3), ', ')
           AS keywords,
       sum(clicks) AS clicks, sum(impressions) AS impressions,
       sum(insight_rows) AS insight_rows, max(head_to_head) AS head_to_head,
       round(max(est_cpc_inflation), 3) AS cpc_inflation, round(sum(cost_impact), 2) AS cost_impact,
       ['info', 'warning', 'critical'][max(indexOf(['info', 'warning', 'critical'], severity))]
           AS severity,
       min(first_seen) AS first_seen, max(last_seen) AS last_seen
FROM {db}.brand_conflicts FINAL
{where}
GROUP BY brand, offender
ORDER BY cost_impact DESC, clicks DESC
"""


def _view(args: argparse.Namespace, sql: str) -> int:
    sys.stdout.write(tsv_to_table(_read_only(args, sql, "tsv")))
    return 0


def fraud_view(args: argparse.Namespace) -> int:
    return _view(args, FRAUD_VIEW.format(db=args.database, limit=max(1, args.limit)))


def conflicts_view(args: argparse.Namespace) -> int:
    where = ""
    if args.brand:
        if not args.brand.replace("-", "").replace("_", "").isalnum():
            print(f"clicktrail: error: invalid brand name {args.brand!r}", file=sys.stderr)
            return 2
        where = f"WHERE brand_id = '{args.brand}'"
    return _view(args, CONFLICTS_VIEW.format(db=args.database, where=where))


MODELS_VIEW = """
SELECT action, model, examples, positives, round(base_rate, 4) AS base_rate,
       round(auc, 4) AS auc, round(log_loss, 4) AS log_loss,
       round(calibration_error, 4) AS calibration_error,
       arrayStringConcat(arraySlice(top_features, 1, {top}), ' ') AS top_features, ts AS as_of
FROM {db}.model_quality
ORDER BY ts DESC
LIMIT 1 BY action
"""

LIFT_ROWS = """
SELECT x.action, x.score, c.converted, toFloat64(ifNull(k.cost, 1))
FROM
(
    SELECT click_id, action, score
    FROM {db}.click_scores
    ARRAY JOIN mapKeys(scores) AS action, mapValues(scores) AS score
    WHERE learned
) AS x
LEFT JOIN
(
    SELECT DISTINCT click_id, action, 1 AS converted
    FROM {db}.attributed_latest
    WHERE touch = 'click' AND fraud_action != 'reject'
) AS c ON x.click_id = c.click_id AND x.action = c.action
LEFT JOIN (SELECT click_id, cost FROM {db}.clicks) AS k ON x.click_id = k.click_id
"""


def models_view(args: argparse.Namespace) -> int:
    top = max(1, args.top_features)
    _view(args, MODELS_VIEW.format(db=args.database, top=top))
    if args.lift:
        sys.stdout.write(
            "\n" + lift_table(_read_only(args, LIFT_ROWS.format(db=args.database), "tsv"))
        )
    return 0


def lift_table(tsv: bytes) -> str:
    """Per action: how much better the top score decile converts, and what targeting only
    the top three deciles would have kept and saved (cost, or clicks without cost)."""
    from clicktrail.processors.models import lift

    triples: dict[str, list[tuple[float, int, float]]] = {}
    for line in tsv.decode().splitlines()[1:]:
        action, score, converted, cost = line.split("\t")
        triples.setdefault(action, []).append((float(score), int(converted), float(cost)))
    header = "action\tclicks\tbase_rate\ttop_decile_rate\tlift\tconversions_top3\tspend_saved_top3"
    rows = [header]
    for action in sorted(triples):
        gained = lift(triples[action])
        if gained is None:
            continue
        rows.append(
            f"{action}\t{gained.clicks}\t{gained.base_rate:.4f}\t{gained.top_decile_rate:.4f}\t"
            f"{gained.lift:.2f}\t{gained.capture[2]:.3f}\t{gained.spend_saved[2]:.3f}"
        )
    return tsv_to_table("\n".join(rows).encode())
