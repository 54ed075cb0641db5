"""Which secrets of a registry nobody should trust: shipped examples, empty or short ones.

A registry validates with the example secrets of ``deploy/clicktrail.example.yaml``
(they are long enough), so an operator who forgets to replace them runs a service
whose click ids and postback signatures anyone who read the repository can forge.
This module only names those keys; refusing to start over them is the CLI's job
(``clicktrail.cli.devmode``), so a test or a library caller can ask without side effects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from clicktrail.config.registry import Registry, SecuritySettings

MIN_LENGTH = 16
"""The length the registry already demands of click_id_key, postback secrets and API keys;
applied here to the secrets the model leaves unconstrained (webhook secrets, the operator
token)."""

EXAMPLE_SECRETS = frozenset(
    {
        "dev-click-id-key-change-me",
        "acme-dev-secret-change-me",
        "acme-dev-api-key-change-me",
    }
)
"""The ``${NAME:-default}`` defaults of deploy/clicktrail.example.yaml (a test keeps the two
in step)."""

SHIPPED = EXAMPLE_SECRETS | {str(SecuritySettings.model_fields["click_id_key"].default)}
PLACEHOLDER_MARK = "changeme"


class WeakSecret(NamedTuple):
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key} {self.reason}"


def judge(value: str) -> str | None:
    """Why ``value`` is not a secret, or ``None`` when it may be one."""
    if not value:
        return "is empty"
    folded = "".join(c for c in value.casefold() if c.isalnum())
    if value in SHIPPED or PLACEHOLDER_MARK in folded:
        return "is a shipped example secret"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None


def _secrets(registry: Registry) -> Iterator[tuple[str, str]]:
    """Every secret the registry holds, with its dotted key (as config errors name it)."""
    yield "security.click_id_key", registry.security.click_id_key
    if registry.security.operator_token:  # empty: no token, loopback callers only
        yield "security.operator_token", registry.security.operator_token
    if registry.privacy.ip_mode == "hash":
        yield "privacy.ip_hash_key", registry.privacy.ip_hash_key
    for key, advertiser in registry.advertisers.items():
        yield f"advertisers.{key}.postback_secret", advertiser.postback_secret
        for i, api_key in enumerate(advertiser.api_keys):
            yield f"advertisers.{key}.api_keys[{i}]", api_key
    for key, source in registry.sources.items():
        for i, api_key in enumerate(source.api_keys):
            yield f"sources.{key}.api_keys[{i}]", api_key
    for key, destination in registry.alerts.destinations.items():
        if destination.secret is not None:  # absent: the destination is not signed
            yield f"alerts.destinations.{key}.secret", destination.secret


def find_weak(registry: Registry) -> list[WeakSecret]:
    """The registry's secrets that are shipped examples, empty or short, in file order."""
    found = []
    for key, value in _secrets(registry):
        reason = judge(value)
        if reason is not None:
            found.append(WeakSecret(key, reason))
    return found


def weak_secrets(registry: Registry) -> list[str]:
    """``find_weak`` as lines: ``security.click_id_key is a shipped example secret``."""
    return [str(weak) for weak in find_weak(registry)]
