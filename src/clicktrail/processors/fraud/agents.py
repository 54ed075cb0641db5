"""Bots by user agent: crawlers, headless browsers, scripts and empty agents.

Known automation is recognised by CrawlerDetect (the ``crawlerdetect`` package: a
maintained list of well over a thousand crawlers, HTTP libraries and headless browsers,
from `python-requests`, `curl` and `Go-http-client` to Googlebot and HeadlessChrome), not
by a hand-written list that misses most of them. ``fraud.bot_user_agents`` adds markers of
one's own (case-insensitive substrings). Verdicts are cached per agent string: agents
repeat, and the library's pattern is long.

A click without an agent is no browser at all; a server-to-server postback has none by
design, so conversions are not judged here, and neither is the missing agent of a partner
whose clicks are reported server to server (``partners.X.traffic: s2s``: ad networks and
other trackers send no user agent at all); a bot agent it does send still counts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from crawlerdetect import CrawlerDetect

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import Click
from clicktrail.processors.fraud.hits import Hit

AGENTS_CACHED = 65_536


class BotAgentRule:
    def __init__(self, settings: FraudSettings, s2s_partners: frozenset[str] = frozenset()) -> None:
        markers = tuple(m.strip().lower() for m in settings.bot_user_agents)
        if any(not m for m in markers):
            raise ValueError("fraud.bot_user_agents: markers must not be empty")
        self.markers = markers
        self.s2s_partners = s2s_partners
        self.crawlers = CrawlerDetect()
        self.is_bot = lru_cache(maxsize=AGENTS_CACHED)(self._is_bot)

    def __getstate__(self) -> dict[str, object]:
        """A snapshot keeps the settings; the crawler list and the cache are rebuilt."""
        return {"markers": self.markers, "s2s_partners": self.s2s_partners}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.markers = state["markers"]
        self.s2s_partners = state["s2s_partners"]
        self.crawlers = CrawlerDetect()
        self.is_bot = lru_cache(maxsize=AGENTS_CACHED)(self._is_bot)

    def _is_bot(self, agent: str) -> bool:
        lowered = agent.lower()
        return any(m in lowered for m in self.markers) or bool(self.crawlers.isCrawler(agent))

    def __call__(self, click: Click) -> list[Hit]:
        agent = (click.user.user_agent or "").strip()
        if not agent:
            return [] if click.partner_id in self.s2s_partners else [Hit("empty_user_agent")]
        return [Hit("bot_user_agent")] if self.is_bot(agent) else []
