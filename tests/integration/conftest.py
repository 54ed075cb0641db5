"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.receivers import Receiver, serving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on a free loopback port, shut down after the test."""
    with serving() as state:
        yield state
