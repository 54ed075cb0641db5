"""``clicktrail import-insights``: post an auction-insights export to a running edge.

The file is parsed here before it is sent, so a malformed export is reported with its row
and column without a round trip and nothing reaches the service; the edge parses it again
because it trusts no client. Exit codes follow the rest of the CLI: 2 for a file to fix
(or one the service refused), 1 when the service cannot be reached or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from clicktrail.processors.brand import AuctionInsightsError, parse_auction_insights

DEFAULT_URL = "http://127.0.0.1:8080"
PATH = "/v1/auction-insights"
API_KEY_ENV = "CLICKTRAIL_API_KEY"
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


class ImportFailed(Exception):
    """One line for stderr, and the exit code that goes with it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the export: UTF-8 CSV with the header shown above",
    )
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="base URL of a running 'clicktrail run' or 'clicktrail edge' (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the answer (%(default)s)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV, ""),
        help=f"the advertiser's API key (default: ${API_KEY_ENV})",
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
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImportFailed(f"--url must be http(s)://HOST[:PORT], not {url!r}", 2)
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
    return _post(url.rstrip("/") + PATH, body, timeout, api_key)


def _post(target: str, body: bytes, timeout: float, api_key: str) -> int:
    headers = {"content-type": "text/csv; charset=utf-8", "authorization": f"Bearer {api_key}"}
    request = urllib.request.Request(target, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        code = 2 if 400 <= error.code < 500 else 1
        raise ImportFailed(f"{target} refused the export: {_message(error)}", code) from None
    except urllib.error.URLError as error:
        raise ImportFailed(f"{target} did not answer: {error.reason}", 1) from None
    except (OSError, ValueError) as error:  # timeouts, resets, a body that is not JSON
        raise ImportFailed(f"{target} did not answer properly: {error}", 1) from None
    accepted = answer.get("accepted") if isinstance(answer, dict) else None
    if not isinstance(accepted, int):
        raise ImportFailed(f"{target} answered without a count: {answer!r}", 1)
    return accepted


def _message(error: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(error.read())
    except (OSError, ValueError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(answer, dict) and "message" in answer:
        return f"HTTP {error.code} {answer.get('error', '')}: {answer['message']}"
    return f"HTTP {error.code} {error.reason}"
