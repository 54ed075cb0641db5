"""Bots by user agent: crawlers, headless browsers, scripts and empty agents.

Matching is a case-insensitive substring test against ``fraud.bot_user_agents``,
prepared once as one lowered tuple. A click without an agent is no browser at all;
a server-to-server postback has none by design, so conversions are not judged here, and
neither is the missing agent of a partner whose clicks are reported server to server
(``partners.X.traffic: s2s``: ad networks and other trackers send no user agent at all);
a bot agent it does send still counts.
"""

from __future__ import annotations

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import Click
from clicktrail.processors.fraud.hits import Hit


class BotAgentRule:
    def __init__(self, settings: FraudSettings, s2s_partners: frozenset[str] = frozenset()) -> None:
        markers = tuple(m.strip().lower() for m in settings.bot_user_agents)
        if any(not m for m in markers):
            raise ValueError("fraud.bot_user_agents: markers must not be empty")
        self.markers = markers
        self.s2s_partners = s2s_partners

    def __call__(self, click: Click) -> list[Hit]:
        agent = (click.user.user_agent or "").strip().lower()
        if not agent:
            return [] if click.partner_id in self.s2s_partners else [Hit("empty_user_agent")]
        if any(marker in agent for marker in self.markers):
            return [Hit("bot_user_agent")]
        return []
