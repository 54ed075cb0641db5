"""Brand matching: folding, terms, misspellings, domains, and construction-time checks."""

from __future__ import annotations

import pytest

from clicktrail.config.registry import Brand
from clicktrail.processors.brand.matching import (
    BrandConfigError,
    BrandMatcher,
    domain_of,
    edit_distance,
    normalize,
)

BRANDS = {
    "northwind": Brand(
        advertiser="northwind",
        terms=["northwind", "northwind outfitters"],
        misspellings=["nortwind"],
        official_domains=["northwind.example"],
    ),
    "quokka": Brand(
        advertiser="quokka",
        terms=["quokka quest", "quokka game"],
        official_domains=["quokkaquest.example"],
    ),
}


@pytest.fixture
def matcher() -> BrandMatcher:
    return BrandMatcher(BRANDS, generic_words=["northward"])


class TestNormalize:
    def test_folds_case_accents_and_punctuation(self) -> None:
        """Accents, case and punctuation never hide a brand."""
        assert normalize("  NÖRTHWIND—Outfitters!! ") == "northwind outfitters"

    def test_edit_distance_gives_up_past_the_limit(self) -> None:
        """The distance is exact up to the limit and limit + 1 beyond."""
        assert edit_distance("nortwind", "northwind", 1) == 1
        assert edit_distance("northwood", "northwind", 1) == 2


class TestKeywords:
    def test_exact_terms_in_longer_keywords(self, matcher: BrandMatcher) -> None:
        """A term anywhere in the keyword matches, as whole tokens."""
        [match] = matcher.match_keyword("Quokka Quest download")
        assert (match.brand, match.kind, match.term) == ("quokka", "term", "quokka quest")
        assert matcher.match_keyword("northwinds and friends")[0].kind == "misspelled_term"

    def test_split_core_word_is_a_term(self, matcher: BrandMatcher) -> None:
        """'north wind' is the brand written in two words."""
        assert matcher.match_keyword("north wind jackets")[0].kind == "term"

    def test_configured_and_fuzzy_misspellings(self, matcher: BrandMatcher) -> None:
        """Configured misspellings and one-edit typos of the core word are misspelled terms."""
        for keyword in ("nortwind boots", "northwnd outfitters", "quoka quest", "qokka"):
            [match] = matcher.match_keyword(keyword)
            assert match.kind == "misspelled_term", keyword

    def test_generic_words_do_not_match(self, matcher: BrandMatcher) -> None:
        """Ordinary words near a brand are not typos of it."""
        for keyword in ("northward trail", "northwest jackets", "quest game", "north", "quack"):
            assert matcher.match_keyword(keyword) == [], keyword
        assert matcher.match_keyword(None) == []


class TestDomains:
    def test_official_subdomain_and_lookalike(self, matcher: BrandMatcher) -> None:
        """Own domains (and subdomains) are official; another name holding the brand is not."""
        assert matcher.domain_brand("shop.northwind.example") == ("northwind", True)
        assert matcher.domain_brand("northwind-outlet.example") == ("northwind", False)
        assert matcher.domain_brand("topdeals-hub.example") is None

    def test_domain_of_urls(self) -> None:
        """Landing URLs reduce to a host without www or port."""
        assert domain_of("https://WWW.Northwind.example:443/x?y=1") == "northwind.example"
        assert domain_of("northwind.example") == "northwind.example"
        assert domain_of(None) is None


class TestConstruction:
    def test_terms_without_letters_are_refused(self) -> None:
        """A term of punctuation only could match nothing; it fails at construction."""
        brands = {"x": Brand(advertiser="x", terms=["!!!"])}
        with pytest.raises(BrandConfigError, match=r"brands\.x\.terms"):
            BrandMatcher(brands)

    def test_shared_core_words_are_refused(self) -> None:
        """Two brands whose terms share the same core word cannot be told apart."""
        brands = {
            "a": Brand(advertiser="a", terms=["acme tools"]),
            "b": Brand(advertiser="b", terms=["acme travel"]),
        }
        with pytest.raises(BrandConfigError, match="core word 'acme'"):
            BrandMatcher(brands)
