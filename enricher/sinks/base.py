"""The contract every alert sink implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class SinkUnavailable(RuntimeError):
    """Error raised when the sink cannot take writes now, so the caller returns 503 and the sender retries."""


@dataclass
class WriteResult:
    written: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


class AlertSink(Protocol):
    """Writes alerts idempotently: an alert id already stored is a duplicate, not a second alert."""

    description: str

    async def start(self) -> None:
        """Connect and prepare storage (templates, files). Raises ``SinkUnavailable``."""

    async def write(self, alerts: list[dict[str, Any]]) -> WriteResult:
        """Store alerts keyed by ``event.id``. Raises ``SinkUnavailable`` when nothing could be stored."""

    async def write_dead_letters(self, records: list[dict[str, Any]]) -> None:
        """Keep input that could not be processed. Raises ``SinkUnavailable``."""

    async def ping(self) -> bool:
        """Return whether the sink can take writes now."""

    async def close(self) -> None:
        """Release connections and files."""
