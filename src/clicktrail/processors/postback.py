"""Postbacks: the macro names trackers send, and how a postback proves who sent it.

Pure functions and small classes, no HTTP: the edge hands in the decoded query
pairs and gets conversion fields or a :class:`PostbackError` with a reason code.

Two ways to authenticate, per advertiser secret (``advertisers.<id>.postback_secret``):

* **signed** (preferred): ``ts`` = epoch seconds and ``sig`` = hex HMAC-SHA256 of the
  canonical query string: every parameter except ``sig``, percent-encoded
  (RFC 3986, ``quote(v, safe="-_.~")``), sorted by name then value and joined
  as ``name=value`` with ``&``. Older or newer than the freshness window
  (``security.postback_max_age_seconds``) is a replay and refused.
* **shared key**: ``key`` = the secret itself, for trackers that can only put a
  fixed token into the URL. Simpler, but the secret travels in every URL.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import quote

from clicktrail.contracts.events import ConversionStatus

SIGNATURE_PARAMS = ("sig", "signature")
TIMESTAMP_PARAM = "ts"
KEY_PARAM = "key"
SECRET_PARAMS = (*SIGNATURE_PARAMS, KEY_PARAM)

CLICK_ID = ("click_id", "clickid", "subid")
TXID = ("txid", "transaction_id", "tid", "order_id")
ACTION = ("event", "action", "goal")
STATUS = ("status",)
REVENUE = ("revenue", "amount", "sum")
PAYOUT = ("payout", "commission")
CURRENCY = ("currency",)
ADVERTISER = ("advertiser", "adv")
CAMPAIGN = ("campaign_id", "campaign")
PARTNER = ("partner_id", "partner", "pid")
USER = ("user_id", "uid")

_ID = re.compile(r"[A-Za-z0-9._:~\-]{1,128}")
"""The contract's id alphabet: a click id outside it is refused before any signature check
(``hmac.compare_digest`` raises on non-ASCII text instead of answering False)."""

_STATUS_WORDS: dict[str, ConversionStatus] = {}
for _status, _words in {
    ConversionStatus.pending: ("pending", "hold", "wait", "0", "new"),
    ConversionStatus.approved: ("approved", "approve", "confirmed", "accepted", "sale", "1"),
    ConversionStatus.rejected: (
        "rejected",
        "reject",
        "declined",
        "cancelled",
        "canceled",
        "trash",
        "refund",
        "-1",
        "2",
    ),
}.items():
    for _word in _words:
        _STATUS_WORDS[_word] = _status


class PostbackError(Exception):
    """A postback that cannot be accepted: ``reason`` is the machine code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def first(params: Mapping[str, str], names: Sequence[str]) -> str | None:
    """The first non-empty value among the accepted spellings of one parameter."""
    for name in names:
        value = params.get(name)
        if value:
            return value
    return None


def parse_status(value: str | None) -> str:
    if value is None:
        return ConversionStatus.pending.value
    status = _STATUS_WORDS.get(value.strip().lower())
    if status is None:
        raise PostbackError(
            "invalid_param", f"status {value[:40]!r} is not pending, approved or rejected"
        )
    return status.value


def conversion_fields(params: Mapping[str, str], default_action: str) -> dict[str, object]:
    """Conversion event fields from postback parameters (values still text; the contract
    validates and converts them)."""
    fields: dict[str, object] = {
        "action": (first(params, ACTION) or default_action).strip().lower(),
        "status": parse_status(first(params, STATUS)),
    }
    optional = {
        "click_id": CLICK_ID,
        "txid": TXID,
        "revenue": REVENUE,
        "payout": PAYOUT,
        "campaign_id": CAMPAIGN,
        "partner_id": PARTNER,
        "advertiser_id": ADVERTISER,
    }
    for field, names in optional.items():
        value = first(params, names)
        if value is not None:
            fields[field] = value
    click_id = fields.get("click_id")
    if isinstance(click_id, str) and not _ID.fullmatch(click_id):
        raise PostbackError("invalid_param", "click_id must be 1-128 letters, digits and . _ : ~ -")
    currency = first(params, CURRENCY)
    if currency is not None:
        fields["currency"] = currency.strip().upper()
    return fields


def dedup_key(fields: Mapping[str, object]) -> str | None:
    """What makes two postbacks the same report: advertiser, txid, action and status."""
    txid = fields.get("txid")
    if not txid:
        return None
    return "|".join(
        str(fields.get(name) or "") for name in ("advertiser_id", "txid", "action", "status")
    )


def stable_event_id(key: str) -> str:
    """The same report always gets the same event id, so downstream dedup catches resends."""
    return "pb-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The string a postback signature covers (see the module docstring)."""
    kept = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in pairs
        if name not in SIGNATURE_PARAMS
    )
    return "&".join(f"{name}={value}" for name, value in kept)


def sign(secret: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Hex HMAC-SHA256 of the canonical query string: what a sender puts in ``sig``."""
    message = canonical_query(pairs).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def redact(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Pairs safe to store (dead letters): secrets and signatures masked."""
    return [(name, "***" if name in SECRET_PARAMS else value) for name, value in pairs]


class PostbackVerifier:
    """Checks that a postback comes from the advertiser it names, and is fresh."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive")
        short = [name for name, secret in secrets.items() if len(secret) < 16]
        if short:
            raise ValueError(f"postback secrets shorter than 16 characters: {', '.join(short)}")
        self._secrets = {name: secret.encode() for name, secret in secrets.items()}
        self._max_age = max_age_seconds
        self._clock = clock

    def advertisers(self) -> list[str]:
        return list(self._secrets)

    def verify(self, advertiser: str, pairs: Sequence[tuple[str, str]]) -> str:
        """Returns the mode that passed (``signed`` or ``key``) or raises PostbackError."""
        secret = self._secrets.get(advertiser)
        if secret is None:
            raise PostbackError("unknown_advertiser", f"no advertiser {advertiser[:64]!r}")
        params = dict(pairs)
        signature = first(params, SIGNATURE_PARAMS)
        if signature is not None:
            self._check_fresh(params.get(TIMESTAMP_PARAM))
            message = canonical_query(pairs).encode()
            expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.strip().lower()):
                raise PostbackError(
                    "bad_signature", "sig does not match the canonical query string"
                )
            return "signed"
        key = params.get(KEY_PARAM)
        if key is not None:
            if not hmac.compare_digest(key.encode(), secret):
                raise PostbackError("bad_signature", "key is not this advertiser's secret")
            return "key"
        raise PostbackError(
            "missing_signature", "sign the postback (ts + sig) or pass the advertiser key"
        )

    def _check_fresh(self, value: str | None) -> None:
        if value is None:
            raise PostbackError("missing_param", "a signed postback needs ts (epoch seconds)")
        try:
            sent = float(value)
        except ValueError:
            raise PostbackError("invalid_param", "ts must be epoch seconds") from None
        if not math.isfinite(sent):
            raise PostbackError("invalid_param", "ts must be epoch seconds")
        age = self._clock() - sent
        if abs(age) > self._max_age:
            raise PostbackError(
                "stale_timestamp",
                f"ts is {age:.0f} s from now; the window is +/-{self._max_age:.0f} s",
            )
