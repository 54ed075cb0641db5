"""Posting an export file to a running service: what ``import-insights`` and
``import-sales`` share (the service's URL, the key, the answer and its failures).

A failure is one line for stderr and an exit code: 2 for a file to fix or one the
service refused, 1 when the service cannot be reached or answers nonsense.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
API_KEY_ENV = "CLICKTRAIL_API_KEY"


class ImportFailed(Exception):
    """One line for stderr, and the exit code that goes with it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_service_arguments(
    parser: argparse.ArgumentParser, *, serves: str, timeout: float, key_help: str
) -> None:
    """``--url``, ``--timeout`` and ``--api-key``; ``serves`` names the commands that serve
    the endpoint."""
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help=f"base URL of a running {serves} (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="seconds to wait for the answer (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV, ""),
        help=f"the advertiser's API key (default: ${API_KEY_ENV}{key_help})",
    )


def checked_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImportFailed(f"--url must be http(s)://HOST[:PORT], not {url!r}", 2)
    return url.rstrip("/")


def post_csv(target: str, body: bytes, timeout: float, key: str, hint: str = "") -> dict[str, Any]:
    """POST the CSV ``body``; the JSON answer, which must carry an ``accepted`` count."""
    headers = {"content-type": "text/csv; charset=utf-8", "authorization": f"Bearer {key}"}
    request = urllib.request.Request(target, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        code = 2 if 400 <= error.code < 500 else 1
        raise ImportFailed(f"{target} refused the export: {_message(error)}", code) from None
    except urllib.error.URLError as error:
        raise ImportFailed(f"{target} did not answer: {error.reason}{hint}", 1) from None
    except (OSError, ValueError) as error:  # timeouts, resets, a body that is not JSON
        raise ImportFailed(f"{target} did not answer properly: {error}", 1) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("accepted"), int):
        raise ImportFailed(f"{target} answered without a count: {answer!r}", 1)
    return answer


def _message(error: urllib.error.HTTPError) -> str:
    """The service's reason (and the first refused rows, when it lists them)."""
    try:
        answer = json.loads(error.read())
    except (OSError, ValueError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(answer, dict) and "message" in answer:
        text = f"HTTP {error.code} {answer.get('error', '')}: {answer['message']}"
        for row in answer.get("rejected", [])[:5]:
            text += f"\n  {row.get('message')}"
        return text
    return f"HTTP {error.code} {error.reason}"
