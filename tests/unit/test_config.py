"""The registry: the example is valid, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrail.config import ConfigError, Registry, load_registry, parse_registry

GOOD = {
    "advertisers": {"acme": {"postback_secret": "s" * 16}},
    "brands": {"acme": {"advertiser": "acme", "terms": ["Acme"]}},
    "campaigns": {
        "c1": {"advertiser": "acme", "brand": "acme", "landing_url": "https://acme.example/"}
    },
}


def test_the_example_config_is_valid(example_registry: Registry) -> None:
    assert "acme" in example_registry.brands
    assert example_registry.campaigns["acme-brand-search"].attribution.model == "last_click"
    assert example_registry.actions["install"].min_ctit_seconds == 10


def test_defaults_without_a_file() -> None:
    registry = load_registry(None)
    assert sorted(registry.actions) == ["add_to_cart", "install", "lead", "purchase", "signup"]
    assert registry.privacy.ip_mode == "truncate"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"brands": {"acme": {"advertiser": "ghost", "terms": ["a"]}}},
            "brands.acme.advertiser: unknown advertiser 'ghost'",
        ),
        (
            {"brands": {"acme": {"advertiser": "acme", "terms": ["  "]}}},
            "brands.acme.terms.0: brand term must not be empty",
        ),
        (
            {
                "brands": {
                    "acme": {
                        "advertiser": "acme",
                        "terms": ["a"],
                        "official_domains": ["not a domain"],
                    }
                }
            },
            "brands.acme.official_domains.0: 'not a domain' is not a valid domain",
        ),
        (
            {
                "brands": {
                    "acme": {"advertiser": "acme", "terms": ["a"]},
                    "b2": {"advertiser": "acme", "terms": ["A"]},
                }
            },
            "brands.b2.terms: 'A' is also a term of brand 'acme'",
        ),
        (
            {"fraud": {"datacenter_cidrs": ["10.0.0.0/33"]}},
            "fraud.datacenter_cidrs.0: '10.0.0.0/33' is not a valid CIDR",
        ),
        (
            {
                "campaigns": {
                    "c1": {
                        "advertiser": "acme",
                        "landing_url": "https://x.example",
                        "brand": "ghost",
                    }
                }
            },
            "campaigns.c1.brand: unknown brand 'ghost'",
        ),
        (
            {"partners": {"p": {"authorized": [{"brand": "ghost", "channels": ["search"]}]}}},
            "partners.p.authorized[0].brand: unknown brand 'ghost'",
        ),
        (
            {"alerts": {"routes": [{"destinations": ["nowhere"]}]}},
            "alerts.routes[0].destinations: unknown destination 'nowhere'",
        ),
        (
            {"alerts": {"destinations": {"hook": {"kind": "webhook"}}}},
            "alerts.destinations.hook: a webhook destination needs a url",
        ),
        ({"privacy": {"ip_mode": "hash"}}, "needs ip_hash_key"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_key(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_registry({**GOOD, **patch})
    assert message in str(caught.value)


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", "from-the-environment")
    data = {**GOOD, "advertisers": {"acme": {"postback_secret": "${ACME_SECRET}"}}}
    assert parse_registry(data).advertisers["acme"].postback_secret == "from-the-environment"
    data = {**GOOD, "advertisers": {"acme": {"postback_secret": "${NOT_SET_ANYWHERE}"}}}
    with pytest.raises(ConfigError, match=r"advertisers\.acme\.postback_secret: environment"):
        parse_registry(data)


def test_yaml_errors_have_a_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("brands:\n  acme: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml at line \d+, column \d+"):
        load_registry(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_registry(tmp_path / "absent.yaml")
