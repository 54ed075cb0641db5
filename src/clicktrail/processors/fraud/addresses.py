"""Datacenter traffic: the click's network inside ``fraud.datacenter_cidrs``.

Addresses reach the processors already anonymized by the intake: an IPv4 /24 or an
IPv6 /48 network address (``privacy.ip_mode: truncate``), a keyed hash ``h:...``
(``hash``), or raw (``none``, tests only). A truncated address still falls inside any
range of /24 (/48) or wider, so ranges are checked as given; a narrower range is
widened to the truncation prefix, since the host part is gone. A hashed address cannot
be placed in a range: the rule abstains rather than guess. A missing or unparsable
address abstains too; it never raises.
"""

from __future__ import annotations

import ipaddress

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import Click
from clicktrail.processors.fraud.hits import Hit
from clicktrail.processors.privacy import HASH_PREFIX

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUNCATION = {4: 24, 6: 48}


def parse_networks(cidrs: list[str], key: str = "fraud.datacenter_cidrs") -> list[Network]:
    """Ranges as networks; a bad entry fails with the key that holds it."""
    networks: list[Network] = []
    for i, text in enumerate(cidrs):
        try:
            network = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            raise ValueError(f"{key}[{i}]: {text!r} is not a valid CIDR range") from None
        prefix = TRUNCATION[network.version]
        if network.prefixlen > prefix:
            network = network.supernet(new_prefix=prefix)
        networks.append(network)
    return networks


def address_of(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address an event carries, or None when there is none to place (hashed, bad)."""
    if not ip or ip.startswith(HASH_PREFIX):
        return None
    try:
        return ipaddress.ip_address(ip.strip())
    except ValueError:
        return None


class DatacenterRule:
    def __init__(self, settings: FraudSettings) -> None:
        networks = parse_networks(list(settings.datacenter_cidrs))
        self.v4 = [n for n in networks if n.version == 4]
        self.v6 = [n for n in networks if n.version == 6]

    def __call__(self, click: Click) -> list[Hit]:
        address = address_of(click.user.ip)
        if address is None:
            return []
        networks = self.v4 if address.version == 4 else self.v6
        if any(address in network for network in networks):
            return [Hit("datacenter_ip")]
        return []
