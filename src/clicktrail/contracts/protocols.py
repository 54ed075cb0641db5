"""Interfaces between the layers: what a processor, a sink and a state store are.

Only types live here, so every layer can import them without importing each
other. A Faust ``Table`` satisfies :class:`StateStore` (it is a mutable mapping);
so does a plain ``dict`` for tests and the embedded runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol, TypeVar

In_contra = TypeVar("In_contra", contravariant=True)
Out_co = TypeVar("Out_co", covariant=True)

StateStore = MutableMapping[str, Any]
"""Keyed processor state. Values must be JSON-friendly so a changelog can hold them."""


class Processor(Protocol[In_contra, Out_co]):
    """Pure step: one input in, zero or more outputs out; state only via a StateStore."""

    def __call__(self, item: In_contra) -> Iterable[Out_co]: ...


class Sink(Protocol):
    """Batches records and writes them out; ``flush`` at checkpoints and on a timer."""

    def add(self, table: str, row: dict[str, Any]) -> None: ...

    def flush(self) -> int: ...


class SinkBackpressure(Exception):
    """Raised by a sink whose buffer is full so the runtime can pause intake."""
