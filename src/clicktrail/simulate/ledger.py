"""Last-click truth: which click (or impression) a correct attribution credits.

Conversions that carry no click id are matched by user within the click (or
view) window, so the simulator keeps each user's recent touches per
advertiser. That is also how click flooding and click injection steal credit.
Touches are kept flat (time, id, time, id...) to keep memory small: with every
user of a large pool holding a few, tuples would cost a few hundred MB.
"""

from __future__ import annotations

from typing import Any

KEEP_CLICKS = 4
KEEP_VIEWS = 2
"""Touches kept per user and advertiser: the last one at or before a conversion is among
them unless that many newer ones were generated ahead of it (a minute's lookahead)."""

_KINDS = 64
Key = tuple[int, int]
"""(user index, advertiser index)"""


class Ledger:
    def __init__(self) -> None:
        self._clicks: dict[int, list[Any]] = {}
        self._views: dict[int, list[Any]] = {}
        self._kinds: dict[tuple[str, int], int] = {}
        self._kind_list: list[tuple[str, int]] = []

    def _kind(self, label: str, window_ms: int) -> int:
        """A small number for (label, window), stored in the low bits of the time stamp."""
        kind = self._kinds.get((label, window_ms))
        if kind is None:
            kind = self._kinds[(label, window_ms)] = len(self._kind_list)
            if kind >= _KINDS:
                raise ValueError("too many (label, window) combinations for the ledger")
            self._kind_list.append((label, window_ms))
        return kind

    def add_click(self, key: Key, ts: int, click_id: str, label: str, window_ms: int) -> None:
        stamp = ts * _KINDS + self._kind(label, window_ms)
        _insert(self._clicks, _flat(key), stamp, click_id, KEEP_CLICKS)

    def add_view(self, key: Key, ts: int, impression_id: str, window_ms: int) -> None:
        stamp = ts * _KINDS + self._kind("", window_ms)
        _insert(self._views, _flat(key), stamp, impression_id, KEEP_VIEWS)

    def last_click(self, key: Key, ts: int) -> tuple[str, str] | None:
        """The latest click at or before ``ts`` still inside its campaign's window."""
        touches = self._clicks.get(_flat(key), [])
        for i in range(len(touches) - 2, -1, -2):
            clicked, kind = divmod(touches[i], _KINDS)
            label, window = self._kind_list[kind]
            if clicked <= ts and ts - clicked <= window:
                return touches[i + 1], label
        return None

    def last_view(self, key: Key, ts: int) -> str | None:
        touches = self._views.get(_flat(key), [])
        for i in range(len(touches) - 2, -1, -2):
            seen, kind = divmod(touches[i], _KINDS)
            if seen <= ts and ts - seen <= self._kind_list[kind][1]:
                return str(touches[i + 1])
        return None


def _flat(key: Key) -> int:
    return key[0] * 8 + key[1]


def _insert(table: dict[int, list[Any]], key: int, stamp: int, ident: str, keep: int) -> None:
    touches = table.get(key)
    if touches is None:
        table[key] = [stamp, ident]
        return
    if touches[-2] <= stamp:
        touches += (stamp, ident)
    else:  # a touch generated ahead of time (an injected click) is already in: keep order
        position = len(touches) - 2
        while position and touches[position - 2] > stamp:
            position -= 2
        touches[position:position] = (stamp, ident)
    if len(touches) > 2 * keep:
        del touches[:2]
