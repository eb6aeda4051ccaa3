"""Sigma field names resolved to event values through a mapping kept as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from enricher.fields import MISSING, EventFields

Resolver = Callable[[EventFields], "list[Any] | tuple[()]"]


class FieldMappingError(ValueError):
    """A field mapping file that cannot be used."""


@dataclass
class FieldMapping:
    """Ordered event sources per Sigma field name."""

    sources: dict[str, list[Any]] = field(default_factory=dict)
    _resolvers: dict[str, Resolver] = field(default_factory=dict, repr=False)

    @classmethod
    def default(cls) -> FieldMapping:
        text = resources.files("enricher.rules").joinpath("field_mapping.yml").read_text("utf-8")
        mapping = cls()
        mapping.update(_parse(text, "built-in field_mapping.yml"))
        return mapping

    @classmethod
    def load(cls, extra_files: list[Path] | tuple[Path, ...] = ()) -> FieldMapping:
        """Build the built-in mapping, then apply each file in order (later entries win)."""
        mapping = cls.default()
        for path in extra_files:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as error:
                raise FieldMappingError(f"cannot read field mapping {path}: {error}") from error
            mapping.update(_parse(text, str(path)))
        return mapping

    def update(self, sources: dict[str, list[Any]]) -> None:
        self.sources.update(sources)
        self._resolvers.clear()

    def resolver(self, sigma_field: str) -> Resolver:
        """Return a function that finds the values of ``sigma_field`` in an event."""
        cached = self._resolvers.get(sigma_field)
        if cached is not None:
            return cached
        sources = self.sources.get(sigma_field)
        if sources is None:
            sources = [sigma_field, f"winlog.event_data.{sigma_field}"]
        resolver = _first_present([_source_function(source) for source in sources])
        self._resolvers[sigma_field] = resolver
        return resolver

    def paths(self, sigma_field: str) -> list[str]:
        """Return the plain event paths ``sigma_field`` may be read from, composites left out."""
        sources = self.sources.get(sigma_field) or [sigma_field, f"winlog.event_data.{sigma_field}"]
        return [source for source in sources if isinstance(source, str)]


def _parse(text: str, origin: str) -> dict[str, list[Any]]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FieldMappingError(f"invalid YAML in field mapping {origin}: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("fields"), dict):
        raise FieldMappingError(f"field mapping {origin} needs a top-level 'fields' mapping")

    parsed: dict[str, list[Any]] = {}
    for name, sources in document["fields"].items():
        if isinstance(sources, (str, dict)):
            sources = [sources]
        if not isinstance(sources, list) or not sources:
            raise FieldMappingError(f"field {name!r} in {origin} needs a list of sources")
        for source in sources:
            _check_source(source, name, origin)
        parsed[str(name)] = sources
    return parsed


def _check_source(source: Any, name: str, origin: str) -> None:
    if isinstance(source, str):
        return
    if isinstance(source, dict) and isinstance(source.get("join"), list):
        return
    if isinstance(source, dict) and isinstance(source.get("pairs"), dict):
        return
    raise FieldMappingError(
        f"field {name!r} in {origin}: source {source!r} is not a path, a 'join' or a 'pairs' entry"
    )


def _source_function(source: Any) -> Resolver:
    if isinstance(source, str):
        parts = source.split(".")
        return lambda fields: fields.lookup(source, parts)
    if "join" in source:
        return _join_function(source["join"], source.get("separator", ""))
    return _pairs_function(source["pairs"], source.get("separator", ","))


def _scalar_text(values: list[Any]) -> str | None:
    for value in values:
        if value is not None and not isinstance(value, (dict, list)):
            return str(value)
    return None


def _join_function(paths: list[str], separator: str) -> Resolver:
    split_paths = [(path, path.split(".")) for path in paths]

    def resolve(fields: EventFields) -> list[Any] | tuple[()]:
        parts = []
        for path, path_parts in split_paths:
            values = fields.lookup(path, path_parts)
            text = _scalar_text(list(values))
            if text is not None:
                parts.append(text)
        if not parts:
            return MISSING
        return [separator.join(parts)]

    return resolve


def _pairs_function(pairs: dict[str, str], separator: str) -> Resolver:
    split_pairs = [(name, path, path.split(".")) for name, path in pairs.items()]

    def resolve(fields: EventFields) -> list[Any] | tuple[()]:
        parts = []
        for name, path, path_parts in split_pairs:
            text = _scalar_text(list(fields.lookup(path, path_parts)))
            if text is not None:
                parts.append(f"{name}={text}")
        if not parts:
            return MISSING
        return [separator.join(parts)]

    return resolve


def _first_present(functions: list[Resolver]) -> Resolver:
    if len(functions) == 1:
        return functions[0]

    def resolve(fields: EventFields) -> list[Any] | tuple[()]:
        for function in functions:
            values = function(fields)
            if values is not MISSING:
                return values
        return MISSING

    return resolve
