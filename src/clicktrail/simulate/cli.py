"""``clicktrail simulate``: arguments, progress on stderr, and the summary.

Only argument handling lives here; the run is ``clicktrail.simulate.simulate``.
Progress and the summary go to stderr when events go to stdout, so a pipe
into ``clicktrail replay -`` carries nothing but events.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clicktrail.simulate.scenarios import (
    DEFAULT_DAYS,
    DEFAULT_EVENTS,
    DEFAULT_START,
    SCENARIOS,
    Options,
)

DESCRIPTION = (
    "Generate a seeded, labelled traffic scenario: impressions, clicks and conversions in the "
    "public event contract, the ground truth behind them (fraud and brand-bidding labels, true "
    "conversion probabilities, last-click credit), and the registry describing the simulated "
    "world. The same arguments always give byte-identical files."
)
EPILOG = """files written into DIR:
  events.jsonl          events, in delivery order (omitted with --stdout)
  truth.jsonl           ground truth, one JSON object per line with a "kind"
  registry.yaml         the simulated world (use with --config)
  scenario.json         parameters, counts per event type and planted pattern, oracle AUC
  auction_insights.csv  per brand keyword and day: competitor domains as ad platforms export

scenarios:
{scenarios}

examples:
  clicktrail simulate --out sim --events 1000000 --seed 7
  clicktrail replay --config sim/registry.yaml sim/events.jsonl
  clicktrail simulate --out sim --stdout | clicktrail replay --config sim/registry.yaml -
  clicktrail simulate --out sim --events 20000 --send http://127.0.0.1:8080 --rate 5000

See docs/simulator.md for what is modelled and every truth field."""
PROGRESS_EVERY = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(DESCRIPTION, 78)
    scenarios = "\n".join(f"  {s.name:<12}  {s.description}" for s in SCENARIOS.values())
    parser.epilog = EPILOG.format(scenarios=scenarios)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        metavar="N",
        help="number of event lines to write, within a few (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--start",
        default=DEFAULT_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        metavar="TIME",
        help="first event time, RFC 3339 (default: %(default)s)",
    )
    parser.add_argument(
        "--days",
        type=float,
        default=DEFAULT_DAYS,
        metavar="D",
        help="length of the traffic; conversions may follow for days (default: %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        default="default",
        choices=list(SCENARIOS),
        metavar="NAME",
        help="which patterns to plant, see below (default: %(default)s)",
    )
    parser.add_argument(
        "--variant",
        type=int,
        default=0,
        metavar="N",
        help="0: the reference world; N > 0 draws every planted pattern's parameters "
        "(flood spread, bot agents, farm shares, injection timing, delivery disorder) "
        "from wide ranges, the same for the same N (default: %(default)s)",
    )
    parser.add_argument(
        "--stdout", action="store_true", help="write the events to stdout instead of DIR"
    )
    parser.add_argument(
        "--send",
        metavar="URL",
        help="also POST the events to URL/v1/events of a running 'clicktrail run'",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=2000.0,
        metavar="R",
        help="events per second when sending (default: %(default)s)",
    )
    parser.add_argument(
        "--batch", type=int, metavar="N", help="events per request when sending (default: rate/10)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("CLICKTRAIL_OPERATOR_TOKEN", ""),
        metavar="KEY",
        help="bearer key when sending: the service's operator token, which may send every "
        "advertiser's events (default: $CLICKTRAIL_OPERATOR_TOKEN)",
    )


def _start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"--start {text!r} is not RFC 3339, e.g. 2026-03-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("--start needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    return moment.astimezone(UTC)


class _Progress:
    """A line on stderr every couple of seconds, for runs long enough to wonder."""

    def __init__(self, sender: Any) -> None:
        self.started = self.last = time.monotonic()
        self.sender = sender

    def __call__(self, written: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        rate = written / (now - self.started)
        line = f"  {written:,} events written ({rate:,.0f}/s)"
        if self.sender is not None:
            line += f"; {self.sender.stats.describe()}"
        print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from clicktrail.simulate.runner import simulate
    from clicktrail.simulate.sender import Sender, SendError

    try:
        options = Options(
            out=Path(args.out),
            events=args.events,
            seed=args.seed,
            start=_start(args.start),
            days=args.days,
            scenario=args.scenario,
            variant=args.variant,
        )
        sender = (
            Sender(args.send, args.rate, batch=args.batch, api_key=args.api_key)
            if args.send
            else None
        )
    except ValueError as error:
        print(f"clicktrail: error: {error}", file=sys.stderr)
        return 2
    progress = _Progress(sender)
    try:
        summary = simulate(
            options,
            stdout=args.stdout,
            tee=sender.add if sender else None,
            progress=progress,
        )
        stats = sender.close() if sender else None
    except SendError as error:
        print(f"clicktrail: send error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader of --stdout left; the command's entry point handles it
    except OSError as error:
        print(f"clicktrail: error: cannot write to {args.out}: {error.strerror}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - progress.started
    report = sys.stderr if args.stdout else sys.stdout
    print(_summary(summary, options, seconds), file=report)
    if stats is not None:
        print(stats.describe(), file=report)
    _warn_if_future(summary)
    return 0


def _summary(summary: dict[str, Any], options: Options, seconds: float) -> str:
    events = summary["events"]
    rate = summary["lines"] / seconds if seconds else 0.0
    where = "stdout" if not (options.out / "events.jsonl").exists() else options.out
    return (
        f"wrote {summary['lines']:,} events ({events['impression']:,} impressions, "
        f"{events['click']:,} clicks, {events['conversion']:,} conversions) to {where} "
        f"in {seconds:.1f} s ({rate:,.0f} events/s); truth and registry in {options.out}\n"
        f"time range {summary['first_event_ts']} .. {summary['last_event_ts']}; "
        f"oracle AUC {summary['oracle_auc']}"
    )


def _warn_if_future(summary: dict[str, Any]) -> None:
    last = summary.get("last_event_ts")
    if last and datetime.fromisoformat(last) > datetime.now(UTC):
        print(
            f"note: events run until {last}, in the future; the intake refuses events "
            "more than max_future_skew_seconds ahead of its clock",
            file=sys.stderr,
        )
