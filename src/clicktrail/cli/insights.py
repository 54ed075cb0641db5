"""``clicktrail import-insights``: post an auction-insights export to a running edge.

The file is parsed here before it is sent, so a malformed export is reported with its row
and column without a round trip and nothing reaches the service; the edge parses it again
because it trusts no client. Exit codes follow the rest of the CLI: 2 for a file to fix
(or one the service refused), 1 when the service cannot be reached or fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clicktrail.cli.upload import (
    API_KEY_ENV,
    ImportFailed,
    add_service_arguments,
    checked_url,
    post_csv,
)
from clicktrail.processors.brand import AuctionInsightsError, parse_auction_insights

PATH = "/v1/auction-insights"
DESCRIPTION = """\
Check an auction-insights export, then POST it to URL/v1/auction-insights of a
running 'clicktrail run' or 'clicktrail edge', and print how many rows it accepted.
The export is used whole: a malformed row is reported with its row and column and
nothing is sent. Rows imported before are not counted again.

The file is UTF-8 CSV with this header (dates YYYY-MM-DD; rates in [0, 1], empty
or -- where they do not apply):

  date,account,campaign,keyword,display_domain,impression_share,overlap_rate,position_above_rate,outranking_share
"""
EPILOG = """\
exit codes: 0 accepted, 2 the file is malformed or was refused, 1 the service
could not be reached or failed.

example:
  clicktrail import-insights exports/acme-2026-03.csv --url http://127.0.0.1:8080
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the export: UTF-8 CSV with the header shown above",
    )
    add_service_arguments(
        parser, serves="'clicktrail run' or 'clicktrail edge'", timeout=60.0, key_help=""
    )


def run(args: argparse.Namespace) -> int:
    try:
        accepted = import_file(Path(args.file), args.url, args.timeout, args.api_key)
    except ImportFailed as failure:
        print(f"clicktrail: error: {failure}", file=sys.stderr)
        return failure.code
    print(f"accepted {accepted} auction-insights rows from {args.file} ({args.url})")
    return 0


def import_file(path: Path, url: str, timeout: float, api_key: str = "") -> int:
    """Check the export locally, post it, and return how many rows the edge accepted."""
    base = checked_url(url)
    try:
        body = path.read_bytes()
    except OSError as error:
        raise ImportFailed(f"cannot read {path}: {error.strerror or error}", 2) from None
    try:
        rows = parse_auction_insights(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ImportFailed(f"{path} is not UTF-8 text", 2) from None
    except AuctionInsightsError as error:
        raise ImportFailed(f"{path}: {error}", 2) from None
    if not rows:
        raise ImportFailed(f"{path} has a header and no rows", 2)
    if not api_key:
        raise ImportFailed(f"an API key is needed: pass --api-key or set ${API_KEY_ENV}", 2)
    accepted: int = post_csv(base + PATH, body, timeout, api_key)["accepted"]
    return accepted
