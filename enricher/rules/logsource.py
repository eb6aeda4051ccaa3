"""Log-source gating: a rule runs only on events of its Sigma log source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from enricher.fields import MISSING, EventFields
from enricher.rules.values import text_of


class LogsourceConfigError(ValueError):
    """A log-source file that cannot be used."""


@dataclass(frozen=True)
class LogsourceGate:
    """The event conditions of one log source; ``key`` identifies it for per-event caching."""

    key: str
    conditions: tuple[tuple[tuple[str, str], ...], ...]
    fields: tuple[str, ...]

    def allows(self, event: Mapping[str, Any] | EventFields) -> bool:
        """Return whether the event belongs to this log source, or has none of the fields that would decide it."""
        fields = event if isinstance(event, EventFields) else EventFields(event)
        values = {field: fields.lookup(field, field.split(".")) for field in self.fields}
        if all(found is MISSING for found in values.values()):
            return True
        for condition in self.conditions:
            if all(_equals_any(values[field], expected) for field, expected in condition):
                return True
        return False


def _equals_any(found: list[Any] | tuple[()], expected: str) -> bool:
    for item in found:
        text = text_of(item)
        if text is not None and text.casefold() == expected:
            return True
    return False


@dataclass(frozen=True)
class LogsourceTable:
    entries: tuple[tuple[dict[str, str], LogsourceGate], ...]

    @classmethod
    def load(cls, extra_files: tuple[Path, ...] | list[Path] = ()) -> LogsourceTable:
        """Read user files first, then the built-in table, so user entries win."""
        entries: list[tuple[dict[str, str], LogsourceGate]] = []
        for path in extra_files:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as error:
                raise LogsourceConfigError(f"cannot read log-source file {path}: {error}") from error
            entries.extend(_parse(text, str(path), len(entries)))
        builtin = resources.files("enricher.rules").joinpath("logsources.yml").read_text("utf-8")
        entries.extend(_parse(builtin, "built-in logsources.yml", len(entries)))
        return cls(tuple(entries))

    def gate_for(self, logsource: Mapping[str, str]) -> LogsourceGate | None:
        for keys, gate in self.entries:
            if all(logsource.get(name) == value for name, value in keys.items()):
                return gate
        return None


def _parse(text: str, origin: str, start: int) -> list[tuple[dict[str, str], LogsourceGate]]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LogsourceConfigError(f"invalid YAML in log-source file {origin}: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("logsources"), list):
        raise LogsourceConfigError(f"log-source file {origin} needs a top-level 'logsources' list")

    parsed = []
    for number, entry in enumerate(document["logsources"], start=1):
        keys = entry.get("logsource") if isinstance(entry, dict) else None
        conditions = entry.get("conditions") if isinstance(entry, dict) else None
        if not isinstance(keys, dict) or not keys or not isinstance(conditions, list) or not conditions:
            raise LogsourceConfigError(f"entry {number} of {origin} needs a 'logsource' map and a 'conditions' list")
        compiled = []
        fields: list[str] = []
        for condition in conditions:
            if not isinstance(condition, dict) or not condition:
                raise LogsourceConfigError(f"entry {number} of {origin}: each condition must be a non-empty map")
            compiled.append(tuple((str(field), str(value).casefold()) for field, value in condition.items()))
            fields.extend(str(field) for field in condition if str(field) not in fields)
        gate = LogsourceGate(key=f"{origin}#{start + number}", conditions=tuple(compiled), fields=tuple(fields))
        parsed.append(({str(name): str(value) for name, value in keys.items()}, gate))
    return parsed
