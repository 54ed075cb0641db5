"""Simulated people and machines: a pool of returning users, plus bots and datacenter hosts.

Users come back (so cookie / device matching and last-click stealing happen);
each user's context is serialized once and embedded into every event as an
``orjson.Fragment``, which keeps the per-event cost flat.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

COUNTRIES = (
    ("US", 30), ("DE", 14), ("GB", 12), ("FR", 9), ("IN", 9),
    ("BR", 8), ("CA", 6), ("JP", 5), ("ES", 4), ("PL", 3),
)  # fmt: skip
FARM_COUNTRIES = ("VN", "BD", "ID", "PK", "NG")
DEVICES = (("desktop", 38), ("mobile", 52), ("tablet", 10))
OS_BY_DEVICE = {
    "desktop": (("Windows", 70), ("macOS", 25), ("Linux", 5)),
    "mobile": (("Android", 60), ("iOS", 40)),
    "tablet": (("iPadOS", 60), ("Android", 40)),
}
SEGMENTS = (
    "new_visitor", "returning", "cart_abandoner", "loyalty_member",
    "deal_seeker", "high_income", "gamer", "price_sensitive",
)  # fmt: skip
DATACENTER_CIDRS = (
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "198.18.0.0/15",
    "2001:db8::/32",
)
"""Documentation and benchmarking ranges, standing in for hosting providers."""

BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.6367.60 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
    "PhantomJS/2.1.1 Safari/538.1",
    "python-requests/2.32.3",
    "curl/8.7.1",
    "Go-http-client/1.1",
    "",
)
"""Agents of crawlers, HTTP libraries and headless browsers as they appear in real logs.
The registry names none of them: the detector has to know them (fraud/agents.py)."""

# Global unicast /8s, none of them holding a range of DATACENTER_CIDRS.
_ISP_FIRST_OCTETS = (24, 31, 37, 46, 62, 77, 78, 81, 84, 86, 89, 90, 91, 93, 94, 95, 176, 178)
_ANDROID_MODELS = ("SM-S918B", "Pixel 8", "SM-A546B", "22101316G", "CPH2581")


def pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    total = sum(w for _, w in table)
    point = rng.random() * total
    for value, weight in table:
        point -= weight
        if point < 0:
            return value
    return table[-1][0]


def user_agent(rng: random.Random, device: str, os: str) -> str:
    chrome = rng.choice((122, 123, 124, 125))
    if os == "Windows":
        return (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/{chrome}.0.0.0 Safari/537.36"
        )
    if os == "macOS":
        return (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/17.{rng.randint(0, 4)} Safari/605.1.15"
        )
    if os == "Linux":
        return f"Mozilla/5.0 (X11; Linux x86_64; rv:{chrome}.0) Gecko/20100101 Firefox/{chrome}.0"
    if os == "Android":
        kind = "Mobile " if device == "mobile" else ""
        return (
            f"Mozilla/5.0 (Linux; Android {rng.randint(11, 14)}; {rng.choice(_ANDROID_MODELS)}) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome}.0.0.0 {kind}Safari/537.36"
        )
    model = "iPad; CPU OS" if device == "tablet" else "iPhone; CPU iPhone OS"
    minor = rng.randint(0, 4)
    return (
        f"Mozilla/5.0 ({model} 17_{minor} like Mac OS X) AppleWebKit/605.1.15 "
        f"(KHTML, like Gecko) Version/17.{minor} Mobile/15E148 Safari/604.1"
    )


def residential_ip(rng: random.Random, v6_share: float = 0.0) -> str:
    """A public-looking address outside every datacenter range."""
    if rng.random() < v6_share:
        parts = (rng.getrandbits(16) for _ in range(3))
        return f"2a0{rng.randint(0, 9)}:" + ":".join(f"{p:x}" for p in parts) + "::1"
    first = _ISP_FIRST_OCTETS[int(rng.random() * len(_ISP_FIRST_OCTETS))]
    bits = rng.getrandbits(16)
    return f"{first}.{bits >> 8}.{bits & 255}.{1 + int(rng.random() * 254)}"


def datacenter_ip(rng: random.Random) -> str:
    """An address that stays inside a configured range after /24 or /48 truncation."""
    pick_net = rng.randrange(len(DATACENTER_CIDRS))
    if pick_net == 4:
        return f"2001:db8:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.randint(1, 99)}"
    if pick_net == 3:
        return f"198.{rng.choice((18, 19))}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return DATACENTER_CIDRS[pick_net].replace("0/24", str(rng.randint(1, 254)))


def fragment(fields: Mapping[str, object]) -> orjson.Fragment:
    """Serialized once, embedded as is. Copied: ``orjson.dumps`` keeps a 4 KiB buffer per
    result, which for 150 000 users would be 600 MB."""
    data = orjson.dumps({k: v for k, v in fields.items() if v is not None})
    return orjson.Fragment(bytes(memoryview(data)))


@dataclass(frozen=True, slots=True)
class User:
    """What the simulation needs to know about a person; the rest is in ``context`` only."""

    index: int
    user_id: str
    country: str
    device: str
    os: str
    segments: tuple[str, ...]
    context: orjson.Fragment


def new_user_id(rng: random.Random) -> str:
    return f"u-{rng.getrandbits(64):016x}"


def make_user(rng: random.Random, index: int) -> User:
    device = pick(rng, DEVICES)
    os = pick(rng, OS_BY_DEVICE[device])
    count = pick(rng, (("0", 25), ("1", 40), ("2", 25), ("3", 10)))
    chosen = set(rng.sample(range(len(SEGMENTS)), int(count)))
    segments = tuple(s for i, s in enumerate(SEGMENTS) if i in chosen)
    user_id = new_user_id(rng)
    ip = residential_ip(rng, 0.15 if device == "mobile" else 0.03)
    agent = user_agent(rng, device, os)
    country = pick(rng, COUNTRIES)
    context = fragment(
        {
            "user_id": user_id,
            "ip": ip,
            "user_agent": agent,
            "country": country,
            "device_type": device,
            "os": os,
            "segments": list(segments),
        }
    )
    return User(index, user_id, country, device, os, segments, context)


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who an event is about: a pool user, or a throwaway id; and the context sent with it."""

    context: orjson.Fragment
    user: User | None = None

    @staticmethod
    def of(user: User) -> Visitor:
        return Visitor(user.context, user)


def behind_carrier_nat(users: list[User], rng: random.Random, share: float, networks: int) -> None:
    """Move ``share`` of the mobile users behind ``networks`` shared carrier /24 networks
    (in place): their address becomes one of those networks', the rest of their context
    stays. Drawn from its own generator, so a pool without carrier NAT is unchanged."""
    if share <= 0 or networks <= 0:
        return
    nets = [residential_ip(rng).rsplit(".", 1)[0] for _ in range(networks)]
    for i, user in enumerate(users):
        if user.device == "desktop" or rng.random() >= share:
            continue
        context = orjson.loads(orjson.dumps(user.context))
        context["ip"] = f"{nets[int(rng.random() * networks)]}.{1 + int(rng.random() * 254)}"
        users[i] = User(
            user.index, user.user_id, user.country, user.device, user.os, user.segments,
            fragment(context),
        )  # fmt: skip


class UserPool:
    """Returning users; a few are much more active than most (as on real sites)."""

    def __init__(
        self, rng: random.Random, size: int, nat: tuple[random.Random, float, int] | None = None
    ) -> None:
        """``nat``: (generator, share, networks) of users behind carrier NAT."""
        self.users = [make_user(rng, i) for i in range(size)]
        if nat is not None:
            behind_carrier_nat(self.users, *nat)
        self.visitors = [Visitor(u.context, u) for u in self.users]
        self.mobile = [v for v in self.visitors if v.user and v.user.device != "desktop"]
        self._rng = rng

    def __len__(self) -> int:
        return len(self.users)

    def any(self) -> Visitor:
        visitors = self.visitors
        return visitors[int(len(visitors) * self._rng.random() ** 1.4)]

    def on_mobile(self) -> Visitor:
        visitors = self.mobile
        return visitors[int(len(visitors) * self._rng.random() ** 1.4)]

    def visitor(self, user: User) -> Visitor:
        return self.visitors[user.index]


def pool_size(events: int) -> int:
    """One user per 20 events, within 1 000 .. 50 000: memory stays flat beyond 1 M events."""
    return max(1_000, min(50_000, events // 20))


def bot_visitor(rng: random.Random, agents: tuple[str, ...] = BOT_AGENTS) -> Visitor:
    """Known crawlers, headless browsers, scripts and empty agents, on residential proxies."""
    agent = rng.choice(agents)
    context = fragment(
        {
            "user_id": new_user_id(rng) if rng.random() < 0.7 else None,
            "ip": residential_ip(rng),
            "user_agent": agent,
            "country": pick(rng, COUNTRIES),
            "device_type": "desktop" if agent else None,
            "os": "Linux" if "Linux" in agent else None,
        }
    )
    return Visitor(context)


def datacenter_visitor(rng: random.Random) -> Visitor:
    """Ordinary-looking browsers whose address is in a hosting range."""
    os = rng.choice(("Windows", "Linux"))
    return Visitor(
        fragment(
            {
                "user_id": new_user_id(rng),
                "ip": datacenter_ip(rng),
                "user_agent": user_agent(rng, "desktop", os),
                "country": pick(rng, COUNTRIES),
                "device_type": "desktop",
                "os": os,
            }
        )
    )
