"""The Sigma tags of a matched event: what ``/enrich`` returns and ``/_bulk`` adds to forwarded documents.

The tags use ECS fields, as arrays because one event may match several
rules: ``rule.id``, ``rule.name``, ``rule.ruleset``, ``threat.framework``,
``threat.technique.id``, ``threat.technique.subtechnique.id``,
``threat.tactic.id``, and ``sigma`` appended to ``tags``. Values already in
the event are kept and the new ones appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enricher.rules.loader import CompiledRule


def tags_for(rules: Sequence[CompiledRule]) -> dict[str, Any]:
    """Return the tag fields for the rules one event matched; empty without a match."""
    if not rules:
        return {}
    rule_ids: list[str] = []
    rule_names: list[str] = []
    techniques: list[str] = []
    subtechniques: list[str] = []
    tactics: list[str] = []
    for rule in rules:
        _add(rule_ids, [rule.id])
        _add(rule_names, [rule.title])
        threat = rule.threat or {}
        technique = threat.get("technique", {})
        _add(techniques, technique.get("id", []))
        _add(subtechniques, technique.get("subtechnique", {}).get("id", []))
        _add(tactics, threat.get("tactic", {}).get("id", []))

    tags: dict[str, Any] = {"rule": {"id": rule_ids, "name": rule_names, "ruleset": "sigma"}, "tags": ["sigma"]}
    if techniques or tactics:
        threat_tags: dict[str, Any] = {"framework": "MITRE ATT&CK"}
        if techniques:
            threat_tags["technique"] = {"id": techniques}
            if subtechniques:
                threat_tags["technique"]["subtechnique"] = {"id": subtechniques}
        if tactics:
            threat_tags["tactic"] = {"id": tactics}
        tags["threat"] = threat_tags
    return tags


def apply_tags(event: dict[str, Any], tags: dict[str, Any]) -> dict[str, Any]:
    """Merge tag fields into the event in place and return it."""
    _merge(event, tags)
    return event


def _merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        current = target.get(key)
        if isinstance(value, dict):
            if current is None:
                current = target[key] = {}
            elif not isinstance(current, dict):
                # The event contains a value where the tags need an object.
                # The event's value is kept, because the index mapping expects it.
                continue
            _merge(current, value)
        elif isinstance(value, list):
            if isinstance(current, list):
                existing = current
            elif current is None:
                existing = []
            else:
                existing = [current]
            target[key] = existing + [item for item in value if item not in existing]
        elif current is None:
            target[key] = value


def _add(items: list[str], values: Sequence[str]) -> None:
    for value in values:
        if value not in items:
            items.append(value)
