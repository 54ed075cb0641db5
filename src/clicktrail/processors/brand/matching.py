"""Find brands in search keywords and ad domains.

Keywords arrive typed by people ("Nörthwind  Outfitters!", "nortwind boots"), so terms are
compared as token sequences after NFKD folding, and a brand's *core* tokens (the words
every term of the brand shares, e.g. ``northwind``) also match one edit away. Generic words
never get the fuzzy treatment: only core tokens do, and only tokens long enough that one
edit is a typo rather than another word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal
from urllib.parse import urlsplit

from clicktrail.config.registry import Brand

MatchKind = Literal["term", "misspelled_term"]
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
MIN_FUZZY_LENGTH = 5
LONG_TOKEN = 10
MIN_CORE_IN_DOMAIN = 4


class BrandConfigError(ValueError):
    """The registry's brands cannot be matched reliably (raised at construction)."""


def normalize(text: str) -> str:
    """Case-, accent- and punctuation-free: ``'Nörthwind-Sale!'`` -> ``'northwind sale'``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_NON_ALNUM.sub(" ", bare).split())


def tokens(text: str) -> tuple[str, ...]:
    return tuple(normalize(text).split())


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-free Levenshtein distance, giving up (``limit + 1``) once past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    """Whether ``needle`` occurs as a contiguous run of tokens in ``haystack``."""
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def domain_of(value: str | None) -> str | None:
    """The host of a URL or a bare domain, lower-cased, without ``www.`` or a port."""
    if not value:
        return None
    host = urlsplit(value if "//" in value else f"//{value}").hostname
    if not host:
        return None
    host = host.rstrip(".").lower()
    return host.removeprefix("www.")


@dataclass(frozen=True, slots=True)
class TermMatch:
    brand: str
    kind: MatchKind
    term: str


@dataclass(frozen=True, slots=True)
class _BrandPattern:
    brand: str
    terms: tuple[tuple[str, ...], ...]
    misspellings: tuple[tuple[str, ...], ...]
    core: frozenset[str]
    domains: frozenset[str]


def _core_tokens(terms: list[tuple[str, ...]]) -> frozenset[str]:
    shared = set(terms[0]).intersection(*terms[1:])
    core = shared or {term[0] for term in terms}
    return frozenset(core)


class BrandMatcher:
    """Every brand's terms, misspellings and domains, prepared once from the registry."""

    def __init__(self, brands: Mapping[str, Brand], generic_words: Iterable[str] = ()) -> None:
        self._generic = frozenset(normalize(word) for word in generic_words)
        patterns = []
        for key, brand in brands.items():
            terms = [t for t in (tokens(term) for term in brand.terms) if t]
            if not terms:
                raise BrandConfigError(f"brands.{key}.terms: no letters or digits left to match")
            misspellings = tuple(t for t in (tokens(m) for m in brand.misspellings) if t)
            patterns.append(
                _BrandPattern(
                    brand=key,
                    terms=tuple(terms),
                    misspellings=misspellings,
                    core=_core_tokens(terms) - self._generic,
                    domains=frozenset(brand.official_domains),
                )
            )
        self._check_core_overlap(patterns)
        self.patterns = tuple(patterns)
        self._keywords: dict[str, tuple[TermMatch, ...]] = {}
        self._domains: dict[str, tuple[str, bool] | None] = {}

    @staticmethod
    def _check_core_overlap(patterns: list[_BrandPattern]) -> None:
        owner: dict[str, str] = {}
        for pattern in patterns:
            for token in pattern.core:
                if owner.setdefault(token, pattern.brand) != pattern.brand:
                    raise BrandConfigError(
                        f"brands.{pattern.brand}.terms: core word {token!r} is also a core word "
                        f"of brand {owner[token]!r}; keywords could not be told apart"
                    )

    def match_keyword(self, keyword: str | None) -> list[TermMatch]:
        """At most one match per brand: a configured term beats a misspelling. Remembered
        per keyword: traffic repeats a few thousand keywords, each was matched twice per
        event."""
        if not keyword:
            return []
        found = self._keywords.get(keyword)
        if found is None:
            found = self._keywords[keyword] = tuple(self._match_keyword(keyword))
            _bound(self._keywords)
        return list(found)

    def _match_keyword(self, keyword: str) -> list[TermMatch]:
        words = tokens(keyword)
        joined = {a + b for a, b in pairwise(words)}
        found = []
        for p in self.patterns:
            match = self._match_one(p, words, joined)
            if match is not None:
                found.append(match)
        return found

    def _match_one(
        self, p: _BrandPattern, words: tuple[str, ...], joined: set[str]
    ) -> TermMatch | None:
        for term in p.terms:
            if contains(words, term):
                return TermMatch(p.brand, "term", " ".join(term))
        for core in sorted(p.core):
            if core in words or core in joined:
                return TermMatch(p.brand, "term", core)
        for term in p.misspellings:
            if contains(words, term):
                return TermMatch(p.brand, "misspelled_term", " ".join(term))
        for word in words:
            if word in self._generic or len(word) < MIN_FUZZY_LENGTH:
                continue
            limit = 2 if len(word) >= LONG_TOKEN else 1
            for core in sorted(p.core):
                if 0 < edit_distance(word, core, limit) <= limit:
                    return TermMatch(p.brand, "misspelled_term", word)
        return None

    def domain_brand(self, domain: str | None) -> tuple[str, bool] | None:
        """``(brand, official)`` when the domain is a brand's own (or a subdomain) or a
        lookalike: a different domain whose name contains a core word of the brand."""
        if not domain:
            return None
        if domain not in self._domains:
            self._domains[domain] = self._domain_brand(domain)
            _bound(self._domains)
        return self._domains[domain]

    def _domain_brand(self, domain: str) -> tuple[str, bool] | None:
        for p in self.patterns:
            if any(domain == d or domain.endswith("." + d) for d in p.domains):
                return p.brand, True
        compact = _NON_ALNUM.sub("", domain.rsplit(".", 1)[0])
        for p in self.patterns:
            if any(len(c) >= MIN_CORE_IN_DOMAIN and c in compact for c in p.core):
                return p.brand, False
        return None


MEMO_SIZE = 100_000
"""Keywords (or domains) remembered per matcher; past it the memo starts over."""


def _bound(memo: dict[str, Any]) -> None:
    if len(memo) > MEMO_SIZE:
        memo.clear()
