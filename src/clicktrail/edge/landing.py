"""Where a click may be redirected: the campaign's landing URL and allowed domains, nothing else.

Each campaign's policy is built and checked once, at start-up. Per click the
template's ``{macro}`` placeholders are filled with URL-encoded values, an
override (``url=`` / ``to=`` / ``lp=``) is accepted only on an allowed host, and
the final URL is checked again, strictly: http(s), a plain host name (no user
info, no backslashes, no control characters) from the allow-list, and a port in
1-65535 that is the landing URL's own (or none): another port on an allowed host is
another service, which the campaign never named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from clicktrail.config.registry import Campaign
from clicktrail.edge.errors import EdgeError

OVERRIDE_PARAMS = ("url", "to", "lp")
_MACRO = re.compile(r"\{([A-Za-z0-9_]{1,64})\}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NETLOC = re.compile(rf"^({_LABEL}(?:\.{_LABEL})*)(?::(\d{{1,5}}))?$")
_PLAIN = re.compile(r"[A-Za-z0-9_.~\-]*")  # fullmatch: "$" would let a final "\n" through
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"
MAX_URL = 2048


MAX_PORT = 65_535
ANY_PORT: frozenset[int | None] = frozenset()


def allowed_host(
    url: str, hosts: frozenset[str], ports: frozenset[int | None] = ANY_PORT
) -> str | None:
    """The URL's host if it is http(s) on an allowed host and unambiguous to every parser,
    with a port in 1-65535 (and in ``ports``, unless that is empty)."""
    if len(url) > MAX_URL or _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    match = _NETLOC.match(parts.netloc.lower())
    if match is None:
        return None
    host, digits = match.group(1), match.group(2)
    port = int(digits) if digits is not None else None
    if port is not None and not 1 <= port <= MAX_PORT:
        return None
    if ports and port not in ports:
        return None
    return host if host in hosts else None


class LandingPolicy:
    """One campaign's redirect target and allow-list."""

    def __init__(self, campaign_id: str, campaign: Campaign) -> None:
        template = campaign.landing_url.strip()
        probe = _MACRO.sub("x", template)
        parts = urlsplit(probe)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"campaigns.{campaign_id}.landing_url: {template!r} is not an http(s) URL"
            )
        if "{" in urlsplit(template).netloc:
            raise ValueError(f"campaigns.{campaign_id}.landing_url: macros in the host")
        host = parts.hostname.lower()
        self.campaign_id = campaign_id
        self.template = template
        self.hosts = frozenset([host, *campaign.landing_domains])
        port = _NETLOC.match(parts.netloc.lower())
        self.ports: frozenset[int | None] = frozenset(
            {None, int(port.group(2)) if port and port.group(2) else None}
        )
        if allowed_host(probe, self.hosts, self.ports) is None:
            raise ValueError(
                f"campaigns.{campaign_id}.landing_url: {template!r} is not a plain http(s) URL"
            )
        # literal, macro, literal, ...: the host is literal, so expanding cannot move it
        self._pieces = _MACRO.split(quote(template, safe=_URL_SAFE + "{}"))

    def target(self, params: Mapping[str, str], macros: Mapping[str, str]) -> str:
        """The expanded redirect URL, or EdgeError(400, landing_domain_not_allowed)."""
        for name in OVERRIDE_PARAMS:
            override = params.get(name)
            if override:
                return self._override(name, override, params, macros)
        pieces = self._pieces
        out = []
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                out.append(piece)
            else:
                value = macros.get(piece)
                if value is None:
                    value = params.get(piece, "")
                out.append(value if _PLAIN.fullmatch(value) else quote(value, safe=""))
        return "".join(out)

    def _override(
        self, name: str, override: str, params: Mapping[str, str], macros: Mapping[str, str]
    ) -> str:
        if allowed_host(override, self.hosts, self.ports) is None:
            raise EdgeError(
                400,
                "landing_domain_not_allowed",
                f"{name}= must be an http(s) URL on {', '.join(sorted(self.hosts))}"
                " without another port than the landing URL's",
            )
        url = expand(override, macros, params)
        if allowed_host(url, self.hosts, self.ports) is None:
            raise EdgeError(
                400, "landing_domain_not_allowed", "the landing URL leaves the allowed domains"
            )
        return url


def expand(template: str, macros: Mapping[str, str], params: Mapping[str, str]) -> str:
    """``{name}`` -> URL-encoded value from macros, else from query params, else empty."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = macros.get(name)
        if found is None:
            found = params.get(name, "")
        return quote(found, safe="")

    expanded = _MACRO.sub(value, template) if "{" in template else template
    return quote(expanded, safe=_URL_SAFE)
