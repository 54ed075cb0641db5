"""What a dead letter may keep of the input it refuses: everything but addresses and secrets.

A dead letter is kept so that someone can see what was sent, but it is refused input,
so none of the intake's guarantees hold for it: a malformed postback body still carries
the advertiser's ``key``, a refused event still carries the visitor's raw ``user.ip``.
:class:`Redactor` anonymizes IP addresses with the registry's ``ip_mode`` (the same
function accepted events go through) and masks secrets, in decoded JSON values and in
text (request lines, query strings, form bodies, JSON that did not parse):

* a value named ``key``, ``sig``, ``signature``, ``secret``, ``token``, ``api_key`` or
  ``password`` (any case) becomes ``***``, and a ``Bearer`` credential too;
* an ``Authorization`` field or header line is dropped whole;
* ``ip`` fields and every IPv4/IPv6 literal in text are anonymized.

JSON deeper than :data:`MAX_DEPTH` is cut there, so a hostile nesting can neither
overflow a serializer nor the stack.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import orjson

SECRET_NAMES = frozenset({"key", "sig", "signature", "secret", "token", "api_key", "password"})
DROPPED_NAMES = frozenset({"authorization"})
MASK = "***"
MAX_DEPTH = 32
TOO_DEEP = f"<nested deeper than {MAX_DEPTH} levels>"

_PAIR = re.compile(r"(?P<name>[^&=\s?;\"'{},:]+)=(?P<value>[^&\s]*)")
_JSON_PAIR = re.compile(
    r"\"(?P<name>[^\"\\]{1,64})\"\s*:\s*(?P<value>\"(?:[^\"\\]|\\.)*\"?|[^,}\]\s]*)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")
_AUTH_LINE = re.compile(r"(?im)^\s*authorization\s*:.*$\n?")
_IPV4 = re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9])")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:%])(?:[0-9A-Fa-f]{0,4}(?::|%3[Aa])){2,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z:])"
)
_REQUEST_LINE = re.compile(r"^[A-Z]{3,7} /")


class Redactor:
    """Built once per intake with its IP anonymizer; pure string and dict work per call."""

    def __init__(self, anonymize_ip: Callable[[str], str]) -> None:
        self._anonymize = anonymize_ip

    # ------------------------------------------------------------------ JSON

    def value(self, data: Any, depth: int = 0) -> Any:
        """A decoded JSON value, redacted and cut at :data:`MAX_DEPTH`."""
        if isinstance(data, str):
            return self.addresses(data)
        if isinstance(data, dict | list):
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            if isinstance(data, list):
                return [self.value(item, depth + 1) for item in data]
            out: dict[str, Any] = {}
            for key, item in data.items():
                name = str(key)
                folded = name.lower()
                if folded in DROPPED_NAMES:
                    continue
                if folded in SECRET_NAMES and item is not None:
                    out[name] = MASK
                elif folded == "ip" and isinstance(item, str):
                    out[name] = self.ip(item)
                else:
                    out[name] = self.value(item, depth + 1)
            return out
        if data is None or isinstance(data, bool | int | float):
            return data
        return self.addresses(str(data))

    def ip(self, value: str) -> str:
        try:
            return self._anonymize(value.strip().strip("[]"))
        except ValueError:
            return self.addresses(value)

    # ------------------------------------------------------------------ text

    def text(self, text: str) -> str:
        """A request (``METHOD /path?query`` and a body on the next lines) or a raw document."""
        text = _AUTH_LINE.sub("", text)
        head, newline, body = text.partition("\n")
        if _REQUEST_LINE.match(head):
            path, mark, query = head.partition("?")
            head = path + mark + self.pairs(query)
            return head + newline + self.document(body) if newline else head
        return self.document(text)

    def document(self, text: str) -> str:
        """A body: JSON is redacted field by field, anything else by pattern."""
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            try:
                data = orjson.loads(stripped)
            except orjson.JSONDecodeError:
                pass
            else:
                return orjson.dumps(self.value(data)).decode()
        text = _JSON_PAIR.sub(self._mask_json_pair, text)
        return self.pairs(text)

    def pairs(self, text: str) -> str:
        """``name=value`` pairs (query strings, forms) with secrets masked and addresses
        anonymized; the rest of the text is only searched for addresses."""
        return self.addresses(_PAIR.sub(self._mask_pair, _BEARER.sub(r"\1 ***", text)))

    def addresses(self, text: str) -> str:
        """Every IPv4/IPv6 literal in ``text`` anonymized (``%3A``-encoded colons too)."""
        if "." in text:
            text = _IPV4.sub(self._address, text)
        if ":" in text or "%3" in text:
            text = _IPV6.sub(self._address, text)
        return text

    def _address(self, match: re.Match[str]) -> str:
        found = match.group()
        literal = found.replace("%3A", ":").replace("%3a", ":")
        try:
            ipaddress.ip_address(literal)
            return self._anonymize(literal)
        except ValueError:
            return found

    @staticmethod
    def _mask_pair(match: re.Match[str]) -> str:
        name = match.group("name")
        if unquote_plus(name).strip().lower() in SECRET_NAMES | DROPPED_NAMES:
            return f"{name}={MASK}"
        return match.group()

    @staticmethod
    def _mask_json_pair(match: re.Match[str]) -> str:
        name = match.group("name")
        if name.strip().lower() in SECRET_NAMES | DROPPED_NAMES:
            return f'"{name}": "{MASK}"'
        return match.group()
